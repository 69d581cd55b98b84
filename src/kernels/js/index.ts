/**
 * The portable js backend: every kernel of {@link Backend} in plain TypeScript on
 * `Float32Array`s, so it runs wherever Node runs. Matrix products use the packed, register-tiled
 * {@link gemmImpl} (a WebAssembly SIMD macro-kernel emitted at run time where the engine has
 * WebAssembly, else asm.js or plain TypeScript); the other kernels are the loops in
 * `elementwise.ts`.
 *
 * Shapes are checked on every call (a few comparisons) and a mismatch throws
 * {@link ShapeMismatchError}, because a typed array silently ignores out-of-range writes.
 */
import ndarray from 'ndarray';
import { DbnError, InvalidOptionError, ShapeMismatchError } from '../../errors.js';
import type { Backend, BackendInfo, CdGradientArgs, GemmOptions, MomentumStepOptions, RbmTensors, Tensor } from '../backend.js';
import {
  addImpl,
  addRowImpl,
  axpyImpl,
  mulImpl,
  noisyReluImpl,
  reluBackwardImpl,
  reluImpl,
  rowSquaredDistanceImpl,
  scaleImpl,
  sigmoidBackwardImpl,
  softmaxRowsImpl,
  softplusRowSumImpl,
  subImpl,
  sumSquaredDiffImpl,
  sumSquaresImpl,
} from './elementwise.js';
import { GemmWorkspace, gemmImpl } from './gemm.js';
import { addRowSigmoid, bernoulli, colSum, momentumStep } from './wasm-passes.js';
import type { GemmKernelKind } from './gemm.js';
import { type GemmThreads, createGemmThreads } from './gemm-threads.js';
import { resolveFma, resolveThreads } from './threads-option.js';

/** A js-backend tensor: a `rows × cols` row-major `Float32Array` on the host. */
export class JsTensor implements Tensor {
  readonly rows: number;
  readonly cols: number;
  private values: Float32Array | undefined;

  constructor(rows: number, cols: number) {
    this.rows = rows;
    this.cols = cols;
    this.values = new Float32Array(rows * cols);
  }

  /** The `rows·cols` values, row-major (the tensor's own memory, not a copy). Throws once freed. */
  get data(): Float32Array {
    if (this.values === undefined) throw new DbnError(`A ${this.rows}x${this.cols} js tensor was used after free().`, 'EFREED');
    return this.values;
  }

  /** A `[rows, cols]` ndarray view of {@link data} (no copy), for use with ndarray-based code. */
  toNdarray(): ndarray.NdArray<Float32Array> {
    return ndarray(this.data, [this.rows, this.cols]);
  }

  /** Drops the memory; see {@link Backend.free}. */
  release(): void {
    this.values = undefined;
  }
}

/** Options of {@link createJsBackend}. */
export interface JsBackendOptions {
  /**
   * The matrix-product macro-kernel. By default the first that runs here of `'wasm-simd'`
   * (WebAssembly SIMD, float32 sums), `'asm.js'` and `'typescript'` (float64 sums, the same bits
   * as each other); see `gemm.ts` for their numerics. `'asm.js'` runs as `'typescript'` where the
   * engine forbids code generation from strings. The one running is named in `info.description`.
   */
  readonly gemmKernel?: GemmKernelKind;
  /**
   * Threads computing the large matrix products of the WebAssembly SIMD kernel (worker threads
   * on a shared WebAssembly memory, the calling thread included): an integer ≥ 1. By default the
   * `DBN_JS_THREADS` environment variable when set, else `os.availableParallelism()`. The bits
   * are the same for every count; `1`, the asm.js and TypeScript kernels, and engines without
   * `SharedArrayBuffer` or workers run on the calling thread. `info.description` says how many run.
   */
  readonly threads?: number;
  /**
   * Whether the WebAssembly SIMD kernel multiplies and adds with relaxed SIMD's fused
   * multiply-add (`f32x4.relaxed_madd`: one rounding per product-sum where the CPU has FMA, about
   * twice the products per cycle). By default the `DBN_JS_FMA` environment variable (`1` or `0`)
   * when set, else `true`. On Node 20 this enables V8's `--experimental-wasm-relaxed-simd` flag
   * for the process (relaxed SIMD is on by default in later V8s); where the engine still refuses
   * the module, the unfused kernel runs. The bits differ between the two; either gives the same
   * bits on every call and thread count on a machine. `info.description` says which runs.
   */
  readonly fma?: boolean;
}

