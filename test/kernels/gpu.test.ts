/**
 * The gpu backend: the kernel conformance suite once per gpu.js mode (a mode that cannot start
 * here is skipped with its reason printed), then what is particular to it: the mode it reports,
 * the fused kernels, refused fallbacks, bad arguments and empty tensors.
 *
 * headlessgl and webgpu need a display: run under `xvfb-run -a` (see scripts/ci-gpu-deps.sh).
 */
import test from 'ava';
import { BackendUnavailableError, DbnError, InvalidOptionError, ShapeMismatchError } from '../../src/errors.js';
import type { Backend, Tensor } from '../../src/kernels/backend.js';
import { createGpuBackend, gpuKernelClasses, type GpuMode } from '../../src/kernels/gpu/index.js';
import { Random } from '../../src/random.js';
import { runConformance } from './conformance.js';
import * as ref from './reference.js';

const MODES = [
  { mode: 'webasm', kernelClass: 'WebAssemblyKernel' },
  { mode: 'cpu', kernelClass: 'CPUKernel' },
  { mode: 'headlessgl', kernelClass: 'HeadlessGLKernel' },
  { mode: 'webgpu', kernelClass: 'WebGPUKernel' },
] as const;

/** The modes that start here, each with one backend for the tests below (made after the conformance suites). */
const started: { mode: GpuMode; kernelClass: string; make: () => Backend }[] = [];

for (const { mode, kernelClass } of MODES) {
  runConformance(`gpu:${mode}`, () => {
    const b = createGpuBackend({ mode });
    started.push({ mode, kernelClass, make: () => createGpuBackend({ mode }) });
    return b;
  });
}

function filled(rng: Random, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return out;
}

function read(b: Backend, t: Tensor): Float32Array {
  const out = new Float32Array(t.rows * t.cols);
  b.read(t, out);
  return out;
}

