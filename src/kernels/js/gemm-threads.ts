/**
 * The js backend's WebAssembly SIMD gemm on several threads: `node:worker_threads` workers that
 * instantiate the same macro-kernel module (`wasm-gemm.ts`) on one shared `WebAssembly.Memory`.
 * The calling thread copies `a`, `b` and `beta · c` (unless beta is 0) into that memory; then it and the workers
 * pack A and compute column blocks of `c` (`gemm-block.ts`) until none is left, the calling thread
 * waiting with `Atomics.wait` for the last one, so the product stays synchronous. Each element is
 * summed in the order of the single-threaded {@link gemmImpl}, which gives the same bits for any
 * thread count and any split.
 *
 * Workers start lazily (with the first product big enough), are `unref`'d so they never keep a
 * process alive, and are terminated by {@link GemmThreads.release}. Where `SharedArrayBuffer`,
 * `Atomics`, shared WebAssembly memories or workers are missing, {@link createGemmThreads}
 * returns why, and the backend stays on one thread.
 */
import { Worker } from 'node:worker_threads';
import { CONTROL_BYTES, Ctl, gemmBlock, packAFrom, packATask, packBFrom, runGemmBlocks } from './gemm-block.js';
import type { BlockKernels, PackA, PackB } from './gemm-block.js';
import { KC, MC, packA, packB, roundUp } from './gemm.js';
import { wasmMacroKernelBytes } from './wasm-gemm.js';

/** Tile of the WebAssembly macro-kernel (as in `wasm-gemm.ts`). */
const MR = 4;
const NR = 8;
const PAGE = 65536;
/** The shared memory's maximum (1 GiB); products needing more run on one thread. */
const MAX_PAGES = 16384;
/** Products of fewer multiply-adds than this stay on the calling thread (the hand-off costs tens of µs). */
const MIN_THREADED_WORK = 1 << 20;

interface SharedMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}
interface WasmThreadsApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
}
interface WorkerHandle {
  unref(): void;
  terminate(): Promise<number>;
  on(event: 'error', listener: (error: unknown) => void): void;
}
type WorkerConstructor = new (source: string, options: { eval: true; workerData: unknown }) => WorkerHandle;

/** The worker's program: the block routines as source text, then a wait-claim loop. */
function workerSource(): string {
  return [
    '"use strict";',
    packA.toString(),
    packB.toString(),
    packAFrom.toString(),
    packBFrom.toString(),
    packATask.toString(),
    gemmBlock.toString(),
    runGemmBlocks.toString(),
    "const { workerData } = require('node:worker_threads');",
    'const { module, memory } = workerData;',
    'const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;',
    `const ctl = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});`,
    `Atomics.add(ctl, ${Ctl.ready}, 1);`,
    'for (;;) {',
    `  const seen = Atomics.load(ctl, ${Ctl.generation});`,
    `  if (Atomics.load(ctl, ${Ctl.stop}) !== 0) break;`,
    `  runGemmBlocks(ctl, memory, new Float32Array(memory.buffer), kernels, ${packA.name}, ${packB.name});`,
    `  Atomics.wait(ctl, ${Ctl.generation}, seen);`,
    '}',
  ].join('\n');
}

/**
 * The threads of one backend: the shared memory, the calling thread's instance of the module, and
 * `threads − 1` workers (started by the first threaded product).
 */
/** The shared memory, this thread's instance of the module on it, and views of it. */
interface Shared {
  readonly memory: SharedMemory;
  readonly kernels: BlockKernels;
  f32: Float32Array;
  ctl: Int32Array;
}

export class GemmThreads {
  /** Made by the first threaded product (a shared memory reserves its maximum's address space). */
  private shared: Shared | undefined;
  private workers: WorkerHandle[] = [];
  /** The first error a worker raised, if any (its blocks went to the other threads). */
  workerError: unknown = undefined;
  private generation = 0;
  private released = false;

  constructor(
    /** Threads computing a product, the calling one included (≥ 2). */
    readonly threads: number,
    private readonly api: WasmThreadsApi,
    private readonly module: object,
    private readonly Worker: WorkerConstructor,
  ) {}

  /** Workers that have started so far (up to `threads − 1`). */
  get workersReady(): number {
    return this.shared === undefined ? 0 : Atomics.load(this.shared.ctl, Ctl.ready);
  }

  /** Whether {@link gemm} would spread an `m × n × k` product over the threads. */
  takes(m: number, n: number, k: number): boolean {
    return !this.released && m * n * k >= MIN_THREADED_WORK && n > NR && k > 0 && layout(m, n, k).bytes <= MAX_PAGES * PAGE;
  }

  /**
   * `c = alpha · op(a) · op(b) + beta · c`, then `c = σ(c + bias)` when `bias` is given; the
   * arguments of `gemmImpl`, the shape having passed {@link takes} and `alpha ≠ 0`. Returns
   * `false`, computing nothing, when the shared memory cannot be had (then `takes` says no from now on).
   */
  gemm(
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    transA: boolean,
    b: Float32Array,
    transB: boolean,
    beta: number,
    c: Float32Array,
    bias?: Float32Array,
  ): boolean {
    return this.sum(m, n, k, [{ alpha, a, transA, b, transB }], beta, c, bias);
  }

