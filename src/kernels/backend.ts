/**
 * The compute backend interface: exactly the kernels that contrastive divergence and
 * backpropagation need, in the ndarray-ops convention — the output comes first, nothing is
 * allocated behind the caller's back, and elementwise kernels may write in place (`out` may be
 * one of the inputs). Matrices are row-major float32 {@link Tensor}s owned by the backend that
 * allocated them; a row vector (a bias) is a `1 × n` tensor.
 *
 * Implementations: `native/` (OpenBLAS sgemm + fused C++ loops), `js/` (portable TypeScript),
 * `gpu/` (gpu.js). Models receive a backend by injection and import only this file.
 *
 * Asynchronous backends (a GPU) may queue kernels and run them later: the kernels return
 * nothing, and the only points where results must be complete are {@link Backend.read} and the
 * scalar reductions. {@link Backend.ready} resolves once a backend that starts asynchronously
 * (e.g. a WebGPU adapter) can run kernels.
 */

/** A backend-owned row-major float32 matrix of shape `rows × cols`. Opaque beyond its shape. */
export interface Tensor {
  readonly rows: number;
  readonly cols: number;
}

/** Options of {@link Backend.gemm}: `out = alpha · op(a) · op(b) + beta · out`. */
export interface GemmOptions {
  /** Use `aᵀ` instead of `a`. Default false. */
  readonly transA?: boolean;
  /** Use `bᵀ` instead of `b`. Default false. */
  readonly transB?: boolean;
  /** Default 1. */
  readonly alpha?: number;
  /** Default 0 (`out` is overwritten; its old contents are ignored, NaN included). */
  readonly beta?: number;
}

/** Hyper-parameters of {@link Backend.momentumStep}. */
export interface MomentumStepOptions {
  /** Learning rate ε. */
  readonly learningRate: number;
  /** Momentum μ ∈ [0, 1). */
  readonly momentum: number;
  /** L2 weight-decay coefficient λ (0 for biases). */
  readonly weightDecay: number;
  /** Factor applied to `grad` first (typically `1 / batchSize`). */
  readonly gradScale: number;
}

/** The three tensors of an RBM's parameters (or of anything shaped like them). */
export interface RbmTensors {
  /** `nVisible × nHidden`. */
  readonly weights: Tensor;
  /** `1 × nVisible`. */
  readonly visibleBias: Tensor;
  /** `1 × nHidden`. */
  readonly hiddenBias: Tensor;
}

/** Arguments of {@link Backend.cdGradient}. */
export interface CdGradientArgs {
  /** Receives the gradient. */
  readonly grad: RbmTensors;
  /** Positive statistics: visible rows `n × nVisible` and hidden means `n × nHidden` (n ≥ 1). */
  readonly v0: Tensor;
  readonly h0: Tensor;
  /** Negative statistics: `m × nVisible` and `m × nHidden` (m ≥ 1). */
  readonly vn: Tensor;
  readonly hn: Tensor;
  /** Factor of the positive statistics (nonzero). */
  readonly positiveScale: number;
  /** Factor of the negative statistics (nonzero). */
  readonly negativeScale: number;
  /** Then the momentum step of the parameters from that gradient (weight decay on the weights only). */
  readonly update?: {
    readonly params: RbmTensors;
    readonly velocity: RbmTensors;
    readonly options: MomentumStepOptions;
  };
}

/**
 * Arguments of {@link Backend.deltaStep}: host arrays, all of one length `n` (one parameter
 * tensor of a model trained by several peers).
 */
