/**
 * Runs {@link Step}s on one gpu.js `GPU` instance: builds each kernel once per shape (cached by
 * a key of kernel name, output shape, constants and argument shapes), keeps every tensor's
 * storage on the device between kernels (`pipeline: true`, `immutable: true`), and releases a
 * tensor's old storage right after the kernel that replaces it.
 *
 * Storage by gpu.js kernel class: a GL texture (headlessgl/webgl), a WebGPU buffer handle
 * (webgpu), or rows of `Float32Array` (webasm/cpu, where gpu.js's pipeline results are plain
 * arrays). {@link SyncExecutor} runs kernels as they come (every mode but webgpu);
 * {@link AsyncExecutor} awaits each one (webgpu, whose kernels return Promises; it runs in the
 * worker of `webgpu-engine.ts`).
 */
import { DbnError } from '../../errors.js';
import { kernelBodies, type KernelName } from './kernels.js';

/** A tensor argument of a {@link Step}: the id of a registered tensor. */
export interface TensorRef {
  readonly t: number;
}

/** One kernel launch: `tensor[out] ← kernel(args…)`; numbers are passed as scalars. */
export interface Step {
  readonly kernel: KernelName;
  readonly out: number;
  readonly args: readonly (TensorRef | number)[];
  readonly constants?: Readonly<Record<string, number>>;
}

/** The engine under the gpu backend: one device, tensors by id, steps run in order (`index.ts` runs the sync one, `webgpu-engine.ts` the worker). */
export interface GpuEngine {
  /** The mode that runs, e.g. `'headlessgl'`. */
  readonly mode: string;
  /** What runs, in words, e.g. `'headlessgl — OpenGL on Mesa llvmpipe, a software renderer: no GPU'`. */
  readonly detail: string;
  /** The device, in words, e.g. `'Mesa llvmpipe/softpipe, a software rasterizer on the CPU'`. */
  readonly device: string;
  /** True when the device is a real GPU (not a software rasterizer or the CPU). */
  readonly hardware: boolean;
  /**
   * True when the fused kernels pay off (GL, WebGPU). False on webasm and cpu, where gpu.js's
   * WebAssembly vectoriser runs a body that calls `Math.exp` about 2× slower than the plain
   * product, so `linearSigmoid` is better run as the product and then the sigmoid.
   */
  readonly fuses: boolean;
  alloc(id: number, rows: number, cols: number): void;
  free(id: number): void;
  write(id: number, src: Float32Array): void;
  read(id: number, dst: Float32Array): void;
  run(steps: readonly Step[]): void;
  /** The gpu.js kernel classes of the kernels built so far. */
  kernelClasses(): string[];
  dispose(): void;
}

/** The part of a gpu.js `Texture` / `WebGPUBufferResult` used here. */
interface DeviceStorage {
  delete(): void;
  toArray(): unknown;
}

/** The part of a gpu.js kernel run shortcut used here. */
export interface GpuJsKernel {
  (...args: unknown[]): unknown;
  readonly kernel: object;
}

/** The part of a gpu.js `GPU` instance used here. */
export interface GpuJsInstance {
  readonly Kernel: { readonly name: string };
  createKernel(fn: (...args: never[]) => number, settings: object): GpuJsKernel;
  destroy(): unknown;
}

/** The part of the gpu.js module used here. */
export interface GpuJsModule {
  readonly GPU: new (settings: { mode: string }) => GpuJsInstance;
  input(value: Float32Array, size: [number, number]): unknown;
}

/** How tensors live on a device: texture/buffer handles, or host arrays of rows. */
export type StorageKind = 'device' | 'rows';

interface Slot {
  readonly rows: number;
  readonly cols: number;
  /** `null` for an empty (0-element) tensor. */
  data: unknown;
}

function classOf(k: GpuJsKernel): string {
  return (k.kernel as { constructor: { name: string } }).constructor.name;
}

const SETTINGS = { pipeline: true, immutable: true, precision: 'single', tactic: 'precision' } as const;

