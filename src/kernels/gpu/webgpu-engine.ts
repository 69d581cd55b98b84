/**
 * The webgpu mode behind the synchronous {@link Backend} contract. gpu.js's WebGPU kernels
 * return Promises (WebGPU has no synchronous readback), so they run in a worker thread
 * (`webgpu-worker.ts`) that awaits them in order; this side posts every call to it as a message
 * and blocks with `Atomics.wait` only where the contract needs a result: start-up,
 * {@link Backend.read} and the scalar reductions. Kernels thus overlap with the caller's work
 * until the next read.
 *
 * Shared memory: `ctrl` (Int32 × 3: replies so far, status 0 = ok / 1 = error, text length)
 * and `text` (UTF-8 of the last reply); a read also passes a shared buffer for the values.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BackendUnavailableError, DbnError } from '../../errors.js';
import type { GpuEngine, Step } from './executor.js';

/** Messages to the worker; `read`, `classes`, `dispose` are answered through shared memory. */
export type WorkerRequest =
  | { readonly op: 'alloc'; readonly id: number; readonly rows: number; readonly cols: number }
  | { readonly op: 'free'; readonly id: number }
  | { readonly op: 'write'; readonly id: number; readonly data: Float32Array }
  | { readonly op: 'run'; readonly steps: readonly Step[] }
  | { readonly op: 'read'; readonly id: number; readonly buf: SharedArrayBuffer; readonly length: number }
  | { readonly op: 'classes' }
  | { readonly op: 'dispose' };

/** What the worker sends at start-up (as the text of reply 1) when an adapter answered. */
export interface WorkerHello {
  readonly detail: string;
  readonly device: string;
  readonly hardware: boolean;
}

/** The shared memory handed to the worker. */
export interface WorkerShared {
  readonly ctrl: SharedArrayBuffer;
  readonly text: SharedArrayBuffer;
}

export const CTRL_REPLIES = 0;
export const CTRL_STATUS = 1;
export const CTRL_LENGTH = 2;
export const TEXT_BYTES = 1 << 16;

const STARTUP_MS = 60_000;
const REPLY_MS = 30 * 60_000;
const DISPOSE_MS = 10_000;

class WorkerEngine implements GpuEngine {
  readonly mode = 'webgpu';
  readonly detail: string;
  readonly device: string;
  readonly hardware: boolean;
  readonly fuses = true;
  readonly #ctrl: Int32Array;
  readonly #text: Uint8Array;
  readonly #worker: Worker;
  #replies = 0;
  #buf = new SharedArrayBuffer(0);
  #closed = false;

  constructor() {
    const shared: WorkerShared = { ctrl: new SharedArrayBuffer(12), text: new SharedArrayBuffer(TEXT_BYTES) };
    this.#ctrl = new Int32Array(shared.ctrl);
    this.#text = new Uint8Array(shared.text);
    this.#worker = spawn(shared);
    this.#worker.on('error', () => undefined);
    this.#worker.unref();
    let hello: WorkerHello;
    try {
      hello = JSON.parse(this.#await(STARTUP_MS, 'start')) as WorkerHello;
    } catch (err) {
      this.#closed = true;
      void this.#worker.terminate();
      throw new BackendUnavailableError('gpu', `mode 'webgpu' cannot start: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.detail = hello.detail;
    this.device = hello.device;
    this.hardware = hello.hardware;
  }

  /** Waits for the next reply; returns its text, or throws its error text. */
  #await(timeoutMs: number, what: string): string {
    const want = ++this.#replies;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.#ctrl, CTRL_REPLIES);
      if (seen >= want) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new DbnError(`the WebGPU worker did not answer '${what}' within ${timeoutMs / 1000} s`, 'ETIMEOUT');
      Atomics.wait(this.#ctrl, CTRL_REPLIES, seen, Math.min(left, 1000));
    }
    const text = new TextDecoder().decode(this.#text.slice(0, Atomics.load(this.#ctrl, CTRL_LENGTH)));
    if (Atomics.load(this.#ctrl, CTRL_STATUS) !== 0) throw new DbnError(text, 'EGPU');
    return text;
  }

  #post(msg: WorkerRequest): void {
    this.#worker.postMessage(msg);
  }

  alloc(id: number, rows: number, cols: number): void {
    this.#post({ op: 'alloc', id, rows, cols });
  }

  free(id: number): void {
    this.#post({ op: 'free', id });
  }

  write(id: number, src: Float32Array): void {
    this.#post({ op: 'write', id, data: src });
  }

  run(steps: readonly Step[]): void {
    this.#post({ op: 'run', steps });
  }

  read(id: number, dst: Float32Array): void {
    if (dst.length === 0) return;
    if (this.#buf.byteLength < dst.byteLength) this.#buf = new SharedArrayBuffer(dst.byteLength);
    this.#post({ op: 'read', id, buf: this.#buf, length: dst.length });
    this.#await(REPLY_MS, 'read');
    dst.set(new Float32Array(this.#buf, 0, dst.length));
  }

  kernelClasses(): string[] {
    this.#post({ op: 'classes' });
    return JSON.parse(this.#await(REPLY_MS, 'classes')) as string[];
  }

  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#post({ op: 'dispose' });
      this.#await(DISPOSE_MS, 'dispose');
    } catch {
      // a worker that failed or hangs is terminated all the same
    }
    void this.#worker.terminate();
  }
}

/**
 * A plain-JS bootstrap that imports the worker module and, if that import fails, says so through
 * the shared memory (the main thread is blocked in `Atomics.wait` and would not see an 'error' event).
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const loader = workerData.loader === null ? Promise.resolve() : import(workerData.loader).then((tsx) => { tsx.register(); });
loader.then(() => import(workerData.url)).catch((err) => {
  const ctrl = new Int32Array(workerData.ctrl);
  const bytes = new TextEncoder().encode('the WebGPU worker does not load: ' + String(err && err.message || err).split('\\n')[0]).subarray(0, ${TEXT_BYTES});
  new Uint8Array(workerData.text).set(bytes);
  Atomics.store(ctrl, ${CTRL_LENGTH}, bytes.length);
  Atomics.store(ctrl, ${CTRL_STATUS}, 1);
  Atomics.add(ctrl, ${CTRL_REPLIES}, 1);
  Atomics.notify(ctrl, ${CTRL_REPLIES});
});
`;

/** The URL of tsx's ESM API (`tsx/esm/api`, import condition), from its package exports. */
function tsxEsmApi(): string {
  const pkgFile = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(join(dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

/**
 * Starts the worker. From TypeScript sources (tests, `tsx`) the worker registers tsx's loader
 * itself: tsx's `--import` hook does not register in worker threads on Node 20.
 */
function spawn(shared: WorkerShared): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(`./webgpu-worker${fromSource ? '.ts' : '.js'}`, import.meta.url).href;
  const loader = fromSource ? tsxEsmApi() : null;
  return new Worker(BOOTSTRAP, { eval: true, workerData: { ...shared, url, loader } });
}

/** Starts gpu.js's webgpu mode in a worker; {@link BackendUnavailableError} when no adapter answers there. */
export function startWebGpuEngine(): GpuEngine {
  return new WorkerEngine();
}
