/**
 * The gpu.js kernel bodies of the gpu backend: plain module-level functions that gpu.js
 * transpiles (to GLSL, WGSL or WebAssembly) or runs as JavaScript. Each computes ONE output
 * element at `this.thread` (`x` = column, `y` = row of the output matrix); sizes arrive as
 * `this.constants`, scalars and random numbers as arguments, so the same body can be called
 * directly on the CPU with a fake `this` (see test/kernels/gpu-kernels.test.ts).
 *
 * Rules for these bodies (what gpu.js can translate): no closures, no calls to other functions
 * than `Math.*`, loops bounded by a constant, numbers only. A matrix argument is indexed
 * `m[row][col]`; a bias row is `1 × cols` (`b[0][col]`), a per-row value is `rows × 1`
 * (`v[row][0]`). The non-null assertions are TypeScript-only and vanish from the source gpu.js
 * reads.
 */

/** The subset of gpu.js's kernel `this` these bodies use; `C` is the kernel's constants. */
export interface KernelThis<C = Record<never, number>> {
  readonly thread: { readonly x: number; readonly y: number; readonly z: number };
  readonly constants: C;
}

/** A matrix argument as a kernel sees it: `m[row][col]` (a texture on GL, rows of `Float32Array` elsewhere). */
export type KernelMatrix = { readonly [row: number]: { readonly [col: number]: number } | undefined };

/** Constants of the products: the inner dimension `k`. */
export interface InnerConstants {
  readonly k: number;
}

/** Constants of the column reduction: the number of rows summed. */
export interface RowsConstants {
  readonly rows: number;
}

/** Constants of the row reductions: the number of columns reduced. */
export interface ColsConstants {
  readonly cols: number;
}

/** Constants of the chunked partial sums: columns per output element and the column count. */
export interface ChunkConstants {
  readonly chunk: number;
  readonly cols: number;
}

/** `out[r][c] = x[r][c]` (copy; also uploads host data on GL). Output `rows × cols`. */
export function copyKernel(this: KernelThis, x: KernelMatrix): number {
  return x[this.thread.y]![this.thread.x]!;
}

/** `out[r][c] = value`. */
export function fillKernel(this: KernelThis, value: number): number {
  return value;
}

/** `out = alpha·a·b + beta·c`; `a` m × k, `b` k × n, `c` and out m × n; `beta = 0` ignores `c`. */
export function gemmNNKernel(
  this: KernelThis<InnerConstants>,
  a: KernelMatrix,
  b: KernelMatrix,
  c: KernelMatrix,
  alpha: number,
  beta: number,
): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += a[r]![p]! * b[p]![j]!;
  }
  let v = alpha * s;
  if (beta !== 0) {
    v += beta * c[r]![j]!;
  }
  return v;
}

/** `out = alpha·a·bᵀ + beta·c`; `a` m × k, `b` n × k. */
export function gemmNTKernel(
  this: KernelThis<InnerConstants>,
  a: KernelMatrix,
  b: KernelMatrix,
  c: KernelMatrix,
  alpha: number,
  beta: number,
): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += a[r]![p]! * b[j]![p]!;
  }
  let v = alpha * s;
  if (beta !== 0) {
    v += beta * c[r]![j]!;
  }
  return v;
}

/** `out = alpha·aᵀ·b + beta·c`; `a` k × m, `b` k × n. */
export function gemmTNKernel(
  this: KernelThis<InnerConstants>,
  a: KernelMatrix,
  b: KernelMatrix,
  c: KernelMatrix,
  alpha: number,
  beta: number,
): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += a[p]![r]! * b[p]![j]!;
  }
  let v = alpha * s;
  if (beta !== 0) {
    v += beta * c[r]![j]!;
  }
  return v;
}

/** `out = alpha·aᵀ·bᵀ + beta·c`; `a` k × m, `b` n × k. */
export function gemmTTKernel(
  this: KernelThis<InnerConstants>,
  a: KernelMatrix,
  b: KernelMatrix,
  c: KernelMatrix,
  alpha: number,
  beta: number,
): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += a[p]![r]! * b[j]![p]!;
  }
  let v = alpha * s;
  if (beta !== 0) {
    v += beta * c[r]![j]!;
  }
  return v;
}

