/**
 * A softmax group among an RBM's visible units (Hinton, Osindero & Teh 2006, the label units of
 * the top-level associative memory): the last `size` visible units are one K-way unit — their
 * means are a softmax of their inputs and a sample switches exactly one of them on. The other
 * visible units stay logistic. The energy, and so the free energy and the gradient, are the
 * usual ones; only the conditional `p(v | h)` changes, so training goes through the same
 * `gradient()` / `applyGradient()` path as any RBM.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import type { RandomSource } from '../random.js';

/** Host-side conditional of a visible layer whose last `size` units form one softmax group. */
export class SoftmaxGroup {
  private host = new Float32Array(0);
  private draws = new Float32Array(0);
  private clampHost = new Float32Array(0);
  /**
   * While set, the group is clamped: means and samples take its units from these rows
   * (`rows × nVisible`, one-hot in the group's columns) — the negative phase of training with
   * the labels clamped (`labelNegativePhase: 'clamped'`).
   */
  clampFrom: Tensor | undefined;

  constructor(
    private readonly backend: Backend,
    /** Visible units in all (`nVisible`). */
    readonly nVisible: number,
    /** Units of the group (the last `size` visible units). */
    readonly size: number,
  ) {}

  /** First visible unit of the group. */
  get start(): number {
    return this.nVisible - this.size;
  }

  /**
   * `v = E[v | h]` (`rows × nVisible`): σ of `hWᵀ + b_v` for the logistic units, the softmax of
   * it over the group.
   */
  means(v: Tensor, h: Tensor, weights: Tensor, visibleBias: Tensor): void {
    const b = this.backend;
    b.gemm(v, h, weights, { transB: true });
    b.addRow(v, v, visibleBias);
    const host = this.hostFor(v);
    b.read(v, host);
    softmaxGroupMeansInPlace(host, v.rows, this.nVisible, this.size);
    this.applyClamp(host, v.rows);
    b.write(v, host);
  }

  /**
   * Replaces the group's units of the sample `out` (`rows × nVisible`, the logistic units
   * already sampled) with a one-hot draw from the group's means in `v`: one uniform per row.
   */
  sample(out: Tensor, v: Tensor, rng: RandomSource): void {
    const b = this.backend;
    const rows = out.rows;
    if (this.clampFrom !== undefined) {
      const host = this.hostFor(out);
      b.read(out, host);
      this.applyClamp(host, rows);
      b.write(out, host);
      return;
    }
    if (this.draws.length < rows) this.draws = new Float32Array(rows);
    const u = rng.fillUniform(this.draws.subarray(0, rows));
    const means = this.hostFor(v);
    b.read(v, means);
    const probs = new Float32Array(rows * this.size);
    for (let r = 0; r < rows; r++) probs.set(means.subarray(r * this.nVisible + this.start, (r + 1) * this.nVisible), r * this.size);
    b.read(out, means);
    for (let r = 0; r < rows; r++) {
      const k = categorical(probs, r * this.size, this.size, u[r]!);
      const row = r * this.nVisible + this.start;
      for (let j = 0; j < this.size; j++) means[row + j] = j === k ? 1 : 0;
    }
    b.write(out, means);
  }

  /** Copies the group's columns of {@link clampFrom} into `host` (`rows × nVisible`), if clamped. */
  private applyClamp(host: Float32Array, rows: number): void {
    const from = this.clampFrom;
    if (from === undefined) return;
    const n = from.rows * from.cols;
    if (this.clampHost.length < n) this.clampHost = new Float32Array(n);
    const src = this.clampHost.subarray(0, n);
    this.backend.read(from, src);
    for (let r = 0; r < rows; r++) {
      const offset = r * this.nVisible + this.start;
      host.set(src.subarray(offset, offset + this.size), offset);
    }
  }

  private hostFor(t: Tensor): Float32Array {
    const n = t.rows * t.cols;
    if (this.host.length < n) this.host = new Float32Array(n);
    return this.host.subarray(0, n);
  }
}

/**
 * Turns the pre-activations in `x` (`rows × cols`) into visible means: the logistic σ for the
 * first `cols − size` columns, a softmax (max subtracted) over the last `size`.
 */
export function softmaxGroupMeansInPlace(x: Float32Array, rows: number, cols: number, size: number): void {
  const start = cols - size;
  for (let r = 0; r < rows; r++) {
    const offset = r * cols;
    for (let i = 0; i < start; i++) x[offset + i] = 1 / (1 + Math.exp(-x[offset + i]!));
    let max = Number.NEGATIVE_INFINITY;
    for (let i = start; i < cols; i++) max = Math.max(max, x[offset + i]!);
    let sum = 0;
    for (let i = start; i < cols; i++) {
      const e = Math.exp(x[offset + i]! - max);
      x[offset + i] = e;
      sum += e;
    }
    for (let i = start; i < cols; i++) x[offset + i] = x[offset + i]! / sum;
  }
}

/** The index `k` with `Σ_{j<k} p_j ≤ u < Σ_{j≤k} p_j` among `p[offset .. offset+n)` (the last one if rounding leaves `u` above the sum). */
export function categorical(p: ArrayLike<number>, offset: number, n: number, u: number): number {
  let acc = 0;
  for (let j = 0; j < n - 1; j++) {
    acc += p[offset + j]!;
    if (u < acc) return j;
  }
  return n - 1;
}