const GEMM_KERNELS: readonly GemmKernelKind[] = ['wasm-simd', 'asm.js', 'typescript'];

/** How `info.description` names each kernel. */
const KERNEL_NAMES: Readonly<Record<GemmKernelKind, string>> = {
  'wasm-simd': 'WebAssembly SIMD',
  'asm.js': 'asm.js',
  typescript: 'typescript',
};

/**
 * Creates the portable TypeScript backend. With the default kernel it always starts.
 *
 * @throws `BackendUnavailableError` when `gemmKernel: 'wasm-simd'` is asked for and the
 *   engine has no WebAssembly (e.g. `node --jitless`) or does not accept its SIMD module.
 */
export function createJsBackend(options: JsBackendOptions = {}): Backend {
  const kernel = options.gemmKernel;
  if (kernel !== undefined && !GEMM_KERNELS.includes(kernel)) {
    throw new InvalidOptionError(
      `createJsBackend: 'gemmKernel' is ${JSON.stringify(kernel)}, expected ${GEMM_KERNELS.map((k) => `'${k}'`).join(', ')}.`,
    );
  }
  const threads = resolveThreads(options.threads, process.env['DBN_JS_THREADS']);
  const workspace = new GemmWorkspace(kernel, resolveFma(options.fma, process.env['DBN_JS_FMA']));
  // the threads run the workspace's module (fused or not): the same bits as one thread
  const pool = workspace.kernel === 'wasm-simd' ? createGemmThreads(threads, workspace.fma) : undefined;
  return new JsBackend(workspace, pool !== undefined && 'gemm' in pool ? pool : undefined);
}

class JsBackend implements Backend {
  readonly info: BackendInfo;
  private readonly gemmWorkspace: GemmWorkspace;
  private readonly gemmThreads: GemmThreads | undefined;

  constructor(workspace: GemmWorkspace, threads: GemmThreads | undefined) {
    this.gemmWorkspace = workspace;
    this.gemmThreads = threads;
    const count = threads === undefined ? '' : `, ${threads.threads} threads`;
    const fused = workspace.fma ? ' FMA' : '';
    this.info = { name: 'js', description: `js (portable TypeScript, ${KERNEL_NAMES[workspace.kernel]}${fused} gemm${count})` };
  }

  private colSumScratch = new Float64Array(0);

  ready(): Promise<void> {
    return Promise.resolve();
  }