/**
 * Fused `out = σ(x·w + bias)`: `x` m × k, `w` k × n, `bias` 1 × n. The sigmoid is evaluated
 * as `1/(1+e)` or `e/(1+e)` with `e = exp(−|z|)`, so no intermediate overflows.
 */
export function linearSigmoidKernel(this: KernelThis<InnerConstants>, x: KernelMatrix, w: KernelMatrix, bias: KernelMatrix): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += x[r]![p]! * w[p]![j]!;
  }
  const z = s + bias[0]![j]!;
  const e = Math.exp(-Math.abs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** Fused `out = σ(x·wᵀ + bias)`: `x` m × k, `w` n × k, `bias` 1 × n. */
export function linearSigmoidTKernel(this: KernelThis<InnerConstants>, x: KernelMatrix, w: KernelMatrix, bias: KernelMatrix): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += x[r]![p]! * w[j]![p]!;
  }
  const z = s + bias[0]![j]!;
  const e = Math.exp(-Math.abs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** Fused Bernoulli sample `out = u < σ(x·w + bias) ? 1 : 0`; `u` m × n uniforms in [0, 1). */
export function linearSigmoidBernoulliKernel(
  this: KernelThis<InnerConstants>,
  x: KernelMatrix,
  w: KernelMatrix,
  bias: KernelMatrix,
  u: KernelMatrix,
): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += x[r]![p]! * w[p]![j]!;
  }
  const z = s + bias[0]![j]!;
  const e = Math.exp(-Math.abs(z));
  const prob = z >= 0 ? 1 / (1 + e) : e / (1 + e);
  return u[r]![j]! < prob ? 1 : 0;
}

/** Fused Bernoulli sample `out = u < σ(x·wᵀ + bias) ? 1 : 0`; `w` n × k. */
export function linearSigmoidBernoulliTKernel(
  this: KernelThis<InnerConstants>,
  x: KernelMatrix,
  w: KernelMatrix,
  bias: KernelMatrix,
  u: KernelMatrix,
): number {
  const r = this.thread.y;
  const j = this.thread.x;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += x[r]![p]! * w[j]![p]!;
  }
  const z = s + bias[0]![j]!;
  const e = Math.exp(-Math.abs(z));
  const prob = z >= 0 ? 1 / (1 + e) : e / (1 + e);
  return u[r]![j]! < prob ? 1 : 0;
}

