/**
 * The gpu backend's kernel bodies, called directly on the CPU with a fake `this` (no gpu.js):
 * each output element is computed by the body with `this.thread` set to its column and row, as
 * gpu.js does, and compared with hand-computed values.
 */
import test from 'ava';
import { kernelBodies, type KernelMatrix, type KernelName, type KernelThis } from '../../src/kernels/gpu/kernels.js';

type Body = (this: KernelThis<never>, ...args: never[]) => number;

/** Runs `name` over an output of `rows × cols` the way gpu.js would, returning its rows. */
function run(name: KernelName, rows: number, cols: number, constants: object, ...args: unknown[]): number[][] {
  const body = kernelBodies[name] as unknown as Body;
  const out: number[][] = [];
  for (let y = 0; y < rows; y++) {
    const row: number[] = [];
    for (let x = 0; x < cols; x++) row.push(body.call({ thread: { x, y, z: 0 }, constants } as KernelThis<never>, ...(args as never[])));
    out.push(row);
  }
  return out;
}

/** A matrix argument as rows of `Float32Array`, which is what gpu.js hands a kernel on the CPU modes. */
function m(rows: number[][]): KernelMatrix {
  return rows.map((r) => Float32Array.from(r));
}

function near(t: import('ava').ExecutionContext, got: number[][], want: number[][], tol: number): void {
  t.is(got.length, want.length);
  got.forEach((row, i) => row.forEach((v, j) => t.true(Math.abs(v - want[i]![j]!) <= tol, `[${i}][${j}] = ${v}, expected ${want[i]![j]}`)));
}

const sigma = (z: number): number => 1 / (1 + Math.exp(-z));

test('every kernel body is a named function registered under its name', (t) => {
  for (const [name, body] of Object.entries(kernelBodies)) {
    t.is(body.name, `${name}Kernel`);
    t.regex(body.toString(), new RegExp(`^function ${name}Kernel\\(`));
    t.false(/Math\.random/.test(body.toString()), `${name} draws no random numbers itself`);
  }
});

