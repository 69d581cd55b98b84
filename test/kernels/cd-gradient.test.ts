/**
 * The native and js backends' fused CD gradient (`cdGradient`) and the native data scan (`firstInvalid`): the fused
 * kernel must give the bits of the separate calls it stands for (two products, four column sums,
 * three momentum steps) on shapes cut by rows, by columns and not at all, and values within the
 * float32 bound of a float64 reference; an RBM trained with it must end bit-identical to one
 * trained without it. The scan must name the first bad element, like the TypeScript loop.
 */
import test, { type ExecutionContext } from 'ava';
import type { Backend, CdGradientArgs, RbmTensors, Tensor } from '../../src/kernels/backend.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { createNativeBackend } from '../../src/kernels/native/index.js';
import { Random } from '../../src/random.js';
import { Rbm } from '../../src/rbm/index.js';
import { firstInvalid } from '../../src/validate.js';

let backend: Backend;
let available = true;
test.before(() => {
  try {
    backend = createNativeBackend();
  } catch {
    available = false;
  }
});
test.after.always(() => {
  if (available) backend.dispose();
});

/** A test that needs the native backend: passes with a note where it does not load. */
function nativeTest(title: string, body: (t: ExecutionContext) => void | Promise<void>): void {
  test(title, (t) => {
    if (!available) {
      t.pass('native backend unavailable');
      return;
    }
    return body(t);
  });
}

function filled(b: Backend, rows: number, cols: number, rng: Random, lo: number, hi: number): Tensor {
  const t = b.alloc(rows, cols);
  const host = new Float32Array(rows * cols);
  for (let i = 0; i < host.length; i++) host[i] = lo + (hi - lo) * rng.uniform();
  b.write(t, host);
  return t;
}

function read(b: Backend, t: Tensor): Float32Array {
  const out = new Float32Array(t.rows * t.cols);
  b.read(t, out);
  return out;
}

function shaped(b: Backend, nv: number, nh: number, rng: Random | undefined): RbmTensors {
  const make = (rows: number, cols: number): Tensor => (rng === undefined ? b.alloc(rows, cols) : filled(b, rows, cols, rng, -0.5, 0.5));
  return { weights: make(nv, nh), visibleBias: make(1, nv), hiddenBias: make(1, nh) };
}

function copyOf(b: Backend, p: RbmTensors): RbmTensors {
  const copy = (t: Tensor): Tensor => {
    const out = b.alloc(t.rows, t.cols);
    b.copy(out, t);
    return out;
  };
  return { weights: copy(p.weights), visibleBias: copy(p.visibleBias), hiddenBias: copy(p.hiddenBias) };
}

function all(p: RbmTensors): Tensor[] {
  return [p.weights, p.visibleBias, p.hiddenBias];
}

/** The calls `cdGradient` stands for, one by one. */
function separate(b: Backend, a: CdGradientArgs): void {
  const { grad } = a;
  b.gemm(grad.weights, a.v0, a.h0, { transA: true, alpha: a.positiveScale });
  b.gemm(grad.weights, a.vn, a.hn, { transA: true, alpha: a.negativeScale, beta: 1 });
  b.colSum(grad.visibleBias, a.v0, a.positiveScale, 0);
  b.colSum(grad.visibleBias, a.vn, a.negativeScale, 1);
  b.colSum(grad.hiddenBias, a.h0, a.positiveScale, 0);
  b.colSum(grad.hiddenBias, a.hn, a.negativeScale, 1);
  if (a.update === undefined) return;
  const { params, velocity, options } = a.update;
  b.momentumStep(params.weights, velocity.weights, grad.weights, options);
  b.momentumStep(params.visibleBias, velocity.visibleBias, grad.visibleBias, { ...options, weightDecay: 0 });
  b.momentumStep(params.hiddenBias, velocity.hiddenBias, grad.hiddenBias, { ...options, weightDecay: 0 });
}

// [nVisible, nHidden, n, m]: cut by rows (784 > 500), by columns (500 < 2000), too small to cut,
// and n ≠ m on either side of the split threshold (a persistent chain's last, short minibatch).
const CASES = [
  [784, 500, 100, 100],
  [500, 2000, 100, 100],
  [7, 5, 3, 3],
  [784, 500, 37, 100],
  [300, 200, 3, 100],
] as const;

