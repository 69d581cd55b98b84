/**
 * GEMM throughput of every registered backend that starts, on the three products of a CD-1 step
 * of a 784→500 RBM with minibatch 100:
 *
 *   npx tsx bench/matmul.ts [--backends js,native,gpu] [--seconds 1]
 *
 * `js:wasm-simd`, `js:asm.js` and `js:typescript` (not registered backends) are the js backend with
 * that gemm macro-kernel (plain `js` picks the first that runs here), for a same-run comparison:
 * `--backends js:wasm-simd,js:asm.js,js:typescript`.
 *
 * - `v·W`:   `a·b`,  100×784 · 784×500 (hidden pre-activations);
 * - `vᵀ·h`:  `aᵀ·b`, (100×784)ᵀ · 100×500 (the weight gradient);
 * - `h·Wᵀ`:  `a·bᵀ`, 100×500 · (784×500)ᵀ (visible reconstructions).
 *
 * Each product is run repeatedly for about `--seconds` after a warm-up (10 calls and at least
 * 0.5 s); every timed sample is a batch of calls followed by one `read` of the output, so queued
 * (GPU) work is included.
 * Prints one JSON line per backend and shape: `{backend, description, shape, m, k, n, gflops,
 * bestGflops, cpuGflops, msPerCall, samples, machine}`: `gflops` the median over samples of
 * wall-clock GFLOP/s (2·m·k·n flops per call), `bestGflops` the fastest sample, `cpuGflops` the
 * median per CPU-second of this process — for a single-threaded backend that is its speed
 * undisturbed by other processes sharing the cores (a multi-threaded one counts every thread's
 * time; a GPU's own time is not counted). A backend that cannot start prints
 * `{backend, unavailable: reason}`, one that fails while running `{backend, error}`.
 */
import { parseArgs } from 'node:util';
import { BackendUnavailableError } from '../src/errors.js';
import type { Backend, GemmOptions } from '../src/kernels/backend.js';
import { backendFactories } from '../src/kernels/index.js';
import { createJsBackend } from '../src/kernels/js/index.js';
import type { GemmKernelKind } from '../src/kernels/js/gemm.js';
import { Random } from '../src/random.js';
import { machine, median } from './machine.js';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: [...backendFactories.keys()].join(',') },
    seconds: { type: 'string', default: '1' },
  },
});
const seconds = Number(args.seconds);

interface Shape {
  readonly shape: string;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly transA: boolean;
  readonly transB: boolean;
}

const SHAPES: readonly Shape[] = [
  { shape: 'a·b 100x784·784x500', m: 100, k: 784, n: 500, transA: false, transB: false },
  { shape: 'aᵀ·b (100x784)ᵀ·100x500', m: 784, k: 100, n: 500, transA: true, transB: false },
  { shape: 'a·bᵀ 100x500·(784x500)ᵀ', m: 100, k: 500, n: 784, transA: false, transB: true },
];

function randomData(rng: Random, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform() - 0.5;
  return out;
}

function bench(backend: Backend, s: Shape): { gflops: number; best: number; cpuGflops: number; ms: number; samples: number } {
  const rng = new Random(1);
  const a = backend.alloc(s.transA ? s.k : s.m, s.transA ? s.m : s.k);
  const b = backend.alloc(s.transB ? s.n : s.k, s.transB ? s.k : s.n);
  const out = backend.alloc(s.m, s.n);
  backend.write(a, randomData(rng, s.m * s.k));
  backend.write(b, randomData(rng, s.k * s.n));
  const host = new Float32Array(s.m * s.n);
  const opts: GemmOptions = { transA: s.transA, transB: s.transB };
  const flops = 2 * s.m * s.k * s.n;

  const cpuTimes: number[] = [];
  const sample = (calls: number): number => {
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) backend.gemm(out, a, b, opts);
    backend.read(out, host);
    const cpu = process.cpuUsage(cpu0);
    cpuTimes.push((cpu.user + cpu.system) / 1e6 / calls);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  // Warm up (JIT tiers, kernel compilation) for 10 calls and at least 0.5 s, then size a sample to about 50 ms.
  const warmUntil = performance.now() + 500;
  for (let i = 0; i < 10 || performance.now() < warmUntil; i++) sample(1);
  let calls = 1;
  while (sample(calls) < 0.05 && calls < 1 << 16) calls *= 2;
  cpuTimes.length = 0;
  const times: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline || times.length < 5) times.push(sample(calls) / calls);
  backend.free(a);
  backend.free(b);
  backend.free(out);
  const t = median(times);
  return {
    gflops: flops / t / 1e9,
    best: flops / Math.min(...times) / 1e9,
    cpuGflops: flops / median(cpuTimes) / 1e9,
    ms: t * 1000,
    samples: times.length,
  };
}

const jsKernels: readonly GemmKernelKind[] = ['wasm-simd', 'asm.js', 'typescript'];
const variants = new Map<string, () => Backend>(jsKernels.map((gemmKernel) => [`js:${gemmKernel}`, () => createJsBackend({ gemmKernel })]));

const info = machine();
for (const name of args.backends.split(',')) {
  const factory = variants.get(name) ?? backendFactories.get(name);
  if (factory === undefined)
    throw new Error(`Unknown backend '${name}'; expected one of ${[...backendFactories.keys(), ...variants.keys()].join(', ')}`);
  let backend: Backend;
  try {
    backend = factory();
    await backend.ready();
  } catch (err) {
    const reason = err instanceof BackendUnavailableError ? err.reason : String(err);
    console.log(JSON.stringify({ backend: name, unavailable: reason }));
    continue;
  }
  try {
    for (const s of SHAPES) {
      const r = bench(backend, s);
      console.log(
        JSON.stringify({
          backend: name,
          description: backend.info.description,
          shape: s.shape,
          m: s.m,
          k: s.k,
          n: s.n,
          gflops: Number(r.gflops.toFixed(2)),
          bestGflops: Number(r.best.toFixed(2)),
          cpuGflops: Number(r.cpuGflops.toFixed(2)),
          msPerCall: Number(r.ms.toFixed(3)),
          samples: r.samples,
          machine: info,
        }),
      );
    }
  } catch (err) {
    console.log(JSON.stringify({ backend: name, error: String(err) }));
  } finally {
    backend.dispose();
  }
}