test('copy and fill', (t) => {
  t.deepEqual(
    run(
      'copy',
      2,
      3,
      {},
      m([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    ),
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
  );
  t.deepEqual(run('fill', 2, 2, {}, -1.5), [
    [-1.5, -1.5],
    [-1.5, -1.5],
  ]);
});

test('gemm in its four orientations: [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]]', (t) => {
  const a = m([
    [1, 2],
    [3, 4],
  ]);
  const at = m([
    [1, 3],
    [2, 4],
  ]);
  const b = m([
    [5, 6],
    [7, 8],
  ]);
  const bt = m([
    [5, 7],
    [6, 8],
  ]);
  const c = m([
    [1, 1],
    [1, 1],
  ]);
  const want = [
    [19, 22],
    [43, 50],
  ];
  t.deepEqual(run('gemmNN', 2, 2, { k: 2 }, a, b, c, 1, 0), want);
  t.deepEqual(run('gemmNT', 2, 2, { k: 2 }, a, bt, c, 1, 0), want);
  t.deepEqual(run('gemmTN', 2, 2, { k: 2 }, at, b, c, 1, 0), want);
  t.deepEqual(run('gemmTT', 2, 2, { k: 2 }, at, bt, c, 1, 0), want);
  t.deepEqual(
    run(
      'gemmNN',
      2,
      2,
      { k: 2 },
      a,
      b,
      m([
        [1, 2],
        [3, 4],
      ]),
      2,
      0.5,
    ),
    [
      [38.5, 45],
      [87.5, 102],
    ],
  );
});

test('gemm with beta = 0 never reads c (NaN there does not leak)', (t) => {
  const nan = m([[Number.NaN]]);
  t.deepEqual(run('gemmNN', 1, 1, { k: 3 }, m([[1, 2, 3]]), m([[4], [5], [6]]), nan, 0.5, 0), [[16]]);
});

test('a rectangular product: 1×3 · 3×2, and its transposed forms', (t) => {
  const x = m([[1, -2, 0.5]]);
  const w = m([
    [2, 0],
    [1, -1],
    [4, 3],
  ]);
  const wt = m([
    [2, 1, 4],
    [0, -1, 3],
  ]);
  t.deepEqual(run('gemmNN', 1, 2, { k: 3 }, x, w, m([[0, 0]]), 1, 0), [[2, 3.5]]);
  t.deepEqual(run('gemmNT', 1, 2, { k: 3 }, x, wt, m([[0, 0]]), 1, 0), [[2, 3.5]]);
});

test('linearSigmoid: σ(x·w + b) by hand, and saturation without NaN', (t) => {
  const x = m([
    [1, 2],
    [300, -300],
  ]);
  const w = m([[0.5], [-0.25]]);
  const bias = m([[0.1]]);
  // Row 0: 0.5 − 0.5 + 0.1 = 0.1. Row 1: 150 + 75 + 0.1 = 225.1 → 1.
  near(t, run('linearSigmoid', 2, 1, { k: 2 }, x, w, bias), [[sigma(0.1)], [1]], 1e-8);
  near(t, run('linearSigmoidT', 2, 1, { k: 2 }, x, m([[0.5, -0.25]]), bias), [[sigma(0.1)], [1]], 1e-8);
  near(t, run('linearSigmoid', 1, 1, { k: 1 }, m([[-1000]]), m([[1]]), m([[0]])), [[0]], 0);
});

test('linearSigmoidBernoulli: 1 exactly where u < σ(x·w + b)', (t) => {
  const x = m([[1, 2]]);
  const w = m([
    [0.5, 0, -4],
    [-0.25, 0, 1],
  ]);
  const bias = m([[0.1, 0, 0]]);
  // p = [σ(0.1) ≈ 0.525, σ(0) = 0.5, σ(−2) ≈ 0.119]
  t.deepEqual(run('linearSigmoidBernoulli', 1, 3, { k: 2 }, x, w, bias, m([[0.52, 0.5, 0.1]])), [[1, 0, 1]]);
  t.deepEqual(run('linearSigmoidBernoulli', 1, 3, { k: 2 }, x, w, bias, m([[0.53, 0.4999, 0.2]])), [[0, 1, 0]]);
  const wt = m([
    [0.5, -0.25],
    [0, 0],
    [-4, 1],
  ]);
  t.deepEqual(run('linearSigmoidBernoulliT', 1, 3, { k: 2 }, x, wt, bias, m([[0.52, 0.5, 0.1]])), [[1, 0, 1]]);
});

test('row broadcasts: addRow and addRowSigmoid', (t) => {
  const x = m([
    [1, -1],
    [0, 2],
  ]);
  const bias = m([[0.5, 1]]);
  t.deepEqual(run('addRow', 2, 2, {}, x, bias), [
    [1.5, 0],
    [0.5, 3],
  ]);
  near(
    t,
    run('addRowSigmoid', 2, 2, {}, x, bias),
    [
      [sigma(1.5), 0.5],
      [sigma(0.5), sigma(3)],
    ],
    1e-12,
  );
  near(t, run('addRowSigmoid', 1, 2, {}, m([[-800, 800]]), m([[0, 0]])), [[0, 1]], 0);
});

test('bernoulli is strict: u == p gives 0', (t) => {
  t.deepEqual(run('bernoulli', 1, 4, {}, m([[0.5, 0.5, 0, 1]]), m([[0.5, 0.49, 0, 0.999]])), [[0, 1, 0, 1]]);
});

test('relu, noisyRelu and their backward passes', (t) => {
  t.deepEqual(run('relu', 1, 3, {}, m([[-2, 0, 3]])), [[0, 0, 3]]);
  // x = 0, noise = 1: sqrt(σ(0)) = sqrt(0.5); x = −10, noise = 0: 0; x = 2, noise = −10: max(0, 2 − 10·sqrt(σ(2))) = 0.
  near(t, run('noisyRelu', 1, 3, {}, m([[0, -10, 2]]), m([[1, 0, -10]])), [[Math.SQRT1_2, 0, 0]], 1e-7);
  near(t, run('noisyRelu', 1, 1, {}, m([[1]]), m([[0.5]])), [[1 + 0.5 * Math.sqrt(sigma(1))]], 1e-7);
  near(t, run('sigmoidBackward', 1, 2, {}, m([[2, -1]]), m([[0.25, 0.5]])), [[0.375, -0.25]], 0);
  t.deepEqual(run('reluBackward', 1, 3, {}, m([[5, 6, 7]]), m([[0, 0.5, -1]])), [[0, 6, 0]]);
});

test('add, sub, mul, scale, axpy', (t) => {
  const a = m([[1, 2]]);
  const b = m([[0.5, -4]]);
  t.deepEqual(run('add', 1, 2, {}, a, b), [[1.5, -2]]);
  t.deepEqual(run('sub', 1, 2, {}, a, b), [[0.5, 6]]);
  t.deepEqual(run('mul', 1, 2, {}, a, b), [[0.5, -8]]);
  t.deepEqual(run('scale', 1, 2, {}, a, -3), [[-3, -6]]);
  t.deepEqual(run('axpy', 1, 2, {}, a, b, 2), [[2, -6]]);
});

test('colSum: alpha·Σrows + beta·old, and beta = 0 ignores old', (t) => {
  const x = m([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  t.deepEqual(run('colSum', 1, 2, { rows: 3 }, x, m([[1, 1]]), 2, 1), [[19, 25]]);
  t.deepEqual(run('colSum', 1, 2, { rows: 3 }, x, m([[Number.NaN, Number.NaN]]), 1, 0), [[9, 12]]);
});

test('momentumVelocity: μ·v + ε·(gs·g − λ·p), by hand', (t) => {
  // 0.5·2 + 0.1·(0.5·4 − 0.01·10) = 1 + 0.19 = 1.19
  near(t, run('momentumVelocity', 1, 1, {}, m([[10]]), m([[2]]), m([[4]]), 0.1, 0.5, 0.01, 0.5), [[1.19]], 1e-6);
});

test('softplusRowSum: log 2 at 0, tiny and huge inputs, and the series near t = 0.05', (t) => {
  // softplus(−30) = log1p(e^−30) ≈ 9.357623e-14; softplus(30) = 30 + the same.
  const rows = run(
    'softplusRowSum',
    3,
    1,
    { cols: 2 },
    m([
      [0, 0],
      [-30, 30],
      [-2.99, -3.01],
    ]),
  );
  const want = [[2 * Math.LN2], [30 + 2 * Math.log1p(Math.exp(-30))], [Math.log1p(Math.exp(-2.99)) + Math.log1p(Math.exp(-3.01))]];
  rows.forEach((r, i) => t.true(Math.abs(r[0]! - want[i]![0]!) <= 1e-7 * want[i]![0]!, `row ${i}: ${r[0]} vs ${want[i]![0]}`));
  const tiny = run('softplusRowSum', 1, 1, { cols: 1 }, m([[-30]]))[0]![0]!;
  t.true(Math.abs(tiny - Math.log1p(Math.exp(-30))) <= 1e-7 * tiny, `softplus(−30) = ${tiny}`);
  t.is(run('softplusRowSum', 1, 1, { cols: 1 }, m([[1e6]]))[0]![0], 1e6);
});

test('rowSquaredDistance', (t) => {
  t.deepEqual(
    run(
      'rowSquaredDistance',
      2,
      1,
      { cols: 2 },
      m([
        [1, 2],
        [0, 0],
      ]),
      m([[1, 0]]),
    ),
    [[4], [1]],
  );
});

test('softmax in three passes: max, Σexp, normalise', (t) => {
  const x = m([
    [1, 2, 3],
    [1000, 1000, 990],
  ]);
  const max = run('rowMax', 2, 1, { cols: 3 }, x);
  t.deepEqual(max, [[3], [1000]]);
  const sum = run('rowSumExp', 2, 1, { cols: 3 }, x, m(max));
  near(t, sum, [[Math.exp(-2) + Math.exp(-1) + 1], [2 + Math.exp(-10)]], 1e-7);
  const p = run('softmaxNormalize', 2, 3, {}, x, m(max), m(sum));
  const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
  const z = e[0]! + e[1]! + e[2]!;
  near(
    t,
    p,
    [
      [e[0]! / z, e[1]! / z, e[2]! / z],
      [1 / (2 + Math.exp(-10)), 1 / (2 + Math.exp(-10)), Math.exp(-10) / (2 + Math.exp(-10))],
    ],
    1e-7,
  );
});

test('partial sums of squares over column chunks, with a ragged last chunk', (t) => {
  const x = m([
    [1, 2, 3, 4, 5],
    [1, 1, 1, 1, 1],
  ]);
  t.deepEqual(run('sumSquaresPartial', 2, 3, { chunk: 2, cols: 5 }, x), [
    [5, 25, 25],
    [2, 2, 1],
  ]);
  const y = m([
    [0, 2, 3, 0, 5],
    [1, 1, 1, 1, 0],
  ]);
  t.deepEqual(run('sumSquaredDiffPartial', 2, 3, { chunk: 2, cols: 5 }, x, y), [
    [1, 16, 0],
    [0, 0, 1],
  ]);
});
