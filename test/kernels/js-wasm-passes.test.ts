// The js backend's elementwise passes in its WebAssembly module (wasm-passes.ts): the momentum
// step and the column sums give the bits of the TypeScript loops of elementwise.ts (the same
// float64 operations in the same order) on every size, chunk edge and special value.
import test from 'ava';
import { bernoulliImpl, colSumImpl, momentumStepImpl } from '../../src/kernels/js/elementwise.js';
import { GemmWorkspace } from '../../src/kernels/js/gemm.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { bernoulli, colSum, momentumStep } from '../../src/kernels/js/wasm-passes.js';
import { Random } from '../../src/random.js';

/** Values spread over six decades, both signs. */
function spread(rng: Random, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.uniform() - 0.5) * 10 ** (rng.uniform() * 6 - 3);
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

test('momentumStep in WebAssembly gives the TypeScript loop’s bits (odd sizes, chunk edges, NaN, ±∞, −0, subnormals)', (t) => {
  const ws = new GemmWorkspace('wasm-simd');
  const rng = new Random(3);
  // 63: the TypeScript loop itself; 64, 65: the smallest module calls, even and odd; 32768 ± 1: one chunk and one element more.
  for (const n of [1, 63, 64, 65, 1001, 32767, 32768, 32769, 100003, 392000]) {
    const [p, v, g] = [spread(rng, n), spread(rng, n), spread(rng, n)];
    p[0] = Number.NaN;
    v[1] = Infinity;
    g[2] = -0;
    p[3] = 1e-42;
    if (n > 40000) g[40000] = -Infinity;
    const [p2, v2] = [p.slice(), v.slice()];
    for (const [lr, mu, wd, gs] of [
      [0.05, 0.5, 2e-4, 0.01],
      [0.1, 0.9, 0, 1],
    ] as const) {
      momentumStep(ws, p, v, g, lr, mu, wd, gs);
      momentumStepImpl(p2, v2, g, lr, mu, wd, gs);
      t.true(sameBits(p, p2), `param, n = ${n}, lr = ${lr}`);
      t.true(sameBits(v, v2), `velocity, n = ${n}, lr = ${lr}`);
    }
  }
  // Aliased operands (gradient = velocity, velocity = param) end as the loop leaves them.
  for (const alias of ['grad is velocity', 'velocity is param'] as const) {
    const n = 40001;
    const [p, v] = [spread(rng, n), spread(rng, n)];
    const [p2, v2] = [p.slice(), v.slice()];
    if (alias === 'grad is velocity') {
      momentumStep(ws, p, v, v, 0.05, 0.5, 2e-4, 0.01);
      momentumStepImpl(p2, v2, v2, 0.05, 0.5, 2e-4, 0.01);
    } else {
      momentumStep(ws, p, p, v, 0.05, 0.5, 2e-4, 0.01);
      momentumStepImpl(p2, p2, v2, 0.05, 0.5, 2e-4, 0.01);
    }
    t.true(sameBits(p, p2) && sameBits(v, v2), alias);
  }
  // A hand-computed element: v = 0.5·0.25 + 0.1·(2·1 − 0.5·3) = 0.175; p = 3 + 0.175.
  const [p, v] = [new Float32Array(100).fill(3), new Float32Array(100).fill(0.25)];
  momentumStep(ws, p, v, new Float32Array(100).fill(1), 0.1, 0.5, 0.5, 2);
  t.is(v[99], Math.fround(0.175));
  t.is(p[99], Math.fround(3 + 0.175));
});

