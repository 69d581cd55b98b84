/**
 * The native backend: an N-API addon (`dbn_native.cc`) that sends matrix products to OpenBLAS
 * `cblas_sgemm` and runs every other kernel as a fused C++ loop over the tensors' memory.
 * Products big enough are cut into column (or row) blocks over the addon's own threads, one
 * single-threaded sgemm each (OpenBLAS 0.3.21's threading is slower on 2 threads than on 1 for
 * CD-1's products); the thread count is OpenBLAS's (`OPENBLAS_NUM_THREADS`, else the CPUs).
 * A product whose left factor is a 0/1 matrix with at most a quarter ones (binary data: CD's `v·W`
 * and `vᵀ·h`) is instead the sum of the rows of the right factor that the ones pick
 * (`binary_rows.cc`); its zeros contribute nothing, even against an infinite or NaN entry.
 *
 * The addon is compiled for a baseline x86-64 with AVX2 and AVX-512 clones of its hot loops chosen
 * at load time, and links the system's `libopenblas.so.0`. It comes from one of two places,
 * looked at in this order when {@link createNativeBackend} is first called (importing this
 * module loads nothing):
 * 1. `src/kernels/native/build/Release/dbn_native.node`, built from source by
 *    `scripts/build-native.mjs` (the package's `install` script, always in a git checkout, and
 *    where no prebuilt binary loads);
 * 2. `prebuilds/<platform>-<arch>/node.napi.node`, the prebuilt binary shipped in the package
 *    (prebuildify's layout, found with node-gyp-build), made by `scripts/prebuild.mjs`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError, DbnError, ShapeMismatchError } from '../../errors.js';
import { checkDeltaStepArgs, checkFrameBytes, checkSparseSelectArgs } from '../host/checks.js';
import type {
  Backend,
  BackendInfo,
  CdGradientArgs,
  DeltaStepArgs,
  DeltaStepResult,
  GemmOptions,
  MomentumStepOptions,
  RbmTensors,
  SparseSelectArgs,
  Tensor,
} from '../backend.js';

/** The addon's functions. Each checks its arrays' lengths and throws rather than touch memory out of range. */
interface NativeAddon {
  gemm(
    out: Float32Array,
    a: Float32Array,
    b: Float32Array,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    alpha: number,
    beta: number,
  ): void;
  linearSigmoid(
    out: Float32Array,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array,
    m: number,
    n: number,
    k: number,
    transW: boolean,
    sample?: Float32Array,
    uniforms?: Float32Array,
    target?: Float32Array,
  ): number | undefined;
  addRowSigmoid(out: Float32Array, x: Float32Array, bias: Float32Array): void;
  addRow(out: Float32Array, x: Float32Array, bias: Float32Array): void;
  bernoulli(out: Float32Array, p: Float32Array, u: Float32Array): void;
  relu(out: Float32Array, x: Float32Array): void;
  noisyRelu(out: Float32Array, x: Float32Array, noise: Float32Array): void;
  add(out: Float32Array, a: Float32Array, b: Float32Array): void;
  sub(out: Float32Array, a: Float32Array, b: Float32Array): void;
  mul(out: Float32Array, a: Float32Array, b: Float32Array): void;
  scale(out: Float32Array, x: Float32Array, alpha: number): void;
  axpy(out: Float32Array, x: Float32Array, alpha: number): void;
  colSum(out: Float32Array, x: Float32Array, alpha: number, beta: number): void;
  momentumStep(
    param: Float32Array,
    velocity: Float32Array,
    grad: Float32Array,
    learningRate: number,
    momentum: number,
    weightDecay: number,
    gradScale: number,
  ): void;
  softplusRowSum(out: Float32Array, x: Float32Array): void;
  rowSquaredDistance(out: Float32Array, x: Float32Array, bias: Float32Array): void;
  softmaxRows(out: Float32Array, x: Float32Array, cols: number): void;
  sigmoidBackward(out: Float32Array, delta: Float32Array, act: Float32Array): void;
  reluBackward(out: Float32Array, delta: Float32Array, act: Float32Array): void;
  sumSquaredDiff(a: Float32Array, b: Float32Array): number;
  sumSquares(x: Float32Array): number;
  deltaStep(
    cur: Float32Array,
    base: Float32Array,
    remotes: readonly Float32Array[],
    baseNext: Float32Array,
    curNext: Float32Array,
    delta: Float32Array,
    half: Uint16Array,
    share: number,
    keep: boolean,
  ): [sumSquares: number, overflow: boolean];
  fillUniform(out: Float32Array, state: Uint32Array): void;
  cdGradient(
    ...args: [...arrays: Float32Array[], pos: number, neg: number, update: boolean, lr: number, mu: number, wd: number, gs: number]
  ): void;
  firstInvalid(data: Float32Array, unitInterval: boolean): number;
  hostFrame(bytes: number): Buffer | undefined;
  sparseSelect(
    cur: Float32Array,
    base: Float32Array,
    share: number,
    fraction: number,
    indices: Uint32Array,
    values: Float32Array,
    sample: Float64Array,
  ): number;
  blasInfo(): { config: string; corename: string; threads: number; simd: string };
}