  alloc(rows: number, cols: number): Tensor {
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) {
      throw new ShapeMismatchError(`js.alloc: rows and cols must be non-negative integers, got ${rows}x${cols}.`);
    }
    return new JsTensor(rows, cols);
  }

  free(t: Tensor): void {
    own('free', 't', t).release();
  }

  write(dst: Tensor, src: Float32Array): void {
    const d = own('write', 'dst', dst);
    if (src.length !== d.rows * d.cols) {
      throw new ShapeMismatchError(
        `js.write: 'src' holds ${src.length} values, expected ${d.rows * d.cols} for a ${d.rows}x${d.cols} tensor.`,
      );
    }
    d.data.set(src);
  }

  read(src: Tensor, dst: Float32Array): void {
    const s = own('read', 'src', src);
    if (dst.length !== s.rows * s.cols) {
      throw new ShapeMismatchError(
        `js.read: 'dst' holds ${dst.length} values, expected ${s.rows * s.cols} for a ${s.rows}x${s.cols} tensor.`,
      );
    }
    dst.set(s.data);
  }

  copy(out: Tensor, src: Tensor): void {
    const [o, s] = same('copy', out, ['src', src]);
    o.set(s);
  }

  fill(out: Tensor, value: number): void {
    own('fill', 'out', out).data.fill(value);
  }

  gemm(out: Tensor, a: Tensor, b: Tensor, opts: GemmOptions = {}): void {
    product(
      this.gemmWorkspace,
      this.gemmThreads,
      'gemm',
      out,
      a,
      b,
      opts.transA ?? false,
      opts.transB ?? false,
      opts.alpha ?? 1,
      opts.beta ?? 0,
      undefined,
    );
  }

  linearSigmoid(out: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW = false): void {
    const o = own('linearSigmoid', 'out', out);
    product(this.gemmWorkspace, this.gemmThreads, 'linearSigmoid', out, x, w, false, transW, 1, 0, row('linearSigmoid', bias, o.cols));
  }

  addRowSigmoid(out: Tensor, x: Tensor, bias: Tensor): void {
    const [o, xs] = same('addRowSigmoid', out, ['x', x]);
    const b = row('addRowSigmoid', bias, out.cols);
    if (o !== xs) o.set(xs);
    addRowSigmoid(this.gemmWorkspace, o, b, out.rows, out.cols);
  }

  addRow(out: Tensor, x: Tensor, bias: Tensor): void {
    const [o, xs] = same('addRow', out, ['x', x]);
    addRowImpl(o, xs, row('addRow', bias, out.cols), out.cols);
  }

  bernoulli(out: Tensor, p: Tensor, u: Tensor): void {
    const [o, ps, us] = same('bernoulli', out, ['p', p], ['u', u]);
    bernoulli(this.gemmWorkspace, o, ps, us);
  }

  relu(out: Tensor, x: Tensor): void {
    const [o, xs] = same('relu', out, ['x', x]);
    reluImpl(o, xs);
  }

  noisyRelu(out: Tensor, x: Tensor, noise: Tensor): void {
    const [o, xs, ns] = same('noisyRelu', out, ['x', x], ['noise', noise]);
    noisyReluImpl(o, xs, ns);
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    const [o, as, bs] = same('add', out, ['a', a], ['b', b]);
    addImpl(o, as, bs);
  }

  sub(out: Tensor, a: Tensor, b: Tensor): void {
    const [o, as, bs] = same('sub', out, ['a', a], ['b', b]);
    subImpl(o, as, bs);
  }

  mul(out: Tensor, a: Tensor, b: Tensor): void {
    const [o, as, bs] = same('mul', out, ['a', a], ['b', b]);
    mulImpl(o, as, bs);
  }

  scale(out: Tensor, x: Tensor, alpha: number): void {
    const [o, xs] = same('scale', out, ['x', x]);
    scaleImpl(o, xs, alpha);
  }

  axpy(out: Tensor, alpha: number, x: Tensor): void {
    const [o, xs] = same('axpy', out, ['x', x]);
    axpyImpl(o, alpha, xs);
  }

  colSum(out: Tensor, x: Tensor, alpha: number, beta: number): void {
    const xs = own('colSum', 'x', x);
    const o = row('colSum', out, xs.cols, 'out');
    if (this.colSumScratch.length < xs.cols) this.colSumScratch = new Float64Array(xs.cols);
    colSum(this.gemmWorkspace, o, xs.data, xs.cols, alpha, beta, this.colSumScratch);
  }

  /**
   * The separate calls of {@link Backend.cdGradient}, their bits; on the threads, the two products
   * in one job whose gradient stays in the shared memory between them (when both have as many rows).
   */
  cdGradient(args: CdGradientArgs): void {
    const { grad, v0, h0, vn, hn, update, positiveScale: pos, negativeScale: neg } = args;
    const nv = grad.visibleBias.cols;
    const nh = grad.hiddenBias.cols;
    const data = (t: Tensor, rows: number, cols: number, name: string): Float32Array => {
      const o = own('cdGradient', name, t);
      if (o.rows !== rows || o.cols !== cols || rows < 1) {
        throw new ShapeMismatchError(`js.cdGradient: '${name}' is ${o.rows}x${o.cols}, expected ${rows}x${cols} (at least one row).`);
      }
      return o.data;
    };
    const parameters = (p: RbmTensors, what: string): [Float32Array, Float32Array, Float32Array] => [
      data(p.weights, nv, nh, `${what}.weights`),
      data(p.visibleBias, 1, nv, `${what}.visibleBias`),
      data(p.hiddenBias, 1, nh, `${what}.hiddenBias`),
    ];
    const [gW, gbv, gbh] = parameters(grad, 'grad');
    const [x0, y0, xn, yn] = [
      data(v0, v0.rows, nv, 'v0'),
      data(h0, v0.rows, nh, 'h0'),
      data(vn, vn.rows, nv, 'vn'),
      data(hn, vn.rows, nh, 'hn'),
    ];
    const params =
      update === undefined
        ? undefined
        : ([parameters(update.params, 'update.params'), parameters(update.velocity, 'update.velocity')] as const);
    if ([v0, h0, vn, hn].includes(grad.weights))
      throw new ShapeMismatchError("js.cdGradient: 'grad.weights' must not be one of the statistics.");
    const [n, m, ws, threads] = [v0.rows, vn.rows, this.gemmWorkspace, this.gemmThreads];
    const terms = [
      { alpha: pos, a: x0, transA: true, b: y0, transB: false },
      { alpha: neg, a: xn, transA: true, b: yn, transB: false },
    ];
    if (!(n === m && pos !== 0 && neg !== 0 && threads?.takes(nv, nh, n) === true && threads.sum(nv, nh, n, terms, 0, gW))) {
      product(ws, threads, 'cdGradient', grad.weights, v0, h0, true, false, pos, 0, undefined);
      product(ws, threads, 'cdGradient', grad.weights, vn, hn, true, false, neg, 1, undefined);
    }
    if (this.colSumScratch.length < Math.max(nv, nh)) this.colSumScratch = new Float64Array(Math.max(nv, nh));
    colSum(ws, gbv, x0, nv, pos, 0, this.colSumScratch);
    colSum(ws, gbv, xn, nv, neg, 1, this.colSumScratch);
    colSum(ws, gbh, y0, nh, pos, 0, this.colSumScratch);
    colSum(ws, gbh, yn, nh, neg, 1, this.colSumScratch);
    if (update === undefined || params === undefined) return;
    const [[W, bv, bh], [velW, velBv, velBh]] = params;
    const { learningRate: lr, momentum: mu, weightDecay: wd, gradScale: gs } = update.options;
    momentumStep(ws, W, velW, gW, lr, mu, wd, gs);
    momentumStep(ws, bv, velBv, gbv, lr, mu, 0, gs);
    momentumStep(ws, bh, velBh, gbh, lr, mu, 0, gs);
  }

  momentumStep(param: Tensor, velocity: Tensor, grad: Tensor, opts: MomentumStepOptions): void {
    const [p, v, g] = same('momentumStep', param, ['velocity', velocity], ['grad', grad]);
    momentumStep(this.gemmWorkspace, p, v, g, opts.learningRate, opts.momentum, opts.weightDecay, opts.gradScale);
  }

  softplusRowSum(out: Tensor, x: Tensor): void {
    const xs = own('softplusRowSum', 'x', x);
    softplusRowSumImpl(column('softplusRowSum', out, xs.rows), xs.data, xs.cols);
  }

  rowSquaredDistance(out: Tensor, x: Tensor, bias: Tensor): void {
    const xs = own('rowSquaredDistance', 'x', x);
    rowSquaredDistanceImpl(column('rowSquaredDistance', out, xs.rows), xs.data, row('rowSquaredDistance', bias, xs.cols), xs.cols);
  }

  softmaxRows(out: Tensor, x: Tensor): void {
    const [o, xs] = same('softmaxRows', out, ['x', x]);
    softmaxRowsImpl(o, xs, out.cols);
  }

  sigmoidBackward(out: Tensor, delta: Tensor, act: Tensor): void {
    const [o, d, y] = same('sigmoidBackward', out, ['delta', delta], ['act', act]);
    sigmoidBackwardImpl(o, d, y);
  }

  reluBackward(out: Tensor, delta: Tensor, act: Tensor): void {
    const [o, d, y] = same('reluBackward', out, ['delta', delta], ['act', act]);
    reluBackwardImpl(o, d, y);
  }

  sumSquaredDiff(a: Tensor, b: Tensor): number {
    const [as, bs] = same('sumSquaredDiff', a, ['b', b], undefined, 'a');
    return sumSquaredDiffImpl(as, bs);
  }

  sumSquares(x: Tensor): number {
    return sumSquaresImpl(own('sumSquares', 'x', x).data);
  }

  dispose(): void {
    this.gemmWorkspace.release();
    this.gemmThreads?.release();
    this.colSumScratch = new Float64Array(0);
  }

  /** Calls {@link dispose}: `using` releases the object at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * `out = alpha · op(a) · op(b) + beta · out`, then `out = σ(out + bias)` when `bias` is given: the
 * body of `gemm` and `linearSigmoid` (a function, not a method, so that a wrapper timing the
 * backend's methods counts each product once).
 */