export interface DeltaStepArgs {
  /** The weights now. Read only. */
  readonly cur: Float32Array;
  /** What the other peers hold of them. Read only. */
  readonly base: Float32Array;
  /**
   * Remote deltas to merge, or none: `r` is their sum in order, each partial sum rounded to
   * float32 (`r = fround(fround(r₀ + r₁) + r₂)`). Read only.
   */
  readonly remote?: readonly Float32Array[];
  /** The part of its change the peer publishes, in (0, 1]. */
  readonly share: number;
  /** The peer keeps only its share of its change (`curNext = base + d + r` rather than `cur + r`). */
  readonly keep: boolean;
  /** Receives the change `d` as float32; exactly one of `delta` and `half` is given. */
  readonly delta?: Float32Array;
  /** Receives `d` rounded to the nearest binary16 (ties to even), as bit patterns. */
  readonly half?: Uint16Array;
  /** Receives `base + sent + r`, `sent` being `d`, or the value of `half`. */
  readonly baseNext: Float32Array;
  /** Receives `(keep ? base + d : cur) + r`. */
  readonly curNext: Float32Array;
}

/** Arguments of {@link Backend.sparseSelect}: host arrays. */
export interface SparseSelectArgs {
  readonly cur: Float32Array;
  readonly base: Float32Array;
  readonly share: number;
  readonly fraction: number;
  /** Room for `cur.length` entries. */
  readonly indices: Uint32Array;
  readonly values: Float32Array;
  readonly sample: Float64Array;
}

/** What {@link Backend.deltaStep} reports. */
export interface DeltaStepResult {
  /** `Σ d²` as a float64 (summed in any order); not finite when a value of `d` is not. */
  readonly sumSquares: number;
  /** With `half`: some `d` has no finite binary16 (|d| ≥ 65520, or not finite). */
  readonly overflow: boolean;
}

/** What a backend reports about itself. */
export interface BackendInfo {
  /** Registry name: `'native'`, `'js'`, `'gpu'`. */
  readonly name: string;
  /** Human description of what actually runs, e.g. `'native (OpenBLAS 0.3.21, 2 threads)'` or `'gpu (webasm)'`. */
  readonly description: string;
  /** For gpu.js backends: the mode that actually runs (never the one merely asked for). */
  readonly mode?: string;
}

/** A compute backend. See the module comment for the conventions. */
export interface Backend {
  readonly info: BackendInfo;

  /** Resolves when kernels can run. CPU backends resolve at once. */
  ready(): Promise<void>;

  /** A new zero-filled `rows × cols` tensor. */
  alloc(rows: number, cols: number): Tensor;
  /** Releases a tensor's memory; the tensor must not be used afterwards. */
  free(t: Tensor): void;
  /** Copies `src` (length `rows·cols`, row-major) into `dst`. */
  write(dst: Tensor, src: Float32Array): void;
  /**
   * OPTIONAL: a `rows × cols` tensor that reads `host` (length `rows·cols`) in place, without a copy —
   * for an input that kernels only read, valid while `host` is unchanged. It must never be written,
   * and `free` on it releases nothing of `host`. Backends whose memory is elsewhere leave it out;
   * callers then `write` into a tensor of their own.
   */
  view?(host: Float32Array, rows: number, cols: number): Tensor;
  /** Copies `src` into `dst` (length `rows·cols`). Waits for queued kernels that write `src`. */
  read(src: Tensor, dst: Float32Array): void;
  /** `out = src` (same shape). */
  copy(out: Tensor, src: Tensor): void;
  /** `out[i] = value`. */
  fill(out: Tensor, value: number): void;

  /** `out = alpha · op(a) · op(b) + beta · out`. `out` must not alias `a` or `b`. */
  gemm(out: Tensor, a: Tensor, b: Tensor, opts?: GemmOptions): void;

