/**
 * Matrix-product throughput of the gpu backend, per gpu.js mode: the plain `gemm`
 * (`out = x·W`) and the fused `linearSigmoid` (`σ(x·W + b)`, the CD-1 hot path), each timed
 * over repeated calls ending with one `read` (so queued GPU work is included). Prints one JSON
 * line per mode and kernel: `{ mode, kernel, shape, gflops, msPerCall, compileMs, description, machine }`,
 * or `{ mode, unavailable }` for a mode that cannot start here.
 *
 *   npx tsx bench/gpu-matmul.ts                    # batch 100, 784 → 500 (an MNIST RBM), every mode
 *   npx tsx bench/gpu-matmul.ts --big              # batch 1000, 4096 → 4096 (for a real GPU)
 *   npx tsx bench/gpu-matmul.ts --modes webasm,headlessgl --batch 200 --visible 784 --hidden 1000 --reps 5
 *
 * headlessgl and webgpu need a display: run under `xvfb-run -a` where there is none.
 */
import { BackendUnavailableError } from '../src/errors.js';
import { createGpuBackend, gpuModes, type GpuMode } from '../src/kernels/gpu/index.js';
import type { Backend, Tensor } from '../src/kernels/backend.js';
import { Random } from '../src/random.js';
import { machine, median } from './machine.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const big = process.argv.includes('--big');
const batch = Number(arg('batch') ?? (big ? 1000 : 100));
const visible = Number(arg('visible') ?? (big ? 4096 : 784));
const hidden = Number(arg('hidden') ?? (big ? 4096 : 500));
const reps = Number(arg('reps') ?? 3);
const modes = (arg('modes') ?? 'webasm,cpu,headlessgl,webgpu,auto').split(',') as GpuMode[];
for (const m of modes) if (!gpuModes.includes(m)) throw new Error(`unknown mode '${m}'; expected some of ${gpuModes.join(', ')}`);

const rng = new Random(1);
const fill = (n: number, scale: number): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * (rng.uniform() - 0.5);
  return a;
};
const xData = fill(batch * visible, 2);
const wData = fill(visible * hidden, 0.1);
const bData = fill(hidden, 0.1);
const host = new Float32Array(batch * hidden);
const info = machine();

function time(b: Backend, out: Tensor, call: () => void): { compileMs: number; msPerCall: number } {
  let t0 = performance.now();
  call();
  b.read(out, host);
  const compileMs = performance.now() - t0;
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    t0 = performance.now();
    call();
    b.read(out, host);
    samples.push(performance.now() - t0);
  }
  return { compileMs, msPerCall: median(samples) };
}

for (const mode of modes) {
  let b: Backend;
  try {
    b = createGpuBackend({ mode });
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    console.log(JSON.stringify({ mode, unavailable: err.reason }));
    continue;
  }
  try {
    const x = b.alloc(batch, visible);
    const w = b.alloc(visible, hidden);
    const bias = b.alloc(1, hidden);
    const out = b.alloc(batch, hidden);
    b.write(x, xData);
    b.write(w, wData);
    b.write(bias, bData);
    const flop = 2 * batch * visible * hidden;
    const kernels: [string, () => void][] = [
      ['gemm', () => b.gemm(out, x, w)],
      ['linearSigmoid', () => b.linearSigmoid!(out, x, w, bias)],
    ];
    for (const [kernel, call] of kernels) {
      const { compileMs, msPerCall } = time(b, out, call);
      console.log(
        JSON.stringify({
          mode: b.info.mode,
          requested: mode,
          kernel,
          shape: { batch, visible, hidden },
          gflops: Number((flop / (msPerCall * 1e6)).toFixed(3)),
          msPerCall: Number(msPerCall.toFixed(1)),
          compileMs: Number(compileMs.toFixed(0)),
          reps,
          description: b.info.description,
          machine: info,
        }),
      );
    }
  } finally {
    b.dispose();
  }
}