function product(
  workspace: GemmWorkspace,
  threads: GemmThreads | undefined,
  op: string,
  out: Tensor,
  a: Tensor,
  b: Tensor,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
  bias: Float32Array | undefined,
): void {
  const [aName, bName] = op === 'gemm' ? ['a', 'b'] : ['x', 'w'];
  const o = own(op, 'out', out);
  const ta = own(op, aName, a);
  const tb = own(op, bName, b);
  const m = transA ? ta.cols : ta.rows;
  const k = transA ? ta.rows : ta.cols;
  const kb = transB ? tb.cols : tb.rows;
  const n = transB ? tb.rows : tb.cols;
  if (k !== kb || o.rows !== m || o.cols !== n) {
    const opA = `${transA ? `${aName}ᵀ` : aName} (${m}x${k})`;
    const opB = `${transB ? `${bName}ᵀ` : bName} (${kb}x${n})`;
    throw new ShapeMismatchError(`js.${op}: cannot compute ${opA} · ${opB} into a ${o.rows}x${o.cols} 'out'.`);
  }
  if (o === ta || o === tb) throw new ShapeMismatchError(`js.${op}: 'out' must not be the same tensor as '${aName}' or '${bName}'.`);
  if (threads !== undefined && alpha !== 0 && threads.takes(m, n, k)) {
    if (threads.gemm(m, n, k, alpha, ta.data, transA, tb.data, transB, beta, o.data, bias)) return;
  }
  gemmImpl(workspace, m, n, k, alpha, ta.data, transA, tb.data, transB, beta, o.data, bias);
}