/** The state and kernel cache shared by the synchronous and asynchronous executors. */
abstract class KernelHost {
  protected readonly slots = new Map<number, Slot>();
  private readonly kernels = new Map<string, GpuJsKernel>();
  /** Kernels built but not yet run (their class is checked after the first run). */
  private readonly unchecked = new Set<GpuJsKernel>();

  constructor(
    protected readonly gpujs: GpuJsModule,
    protected readonly gpu: GpuJsInstance,
    /** `'device'`: storage is a texture/buffer with `delete()`/`toArray()`; `'rows'`: `Float32Array[]`. */
    readonly storage: StorageKind,
    /** The gpu.js kernel class every kernel must run on, e.g. `'HeadlessGLKernel'`. */
    readonly kernelClass: string,
  ) {}

  /** The gpu.js kernel classes of every kernel built so far (one, unless gpu.js fell back). */
  kernelClasses(): string[] {
    return [...new Set([...this.kernels.values()].map(classOf))];
  }

  /**
   * Throws when gpu.js replaced a kernel's implementation by another class (its silent CPU
   * fallback); the reason gpu.js recorded is in the message.
   */
  protected check(k: GpuJsKernel, name: KernelName): void {
    if (!this.unchecked.delete(k)) return;
    const cls = classOf(k);
    if (cls !== this.kernelClass) {
      const reason = (k.kernel as { fallbackReason?: unknown }).fallbackReason;
      throw new DbnError(
        `gpu.js ran kernel '${name}' on ${cls} instead of ${this.kernelClass}${typeof reason === 'string' ? ` (${reason})` : ''}; ` +
          'the gpu backend does not run on a device other than the one it reports.',
        'EFALLBACK',
      );
    }
  }

  /** The kernel for `name` with output `rows × cols`, built on first use. */
  protected kernelFor(
    name: KernelName,
    rows: number,
    cols: number,
    constants: Readonly<Record<string, number>>,
    argKey: string,
  ): GpuJsKernel {
    const key = `${name}|${rows}x${cols}|${JSON.stringify(constants)}|${argKey}`;
    let k = this.kernels.get(key);
    if (k === undefined) {
      const loopMax = Math.max(1000, ...Object.values(constants).map((v) => v + 1));
      k = this.gpu.createKernel(kernelBodies[name] as (...args: never[]) => number, {
        ...SETTINGS,
        output: [cols, rows],
        constants,
        loopMaxIterations: loopMax,
      });
      this.kernels.set(key, k);
      this.unchecked.add(k);
    }
    return k;
  }

  protected slot(id: number): Slot {
    const s = this.slots.get(id);
    if (s === undefined) throw new Error(`gpu executor: unknown tensor id ${id}`);
    return s;
  }

  /** The kernel and its argument values for `step`, or `null` when its output is empty. */
  protected prepare(step: Step): { kernel: GpuJsKernel; name: KernelName; args: unknown[]; out: Slot } | null {
    const out = this.slot(step.out);
    if (out.data === null) return null;
    let argKey = '';
    const args = step.args.map((a) => {
      if (typeof a === 'number') {
        argKey += 's,';
        return a;
      }
      const s = this.slot(a.t);
      argKey += `${s.rows}x${s.cols},`;
      return s.data;
    });
    return { kernel: this.kernelFor(step.kernel, out.rows, out.cols, step.constants ?? {}, argKey), name: step.kernel, args, out };
  }

  /** Replaces `out`'s storage with a kernel's result, releasing the old storage. */
  protected commit(out: Slot, result: unknown): void {
    const old = out.data;
    out.data = result;
    if (this.storage === 'device' && old !== null && old !== undefined && old !== result) (old as DeviceStorage).delete();
  }

  /** Registers tensor `id` of shape `rows × cols`; returns the fill step that zeroes it on a device. */
  protected register(id: number, rows: number, cols: number): Step | null {
    const empty = rows === 0 || cols === 0;
    const data = empty ? null : this.storage === 'rows' ? Array.from({ length: rows }, () => new Float32Array(cols)) : undefined;
    this.slots.set(id, { rows, cols, data });
    return empty || this.storage === 'rows' ? null : { kernel: 'fill', out: id, args: [0] };
  }