/** The js backend on one thread and on two (where the gradient's two products share one job). */
const jsBackends: Record<string, Backend> = {};
test.before(() => {
  jsBackends['js, 1 thread'] = createJsBackend({ threads: 1 });
  jsBackends['js, 2 threads'] = createJsBackend({ threads: 2 });
});
test.after.always(() => Object.values(jsBackends).forEach((b) => b.dispose()));

for (const [nv, nh, n, m] of CASES) {
  for (const withUpdate of [false, true]) {
    const title = `cdGradient ${nv}x${nh}, n=${n}, m=${m}${withUpdate ? ', with the update' : ''}: the bits of the separate calls`;
    nativeTest(title, (t) => gradientBits(t, backend, nv, nh, n, m, withUpdate));
    // binary data with few ones: the positive product runs as sums of rows (binary_rows.cc)
    nativeTest(`${title} (v0 0/1, 15 % ones)`, (t) => gradientBits(t, backend, nv, nh, n, m, withUpdate, true));
    for (const label of ['js, 1 thread', 'js, 2 threads'])
      test(`${label}: ${title}`, (t) => gradientBits(t, jsBackends[label]!, nv, nh, n, m, withUpdate));
  }
}

/** cdGradient against {@link separate} on `b`, bit for bit, and the weight gradient against a float64 reference. */
function gradientBits(
  t: ExecutionContext,
  b: Backend,
  nv: number,
  nh: number,
  n: number,
  m: number,
  withUpdate: boolean,
  binary = false,
): void {
  const rng = new Random(nv * 31 + nh + n + m);
  const v0 = filled(b, n, nv, rng, 0, 1);
  if (binary)
    b.write(
      v0,
      read(b, v0).map((x) => (x < 0.15 ? 1 : 0)),
    );
  const h0 = filled(b, n, nh, rng, 0, 1);
  const vn = filled(b, m, nv, rng, 0, 1);
  const hn = filled(b, m, nh, rng, 0, 1);
  const params = shaped(b, nv, nh, rng);
  const velocity = shaped(b, nv, nh, rng);
  const options = { learningRate: 0.05, momentum: 0.5, weightDecay: 0.0002, gradScale: 1 };
  const run = (fused: boolean): Float32Array[] => {
    const grad = shaped(b, nv, nh, rng); // garbage in the outputs: both must overwrite it
    const p = copyOf(b, params);
    const v = copyOf(b, velocity);
    const args: CdGradientArgs = {
      grad,
      v0,
      h0,
      vn,
      hn,
      positiveScale: 1 / n,
      negativeScale: -1 / m,
      ...(withUpdate ? { update: { params: p, velocity: v, options } } : {}),
    };
    if (fused) b.cdGradient!(args);
    else separate(b, args);
    return [...all(grad), ...all(p), ...all(v)].map((x) => read(b, x));
  };
  const fused = run(true);
  const plain = run(false);
  fused.forEach((f, i) => t.deepEqual(f, plain[i]!, `tensor ${i}`));
  // and the values: the weight gradient against a float64 reference, within float32 rounding
  const [v0h, h0h, vnh, hnh] = [v0, h0, vn, hn].map((x) => read(b, x));
  let worst = 0;
  for (let i = 0; i < nv; i += Math.max(1, Math.floor(nv / 13))) {
    for (let j = 0; j < nh; j += Math.max(1, Math.floor(nh / 11))) {
      let pos = 0;
      let neg = 0;
      for (let r = 0; r < n; r++) pos += v0h![r * nv + i]! * h0h![r * nh + j]!;
      for (let r = 0; r < m; r++) neg += vnh![r * nv + i]! * hnh![r * nh + j]!;
      const want = pos / n - neg / m;
      worst = Math.max(worst, Math.abs(fused[0]![i * nh + j]! - want) / (pos / n + neg / m + 1e-30));
    }
  }
  t.true(worst < 1e-5, `largest relative error ${worst}`);
}

