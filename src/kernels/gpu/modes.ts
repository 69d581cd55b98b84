/**
 * Starting one gpu.js mode of the gpu backend: loading gpu.js, checking that headless-gl or
 * WebGPU can run here (and saying why not), building the engine, and a probe that refuses a mode
 * whose results are not float32.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BackendUnavailableError } from '../../errors.js';
import { installCommand, MissingPackageError, requireOptional, resolveOptional } from '../../optional.js';
import { SyncExecutor, type GpuEngine, type GpuJsModule } from './executor.js';
import { startWebGpuEngine } from './webgpu-engine.js';

/** gpu.js, or {@link MissingPackageError} when it is not installed (it is an optional peer dependency). */
export function loadGpuJs(): GpuJsModule {
  try {
    return requireOptional<GpuJsModule>('gpu.js');
  } catch (err) {
    if (err instanceof MissingPackageError) throw err;
    throw new BackendUnavailableError(
      'gpu',
      `the 'gpu.js' package does not load (${firstLine(err)}); reinstall it with \`${installCommand('gpu.js')}\`.`,
    );
  }
}

export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** The synchronous gpu.js modes and the kernel class each must run on. */
const syncModes = {
  cpu: { kernelClass: 'CPUKernel', storage: 'rows' },
  webasm: { kernelClass: 'WebAssemblyKernel', storage: 'rows' },
  headlessgl: { kernelClass: 'HeadlessGLKernel', storage: 'device' },
} as const;

type SyncMode = keyof typeof syncModes;

/** Why headless-gl cannot start here, in words a user can act on. */
function headlessGlUnavailable(): string {
  let gl: unknown;
  try {
    createRequire(resolveOptional('gpu.js')).resolve('gl');
  } catch {
    return (
      `the optional package 'gl' (headless-gl) is not installed: run \`${installCommand('gl')}\`, which builds it from source ` +
      'and needs a C++ toolchain, python3 and the X11/GL headers (Debian: scripts/ci-gpu-deps.sh)'
    );
  }
  try {
    gl = createRequire(resolveOptional('gpu.js'))('gl');
  } catch (err) {
    return `the package 'gl' is installed but its native module does not load (${firstLine(err)}): rebuild it with \`npm rebuild gl\``;
  }
  if (typeof gl !== 'function') return "the package 'gl' does not export a context factory";
  const display = process.env['DISPLAY'];
  return display === undefined || display === ''
    ? "'gl' loads but cannot create an OpenGL context: there is no X display (DISPLAY is unset); run under `xvfb-run -a` " +
        '(Debian packages xvfb, xauth, libgl1-mesa-dri) or on a machine with a display'
    : `'gl' loads but cannot create an OpenGL context on DISPLAY=${display} (no GLX/OpenGL driver for it?)`;
}

/** The OpenGL driver libraries this process has mapped (Linux), to tell a GPU from a software rasterizer. */
function glDriver(): { hardware: boolean; name: string } {
  let maps = '';
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return { hardware: false, name: 'an OpenGL driver headless-gl does not name (assumed not a GPU)' };
  }
  if (/libGLX_nvidia|libnvidia-glcore/.test(maps)) return { hardware: true, name: 'the NVIDIA OpenGL driver' };
  const dri = /\/([a-z0-9_]+)_dri\.so/.exec(maps)?.[1];
  if (dri === 'swrast' || dri === 'kms_swrast')
    return { hardware: false, name: 'Mesa llvmpipe/softpipe, a software rasterizer on the CPU' };
  if (dri !== undefined) return { hardware: true, name: `the Mesa '${dri}' driver` };
  return { hardware: false, name: 'an OpenGL driver headless-gl does not name (assumed not a GPU)' };
}

