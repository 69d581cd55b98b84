/**
 * The worker thread of the webgpu mode (see `webgpu-engine.ts`): sets up `navigator.gpu` from
 * the `webgpu` package (Dawn) in this thread only, starts gpu.js in `'webgpu'` mode, then runs
 * the requests it is sent, in order, awaiting each kernel. The first failure is kept and
 * reported at the next request that has a reply; later kernels are skipped.
 *
 * Adapters tried, first answer wins: Dawn's default backend (Vulkan, Metal, D3D12), then
 * Dawn's OpenGL ES backend as a WebGPU compatibility-mode adapter (needs an X display, e.g.
 * Xvfb + Mesa).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { installCommand } from '../../optional.js';
import type { AsyncExecutor, GpuJsModule } from './executor.js';
import {
  CTRL_LENGTH,
  CTRL_REPLIES,
  CTRL_STATUS,
  TEXT_BYTES,
  type WorkerHello,
  type WorkerRequest,
  type WorkerShared,
} from './webgpu-engine.js';

interface Adapter {
  readonly info?: {
    readonly vendor?: string;
    readonly architecture?: string;
    readonly device?: string;
    readonly description?: string;
    readonly isFallbackAdapter?: boolean;
  };
}

interface NavigatorGpu {
  requestAdapter(options?: object): Promise<Adapter | null>;
  getPreferredCanvasFormat(): string;
}

interface WebGpuPackage {
  create(flags: string[]): NavigatorGpu;
  globals: object;
}

const shared = workerData as WorkerShared;
const ctrl = new Int32Array(shared.ctrl);
const text = new Uint8Array(shared.text);
const require = createRequire(import.meta.url);

let exec: AsyncExecutor | undefined;
let failure: string | undefined;

function reply(ok: boolean, message: string): void {
  const bytes = new TextEncoder().encode(message).subarray(0, TEXT_BYTES);
  text.set(bytes);
  Atomics.store(ctrl, CTRL_LENGTH, bytes.length);
  Atomics.store(ctrl, CTRL_STATUS, ok ? 0 : 1);
  Atomics.add(ctrl, CTRL_REPLIES, 1);
  Atomics.notify(ctrl, CTRL_REPLIES);
}

function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;

/**
 * gpu.js loads the optional `gl` addon when it is first required. `gl` is not context-aware: a
 * process can load it in one thread only, and this worker must not take it from the main thread
 * (where the headlessgl mode uses it). A cache entry with no exports makes gpu.js here treat
 * headless-gl as absent; the module cache is per thread, so the main thread is unaffected.
 */
function keepGlOutOfThisThread(): void {
  let glPath: string;
  try {
    glPath = createRequire(require.resolve('gpu.js')).resolve('gl');
  } catch {
    return;
  }
  require.cache[glPath] ??= {
    id: glPath,
    filename: glPath,
    loaded: true,
    exports: null,
    children: [],
    paths: [],
  } as unknown as NodeJS.Module;
}

async function start(): Promise<void> {
  let webgpu: WebGpuPackage;
  try {
    webgpu = (await import('webgpu')) as unknown as WebGpuPackage;
  } catch (err) {
    throw new Error(`the 'webgpu' package (Dawn for Node, 0.6.x) does not load: ${message(err)}; run \`${installCommand('webgpu')}\``);
  }
  Object.assign(globalThis, webgpu.globals);
  // Mesa's eglInitialize fails now and then right after Dawn's Vulkan probe; a fresh instance succeeds.
  const attempts = [
    { flags: [] as string[], options: {}, label: "Dawn's default backend", tries: 1 },
    {
      flags: ['backend=opengles'],
      options: { featureLevel: 'compatibility' },
      label: "Dawn's OpenGL ES backend (WebGPU compatibility mode)",
      tries: process.env['DISPLAY'] ? 3 : 1,
    },
  ];
  let chosen: { gpu: NavigatorGpu; adapter: Adapter; options: object; label: string } | undefined;
  for (const a of attempts) {
    for (let i = 0; i < a.tries && chosen === undefined; i++) {
      const gpu = webgpu.create(a.flags);
      const adapter = await gpu.requestAdapter(a.options).catch(() => null);
      if (adapter !== null) chosen = { gpu, adapter, options: a.options, label: a.label };
    }
    if (chosen !== undefined) break;
  }
  if (chosen === undefined) {
    const display = process.env['DISPLAY'];
    throw new Error(
      `no WebGPU adapter answered (tried ${attempts.map((a) => a.label).join(', then ')}): no Vulkan driver with the features Dawn needs` +
        (display === undefined || display === '' ? ', and no X display for the OpenGL ES backend (run under `xvfb-run -a`)' : ''),
    );
  }
  const { gpu, adapter, options, label } = chosen;
  const navigatorGpu = {
    requestAdapter: (o?: object) => gpu.requestAdapter({ ...options, ...o }),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
  };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: navigatorGpu }, configurable: true, writable: true });
  keepGlOutOfThisThread();
  const gpujs = require('gpu.js') as GpuJsModule & { GPU: new (s: { mode: string }) => never };
  const { AsyncExecutor } = await import('./executor.js');
  const instance = new gpujs.GPU({ mode: 'webgpu' });
  exec = new AsyncExecutor(gpujs, instance, 'device', 'WebGPUKernel');
  const info = adapter.info ?? {};
  const name = [info.description, info.device, info.vendor].filter((s) => s !== undefined && s !== '').join(', ') || 'an unnamed adapter';
  const hardware = info.isFallbackAdapter !== true && !SOFTWARE.test(name);
  const device = `${name} via ${label}${hardware ? '' : ', a software renderer on the CPU'}`;
  const hello: WorkerHello = { detail: `webgpu — WGSL compute shaders on ${device}${hardware ? '' : ': no GPU'}`, device, hardware };
  reply(true, JSON.stringify(hello));
}

async function handle(req: WorkerRequest): Promise<void> {
  const answers = req.op === 'read' || req.op === 'classes' || req.op === 'dispose';
  if (failure !== undefined || exec === undefined) {
    if (req.op === 'dispose') reply(true, '');
    else if (answers) reply(false, failure ?? 'the WebGPU worker did not start');
    return;
  }
  try {
    switch (req.op) {
      case 'alloc':
        await exec.alloc(req.id, req.rows, req.cols);
        break;
      case 'free':
        exec.free(req.id);
        break;
      case 'write':
        await exec.write(req.id, req.data);
        break;
      case 'run':
        await exec.run(req.steps);
        break;
      case 'read':
        await exec.read(req.id, new Float32Array(req.buf, 0, req.length));
        reply(true, '');
        break;
      case 'classes':
        reply(true, JSON.stringify(exec.kernelClasses()));
        break;
      case 'dispose': {
        // kernels (and their buffers) go first: gpu.js destroys them on a later tick, and a
        // buffer destroyed after its device makes Dawn throw from native code (a fatal error)
        await exec.destroy();
        const { WebGPUContext } = require('gpu.js') as { WebGPUContext: { destroy(): Promise<void> } };
        await WebGPUContext.destroy();
        reply(true, '');
        break;
      }
    }
  } catch (err) {
    failure = `gpu (webgpu): '${req.op}' failed: ${message(err)}`;
    if (answers) reply(false, failure);
  }
}

let chain = start().catch((err: unknown) => {
  failure = message(err);
  reply(false, failure);
});
parentPort?.on('message', (req: WorkerRequest) => {
  chain = chain.then(() => handle(req));
});