/** `t` as a {@link JsTensor}, or a typed error naming the operation and argument. */
function own(op: string, arg: string, t: Tensor): JsTensor {
  if (!(t instanceof JsTensor)) {
    throw new DbnError(`js.${op}: tensor '${arg}' was not allocated by the js backend.`, 'ETENSOR');
  }
  return t;
}

/** The data of `first` and of each other tensor, checked to have the shape of `first`. */
function same(
  op: string,
  first: Tensor,
  second: readonly [string, Tensor],
  third?: readonly [string, Tensor],
  firstName = 'out',
): [Float32Array, Float32Array, Float32Array] {
  const f = own(op, firstName, first);
  const s = sameShape(op, f, firstName, second);
  const t = third === undefined ? s : sameShape(op, f, firstName, third);
  return [f.data, s, t];
}

function sameShape(op: string, f: JsTensor, firstName: string, [name, t]: readonly [string, Tensor]): Float32Array {
  const o = own(op, name, t);
  if (o.rows !== f.rows || o.cols !== f.cols) {
    throw new ShapeMismatchError(`js.${op}: '${name}' is ${o.rows}x${o.cols}, expected ${f.rows}x${f.cols} like '${firstName}'.`);
  }
  return o.data;
}

/** The data of a `1 × cols` row vector. */
function row(op: string, t: Tensor, cols: number, name = 'bias'): Float32Array {
  const r = own(op, name, t);
  if (r.rows !== 1 || r.cols !== cols) throw new ShapeMismatchError(`js.${op}: '${name}' is ${r.rows}x${r.cols}, expected 1x${cols}.`);
  return r.data;
}

/** The data of a `rows × 1` column vector named `out`. */
function column(op: string, t: Tensor, rows: number): Float32Array {
  const c = own(op, 'out', t);
  if (c.rows !== rows || c.cols !== 1) throw new ShapeMismatchError(`js.${op}: 'out' is ${c.rows}x${c.cols}, expected ${rows}x1.`);
  return c.data;
}