test('colSum in WebAssembly gives the TypeScript loop’s bits (odd and even widths, chunks of rows, alpha and beta)', (t) => {
  const ws = new GemmWorkspace('wasm-simd');
  const rng = new Random(4);
  // 3000 × 701 crosses the 2²⁰-float chunk of rows; odd widths take the padded copy.
  for (const [rows, cols] of [
    [1, 1],
    [3, 7],
    [100, 500],
    [100, 784],
    [1000, 1],
    [7, 1001],
    [3000, 701],
  ] as const) {
    const x = spread(rng, rows * cols);
    x[0] = Number.NaN;
    const acc = new Float64Array(cols);
    for (const [alpha, beta] of [
      [1, 0],
      [-0.5, 1],
      [2, 0.3],
    ] as const) {
      const out = spread(rng, cols);
      const want = out.slice();
      colSum(ws, out, x, cols, alpha, beta, acc);
      colSumImpl(want, x, cols, alpha, beta, acc);
      t.true(sameBits(out, want), `${rows}x${cols}, alpha ${alpha}, beta ${beta}`);
    }
  }
  // Hand-computed: the columns of [[1, 2], [3, 4], [5, 6]] sum to 9 and 12; alpha 0.5, beta 2 on [1, 1]: 6.5, 8.
  const out = Float32Array.of(1, 1);
  const x = new Float32Array(512);
  x.set([1, 2, 3, 4, 5, 6]);
  colSum(ws, out, x, 2, 0.5, 2, new Float64Array(2));
  t.deepEqual(Array.from(out), [0.5 * (1 + 3 + 5) + 2, 0.5 * (2 + 4 + 6) + 2]);
});

test('the js backend with and without the WebAssembly module gives the same momentum and column-sum bits', (t) => {
  const rng = new Random(6);
  const [rows, cols] = [120, 333];
  const inputs = [spread(rng, rows * cols), spread(rng, rows * cols), spread(rng, rows * cols)];
  const results = (['wasm-simd', 'asm.js'] as const).map((gemmKernel) => {
    const b = createJsBackend({ gemmKernel, threads: 1 });
    const [p, v, g] = inputs.map((values) => {
      const tensor = b.alloc(rows, cols);
      b.write(tensor, values);
      return tensor;
    });
    b.momentumStep(p!, v!, g!, { learningRate: 0.05, momentum: 0.5, weightDecay: 2e-4, gradScale: 0.01 });
    const sums = b.alloc(1, cols);
    b.colSum(sums, p!, 0.5, 0);
    const [pv, vv, sv] = [new Float32Array(rows * cols), new Float32Array(rows * cols), new Float32Array(cols)];
    b.read(p!, pv);
    b.read(v!, vv);
    b.read(sums, sv);
    b.dispose();
    return [pv, vv, sv];
  });
  for (let i = 0; i < 3; i++) t.true(sameBits(results[0]![i]!, results[1]![i]!), ['param', 'velocity', 'column sums'][i]);
});

test('bernoulli in WebAssembly gives the TypeScript comparison’s bits (ties, NaN, ±0, sizes off the lane width, out aliasing p)', (t) => {
  const ws = new GemmWorkspace('wasm-simd');
  const rng = new Random(7);
  for (const n of [1, 63, 64, 65, 67, 50000, 262147]) {
    const p = new Float32Array(n);
    const u = new Float32Array(n);
    for (let i = 0; i < n; i++) [p[i], u[i]] = [rng.uniform(), rng.uniform()];
    // u = p exactly (no sample), NaN in either, −0 against 0, u = 0 against p = 0.
    const edges = [
      [0.5, 0.5],
      [Number.NaN, 0.1],
      [0.9, Number.NaN],
      [0, -0],
      [0, 0],
      [1, 0.999],
    ];
    edges.forEach(([pe, ue], i) => {
      if (i < n) [p[i], u[i]] = [pe!, ue!];
    });
    const out = new Float32Array(n).fill(7);
    const want = new Float32Array(n);
    bernoulli(ws, out, p, u);
    bernoulliImpl(want, p, u);
    t.true(sameBits(out, want), `n = ${n}`);
    if (n >= 6) t.deepEqual(Array.from(out.subarray(0, 6)), [0, 0, 0, 0, 0, 1]);
    bernoulli(ws, p, p, u);
    t.true(sameBits(p, want), `out = p, n = ${n}`);
  }
});