// [m, k, n, transW]: cut by columns, by rows, too small to cut, and the visible product (transposed weights)
const LINEAR = [
  [100, 784, 500, false],
  [1000, 500, 100, false],
  [3, 4, 5, false],
  [100, 500, 784, true],
] as const;

for (const [m, k, n, transW] of LINEAR) {
  nativeTest(
    `linearSigmoidSample and linearSigmoidError ${m}x${k}·${transW ? `(${n}x${k})ᵀ` : `${k}x${n}`}: linearSigmoid's values, with the sample and the error`,
    (t) => {
      const b = backend;
      const rng = new Random(m + k + n);
      const x = filled(b, m, k, rng, 0, 1);
      const w = transW ? filled(b, n, k, rng, -0.2, 0.2) : filled(b, k, n, rng, -0.2, 0.2);
      const bias = filled(b, 1, n, rng, -1, 1);
      const u = filled(b, m, n, rng, 0, 1);
      const target = filled(b, m, n, rng, 0, 1);
      const means = b.alloc(m, n);
      b.linearSigmoid!(means, x, w, bias, transW);
      const wantSample = b.alloc(m, n);
      b.bernoulli(wantSample, means, u);
      const out = filled(b, m, n, rng, 5, 6);
      const sample = filled(b, m, n, rng, 5, 6);
      b.linearSigmoidSample!(out, sample, u, x, w, bias, transW);
      t.deepEqual(read(b, out), read(b, means));
      t.deepEqual(read(b, sample), read(b, wantSample));
      const out2 = filled(b, m, n, rng, 5, 6);
      const sum = b.linearSigmoidError!(out2, target, x, w, bias, transW);
      t.deepEqual(read(b, out2), read(b, means));
      const want = b.sumSquaredDiff(means, target);
      t.true(Math.abs(sum - want) <= 1e-12 * want, `${sum} vs ${want}`);
    },
  );
}

nativeTest('linearSigmoidSample refuses outputs that alias an input', (t) => {
  const b = backend;
  const rng = new Random(2);
  const [x, w, bias, u] = [filled(b, 4, 3, rng, 0, 1), filled(b, 3, 5, rng, 0, 1), filled(b, 1, 5, rng, 0, 1), filled(b, 4, 5, rng, 0, 1)];
  const out = b.alloc(4, 5);
  t.throws(() => b.linearSigmoidSample!(out, u, u, x, w, bias), { message: /must not alias/ });
  t.throws(() => b.linearSigmoidSample!(out, out, u, x, w, bias), { message: /must not alias/ });
  t.throws(() => b.linearSigmoidError!(out, out, x, w, bias), { message: /must not alias/ });
  t.throws(() => b.linearSigmoidSample!(out, b.alloc(4, 4), u, x, w, bias), { message: /'sample'.*4 × 4, expected 4 × 5/ });
});

nativeTest('cdGradient refuses mismatched shapes with a typed error, touching nothing', (t) => {
  const b = backend;
  const rng = new Random(5);
  const grad = shaped(b, 6, 4, undefined);
  const v0 = filled(b, 3, 6, rng, 0, 1);
  const error = t.throws(() =>
    b.cdGradient!({
      grad,
      v0,
      h0: filled(b, 2, 4, rng, 0, 1),
      vn: v0,
      hn: filled(b, 3, 4, rng, 0, 1),
      positiveScale: 1,
      negativeScale: -1,
    }),
  );
  t.regex(error!.message, /'h0'.*2 × 4, expected 3 × 4/);
  t.deepEqual(read(b, grad.weights), new Float32Array(24));
});

