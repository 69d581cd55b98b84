/**
 * The discriminative part of the hybrid objective of Larochelle & Bengio (2008, "Classification
 * using discriminative restricted Boltzmann machines") for an RBM whose last visible units are a
 * softmax label group: `β · ∇ log p(y | x)`, added to the contrastive-divergence gradient of
 * `log p(x, y)`. `p(y | x)` is exact (free energies of the `C` labels):
 * with `o_kj = b_h,j + W_{y_k, j} + Σ_i x_i W_ij` and `p_k = p(k | x)`,
 * - `∂/∂b_k = [y = k] − p_k` (label biases),
 * - `∂/∂b_h,j = σ(o_yj) − Σ_k p_k σ(o_kj) =: d_j`,
 * - `∂/∂W_kj = [y = k] σ(o_yj) − p_k σ(o_kj)` (label rows),
 * - `∂/∂W_ij = x_i d_j` (feature rows).
 * It strengthens the coupling of the label to the hidden units, which label-clamped generation
 * depends on.
 */
import type { Backend, Tensor } from '../kernels/backend.js';

/** The parameter and gradient tensors of the RBM (weights `nVisible × nHidden`, biases rows). */
export interface RbmTensors {
  readonly W: Tensor;
  readonly bv: Tensor;
  readonly bh: Tensor;
  readonly gW: Tensor;
  readonly gbv: Tensor;
  readonly gbh: Tensor;
}

/** Adds `β · ∇ log p(y | x)` of a minibatch to an RBM's gradient; buffers reused across minibatches. */
export class DiscriminativeGradient {
  private pre: Tensor | undefined;
  private d: Tensor | undefined;
  private hostPre = new Float32Array(0);
  private hostD = new Float32Array(0);
  private readonly w: Float32Array;
  private readonly gw: Float32Array;
  private readonly bv: Float32Array;
  private readonly gbv: Float32Array;
  private readonly gbh: Float32Array;

  constructor(
    private readonly b: Backend,
    private readonly nVisible: number,
    private readonly nHidden: number,
    /** Label units (the last `classes` visible units). */
    private readonly classes: number,
    /** β. */
    private readonly weight: number,
  ) {
    this.w = new Float32Array(nVisible * nHidden);
    this.gw = new Float32Array(nVisible * nHidden);
    this.bv = new Float32Array(nVisible);
    this.gbv = new Float32Array(nVisible);
    this.gbh = new Float32Array(nHidden);
  }

  /**
   * Adds the gradient for the rows in `v0` (`n × nVisible`, one-hot labels last), each row's
   * term times `rowScale` (1/n for a mean, 1 for a replica's sum), and β.
   */
  addTo(t: RbmTensors, v0: Tensor, rowScale: number): void {
    const b = this.b;
    const n = v0.rows;
    const nh = this.nHidden;
    const nv = this.nVisible;
    const C = this.classes;
    const nf = nv - C;
    if (this.pre === undefined || this.pre.rows !== n) {
      if (this.pre !== undefined) b.free(this.pre);
      if (this.d !== undefined) b.free(this.d);
      this.pre = b.alloc(n, nh);
      this.d = b.alloc(n, nh);
      this.hostPre = new Float32Array(n * nh);
      this.hostD = new Float32Array(n * nh);
    }
    b.gemm(this.pre, v0, t.W);
    b.addRow(this.pre, this.pre, t.bh);
    b.read(this.pre, this.hostPre);
    b.read(t.W, this.w);
    b.read(t.bv, this.bv);
    const x = new Float32Array(n * nv);
    b.read(v0, x);
    const s = this.weight * rowScale;
    const gLabelW = new Float64Array(C * nh);
    const gLabelB = new Float64Array(C);
    const gHidden = new Float64Array(nh);
    const hiddenGivenLabel = new Float64Array(C * nh);
    const score = new Float64Array(C);
    for (let r = 0; r < n; r++) {
      let y = 0;
      for (let k = 1; k < C; k++) if (x[r * nv + nf + k]! > x[r * nv + nf + y]!) y = k;
      let max = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < C; k++) {
        let f = this.bv[nf + k]!;
        for (let j = 0; j < nh; j++) {
          const z = this.hostPre[r * nh + j]! - this.w[(nf + y) * nh + j]! + this.w[(nf + k) * nh + j]!;
          const sig = 1 / (1 + Math.exp(-z));
          hiddenGivenLabel[k * nh + j] = sig;
          f += z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
        }
        score[k] = f;
        max = Math.max(max, f);
      }
      let sum = 0;
      for (let k = 0; k < C; k++) sum += score[k] = Math.exp(score[k]! - max);
      for (let k = 0; k < C; k++) score[k]! /= sum;
      for (let j = 0; j < nh; j++) {
        let expected = 0;
        for (let k = 0; k < C; k++) expected += score[k]! * hiddenGivenLabel[k * nh + j]!;
        const dj = hiddenGivenLabel[y * nh + j]! - expected;
        this.hostD[r * nh + j] = dj;
        gHidden[j]! += dj;
      }
      for (let k = 0; k < C; k++) {
        gLabelB[k]! += (k === y ? 1 : 0) - score[k]!;
        for (let j = 0; j < nh; j++)
          gLabelW[k * nh + j]! += (k === y ? hiddenGivenLabel[y * nh + j]! : 0) - score[k]! * hiddenGivenLabel[k * nh + j]!;
        // the product vᵀD below also adds D's row to label row y: take it back out
        if (k === y) for (let j = 0; j < nh; j++) gLabelW[k * nh + j]! -= this.hostD[r * nh + j]!;
      }
    }
    b.write(this.d!, this.hostD);
    b.gemm(t.gW, v0, this.d!, { transA: true, alpha: s, beta: 1 });
    b.read(t.gW, this.gw);
    for (let i = 0; i < C * nh; i++) this.gw[nf * nh + i] = this.gw[nf * nh + i]! + s * gLabelW[i]!;
    b.write(t.gW, this.gw);
    b.read(t.gbv, this.gbv);
    for (let k = 0; k < C; k++) this.gbv[nf + k] = this.gbv[nf + k]! + s * gLabelB[k]!;
    b.write(t.gbv, this.gbv);
    b.read(t.gbh, this.gbh);
    for (let j = 0; j < nh; j++) this.gbh[j] = this.gbh[j]! + s * gHidden[j]!;
    b.write(t.gbh, this.gbh);
  }

  free(): void {
    if (this.pre !== undefined) this.b.free(this.pre);
    if (this.d !== undefined) this.b.free(this.d);
  }
}
