/**
 * The gpu backend: every {@link Backend} kernel as a gpu.js kernel (bodies in `kernels.ts`),
 * single precision everywhere, tensors kept on the device between kernels and read back only
 * by {@link Backend.read} and the scalar reductions.
 *
 * gpu.js falls back silently (a missing GL context becomes WebAssembly, a kernel it cannot
 * compile becomes JavaScript); this backend does not: it starts the mode asked for or throws
 * {@link BackendUnavailableError} saying why, checks after building each kernel that it runs on
 * the reported kernel class, and reports the mode that actually runs in `info.mode` and
 * `info.description`. Nothing is loaded (not gpu.js, not `gl`, not `webgpu`) until
 * {@link createGpuBackend} is called. See `README.md` here for what each mode needs.
 */
import { BackendUnavailableError, DbnError, ShapeMismatchError } from '../../errors.js';
import { MissingPackageError } from '../../optional.js';
import { validateOptions } from '../../validate.js';
import type { Backend, BackendInfo, GemmOptions, MomentumStepOptions, Tensor } from '../backend.js';
import type { GpuEngine, Step, TensorRef } from './executor.js';
import type { KernelName } from './kernels.js';
import { quietDriverLogs } from './drivers.js';
import { loadGpuJs, startSync, startWebGpu } from './modes.js';

/**
 * A gpu.js mode: `'auto'` picks the fastest that really runs (see the README), `'gpu'` is
 * gpu.js's GL chain (headless-gl in Node) and never a CPU fallback, the others are gpu.js
 * modes of the same name.
 */
export type GpuMode = 'auto' | 'gpu' | 'headlessgl' | 'webgpu' | 'webasm' | 'cpu';

/** The modes {@link createGpuBackend} accepts. */
export const gpuModes: readonly GpuMode[] = ['auto', 'gpu', 'headlessgl', 'webgpu', 'webasm', 'cpu'];

/** Options of {@link createGpuBackend}. */
export interface GpuBackendOptions {
  /** Default `'auto'`. */
  readonly mode?: GpuMode;
  /**
   * Let the GPU drivers (Mesa, EGL, libwayland) print their own messages on stderr. Default
   * `false`: the variables that silence them are set where unset (`src/kernels/gpu/drivers.ts`);
   * the CLI passes `--debug` here.
   */
  readonly driverLogs?: boolean;
}

/** Columns summed per partial sum in the scalar reductions (the partials are added in float64 on the host). */
const REDUCE_CHUNK = 32;

class GpuTensor implements Tensor {
  freed = false;

  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly id: number,
    readonly owner: GpuBackend,
  ) {}
}

const ref = (t: GpuTensor): TensorRef => ({ t: t.id });

class GpuBackend implements Backend {
  readonly info: BackendInfo;
  readonly #engine: GpuEngine;
  #nextId = 1;
  #disposed = false;
  readonly #scratch = new Map<string, GpuTensor>();
  #host = new Float32Array(0);

  constructor(engine: GpuEngine, description: string) {
    this.#engine = engine;
    this.info = { name: 'gpu', mode: engine.mode, description };
  }

  /** The gpu.js kernel classes of every kernel built so far (for tests that check nothing fell back). */
  kernelClasses(): string[] {
    return this.#engine.kernelClasses();
  }