  /**
   * OPTIONAL fused kernel, `out = σ(x · op(w) + bias)` with `op(w) = transW ? wᵀ : w`: `x` is
   * `m × k`, `w` `k × n` (or `n × k` when `transW`), `bias` `1 × n`, `out` `m × n` and must not
   * alias `x` or `w`. Means exactly `gemm(out, x, w, { transB: transW })` then
   * `addRowSigmoid(out, out, bias)`; implemented where one pass saves a round trip through
   * memory (the gpu backend). Callers use it when present and fall back to the two calls.
   */
  linearSigmoid?(out: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW?: boolean): void;
  /**
   * OPTIONAL fused kernel: {@link Backend.linearSigmoid} into `out`, then `sample = u < out ? 1 : 0`
   * ({@link Backend.bernoulli} against the uniforms `u`, `m × n`) in the same pass, keeping both —
   * the hidden means and sample of a CD step. The same values as those two calls.
   */
  linearSigmoidSample?(out: Tensor, sample: Tensor, u: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW?: boolean): void;
  /**
   * OPTIONAL fused kernel: {@link Backend.linearSigmoid} into `out`, returning `Σ (out − target)²`
   * (`target` `m × n`) as a float64 summed in the pass — the reconstruction error of a CD step. The
   * same `out` as `linearSigmoid`; the sum equals {@link Backend.sumSquaredDiff}'s up to summation order.
   */
  linearSigmoidError?(out: Tensor, target: Tensor, x: Tensor, w: Tensor, bias: Tensor, transW?: boolean): number;
  /**
   * OPTIONAL fused kernel, `out = u < σ(x · op(w) + bias) ? 1 : 0`: {@link Backend.linearSigmoid}
   * followed by {@link Backend.bernoulli} against the uniforms `u` (`m × n`), without keeping the
   * probabilities. Same shapes and aliasing rule as `linearSigmoid`.
   */
  linearSigmoidBernoulli?(out: Tensor, x: Tensor, w: Tensor, bias: Tensor, u: Tensor, transW?: boolean): void;

  /**
   * OPTIONAL fused kernel, the gradient of a CD step (and its update) in one call: means exactly
   * `gemm(grad.weights, v0, h0, { transA: true, alpha: positiveScale })`,
   * `gemm(grad.weights, vn, hn, { transA: true, alpha: negativeScale, beta: 1 })`, the four `colSum`s
   * of the biases' gradients in the same way (positive with beta 0, then negative with beta 1), and
   * with `update` then `momentumStep` of the weights (with `options`) and of both biases (weight decay
   * 0) — the same bits as those calls. Implemented where the update can run on each block of the
   * weights' gradient while it is in cache (the native backend).
   */
  cdGradient?(args: CdGradientArgs): void;
  /**
   * OPTIONAL host-array kernel: the index of the first element of `data` that is not finite (with
   * `unitInterval`, not in [0, 1]), or −1. The data check of training, faster than a JavaScript loop.
   */
  firstInvalid?(data: Float32Array, unitInterval: boolean): number;

  /** `out = σ(x + bias)`, `bias` a `1 × cols` row broadcast over rows; σ the logistic sigmoid. */
  addRowSigmoid(out: Tensor, x: Tensor, bias: Tensor): void;
  /** `out = x + bias`, `bias` a `1 × cols` row broadcast over rows. */
  addRow(out: Tensor, x: Tensor, bias: Tensor): void;
  /** `out = u < p ? 1 : 0` elementwise (Bernoulli sample of probabilities `p` from uniforms `u` ∈ [0, 1)). */
  bernoulli(out: Tensor, p: Tensor, u: Tensor): void;
  /** `out = max(0, x)`. */
  relu(out: Tensor, x: Tensor): void;
  /** Noisy rectified unit (Nair & Hinton 2010): `out = max(0, x + sqrt(σ(x)) · noise)`, `noise` standard normal. */
  noisyRelu(out: Tensor, x: Tensor, noise: Tensor): void;

  /** `out = a + b`. */
  add(out: Tensor, a: Tensor, b: Tensor): void;
  /** `out = a − b`. */
  sub(out: Tensor, a: Tensor, b: Tensor): void;
  /** `out = a ⊙ b`. */
  mul(out: Tensor, a: Tensor, b: Tensor): void;
  /** `out = alpha · x`. */
  scale(out: Tensor, x: Tensor, alpha: number): void;
  /** `out += alpha · x`. */
  axpy(out: Tensor, alpha: number, x: Tensor): void;

  /** `out = alpha · Σ_rows x + beta · out`; `out` is `1 × x.cols` (bias gradients). */
  colSum(out: Tensor, x: Tensor, alpha: number, beta: number): void;
  /**
   * One parameter update with momentum and L2 decay (Hinton 2010, "A practical guide"):
   * `velocity = μ·velocity + ε·(gradScale·grad − λ·param)`, then `param += velocity`.
   */
  momentumStep(param: Tensor, velocity: Tensor, grad: Tensor, opts: MomentumStepOptions): void;