nativeTest('an RBM trained with the fused kernel ends bit-identical to one trained with the separate calls', async (t) => {
  // 200 × 300 × batch 100: products big enough to be cut over the pool
  const nv = 200;
  const rng = new Random(3);
  const data = new Float32Array(600 * nv);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform() < 0.2 ? 1 : 0;
  const plainBackend = createNativeBackend();
  const plain = plainBackend as { cdGradient?: unknown; linearSigmoidSample?: unknown; linearSigmoidError?: unknown };
  plain.cdGradient = undefined;
  plain.linearSigmoidSample = undefined;
  plain.linearSigmoidError = undefined;
  const fusedBackend = createNativeBackend();
  let fusedUpdates = 0;
  const fusedKernel = fusedBackend.cdGradient!.bind(fusedBackend);
  fusedBackend.cdGradient = (args): void => {
    if (args.update !== undefined) fusedUpdates++;
    fusedKernel(args);
  };
  const models = [fusedBackend, plainBackend].map((b) => new Rbm({ nVisible: nv, nHidden: 300, backend: b, seed: 11, batchSize: 100 }));
  const errors: number[][] = [];
  for (const model of models) {
    const history = await model.fit({ rows: 600, cols: nv, data }, { epochs: 3 });
    errors.push(history.map((h) => h.reconstructionError));
    model.partialFit({ rows: 150, cols: nv, data: data.subarray(0, 150 * nv) });
  }
  // the fused error sums in another order: equal to float64 rounding
  errors[0]!.forEach((e, i) => t.true(Math.abs(e - errors[1]![i]!) <= 1e-12 * e, `epoch ${i}: ${e} vs ${errors[1]![i]}`));
  const [a, b] = models.map((model) => model.getParameters());
  t.deepEqual(a!.weights.data, b!.weights.data);
  t.deepEqual(a!.visibleBias, b!.visibleBias);
  t.deepEqual(a!.hiddenBias, b!.hiddenBias);
  t.notDeepEqual(a!.weights.data, new Float32Array(a!.weights.data.length));
  t.is(fusedUpdates, 3 * 6 + 2, 'every minibatch of fit and partialFit took the fused update');
  for (const model of models) model.dispose();
  plainBackend.dispose();
  fusedBackend.dispose();
});

nativeTest('firstInvalid names the first element out of range, natively and in TypeScript alike', (t) => {
  const rng = new Random(9);
  const cases: [Float32Array, boolean, number][] = [
    [new Float32Array(0), true, -1],
    [Float32Array.of(0, 1, -0, 0.5), true, -1],
    [Float32Array.of(0, 1.0000001, 2), true, 1],
    [Float32Array.of(-1e30, 3e38, -Infinity), false, 2],
    [Float32Array.of(0.5, Number.NaN), false, 1],
    [Float32Array.of(0.5, Number.NaN), true, 1],
    [Float32Array.of(-1e-45), true, 0],
  ];
  for (const at of [1023, 1024, 1025, 5000]) {
    const x = new Float32Array(6000);
    for (let i = 0; i < x.length; i++) x[i] = rng.uniform();
    x[at] = Number.POSITIVE_INFINITY;
    x[5999] = Number.NaN;
    cases.push([x, false, at], [x, true, at]);
  }
  for (const [x, unit, want] of cases) {
    t.is(firstInvalid(x, unit), want, `TypeScript, ${x.length} elements, unit ${unit}`);
    if (available) t.is(backend.firstInvalid!(x, unit), want, `native, ${x.length} elements, unit ${unit}`);
  }
});

test('Rbm.fit reports the first bad value found by the native scan', async (t) => {
  const model = new Rbm({ nVisible: 4, nHidden: 3, backend, seed: 1 });
  const data = new Float32Array(4 * 3000).fill(1);
  data[4 * 2500 + 2] = 1.5;
  const error = await t.throwsAsync(model.fit({ rows: 3000, cols: 4, data }, { epochs: 1 }));
  t.is((error as { code?: string }).code, 'EDATA');
  t.regex(error!.message, /row 2500, column 2 is 1\.5/);
  model.dispose();
});

nativeTest('view reads host memory in place: kernels see its values and later changes, and a wrong length is refused', (t) => {
  const b = backend;
  const host = Float32Array.of(1, 2, 3, 4, 5, 6);
  const x = b.view!(host, 2, 3);
  const out = b.alloc(1, 3);
  b.colSum(out, x, 1, 0);
  t.deepEqual(read(b, out), Float32Array.of(5, 7, 9));
  host[0] = 10;
  b.colSum(out, x, 1, 0);
  t.deepEqual(read(b, out), Float32Array.of(14, 7, 9));
  t.throws(() => b.view!(host, 4, 2), { message: /'host' passed to 'native.view' must be a Float32Array of 4 × 2 elements/ });
});