  #live(): GpuEngine {
    if (this.#disposed) {
      throw new DbnError('The gpu backend was disposed; create a new one with createGpuBackend().', 'EDISPOSED');
    }
    return this.#engine;
  }

  #own(t: Tensor, op: string, arg: string): GpuTensor {
    if (!(t instanceof GpuTensor) || t.owner !== this) {
      throw new DbnError(`Argument '${arg}' passed to 'gpu.${op}' must be a tensor allocated by this gpu backend.`, 'EFOREIGNTENSOR');
    }
    if (t.freed) throw new DbnError(`Argument '${arg}' passed to 'gpu.${op}' was freed.`, 'EFREED');
    return t;
  }

  #same(op: string, out: GpuTensor, ...args: [GpuTensor, string][]): void {
    for (const [t, name] of args) {
      if (t.rows !== out.rows || t.cols !== out.cols) {
        throw new ShapeMismatchError(
          `Argument '${name}' passed to 'gpu.${op}' must be ${out.rows} × ${out.cols} like 'out', got ${t.rows} × ${t.cols}.`,
        );
      }
    }
  }

  #shape(op: string, arg: string, t: GpuTensor, rows: number, cols: number): void {
    if (t.rows !== rows || t.cols !== cols) {
      throw new ShapeMismatchError(`Argument '${arg}' passed to 'gpu.${op}' must be ${rows} × ${cols}, got ${t.rows} × ${t.cols}.`);
    }
  }

  #newTensor(rows: number, cols: number): GpuTensor {
    const t = new GpuTensor(rows, cols, this.#nextId++, this);
    this.#engine.alloc(t.id, rows, cols);
    return t;
  }

  #scratchTensor(slot: string, rows: number, cols: number): GpuTensor {
    const key = `${slot}:${rows}x${cols}`;
    let t = this.#scratch.get(key);
    if (t === undefined) {
      t = this.#newTensor(rows, cols);
      this.#scratch.set(key, t);
    }
    return t;
  }

  #hostBuffer(n: number): Float32Array {
    if (this.#host.length < n) this.#host = new Float32Array(n);
    return this.#host.subarray(0, n);
  }

  ready(): Promise<void> {
    this.#live();
    return Promise.resolve();
  }

  alloc(rows: number, cols: number): Tensor {
    this.#live();
    if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
      throw new ShapeMismatchError(
        `Arguments 'rows' and 'cols' passed to 'gpu.alloc' must be non-negative integers, got ${rows} × ${cols}.`,
      );
    }
    return this.#newTensor(rows, cols);
  }

  free(t: Tensor): void {
    const e = this.#live();
    const tensor = this.#own(t, 'free', 't');
    tensor.freed = true;
    e.free(tensor.id);
  }

  write(dst: Tensor, src: Float32Array): void {
    const e = this.#live();
    const t = this.#own(dst, 'write', 'dst');
    const n = t.rows * t.cols;
    if (!(src instanceof Float32Array) || src.length !== n) {
      throw new ShapeMismatchError(
        `Argument 'src' passed to 'gpu.write' must be a Float32Array of ${n} elements (${t.rows} × ${t.cols}), got ${describeArray(src)}.`,
      );
    }
    e.write(t.id, src);
  }

  read(src: Tensor, dst: Float32Array): void {
    const e = this.#live();
    const t = this.#own(src, 'read', 'src');
    const n = t.rows * t.cols;
    if (!(dst instanceof Float32Array) || dst.length !== n) {
      throw new ShapeMismatchError(
        `Argument 'dst' passed to 'gpu.read' must be a Float32Array of ${n} elements (${t.rows} × ${t.cols}), got ${describeArray(dst)}.`,
      );
    }
    e.read(t.id, dst);
  }

  copy(out: Tensor, src: Tensor): void {
    const e = this.#live();
    const o = this.#own(out, 'copy', 'out');
    const s = this.#own(src, 'copy', 'src');
    this.#same('copy', o, [s, 'src']);
    if (o !== s) e.run([{ kernel: 'copy', out: o.id, args: [ref(s)] }]);
  }

  fill(out: Tensor, value: number): void {
    const e = this.#live();
    const o = this.#own(out, 'fill', 'out');
    e.run([{ kernel: 'fill', out: o.id, args: [value] }]);
  }

  gemm(out: Tensor, a: Tensor, b: Tensor, opts?: GemmOptions): void {
    const e = this.#live();
    const o = this.#own(out, 'gemm', 'out');
    const ta = this.#own(a, 'gemm', 'a');
    const tb = this.#own(b, 'gemm', 'b');
    const transA = opts?.transA ?? false;
    const transB = opts?.transB ?? false;
    const m = transA ? ta.cols : ta.rows;
    const k = transA ? ta.rows : ta.cols;
    const kb = transB ? tb.cols : tb.rows;
    const n = transB ? tb.rows : tb.cols;
    if (k !== kb || o.rows !== m || o.cols !== n) {
      throw new ShapeMismatchError(`'gpu.gemm' cannot put op(a) ${m} × ${k} times op(b) ${kb} × ${n} into out ${o.rows} × ${o.cols}.`);
    }
    if (o === ta || o === tb) {
      throw new DbnError("'gpu.gemm' cannot write into one of its inputs: 'out' must not alias 'a' or 'b'.", 'EALIAS');
    }
    const alpha = opts?.alpha ?? 1;
    const beta = opts?.beta ?? 0;
    if (k === 0) {
      e.run([beta === 0 ? { kernel: 'fill', out: o.id, args: [0] } : { kernel: 'scale', out: o.id, args: [ref(o), beta] }]);
      return;
    }
    const kernel: KernelName = transA ? (transB ? 'gemmTT' : 'gemmTN') : transB ? 'gemmNT' : 'gemmNN';
    e.run([{ kernel, out: o.id, args: [ref(ta), ref(tb), ref(o), alpha, beta], constants: { k } }]);
  }

  linearSigmoid(out: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW = false): void {
    this.#linear('linearSigmoid', out, x, w, bias, transW, undefined);
  }

  linearSigmoidBernoulli(out: Tensor, x: Tensor, w: Tensor, bias: Tensor, u: Tensor, transW = false): void {
    this.#linear('linearSigmoidBernoulli', out, x, w, bias, transW, u);
  }

  #linear(
    op: 'linearSigmoid' | 'linearSigmoidBernoulli',
    out: Tensor,
    x: Tensor,
    w: Tensor,
    bias: Tensor,
    transW: boolean,
    u: Tensor | undefined,
  ): void {
    const e = this.#live();
    const o = this.#own(out, op, 'out');
    const tx = this.#own(x, op, 'x');
    const tw = this.#own(w, op, 'w');
    const tb = this.#own(bias, op, 'bias');
    const k = tx.cols;
    this.#shape(op, 'w', tw, transW ? o.cols : k, transW ? k : o.cols);
    this.#shape(op, 'x', tx, o.rows, k);
    this.#shape(op, 'bias', tb, 1, o.cols);
    if (o === tx || o === tw) {
      throw new DbnError(`'gpu.${op}' cannot write into one of its inputs: 'out' must not alias 'x' or 'w'.`, 'EALIAS');
    }
    const args: (TensorRef | number)[] = [ref(tx), ref(tw), ref(tb)];
    if (u !== undefined) {
      const tu = this.#own(u, op, 'u');
      this.#same(op, o, [tu, 'u']);
      args.push(ref(tu));
    }
    if (k === 0) {
      // σ(bias) broadcast, then the sample when asked for
      const steps: Step[] = [
        { kernel: 'fill', out: o.id, args: [0] },
        { kernel: 'addRowSigmoid', out: o.id, args: [ref(o), ref(tb)] },
      ];
      if (u !== undefined) steps.push({ kernel: 'bernoulli', out: o.id, args: [ref(o), args[3] as TensorRef] });
      e.run(steps);
      return;
    }
    if (!e.fuses) {
      const steps: Step[] = [
        { kernel: transW ? 'gemmNT' : 'gemmNN', out: o.id, args: [ref(tx), ref(tw), ref(o), 1, 0], constants: { k } },
        { kernel: 'addRowSigmoid', out: o.id, args: [ref(o), ref(tb)] },
      ];
      if (u !== undefined) steps.push({ kernel: 'bernoulli', out: o.id, args: [ref(o), args[3] as TensorRef] });
      e.run(steps);
      return;
    }
    const kernel: KernelName =
      op === 'linearSigmoid'
        ? transW
          ? 'linearSigmoidT'
          : 'linearSigmoid'
        : transW
          ? 'linearSigmoidBernoulliT'
          : 'linearSigmoidBernoulli';
    e.run([{ kernel, out: o.id, args, constants: { k } }]);
  }

  #rowOp(op: string, kernel: KernelName, out: Tensor, x: Tensor, bias: Tensor): void {
    const e = this.#live();
    const o = this.#own(out, op, 'out');
    const tx = this.#own(x, op, 'x');
    const tb = this.#own(bias, op, 'bias');
    this.#same(op, o, [tx, 'x']);
    this.#shape(op, 'bias', tb, 1, o.cols);
    e.run([{ kernel, out: o.id, args: [ref(tx), ref(tb)] }]);
  }

  #elementwise(op: string, kernel: KernelName, out: Tensor, inputs: [Tensor, string][], scalars: number[] = []): void {
    const e = this.#live();
    const o = this.#own(out, op, 'out');
    const ts = inputs.map(([t, name]): [GpuTensor, string] => [this.#own(t, op, name), name]);
    this.#same(op, o, ...ts);
    e.run([{ kernel, out: o.id, args: [...ts.map(([t]) => ref(t)), ...scalars] }]);
  }

  addRowSigmoid(out: Tensor, x: Tensor, bias: Tensor): void {
    this.#rowOp('addRowSigmoid', 'addRowSigmoid', out, x, bias);
  }

  addRow(out: Tensor, x: Tensor, bias: Tensor): void {
    this.#rowOp('addRow', 'addRow', out, x, bias);
  }

  bernoulli(out: Tensor, p: Tensor, u: Tensor): void {
    this.#elementwise('bernoulli', 'bernoulli', out, [
      [p, 'p'],
      [u, 'u'],
    ]);
  }

  relu(out: Tensor, x: Tensor): void {
    this.#elementwise('relu', 'relu', out, [[x, 'x']]);
  }

  noisyRelu(out: Tensor, x: Tensor, noise: Tensor): void {
    this.#elementwise('noisyRelu', 'noisyRelu', out, [
      [x, 'x'],
      [noise, 'noise'],
    ]);
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    this.#elementwise('add', 'add', out, [
      [a, 'a'],
      [b, 'b'],
    ]);
  }

  sub(out: Tensor, a: Tensor, b: Tensor): void {
    this.#elementwise('sub', 'sub', out, [
      [a, 'a'],
      [b, 'b'],
    ]);
  }

  mul(out: Tensor, a: Tensor, b: Tensor): void {
    this.#elementwise('mul', 'mul', out, [
      [a, 'a'],
      [b, 'b'],
    ]);
  }

  scale(out: Tensor, x: Tensor, alpha: number): void {
    this.#elementwise('scale', 'scale', out, [[x, 'x']], [alpha]);
  }

  axpy(out: Tensor, alpha: number, x: Tensor): void {
    this.#elementwise(
      'axpy',
      'axpy',
      out,
      [
        [out, 'out'],
        [x, 'x'],
      ],
      [alpha],
    );
  }

  sigmoidBackward(out: Tensor, delta: Tensor, act: Tensor): void {
    this.#elementwise('sigmoidBackward', 'sigmoidBackward', out, [
      [delta, 'delta'],
      [act, 'act'],
    ]);
  }

  reluBackward(out: Tensor, delta: Tensor, act: Tensor): void {
    this.#elementwise('reluBackward', 'reluBackward', out, [
      [delta, 'delta'],
      [act, 'act'],
    ]);
  }

  colSum(out: Tensor, x: Tensor, alpha: number, beta: number): void {
    const e = this.#live();
    const o = this.#own(out, 'colSum', 'out');
    const tx = this.#own(x, 'colSum', 'x');
    this.#shape('colSum', 'out', o, 1, tx.cols);
    if (tx.rows === 0) {
      e.run([beta === 0 ? { kernel: 'fill', out: o.id, args: [0] } : { kernel: 'scale', out: o.id, args: [ref(o), beta] }]);
      return;
    }
    e.run([{ kernel: 'colSum', out: o.id, args: [ref(tx), ref(o), alpha, beta], constants: { rows: tx.rows } }]);
  }

  momentumStep(param: Tensor, velocity: Tensor, grad: Tensor, opts: MomentumStepOptions): void {
    const e = this.#live();
    const p = this.#own(param, 'momentumStep', 'param');
    const v = this.#own(velocity, 'momentumStep', 'velocity');
    const g = this.#own(grad, 'momentumStep', 'grad');
    this.#same('momentumStep', p, [v, 'velocity'], [g, 'grad']);
    e.run([
      {
        kernel: 'momentumVelocity',
        out: v.id,
        args: [ref(p), ref(v), ref(g), opts.learningRate, opts.momentum, opts.weightDecay, opts.gradScale],
      },
      { kernel: 'add', out: p.id, args: [ref(p), ref(v)] },
    ]);
  }

  softplusRowSum(out: Tensor, x: Tensor): void {
    const e = this.#live();
    const o = this.#own(out, 'softplusRowSum', 'out');
    const tx = this.#own(x, 'softplusRowSum', 'x');
    this.#shape('softplusRowSum', 'out', o, tx.rows, 1);
    if (tx.cols === 0) e.run([{ kernel: 'fill', out: o.id, args: [0] }]);
    else e.run([{ kernel: 'softplusRowSum', out: o.id, args: [ref(tx)], constants: { cols: tx.cols } }]);
  }

  rowSquaredDistance(out: Tensor, x: Tensor, bias: Tensor): void {
    const e = this.#live();
    const o = this.#own(out, 'rowSquaredDistance', 'out');
    const tx = this.#own(x, 'rowSquaredDistance', 'x');
    const tb = this.#own(bias, 'rowSquaredDistance', 'bias');
    this.#shape('rowSquaredDistance', 'out', o, tx.rows, 1);
    this.#shape('rowSquaredDistance', 'bias', tb, 1, tx.cols);
    if (tx.cols === 0) e.run([{ kernel: 'fill', out: o.id, args: [0] }]);
    else e.run([{ kernel: 'rowSquaredDistance', out: o.id, args: [ref(tx), ref(tb)], constants: { cols: tx.cols } }]);
  }

  softmaxRows(out: Tensor, x: Tensor): void {
    const e = this.#live();
    const o = this.#own(out, 'softmaxRows', 'out');
    const tx = this.#own(x, 'softmaxRows', 'x');
    this.#same('softmaxRows', o, [tx, 'x']);
    if (o.rows * o.cols === 0) return;
    const max = this.#scratchTensor('rowMax', o.rows, 1);
    const sum = this.#scratchTensor('rowSum', o.rows, 1);
    const cols = { cols: tx.cols };
    e.run([
      { kernel: 'rowMax', out: max.id, args: [ref(tx)], constants: cols },
      { kernel: 'rowSumExp', out: sum.id, args: [ref(tx), ref(max)], constants: cols },
      { kernel: 'softmaxNormalize', out: o.id, args: [ref(tx), ref(max), ref(sum)] },
    ]);
  }

  sumSquaredDiff(a: Tensor, b: Tensor): number {
    this.#live();
    const ta = this.#own(a, 'sumSquaredDiff', 'a');
    const tb = this.#own(b, 'sumSquaredDiff', 'b');
    this.#same('sumSquaredDiff', ta, [tb, 'b']);
    return this.#reduce('sumSquaredDiffPartial', ta, [ref(ta), ref(tb)]);
  }

  sumSquares(x: Tensor): number {
    this.#live();
    const tx = this.#own(x, 'sumSquares', 'x');
    return this.#reduce('sumSquaresPartial', tx, [ref(tx)]);
  }

  /** Partial sums over column chunks on the device, the rest in float64 on the host. */
  #reduce(kernel: KernelName, x: GpuTensor, args: TensorRef[]): number {
    if (x.rows * x.cols === 0) return 0;
    const chunks = Math.ceil(x.cols / REDUCE_CHUNK);
    const partial = this.#scratchTensor('partial', x.rows, chunks);
    this.#engine.run([{ kernel, out: partial.id, args, constants: { chunk: REDUCE_CHUNK, cols: x.cols } }]);
    const host = this.#hostBuffer(x.rows * chunks);
    this.#engine.read(partial.id, host);
    let s = 0;
    for (let i = 0; i < host.length; i++) s += host[i]!;
    return s;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#scratch.clear();
    this.#engine.dispose();
  }

  /** Calls {@link dispose}: `using` releases the object at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function describeArray(a: unknown): string {
  if (a instanceof Float32Array) return `${a.length} elements`;
  return a === null ? 'null' : typeof a === 'object' ? (a.constructor?.name ?? 'an object') : typeof a;
}

/**
 * Creates the gpu.js backend in the mode asked for (default `'auto'`).
 *
 * - `'cpu'`, `'webasm'`, `'headlessgl'`, `'webgpu'`: exactly that gpu.js mode, or
 *   {@link BackendUnavailableError} saying why it cannot start here.
 * - `'gpu'`: gpu.js's GPU mode in Node, i.e. headless-gl; never gpu.js's silent CPU fallback.
 * - `'auto'`: a GPU when one is found (headless-gl, then WebGPU, each only on a hardware
 *   driver), else `webasm` (`'gpu (webasm — no GPU found; CPU fallback: …)'`), else `cpu`.
 *
 * `info.mode` is the mode that runs; `info.description` says on what.
 *
 * @example
 * const backend = createGpuBackend({ mode: 'webasm' });
 * console.log(backend.info.description); // "gpu (webasm — gpu.js WebAssembly SIMD kernels on the CPU: no GPU)"
 */