for (const { mode, kernelClass } of MODES) {
  const title = (what: string): string => `gpu:${mode}: ${what}`;
  // runConformance has called make() by now: `started` lists the modes that start here.
  const entry = started.find((s) => s.mode === mode);
  const withBackend = (what: string, body: (t: import('ava').ExecutionContext, b: Backend) => void): void => {
    if (entry === undefined) {
      test.skip(title(`${what} — unavailable (see the skipped conformance suite for why)`), (t) => t.pass());
      return;
    }
    test(title(what), (t) => {
      const b = entry.make();
      try {
        body(t, b);
      } finally {
        b.dispose();
      }
    });
  };

  withBackend('info reports the mode that runs, and every kernel ran on its class', (t, b) => {
    t.is(b.info.name, 'gpu');
    t.is(b.info.mode, mode);
    t.true(b.info.description.startsWith(`gpu (${mode} — `), b.info.description);
    const x = b.alloc(3, 4);
    b.write(
      x,
      Float32Array.from({ length: 12 }, (_, i) => i - 5.5),
    );
    b.relu(x, x);
    t.is(b.sumSquares(x), 0.25 + 2.25 + 6.25 + 12.25 + 20.25 + 30.25);
    t.deepEqual(gpuKernelClasses(b), [kernelClass]);
  });

  withBackend('linearSigmoid equals gemm then addRowSigmoid, both orientations of w', (t, b) => {
    const rng = new Random(7);
    const [m, k, n] = [13, 29, 11];
    const xData = filled(rng, m * k, -1, 1);
    const wData = filled(rng, k * n, -1, 1);
    const bData = filled(rng, n, -2, 2);
    const x = b.alloc(m, k);
    const w = b.alloc(k, n);
    const wt = b.alloc(n, k);
    const bias = b.alloc(1, n);
    b.write(x, xData);
    b.write(w, wData);
    const wtData = new Float32Array(n * k);
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) wtData[j * k + p] = wData[p * n + j]!;
    b.write(wt, wtData);
    b.write(bias, bData);
    const want = ref.addRowSigmoidRef(
      {
        rows: m,
        cols: n,
        data: ref.gemmRef({ rows: m, cols: k, data: xData }, { rows: k, cols: n, data: wData }, undefined, false, false, 1, 0).value,
      },
      { rows: 1, cols: n, data: bData },
    );
    const fused = b.alloc(m, n);
    const fusedT = b.alloc(m, n);
    t.truthy(b.linearSigmoid);
    b.linearSigmoid!(fused, x, w, bias);
    b.linearSigmoid!(fusedT, x, wt, bias, true);
    const twoStep = b.alloc(m, n);
    b.gemm(twoStep, x, w);
    b.addRowSigmoid(twoStep, twoStep, bias);
    const [f, ft, two] = [read(b, fused), read(b, fusedT), read(b, twoStep)];
    for (let i = 0; i < m * n; i++) {
      t.true(Math.abs(f[i]! - want[i]!) <= 1e-5, `fused[${i}] = ${f[i]}, expected ${want[i]}`);
      t.true(Math.abs(ft[i]! - want[i]!) <= 1e-5, `fused transW[${i}] = ${ft[i]}, expected ${want[i]}`);
      t.true(Math.abs(f[i]! - two[i]!) <= 1e-6, `fused[${i}] = ${f[i]} vs two-step ${two[i]}`);
    }
  });

  withBackend('linearSigmoidBernoulli samples the fused probabilities against the given uniforms', (t, b) => {
    const rng = new Random(11);
    const [m, k, n] = [20, 9, 17];
    const x = b.alloc(m, k);
    const w = b.alloc(k, n);
    const wt = b.alloc(n, k);
    const bias = b.alloc(1, n);
    const u = b.alloc(m, n);
    const wData = filled(rng, k * n, -1, 1);
    b.write(x, filled(rng, m * k, -1, 1));
    b.write(w, wData);
    const wtData = new Float32Array(n * k);
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) wtData[j * k + p] = wData[p * n + j]!;
    b.write(wt, wtData);
    b.write(bias, filled(rng, n, -1, 1));
    const uData = filled(rng, m * n, 0, 1);
    b.write(u, uData);
    const p = b.alloc(m, n);
    b.linearSigmoid!(p, x, w, bias);
    const probs = read(b, p);
    const sample = b.alloc(m, n);
    const sampleT = b.alloc(m, n);
    b.linearSigmoidBernoulli!(sample, x, w, bias, u);
    b.linearSigmoidBernoulli!(sampleT, x, wt, bias, u, true);
    const [s, st] = [read(b, sample), read(b, sampleT)];
    let ones = 0;
    for (let i = 0; i < m * n; i++) {
      // Away from a tie, the sample is fixed by u < p; at |u − p| below float32 noise either is right.
      if (Math.abs(uData[i]! - probs[i]!) > 1e-6) t.is(s[i], uData[i]! < probs[i]! ? 1 : 0, `sample[${i}]`);
      t.is(st[i], s[i], `transW sample[${i}]`);
      ones += s[i]!;
    }
    t.true(ones > 0 && ones < m * n, `a non-degenerate sample (${ones} ones of ${m * n})`);
  });

  withBackend('bad arguments throw typed errors naming the kernel and argument', (t, b) => {
    const x = b.alloc(2, 3);
    const y = b.alloc(3, 2);
    t.throws(() => b.add(x, x, y), {
      instanceOf: ShapeMismatchError,
      message: "Argument 'b' passed to 'gpu.add' must be 2 × 3 like 'out', got 3 × 2.",
    });
    t.throws(() => b.gemm(b.alloc(2, 2), x, x), {
      instanceOf: ShapeMismatchError,
      message: /'gpu.gemm' cannot put op\(a\) 2 × 3 times op\(b\) 2 × 3/,
    });
    t.throws(() => b.gemm(x, x, y), { instanceOf: ShapeMismatchError });
    const sq = b.alloc(2, 2);
    t.throws(() => b.gemm(sq, sq, b.alloc(2, 2)), { instanceOf: DbnError, code: 'EALIAS' });
    t.throws(() => b.addRow(x, x, b.alloc(1, 2)), {
      instanceOf: ShapeMismatchError,
      message: /'bias' passed to 'gpu.addRow' must be 1 × 3/,
    });
    t.throws(() => b.write(x, new Float32Array(5)), { instanceOf: ShapeMismatchError, message: /Float32Array of 6 elements/ });
    t.throws(() => b.read(x, new Float32Array(7)), { instanceOf: ShapeMismatchError });
    t.throws(() => b.alloc(-1, 2), { instanceOf: ShapeMismatchError });
    t.throws(() => b.relu(x, { rows: 2, cols: 3 }), { instanceOf: DbnError, code: 'EFOREIGNTENSOR' });
    b.free(y);
    t.throws(() => b.fill(y, 1), { instanceOf: DbnError, code: 'EFREED' });
  });

  withBackend('empty tensors, and products with an empty inner dimension', (t, b) => {
    const out = b.alloc(2, 3);
    b.write(out, Float32Array.from([1, 2, 3, 4, 5, 6]));
    b.gemm(out, b.alloc(2, 0), b.alloc(0, 3), { beta: 0.5 });
    t.deepEqual(Array.from(read(b, out)), [0.5, 1, 1.5, 2, 2.5, 3]);
    b.gemm(out, b.alloc(2, 0), b.alloc(0, 3));
    t.deepEqual(Array.from(read(b, out)), [0, 0, 0, 0, 0, 0]);
    const empty = b.alloc(0, 4);
    b.relu(empty, empty);
    t.is(b.sumSquares(empty), 0);
    t.deepEqual(Array.from(read(b, empty)), []);
    const sums = b.alloc(1, 4);
    b.write(sums, Float32Array.from([1, 2, 3, 4]));
    b.colSum(sums, empty, 1, 2);
    t.deepEqual(Array.from(read(b, sums)), [2, 4, 6, 8]);
  });

  withBackend('dispose is idempotent and later calls throw EDISPOSED', (t, b) => {
    const x = b.alloc(1, 1);
    b.dispose();
    t.notThrows(() => b.dispose());
    t.throws(() => b.fill(x, 1), { instanceOf: DbnError, code: 'EDISPOSED' });
  });
}