  /**
   * `c = beta · c + Σ alpha · op(a) · op(b)` over `terms` in order, `c` staying in the shared
   * memory between them — the values of one {@link gemm} per term, the later ones with beta 1
   * (c's float32 values copied out and back in are the same values), without those copies.
   * Every term is `m × k` by `k × n` with `alpha ≠ 0`; `bias` as in {@link gemm}, after the last.
   */
  sum(m: number, n: number, k: number, terms: readonly ProductTerm[], beta: number, c: Float32Array, bias?: Float32Array): boolean {
    const plan = layout(m, n, k);
    const shared = this.ensure(plan.bytes);
    if (shared === undefined) return false;
    const { f32, ctl } = shared;
    terms.forEach(({ alpha, a, transA, b, transB }, t) => {
      f32.set(a.subarray(0, m * k), plan.rawA);
      f32.set(b.subarray(0, k * n), plan.rawB);
      // the first term: beta · c, or (beta 0) zeroed by the blocks themselves, in parallel
      if (t === 0 && beta !== 0) fillC(f32, plan.c, plan.ldc, m, n, beta, c);
      ctl[Ctl.zeroC] = t === 0 && beta === 0 ? 1 : 0;
      new Float64Array(f32.buffer, Ctl.alpha * 4, 1)[0] = alpha;
      const last = t === terms.length - 1;
      if (last && bias !== undefined) f32.set(bias.subarray(0, n), plan.bias);
      this.product(shared, plan, m, n, k, transA, transB, last ? bias : undefined);
    });
    for (let i = 0; i < m; i++) c.set(f32.subarray(plan.c + i * plan.ldc, plan.c + i * plan.ldc + n), i * n);
    return true;
  }

  /** Runs the product whose operands are in place: its parameters into the control block, then {@link run}. */
  private product(
    shared: Shared,
    plan: Layout,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    bias?: Float32Array,
  ): void {
    const panels = Math.ceil(n / NR);
    // Small blocks (down to one 8-column panel): a thread descheduled by other work holds up the
    // others by one block at most. The macro-kernel streams A per B panel whatever the block width.
    const blocks = Math.min(panels, 4096, Math.max(16 * this.threads, Math.ceil(n / 256)));
    const params: [number, number][] = [
      [Ctl.panels, panels],
      [Ctl.m, m],
      [Ctl.n, n],
      [Ctl.k, k],
      [Ctl.kcMax, plan.kcMax],
      [Ctl.mcMax, MC],
      [Ctl.ldc, plan.ldc],
      [Ctl.mr, MR],
      [Ctl.nr, NR],
      [Ctl.rawB, plan.rawB],
      [Ctl.bRow, transB ? 1 : n],
      [Ctl.bCol, transB ? k : 1],
      [Ctl.packedA, plan.packedA],
      [Ctl.packedB, plan.packedB],
      [Ctl.c, plan.c],
      [Ctl.bias, bias === undefined ? -1 : plan.bias],
      [Ctl.rawA, plan.rawA],
      [Ctl.aRow, transA ? 1 : k],
      [Ctl.aCol, transA ? m : 1],
    ];
    for (const [word, value] of params) shared.ctl[word] = value;
    this.run(shared, Math.ceil(k / plan.kcMax) * Math.ceil(m / MC), blocks);
  }

  /**
   * Publishes the job (its other parameters written), computes tasks and blocks on this thread
   * too, and waits for the last one. A thread late from the previous job sees that job's
   * exhausted claims (index = count) until the counts are zeroed, then nothing to claim until
   * the new counts are stored — by then the claim words have changed, so its stale claims fail.
   */
  private run(shared: Shared, aTasks: number, blocks: number): void {
    const { ctl } = shared;
    this.startWorkers(shared.memory);
    this.generation = (this.generation + 1) & 0x7fff;
    Atomics.store(ctl, Ctl.aTasks, 0);
    Atomics.store(ctl, Ctl.blocks, 0);
    Atomics.store(ctl, Ctl.done, 0);
    Atomics.store(ctl, Ctl.aDone, 0);
    Atomics.store(ctl, Ctl.next, this.generation << 16);
    Atomics.store(ctl, Ctl.aNext, this.generation << 16);
    Atomics.store(ctl, Ctl.aTasks, aTasks);
    Atomics.store(ctl, Ctl.blocks, blocks);
    Atomics.store(ctl, Ctl.generation, this.generation);
    Atomics.notify(ctl, Ctl.generation);
    runGemmBlocks(ctl, shared.memory, shared.f32, shared.kernels, packA as PackA, packB as PackB);
    for (let done = Atomics.load(ctl, Ctl.done); done < blocks; done = Atomics.load(ctl, Ctl.done)) Atomics.wait(ctl, Ctl.done, done);
  }

