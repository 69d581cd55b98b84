/**
 * Parity of the gpu backend with the native one on a whole training run: the same seed drives
 * the same uniforms on both, so a few hundred CD-1 updates must end at the same weights within
 * float32 tolerance, and a model saved from one loads into the other with the same outputs.
 * Every gpu.js mode that starts here is checked (headlessgl and webgpu need `xvfb-run -a`).
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BackendUnavailableError } from '../../src/errors.js';
import type { Backend } from '../../src/kernels/backend.js';
import { createGpuBackend, gpuKernelClasses, type GpuMode } from '../../src/kernels/gpu/index.js';
import { createNativeBackend } from '../../src/kernels/native/index.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Rbm } from '../../src/rbm/index.js';
import { loadBundledDigits, take } from '../../src/data/index.js';

const digits = take(loadBundledDigits(), 400);
// 300 updates: 400 rows / batch 20 = 20 updates per epoch, 15 epochs. At this learning rate no
// Bernoulli sample flips between backends, so the runs stay within float32 rounding of each
// other. (At 0.05 a uniform within ~1e-7 of a probability eventually flips one sample on one
// backend and not the other and the trajectories part by ~0.08 — js and native part exactly as
// much, so that is the sampler's sensitivity, not a gpu error.)
const opts = { nVisible: 784, nHidden: 32, seed: 7, batchSize: 20, learningRate: 0.01, monitorSize: 0 } as const;

function reference(): { backend: Backend; name: string } {
  try {
    return { backend: createNativeBackend(), name: 'native' };
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    return { backend: createJsBackend(), name: 'js' };
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const mode of ['webasm', 'cpu', 'headlessgl', 'webgpu'] as GpuMode[]) {
  let gpu: Backend | undefined;
  let reason = '';
  try {
    gpu = createGpuBackend({ mode });
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    reason = err.reason;
  }
  if (gpu === undefined) {
    console.log(`gpu parity: mode '${mode}' unavailable — ${reason}`);
    test.skip(`gpu:${mode} vs native parity — unavailable: ${reason}`, () => {});
    continue;
  }
  const g = gpu;
  test.serial(`gpu:${mode}: 300 CD-1 updates match the CPU reference; models move between backends`, async (t) => {
    const ref = reference();
    try {
      const a = new Rbm({ ...opts, backend: ref.backend });
      const b = new Rbm({ ...opts, backend: g });
      await a.fit(digits.x, { epochs: 15 });
      await b.fit(digits.x, { epochs: 15 });
      t.is(b.updates, 300);
      const pa = a.getParameters();
      const pb = b.getParameters();
      const dW = maxAbsDiff(pa.weights.data, pb.weights.data);
      t.log(`gpu:${mode} vs ${ref.name}: max |ΔW| ${dW.toExponential(2)}`);
      t.true(dW < 1e-4, `weights differ by ${dW}`);
      t.true(maxAbsDiff(pa.hiddenBias, pb.hiddenBias) < 1e-4);
      t.true(maxAbsDiff(pa.visibleBias, pb.visibleBias) < 1e-4);
      t.true(Math.abs(a.reconstructionError(digits.x) - b.reconstructionError(digits.x)) < 1e-4);
      t.false(gpuKernelClasses(g).includes('CPUKernel') && mode !== 'cpu', 'no silent CPU fallback');
      // save on the gpu, load on the reference, and the other way round
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-parity-'));
      b.save(path.join(dir, 'gpu.rbm'));
      a.save(path.join(dir, 'ref.rbm'));
      const onRef = Rbm.load(path.join(dir, 'gpu.rbm'), { backend: ref.backend });
      const onGpu = Rbm.load(path.join(dir, 'ref.rbm'), { backend: g });
      t.true(maxAbsDiff(onRef.transform(digits.x).data, b.transform(digits.x).data) < 1e-5);
      t.true(maxAbsDiff(onGpu.transform(digits.x).data, a.transform(digits.x).data) < 1e-5);
      for (const r of [a, b, onRef, onGpu]) r.dispose();
    } finally {
      ref.backend.dispose();
      g.dispose();
    }
  });
}