test('gpu: an unknown mode is an InvalidOptionError listing the modes', (t) => {
  t.throws(() => createGpuBackend({ mode: 'cuda' as GpuMode }), {
    instanceOf: InvalidOptionError,
    message: "The 'mode' option of createGpuBackend must be one of 'auto', 'gpu', 'headlessgl', 'webgpu', 'webasm', 'cpu'. Got 'cuda'.",
  });
});

test("gpu: 'auto' reports what runs, and says so when it is not a GPU", (t) => {
  const b = createGpuBackend();
  try {
    t.log(b.info.description);
    t.true(['headlessgl', 'webgpu', 'webasm', 'cpu'].includes(b.info.mode ?? ''), String(b.info.mode));
    t.true(b.info.description.startsWith(`gpu (${b.info.mode} — `), b.info.description);
    if (b.info.mode === 'webasm' || b.info.mode === 'cpu')
      t.true(b.info.description.includes('no GPU found; CPU fallback'), b.info.description);
  } finally {
    b.dispose();
  }
});

test("gpu: 'gpu' runs headless-gl or refuses; it never falls back to the CPU", (t) => {
  let b: Backend;
  try {
    b = createGpuBackend({ mode: 'gpu' });
  } catch (err) {
    t.true(err instanceof BackendUnavailableError, String(err));
    t.log((err as BackendUnavailableError).reason);
    t.regex((err as BackendUnavailableError).reason, /headless-gl|gl/);
    return;
  }
  t.is(b.info.mode, 'headlessgl');
  b.dispose();
});