const ADDON_FILE = join('Release', 'dbn_native.node');
const FAILURE_FILE = 'BUILD_FAILED.txt';

/** Build folders to look in: next to this file (sources run by tsx), or under `src/` when running from `dist/kernels/native/`. */
function buildDirs(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, 'build'), join(here, '..', '..', '..', 'src', 'kernels', 'native', 'build')];
}

let cachedAddon: NativeAddon | undefined;

/** The package root: three folders up from `src/kernels/native/` or `dist/kernels/native/`. */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** The prebuilt binary for this platform, if the package has one (node-gyp-build's lookup in `prebuilds/`). */
function prebuiltAddon(): string | undefined {
  if (process.env['DBN_NODE_NO_PREBUILT'] === '1') return undefined;
  const require = createRequire(import.meta.url);
  try {
    const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    const file = gypBuild.resolve(packageRoot());
    return file.includes(`${join('prebuilds', '')}`) ? file : undefined;
  } catch {
    return undefined;
  }
}

const HOW_TO_GET_IT =
  'The prebuilt binary needs the OpenBLAS runtime (Debian/Ubuntu: `apt install libopenblas0`; Fedora: `dnf install openblas`); ' +
  'to build from source instead, install OpenBLAS headers (Debian/Ubuntu: libopenblas-dev) and a C++ toolchain, ' +
  'then run `npm rebuild dbn-node` (in the repository: `npm run build:native`).';

function loadAddon(): NativeAddon {
  if (cachedAddon !== undefined) return cachedAddon;
  const dirs = buildDirs();
  const dir = dirs.find((d) => existsSync(join(d, ADDON_FILE)));
  const file = dir === undefined ? prebuiltAddon() : join(dir, ADDON_FILE);
  if (file === undefined) {
    const failed = dirs.map((d) => join(d, FAILURE_FILE)).find((f) => existsSync(f));
    const recorded = failed === undefined ? 'no build output was found' : readFileSync(failed, 'utf8').trim();
    throw new BackendUnavailableError(
      'native',
      `no prebuilt binary for ${process.platform}-${process.arch} and the addon was not built: ${recorded}. ${HOW_TO_GET_IT}`,
    );
  }
  try {
    const require = createRequire(import.meta.url);
    cachedAddon = require(file) as NativeAddon;
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new BackendUnavailableError('native', `the addon ${file} did not load (${detail}). ${HOW_TO_GET_IT}`);
  }
  return cachedAddon;
}

const EMPTY = new Float32Array(0);
const EMPTY16 = new Uint16Array(0);

/** A row-major float32 matrix of shape `rows × cols` held in a `Float32Array` of length `rows·cols`. */
export class NativeTensor implements Tensor {
  readonly rows: number;
  readonly cols: number;
  /** The elements, row-major; replaced by an empty array when the tensor is freed. */
  data: Float32Array;

  constructor(rows: number, cols: number, data: Float32Array) {
    this.rows = rows;
    this.cols = cols;
    this.data = data;
  }
}

const d = (t: Tensor): Float32Array => (t as NativeTensor).data;

function asNative(t: Tensor, op: string, arg: string): NativeTensor {
  if (!(t instanceof NativeTensor)) {
    throw new DbnError(`Argument '${arg}' passed to 'native.${op}' must be a tensor allocated by the native backend.`, 'EFOREIGNTENSOR');
  }
  return t;
}

function checkedLength(t: NativeTensor, op: string, arg: string): number {
  const n = t.rows * t.cols;
  if (t.data.length !== n) {
    throw new DbnError(`Argument '${arg}' passed to 'native.${op}' was freed.`, 'EFREED');
  }
  return n;
}

function describe(addon: NativeAddon): string {
  const { config, corename, threads, simd } = addon.blasInfo();
  const version = /OpenBLAS\s+\S+/.exec(config)?.[0] ?? (config || 'OpenBLAS');
  const core = corename === '' ? '' : ` ${corename}`;
  return `native (${version}${core}, ${threads} thread${threads === 1 ? '' : 's'}, ${simd} loops)`;
}

class NativeBackend implements Backend {
  readonly info: BackendInfo;
  readonly #addon: NativeAddon;
  #disposed = false;

  constructor(addon: NativeAddon) {
    this.#addon = addon;
    this.info = { name: 'native', description: describe(addon) };
  }

  #live(): NativeAddon {
    if (this.#disposed) {
      throw new DbnError('The native backend was disposed; create a new one with createNativeBackend().', 'EDISPOSED');
    }
    return this.#addon;
  }

  ready(): Promise<void> {
    this.#live();
    return Promise.resolve();
  }

  alloc(rows: number, cols: number): Tensor {
    this.#live();
    if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
      throw new ShapeMismatchError(
        `Arguments 'rows' and 'cols' passed to 'native.alloc' must be non-negative integers, got ${rows} × ${cols}.`,
      );
    }
    return new NativeTensor(rows, cols, new Float32Array(rows * cols));
  }

  free(t: Tensor): void {
    this.#live();
    asNative(t, 'free', 't').data = EMPTY;
  }

  write(dst: Tensor, src: Float32Array): void {
    this.#live();
    const t = asNative(dst, 'write', 'dst');
    const n = checkedLength(t, 'write', 'dst');
    if (!(src instanceof Float32Array) || src.length !== n) {
      throw new ShapeMismatchError(
        `Argument 'src' passed to 'native.write' must be a Float32Array of ${n} elements (${t.rows} × ${t.cols}), got ${describeArray(src)}.`,
      );
    }
    t.data.set(src);
  }

  view(host: Float32Array, rows: number, cols: number): Tensor {
    this.#live();
    if (
      !(host instanceof Float32Array) ||
      !Number.isSafeInteger(rows) ||
      !Number.isSafeInteger(cols) ||
      rows < 0 ||
      cols < 0 ||
      host.length !== rows * cols
    ) {
      throw new ShapeMismatchError(
        `Argument 'host' passed to 'native.view' must be a Float32Array of ${rows} × ${cols} elements, got ${describeArray(host)}.`,
      );
    }
    return new NativeTensor(rows, cols, host);
  }

  read(src: Tensor, dst: Float32Array): void {
    this.#live();
    const t = asNative(src, 'read', 'src');
    const n = checkedLength(t, 'read', 'src');
    if (!(dst instanceof Float32Array) || dst.length !== n) {
      throw new ShapeMismatchError(
        `Argument 'dst' passed to 'native.read' must be a Float32Array of ${n} elements (${t.rows} × ${t.cols}), got ${describeArray(dst)}.`,
      );
    }
    dst.set(t.data);
  }

  copy(out: Tensor, src: Tensor): void {
    this.#live();
    const o = asNative(out, 'copy', 'out');
    const s = asNative(src, 'copy', 'src');
    const n = checkedLength(o, 'copy', 'out');
    if (checkedLength(s, 'copy', 'src') !== n) {
      throw new ShapeMismatchError(
        `Arguments of 'native.copy' must have the same size, got ${o.rows} × ${o.cols} and ${s.rows} × ${s.cols}.`,
      );
    }
    o.data.set(s.data);
  }

  fill(out: Tensor, value: number): void {
    this.#live();
    d(out).fill(value);
  }

  gemm(out: Tensor, a: Tensor, b: Tensor, opts?: GemmOptions): void {
    const addon = this.#live();
    const transA = opts?.transA ?? false;
    const transB = opts?.transB ?? false;
    const m = transA ? a.cols : a.rows;
    const k = transA ? a.rows : a.cols;
    const kb = transB ? b.cols : b.rows;
    const n = transB ? b.rows : b.cols;
    if (k !== kb || out.rows !== m || out.cols !== n) {
      throw new ShapeMismatchError(
        `'native.gemm' cannot put op(a) ${m} × ${k} times op(b) ${kb} × ${n} into out ${out.rows} × ${out.cols}.`,
      );
    }
    const o = d(out);
    if (o === d(a) || o === d(b)) {
      throw new DbnError("'native.gemm' cannot write into one of its inputs: 'out' must not alias 'a' or 'b'.", 'EALIAS');
    }
    addon.gemm(o, d(a), d(b), m, n, k, transA, transB, opts?.alpha ?? 1, opts?.beta ?? 0);
  }

  linearSigmoid(out: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW = false): void {
    this.#linear('linearSigmoid', out, x, w, bias, transW, {});
  }

  linearSigmoidSample(out: Tensor, sample: Tensor, u: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW = false): void {
    this.#linear('linearSigmoidSample', out, x, w, bias, transW, { sample, u });
  }

  linearSigmoidError(out: Tensor, target: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW = false): number {
    return this.#linear('linearSigmoidError', out, x, w, bias, transW, { target }) ?? 0;
  }

  /** The fused products: shapes and aliasing checked, then the addon's linearSigmoid with its optional outputs. */
  #linear(
    op: string,
    out: Tensor,
    x: Tensor,
    w: Tensor,
    bias: Tensor,
    transW: boolean,
    extra: { readonly sample?: Tensor; readonly u?: Tensor; readonly target?: Tensor },
  ): number | undefined {
    const addon = this.#live();
    const m = x.rows;
    const k = x.cols;
    const kw = transW ? w.cols : w.rows;
    const n = transW ? w.rows : w.cols;
    if (k !== kw || out.rows !== m || out.cols !== n || bias.rows !== 1 || bias.cols !== n) {
      throw new ShapeMismatchError(
        `'native.${op}' cannot put x ${m} × ${k} times op(w) ${kw} × ${n} plus bias ${bias.rows} × ${bias.cols} into out ${out.rows} × ${out.cols}.`,
      );
    }
    const o = d(out);
    for (const [name, t] of Object.entries(extra)) {
      if (t.rows !== m || t.cols !== n) {
        throw new ShapeMismatchError(`Argument '${name}' passed to 'native.${op}' is ${t.rows} × ${t.cols}, expected ${m} × ${n}.`);
      }
      checkedLength(asNative(t, op, name), op, name);
    }
    const { sample, u, target } = extra;
    const written = sample === undefined ? [o] : [o, d(sample)];
    const read = [d(x), d(w), ...[u, target].flatMap((t) => (t === undefined ? [] : [d(t)]))];
    if (written.some((a) => read.includes(a)) || written[0] === written[1]) {
      throw new DbnError(
        `'native.${op}' cannot write into one of its inputs: its outputs must not alias each other, 'x', 'w', 'u' or 'target'.`,
        'EALIAS',
      );
    }
    if (sample === undefined && target === undefined) return addon.linearSigmoid(o, d(x), d(w), d(bias), m, n, k, transW);
    const opt = (t: Tensor | undefined): Float32Array => (t === undefined ? EMPTY : d(t));
    return addon.linearSigmoid(o, d(x), d(w), d(bias), m, n, k, transW, opt(sample), opt(u), opt(target));
  }

  addRowSigmoid(out: Tensor, x: Tensor, bias: Tensor): void {
    this.#live().addRowSigmoid(d(out), d(x), d(bias));
  }

  addRow(out: Tensor, x: Tensor, bias: Tensor): void {
    this.#live().addRow(d(out), d(x), d(bias));
  }

  bernoulli(out: Tensor, p: Tensor, u: Tensor): void {
    this.#live().bernoulli(d(out), d(p), d(u));
  }

  relu(out: Tensor, x: Tensor): void {
    this.#live().relu(d(out), d(x));
  }

  noisyRelu(out: Tensor, x: Tensor, noise: Tensor): void {
    this.#live().noisyRelu(d(out), d(x), d(noise));
  }

  add(out: Tensor, a: Tensor, b: Tensor): void {
    this.#live().add(d(out), d(a), d(b));
  }

  sub(out: Tensor, a: Tensor, b: Tensor): void {
    this.#live().sub(d(out), d(a), d(b));
  }

  mul(out: Tensor, a: Tensor, b: Tensor): void {
    this.#live().mul(d(out), d(a), d(b));
  }

  scale(out: Tensor, x: Tensor, alpha: number): void {
    this.#live().scale(d(out), d(x), alpha);
  }

  axpy(out: Tensor, alpha: number, x: Tensor): void {
    this.#live().axpy(d(out), d(x), alpha);
  }

  colSum(out: Tensor, x: Tensor, alpha: number, beta: number): void {
    this.#live().colSum(d(out), d(x), alpha, beta);
  }

  momentumStep(param: Tensor, velocity: Tensor, grad: Tensor, opts: MomentumStepOptions): void {
    this.#live().momentumStep(d(param), d(velocity), d(grad), opts.learningRate, opts.momentum, opts.weightDecay, opts.gradScale);
  }

  softplusRowSum(out: Tensor, x: Tensor): void {
    this.#live().softplusRowSum(d(out), d(x));
  }

  rowSquaredDistance(out: Tensor, x: Tensor, bias: Tensor): void {
    this.#live().rowSquaredDistance(d(out), d(x), d(bias));
  }

  softmaxRows(out: Tensor, x: Tensor): void {
    this.#live().softmaxRows(d(out), d(x), x.cols);
  }

  sigmoidBackward(out: Tensor, delta: Tensor, act: Tensor): void {
    this.#live().sigmoidBackward(d(out), d(delta), d(act));
  }

  reluBackward(out: Tensor, delta: Tensor, act: Tensor): void {
    this.#live().reluBackward(d(out), d(delta), d(act));
  }

  sumSquaredDiff(a: Tensor, b: Tensor): number {
    return this.#live().sumSquaredDiff(d(a), d(b));
  }

  sumSquares(x: Tensor): number {
    return this.#live().sumSquares(d(x));
  }

  hostFrame(bytes: number): Buffer {
    checkFrameBytes('native.hostFrame', bytes);
    const addon = this.#live();
    // Zero bytes, or a runtime without external buffers: an ordinary buffer.
    return (bytes > 0 ? addon.hostFrame(bytes) : undefined) ?? Buffer.alloc(bytes);
  }

  sparseSelect(a: SparseSelectArgs): number {
    checkSparseSelectArgs('native.sparseSelect', a);
    return this.#live().sparseSelect(a.cur, a.base, a.share, a.fraction, a.indices, a.values, a.sample);
  }

  cdGradient(a: CdGradientArgs): void {
    const addon = this.#live();
    const { grad, v0, h0, vn, hn, update } = a;
    const nv = grad.visibleBias.cols;
    const nh = grad.hiddenBias.cols;
    const expect = (t: Tensor, rows: number, cols: number, name: string): void => {
      checkedLength(asNative(t, 'cdGradient', name), 'cdGradient', name);
      if (t.rows !== rows || t.cols !== cols || rows < 1) {
        throw new ShapeMismatchError(
          `Argument '${name}' passed to 'native.cdGradient' is ${t.rows} × ${t.cols}, expected ${rows} × ${cols} (at least one row).`,
        );
      }
    };
    const parameterShaped = (p: RbmTensors, what: string): void => {
      expect(p.weights, nv, nh, `${what}.weights`);
      expect(p.visibleBias, 1, nv, `${what}.visibleBias`);
      expect(p.hiddenBias, 1, nh, `${what}.hiddenBias`);
    };
    parameterShaped(grad, 'grad');
    expect(v0, v0.rows, nv, 'v0');
    expect(h0, v0.rows, nh, 'h0');
    expect(vn, vn.rows, nv, 'vn');
    expect(hn, vn.rows, nh, 'hn');
    if (update !== undefined) {
      parameterShaped(update.params, 'update.params');
      parameterShaped(update.velocity, 'update.velocity');
    }
    const o = update?.options;
    const p = update?.params;
    const v = update?.velocity;
    addon.cdGradient(
      d(grad.weights),
      d(grad.visibleBias),
      d(grad.hiddenBias),
      d(v0),
      d(h0),
      d(vn),
      d(hn),
      p === undefined ? EMPTY : d(p.weights),
      v === undefined ? EMPTY : d(v.weights),
      p === undefined ? EMPTY : d(p.visibleBias),
      v === undefined ? EMPTY : d(v.visibleBias),
      p === undefined ? EMPTY : d(p.hiddenBias),
      v === undefined ? EMPTY : d(v.hiddenBias),
      a.positiveScale,
      a.negativeScale,
      update !== undefined,
      o?.learningRate ?? 0,
      o?.momentum ?? 0,
      o?.weightDecay ?? 0,
      o?.gradScale ?? 0,
    );
  }

  firstInvalid(data: Float32Array, unitInterval: boolean): number {
    if (!(data instanceof Float32Array)) {
      throw new ShapeMismatchError(`Argument 'data' passed to 'native.firstInvalid' must be a Float32Array, got ${describeArray(data)}.`);
    }
    return this.#live().firstInvalid(data, unitInterval);
  }

  fillUniform(out: Tensor, state: Uint32Array): void {
    this.#live().fillUniform(d(out), state);
  }

  deltaStep(a: DeltaStepArgs): DeltaStepResult {
    const addon = this.#live();
    checkDeltaStepArgs('native.deltaStep', a);
    // An empty `delta` selects half mode (the addon checks every length).
    const [sumSquares, overflow] = addon.deltaStep(
      a.cur,
      a.base,
      a.remote ?? [],
      a.baseNext,
      a.curNext,
      a.delta ?? EMPTY,
      a.half ?? EMPTY16,
      a.share,
      a.keep,
    );
    return { sumSquares, overflow };
  }

  dispose(): void {
    this.#disposed = true;
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
 * Creates the native backend (OpenBLAS sgemm + fused C++ loops), loading its addon on first use.
 *
 * @throws {@link BackendUnavailableError} when the addon was not built or does not load; the
 *   reason says why (as recorded by the install script) and how to fix it.
 */
export function createNativeBackend(): Backend {
  return new NativeBackend(loadAddon());
}