/** `out = σ(x + bias)`, `bias` 1 × cols. */
export function addRowSigmoidKernel(this: KernelThis, x: KernelMatrix, bias: KernelMatrix): number {
  const z = x[this.thread.y]![this.thread.x]! + bias[0]![this.thread.x]!;
  const e = Math.exp(-Math.abs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** `out = x + bias`, `bias` 1 × cols. */
export function addRowKernel(this: KernelThis, x: KernelMatrix, bias: KernelMatrix): number {
  return x[this.thread.y]![this.thread.x]! + bias[0]![this.thread.x]!;
}

/** `out = u < p ? 1 : 0`. */
export function bernoulliKernel(this: KernelThis, p: KernelMatrix, u: KernelMatrix): number {
  return u[this.thread.y]![this.thread.x]! < p[this.thread.y]![this.thread.x]! ? 1 : 0;
}

/** `out = max(0, x)`. */
export function reluKernel(this: KernelThis, x: KernelMatrix): number {
  return Math.max(0, x[this.thread.y]![this.thread.x]!);
}

/** Noisy ReLU (Nair & Hinton 2010): `out = max(0, x + sqrt(σ(x))·noise)`, `noise` standard normal. */
export function noisyReluKernel(this: KernelThis, x: KernelMatrix, noise: KernelMatrix): number {
  const z = x[this.thread.y]![this.thread.x]!;
  const e = Math.exp(-Math.abs(z));
  const sig = z >= 0 ? 1 / (1 + e) : e / (1 + e);
  return Math.max(0, z + Math.sqrt(sig) * noise[this.thread.y]![this.thread.x]!);
}

/** `out = a + b`. */
export function addKernel(this: KernelThis, a: KernelMatrix, b: KernelMatrix): number {
  return a[this.thread.y]![this.thread.x]! + b[this.thread.y]![this.thread.x]!;
}

/** `out = a − b`. */
export function subKernel(this: KernelThis, a: KernelMatrix, b: KernelMatrix): number {
  return a[this.thread.y]![this.thread.x]! - b[this.thread.y]![this.thread.x]!;
}

/** `out = a ⊙ b`. */
export function mulKernel(this: KernelThis, a: KernelMatrix, b: KernelMatrix): number {
  return a[this.thread.y]![this.thread.x]! * b[this.thread.y]![this.thread.x]!;
}

/** `out = alpha·x`. */
export function scaleKernel(this: KernelThis, x: KernelMatrix, alpha: number): number {
  return alpha * x[this.thread.y]![this.thread.x]!;
}

/** `out = y + alpha·x` (axpy with `y` the old `out`). */
export function axpyKernel(this: KernelThis, y: KernelMatrix, x: KernelMatrix, alpha: number): number {
  return y[this.thread.y]![this.thread.x]! + alpha * x[this.thread.y]![this.thread.x]!;
}

/** `out = alpha·Σ_rows x + beta·old`; output and `old` are 1 × cols; `beta = 0` ignores `old`. */
export function colSumKernel(this: KernelThis<RowsConstants>, x: KernelMatrix, old: KernelMatrix, alpha: number, beta: number): number {
  const j = this.thread.x;
  let s = 0;
  for (let r = 0; r < this.constants.rows; r++) {
    s += x[r]![j]!;
  }
  let v = alpha * s;
  if (beta !== 0) {
    v += beta * old[0]![j]!;
  }
  return v;
}

/** The new velocity of {@link Backend.momentumStep}: `μ·velocity + ε·(gradScale·grad − λ·param)`. */
export function momentumVelocityKernel(
  this: KernelThis,
  param: KernelMatrix,
  velocity: KernelMatrix,
  grad: KernelMatrix,
  learningRate: number,
  momentum: number,
  weightDecay: number,
  gradScale: number,
): number {
  const r = this.thread.y;
  const c = this.thread.x;
  return momentum * velocity[r]![c]! + learningRate * (gradScale * grad[r]![c]! - weightDecay * param[r]![c]!);
}

/**
 * `out[r][0] = Σ_c softplus(x[r][c])`, `softplus(z) = max(z, 0) + log1p(e^{−|z|})`. `log1p(t)`
 * is its Taylor series to `t⁵` for `t < 0.05` (relative error < `t⁵/6`), where `log(1 + t)`
 * would lose up to `2⁻²⁴/t` of it by rounding `1 + t`; `log(1 + t)` above.
 */
export function softplusRowSumKernel(this: KernelThis<ColsConstants>, x: KernelMatrix): number {
  const r = this.thread.y;
  let s = 0;
  for (let c = 0; c < this.constants.cols; c++) {
    const z = x[r]![c]!;
    const t = Math.exp(-Math.abs(z));
    const l = t < 0.05 ? t * (1 - t * (0.5 - t * (1 / 3 - t * (0.25 - t * 0.2)))) : Math.log(1 + t);
    s += Math.max(z, 0) + l;
  }
  return s;
}

/** `out[r][0] = Σ_c (x[r][c] − bias[0][c])²`. */
export function rowSquaredDistanceKernel(this: KernelThis<ColsConstants>, x: KernelMatrix, bias: KernelMatrix): number {
  const r = this.thread.y;
  let s = 0;
  for (let c = 0; c < this.constants.cols; c++) {
    const d = x[r]![c]! - bias[0]![c]!;
    s += d * d;
  }
  return s;
}

/** `out[r][0] = max_c x[r][c]` (softmax, pass 1). */
export function rowMaxKernel(this: KernelThis<ColsConstants>, x: KernelMatrix): number {
  const r = this.thread.y;
  let m = x[r]![0]!;
  for (let c = 1; c < this.constants.cols; c++) {
    m = Math.max(m, x[r]![c]!);
  }
  return m;
}

/** `out[r][0] = Σ_c exp(x[r][c] − max[r][0])` (softmax, pass 2). */
export function rowSumExpKernel(this: KernelThis<ColsConstants>, x: KernelMatrix, max: KernelMatrix): number {
  const r = this.thread.y;
  const m = max[r]![0]!;
  let s = 0;
  for (let c = 0; c < this.constants.cols; c++) {
    s += Math.exp(x[r]![c]! - m);
  }
  return s;
}

/** `out[r][c] = exp(x[r][c] − max[r][0]) / sum[r][0]` (softmax, pass 3). */
export function softmaxNormalizeKernel(this: KernelThis, x: KernelMatrix, max: KernelMatrix, sum: KernelMatrix): number {
  const r = this.thread.y;
  return Math.exp(x[r]![this.thread.x]! - max[r]![0]!) / sum[r]![0]!;
}

/** `out = delta ⊙ act ⊙ (1 − act)`. */
export function sigmoidBackwardKernel(this: KernelThis, delta: KernelMatrix, act: KernelMatrix): number {
  const a = act[this.thread.y]![this.thread.x]!;
  return delta[this.thread.y]![this.thread.x]! * a * (1 - a);
}

/** `out = act > 0 ? delta : 0`. */
export function reluBackwardKernel(this: KernelThis, delta: KernelMatrix, act: KernelMatrix): number {
  return act[this.thread.y]![this.thread.x]! > 0 ? delta[this.thread.y]![this.thread.x]! : 0;
}

/**
 * Partial sums of `(a − b)²`: `out[r][t] = Σ (a[r][c] − b[r][c])²` over the columns
 * `c ∈ [t·chunk, (t+1)·chunk) ∩ [0, cols)`; the host adds the partials in float64.
 */
export function sumSquaredDiffPartialKernel(this: KernelThis<ChunkConstants>, a: KernelMatrix, b: KernelMatrix): number {
  const r = this.thread.y;
  const c0 = this.thread.x * this.constants.chunk;
  let s = 0;
  for (let i = 0; i < this.constants.chunk; i++) {
    const c = c0 + i;
    if (c < this.constants.cols) {
      const d = a[r]![c]! - b[r]![c]!;
      s += d * d;
    }
  }
  return s;
}

/** Partial sums of `x²` over column chunks, as {@link sumSquaredDiffPartialKernel}. */
export function sumSquaresPartialKernel(this: KernelThis<ChunkConstants>, x: KernelMatrix): number {
  const r = this.thread.y;
  const c0 = this.thread.x * this.constants.chunk;
  let s = 0;
  for (let i = 0; i < this.constants.chunk; i++) {
    const c = c0 + i;
    if (c < this.constants.cols) {
      const v = x[r]![c]!;
      s += v * v;
    }
  }
  return s;
}

/** Every kernel body by name: the name travels in a {@link Step} (and to the WebGPU worker). */
export const kernelBodies = {
  copy: copyKernel,
  fill: fillKernel,
  gemmNN: gemmNNKernel,
  gemmNT: gemmNTKernel,
  gemmTN: gemmTNKernel,
  gemmTT: gemmTTKernel,
  linearSigmoid: linearSigmoidKernel,
  linearSigmoidT: linearSigmoidTKernel,
  linearSigmoidBernoulli: linearSigmoidBernoulliKernel,
  linearSigmoidBernoulliT: linearSigmoidBernoulliTKernel,
  addRowSigmoid: addRowSigmoidKernel,
  addRow: addRowKernel,
  bernoulli: bernoulliKernel,
  relu: reluKernel,
  noisyRelu: noisyReluKernel,
  add: addKernel,
  sub: subKernel,
  mul: mulKernel,
  scale: scaleKernel,
  axpy: axpyKernel,
  colSum: colSumKernel,
  momentumVelocity: momentumVelocityKernel,
  softplusRowSum: softplusRowSumKernel,
  rowSquaredDistance: rowSquaredDistanceKernel,
  rowMax: rowMaxKernel,
  rowSumExp: rowSumExpKernel,
  softmaxNormalize: softmaxNormalizeKernel,
  sigmoidBackward: sigmoidBackwardKernel,
  reluBackward: reluBackwardKernel,
  sumSquaredDiffPartial: sumSquaredDiffPartialKernel,
  sumSquaresPartial: sumSquaresPartialKernel,
} as const;

/** The name of a kernel body in {@link kernelBodies}. */
export type KernelName = keyof typeof kernelBodies;