export function createGpuBackend(opts: GpuBackendOptions = {}): Backend {
  validateOptions('createGpuBackend', { mode: { kind: 'enum', values: gpuModes }, driverLogs: { kind: 'boolean' } }, opts);
  const mode = opts.mode ?? 'auto';
  if (opts.driverLogs !== true) quietDriverLogs();
  switch (mode) {
    case 'cpu':
    case 'webasm':
    case 'headlessgl': {
      const e = startSync(mode, mode);
      return new GpuBackend(e, `gpu (${e.detail})`);
    }
    case 'gpu': {
      const e = startSync('headlessgl', 'gpu');
      return new GpuBackend(e, `gpu (${e.detail})`);
    }
    case 'webgpu': {
      loadGpuJs();
      const e = startWebGpu();
      return new GpuBackend(e, `gpu (${e.detail})`);
    }
    case 'auto':
      return createAuto();
  }
}

function createAuto(): Backend {
  loadGpuJs();
  const why: string[] = [];
  for (const start of [() => startSync('headlessgl', 'auto'), startWebGpu]) {
    let e: GpuEngine;
    try {
      e = start();
    } catch (err) {
      if (err instanceof MissingPackageError) {
        why.push(err.message);
        continue;
      }
      if (!(err instanceof BackendUnavailableError)) throw err;
      why.push(err.reason);
      continue;
    }
    if (e.hardware) return new GpuBackend(e, `gpu (${e.detail})`);
    why.push(`${e.mode} runs only on ${e.device}`);
    e.dispose();
  }
  for (const mode of ['webasm', 'cpu'] as const) {
    try {
      const e = startSync(mode, 'auto');
      return new GpuBackend(e, `gpu (${mode} — no GPU found; CPU fallback. ${why.join('; ')})`);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError) || mode === 'cpu') throw err;
      why.push(err.reason);
    }
  }
  throw new BackendUnavailableError('gpu', why.join('; '));
}

/** The gpu.js kernel classes a gpu backend's kernels ran on so far (tests use it to check nothing fell back); `[]` for other backends. */
export function gpuKernelClasses(backend: Backend): string[] {
  return backend instanceof GpuBackend ? backend.kernelClasses() : [];
}