  /** Releases tensor `id`. */
  free(id: number): void {
    const s = this.slots.get(id);
    if (s === undefined) return;
    this.slots.delete(id);
    if (this.storage === 'device' && s.data !== null && s.data !== undefined) (s.data as DeviceStorage).delete();
  }

  /** Copies `src` into tensor `id` on the host when its storage is host rows (or it is empty); false when it needs an upload. */
  protected writeHost(id: number, src: Float32Array): boolean {
    const s = this.slot(id);
    if (s.data === null) return true;
    if (this.storage === 'device') return false;
    const rows = s.data as Float32Array[];
    for (let r = 0; r < s.rows; r++) rows[r]!.set(src.subarray(r * s.cols, (r + 1) * s.cols));
    return true;
  }

  /** The upload argument for `src` into a `rows × cols` tensor (a gpu.js `Input` viewing it as a matrix). */
  protected uploadArg(id: number, src: Float32Array): { kernel: GpuJsKernel; arg: unknown; out: Slot } {
    const s = this.slot(id);
    return { kernel: this.kernelFor('copy', s.rows, s.cols, {}, 'input'), arg: this.gpujs.input(src, [s.cols, s.rows]), out: s };
  }

  /** Copies rows (as gpu.js returns them) into `dst`. */
  protected static flatten(rows: ArrayLike<ArrayLike<number>>, cols: number, dst: Float32Array): void {
    for (let r = 0; r < rows.length; r++) dst.set(rows[r]!, r * cols);
  }

  /**
   * Releases every tensor and kernel, and the GPU instance (which owns the GL context). gpu.js
   * destroys kernels on a later tick; the promise settles when it has (never rejects).
   */
  destroy(): Promise<void> {
    for (const id of [...this.slots.keys()]) this.free(id);
    this.kernels.clear();
    try {
      return Promise.resolve(this.gpu.destroy()).then(
        () => undefined,
        () => undefined,
      );
    } catch {
      // a context that is already lost cannot be destroyed twice
      return Promise.resolve();
    }
  }
}

/** Runs steps as they come (cpu, webasm, headlessgl). */
export class SyncExecutor extends KernelHost {
  run(steps: readonly Step[]): void {
    for (const step of steps) {
      const p = this.prepare(step);
      if (p === null) continue;
      this.commit(p.out, p.kernel(...p.args));
      this.check(p.kernel, p.name);
    }
  }

  alloc(id: number, rows: number, cols: number): void {
    const zero = this.register(id, rows, cols);
    if (zero !== null) this.run([zero]);
  }

  write(id: number, src: Float32Array): void {
    if (this.writeHost(id, src)) return;
    const u = this.uploadArg(id, src);
    this.commit(u.out, u.kernel(u.arg));
    this.check(u.kernel, 'copy');
  }

  read(id: number, dst: Float32Array): void {
    const s = this.slot(id);
    if (s.data === null) return;
    const rows = this.storage === 'rows' ? (s.data as Float32Array[]) : ((s.data as DeviceStorage).toArray() as Float32Array[]);
    KernelHost.flatten(rows, s.cols, dst);
  }
}

/** Awaits each kernel (webgpu, where a pipeline kernel call returns a Promise of a buffer handle). */
export class AsyncExecutor extends KernelHost {
  async run(steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      const p = this.prepare(step);
      if (p === null) continue;
      this.commit(p.out, await p.kernel(...p.args));
      this.check(p.kernel, p.name);
    }
  }

  async alloc(id: number, rows: number, cols: number): Promise<void> {
    const zero = this.register(id, rows, cols);
    if (zero !== null) await this.run([zero]);
  }

  async write(id: number, src: Float32Array): Promise<void> {
    if (this.writeHost(id, src)) return;
    const u = this.uploadArg(id, src);
    this.commit(u.out, await u.kernel(u.arg));
    this.check(u.kernel, 'copy');
  }

  async read(id: number, dst: Float32Array): Promise<void> {
    const s = this.slot(id);
    if (s.data === null) return;
    const rows = this.storage === 'rows' ? (s.data as Float32Array[]) : ((await (s.data as DeviceStorage).toArray()) as Float32Array[]);
    KernelHost.flatten(rows, s.cols, dst);
  }
}