  /** `out[i] = Σ_j softplus(x[i, j])` with `softplus(z) = log(1 + e^z)` computed stably; `out` is `rows × 1`. */
  softplusRowSum(out: Tensor, x: Tensor): void;
  /** `out[i] = Σ_j (x[i, j] − bias[j])²`; `out` is `rows × 1`, `bias` `1 × cols`. */
  rowSquaredDistance(out: Tensor, x: Tensor, bias: Tensor): void;
  /** Row-wise softmax, computed stably (max subtracted). */
  softmaxRows(out: Tensor, x: Tensor): void;
  /** Backprop through a sigmoid: `out = delta ⊙ act ⊙ (1 − act)`, `act` the sigmoid's output. */
  sigmoidBackward(out: Tensor, delta: Tensor, act: Tensor): void;
  /** Backprop through a ReLU: `out = act > 0 ? delta : 0`, `act` the ReLU's output. */
  reluBackward(out: Tensor, delta: Tensor, act: Tensor): void;

  /** `Σ (a − b)²` over all elements, as a float64 sum on the host. */
  sumSquaredDiff(a: Tensor, b: Tensor): number;
  /** `Σ x²` over all elements, as a float64 sum on the host. */
  sumSquares(x: Tensor): number;

  /**
   * OPTIONAL host-array kernel for peer-to-peer training (`dbn/peer-training.ts`): one
   * publication point over one parameter tensor, in one pass. With
   * `d = float32((cur − base) · share)` (the difference and product in float64): writes `d`
   * (`delta`) or its binary16 rounding (`half`), `baseNext = base + sent + r` and
   * `curNext = (keep ? base + d : cur) + r` (each sum in float64, rounded once to float32),
   * `r` being the sum of `remote` or 0. Values are those of the plain TypeScript loop exactly, `Σ d²`
   * up to summation order. Unlike the other kernels it works on host arrays (the parameters
   * of a peer are host copies), so backends whose memory is elsewhere leave it out; callers
   * fall back to their own loop.
   */
  deltaStep?(args: DeltaStepArgs): DeltaStepResult;

  /**
   * OPTIONAL: a host buffer of `bytes` uninitialized bytes, 4-byte aligned, for frames that are
   * handed to a transport which keeps them until it is done (peer deltas over ZeroMQ): its
   * memory is recycled once the buffer is garbage-collected, sparing the page faults of fresh
   * memory. The caller must not keep using it after handing it over.
   */
  hostFrame?(bytes: number): Buffer;

  /**
   * OPTIONAL host-array kernel for sparse peer deltas (`dbn/peer-training.ts`): with
   * `d = (cur − base) · share` in float64, writes the index and float32 value of every entry
   * with `|d| ≥ θ` and `d ≠ 0` (a NaN counts as ≥ θ) to `indices`, `values`, in order, and
   * returns how many; `θ` is the `⌊(1 − fraction) · m⌋`-th smallest (0-based) of the
   * `m = min(n, sample.length)` values `|d|` at elements `⌊i · n / m⌋` (`sample` is scratch).
   * The entries and values of the TypeScript loop exactly.
   */
  sparseSelect?(args: SparseSelectArgs): number;

  /**
   * OPTIONAL: fills `out` with uniforms in [0, 1) from the xoshiro128** generator whose four
   * 32-bit words are `state`, advancing `state` in place — the numbers `Random.fillUniform`
   * draws from that state, in the same order, bit for bit (`src/random.ts`). Lets a backend
   * draw the noise of sampling where it computes, without the host loop and copy.
   */
  fillUniform?(out: Tensor, state: Uint32Array): void;

  /** Releases everything the backend holds (GPU context, native buffers). Idempotent. */
  dispose(): void;

  /** The same as {@link Backend.dispose}, so `using backend = createBackend('js')` releases it at the end of the block. */
  [Symbol.dispose](): void;
}