  private startWorkers(memory: SharedMemory): void {
    if (this.workers.length > 0) return;
    const source = workerSource();
    for (let i = 1; i < this.threads; i++) {
      const worker = new this.Worker(source, { eval: true, workerData: { module: this.module, memory } });
      // A worker that fails leaves its blocks to the others; the calling thread alone finishes every job.
      worker.on('error', (error) => {
        this.workerError ??= error;
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** The shared memory, of at least `bytes` bytes; `undefined` (and no more threaded products) when it cannot be made or grown. */
  private ensure(bytes: number): Shared | undefined {
    try {
      if (this.shared === undefined) {
        const memory = new this.api.Memory({ initial: Math.ceil(bytes / PAGE), maximum: MAX_PAGES, shared: true });
        const exports = new this.api.Instance(this.module, { env: { memory } }).exports;
        this.shared = {
          memory,
          kernels: exports as unknown as BlockKernels,
          f32: new Float32Array(memory.buffer),
          ctl: new Int32Array(memory.buffer, 0, CONTROL_BYTES / 4),
        };
      }
      const shared = this.shared;
      const have = shared.memory.buffer.byteLength;
      if (have < bytes) shared.memory.grow(Math.ceil((bytes - have) / PAGE));
      if (shared.f32.byteLength !== shared.memory.buffer.byteLength) {
        shared.f32 = new Float32Array(shared.memory.buffer);
        shared.ctl = new Int32Array(shared.memory.buffer, 0, CONTROL_BYTES / 4);
      }
      return shared;
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.release();
      return undefined;
    }
  }

  /** Stops and terminates the workers; later products run on the calling thread. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const ctl = this.shared?.ctl;
    if (ctl !== undefined) {
      Atomics.store(ctl, Ctl.stop, 1);
      Atomics.store(ctl, Ctl.generation, (this.generation + 1) & 0x7fff);
      Atomics.notify(ctl, Ctl.generation);
    }
    for (const worker of this.workers) void worker.terminate();
    this.workers = [];
  }
}

/** One term of {@link GemmThreads.sum}: `alpha · op(a) · op(b)`. */
export interface ProductTerm {
  readonly alpha: number;
  readonly a: Float32Array;
  readonly transA: boolean;
  readonly b: Float32Array;
  readonly transB: boolean;
}

type Layout = ReturnType<typeof layout>;

/** Offsets (float32 elements, 16-byte aligned) of the regions of a product's shared memory, and its size in bytes. */
function layout(m: number, n: number, k: number) {
  const kcMax = Math.ceil(k / Math.ceil(k / KC));
  const mPad = roundUp(m, MR);
  const ldc = roundUp(n, NR);
  const kBlocks = Math.ceil(k / kcMax);
  const rawA = CONTROL_BYTES / 4;
  const rawB = rawA + roundUp(m * k, 4);
  const packedA = rawB + roundUp(k * n, 4);
  const packedB = packedA + kBlocks * mPad * kcMax;
  const c = packedB + kcMax * ldc;
  const bias = c + mPad * ldc;
  return { kcMax, mPad, ldc, rawA, rawB, packedA, packedB, c, bias, bytes: (bias + ldc) * 4 };
}

/** `beta · c` into the padded copy at `f32[at…]` (rows `ldc` apart, padding rows and columns zero), as `gemmImpl` does. */
function fillC(f32: Float32Array, at: number, ldc: number, m: number, n: number, beta: number, c: Float32Array): void {
  const mPad = roundUp(m, MR);
  for (let i = 0; i < mPad; i++) {
    const row = at + i * ldc;
    if (i >= m || beta === 0) f32.fill(0, row, row + n);
    else if (beta === 1) f32.set(c.subarray(i * n, i * n + n), row);
    else for (let j = 0, src = i * n; j < n; j++) f32[row + j] = beta * c[src + j]!;
    f32.fill(0, row + n, row + ldc);
  }
}

/**
 * The threads for a backend asking for `threads` of them, or why they cannot run here (then the
 * products stay on the calling thread). `threads` below 2 asks for none. `fma`: the fused
 * multiply-add module (pass the backend's workspace's choice, so the bits are one thread's).
 */
export function createGemmThreads(threads: number, fma = false): GemmThreads | { readonly reason: string } {
  if (threads < 2) return { reason: 'one thread was asked for' };
  const api = (globalThis as { WebAssembly?: WasmThreadsApi }).WebAssembly;
  if (api === undefined) return { reason: 'no WebAssembly' };
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return { reason: 'no SharedArrayBuffer or Atomics' };
  try {
    const bytes = wasmMacroKernelBytes(MR, NR, MAX_PAGES, fma);
    if (!api.validate(bytes)) return { reason: 'WebAssembly does not accept the shared-memory SIMD module' };
    return new GemmThreads(threads, api, new api.Module(bytes), Worker as unknown as WorkerConstructor);
  } catch (e) {
    return { reason: `threads unavailable: ${e instanceof Error ? e.message : String(e)}` };
  }
}