export function startSync(mode: SyncMode, requested: string): GpuEngine {
  const gpujs = loadGpuJs();
  const { kernelClass, storage } = syncModes[mode];
  if (mode === 'headlessgl') {
    const supported = (gpujs as unknown as { GPU: { isHeadlessGLSupported: boolean } }).GPU.isHeadlessGLSupported;
    if (!supported) throw new BackendUnavailableError('gpu', `mode '${requested}' needs headless-gl: ${headlessGlUnavailable()}`);
  }
  let gpu;
  try {
    gpu = new gpujs.GPU({ mode });
  } catch (err) {
    throw new BackendUnavailableError('gpu', `gpu.js cannot start mode '${mode}': ${firstLine(err)}`);
  }
  if (gpu.Kernel.name !== kernelClass) {
    const chosen = gpu.Kernel.name;
    gpu.destroy();
    throw new BackendUnavailableError('gpu', `gpu.js chose ${chosen} for mode '${mode}', not ${kernelClass}`);
  }
  const exec = new SyncExecutor(gpujs, gpu, storage, kernelClass);
  const engine: GpuEngine = {
    mode,
    detail: '',
    device: 'the CPU',
    hardware: false,
    fuses: storage === 'device',
    alloc: (id, rows, cols) => exec.alloc(id, rows, cols),
    free: (id) => exec.free(id),
    write: (id, src) => exec.write(id, src),
    read: (id, dst) => exec.read(id, dst),
    run: (steps) => exec.run(steps),
    kernelClasses: () => exec.kernelClasses(),
    dispose: () => void exec.destroy(),
  };
  try {
    probe(engine);
  } catch (err) {
    void exec.destroy();
    if (err instanceof BackendUnavailableError) throw err;
    throw new BackendUnavailableError('gpu', `mode '${mode}' started but its first kernels failed: ${firstLine(err)}`);
  }
  if (mode === 'headlessgl') {
    const driver = glDriver();
    return {
      ...engine,
      device: driver.name,
      hardware: driver.hardware,
      detail: `headlessgl — OpenGL (headless-gl) on ${driver.name}${driver.hardware ? '' : ': no GPU'}`,
    };
  }
  const detail =
    mode === 'webasm'
      ? 'webasm — gpu.js WebAssembly SIMD kernels on the CPU: no GPU'
      : 'cpu — gpu.js JavaScript kernels on the CPU: no GPU';
  return { ...engine, detail };
}

/**
 * Runs a product, a fused sigmoid and a reduction on a 2 × 3 example and compares with values
 * computed here; a mode that answers wrongly (e.g. 8-bit textures instead of float32) does not start.
 */
export function probe(e: GpuEngine): void {
  const a = Float32Array.of(0.125, -1.5, 2.25, 0.5, 3.75, -0.625);
  const b = Float32Array.of(1.5, -0.25, 0.75, 2, -1.125, 0.5);
  e.alloc(1, 2, 3);
  e.alloc(2, 3, 2);
  e.alloc(3, 2, 2);
  e.alloc(4, 1, 2);
  e.write(1, a);
  e.write(2, b);
  e.write(4, Float32Array.of(0.1, -0.2));
  e.run([{ kernel: 'linearSigmoid', out: 3, args: [{ t: 1 }, { t: 2 }, { t: 4 }], constants: { k: 3 } }]);
  const got = new Float32Array(4);
  e.read(3, got);
  const bias = [0.1, -0.2];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      let z = Math.fround(bias[j]!);
      for (let p = 0; p < 3; p++) z += a[i * 3 + p]! * b[p * 2 + j]!;
      const want = 1 / (1 + Math.exp(-z));
      const have = got[i * 2 + j]!;
      if (!(Math.abs(have - want) <= 1e-6)) {
        throw new BackendUnavailableError(
          'gpu',
          `mode '${e.mode}' computes σ(x·w + b)[${i}][${j}] = ${have}, expected ${want}: the device does not give float32 results`,
        );
      }
    }
  }
  for (const id of [1, 2, 3, 4]) e.free(id);
}

export function startWebGpu(): GpuEngine {
  resolveOptional('gpu.js');
  resolveOptional('webgpu');
  const e = startWebGpuEngine();
  try {
    probe(e);
  } catch (err) {
    e.dispose();
    if (err instanceof BackendUnavailableError) throw err;
    throw new BackendUnavailableError('gpu', `mode 'webgpu' started but its first kernels failed: ${firstLine(err)}`);
  }
  return e;
}
