/**
 * The conditional distributions of an RBM on backend tensors: `E[h | v]`, `E[v | h]`, samples of
 * both, Gibbs chains and the free energy. Shared by training ({@link CdTrainer}) and inference
 * ({@link Rbm}); holds the learned parameters' tensors but owns no buffers of its own.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import type { RandomSource } from '../random.js';
import type { HostMatrix } from '../validate.js';
import { eachChunk, INFERENCE_CHUNK } from './chunks.js';
import type { ResolvedRbmOptions } from './options.js';
import type { SoftmaxGroup } from './softmax-group.js';
import { type Workspace, uniformsInto } from './workspace.js';

/** The learned parameters of an RBM as backend tensors. */
export interface ParameterTensors {
  /** `nVisible × nHidden`. */
  readonly weights: Tensor;
  /** `1 × nVisible`. */
  readonly visibleBias: Tensor;
  /** `1 × nHidden`. */
  readonly hiddenBias: Tensor;
}

export class Conditionals {
  constructor(
    private readonly backend: Backend,
    private readonly options: ResolvedRbmOptions,
    readonly params: ParameterTensors,
    private readonly softmax: SoftmaxGroup | undefined,
  ) {}

  /**
   * `h = E[h | v]`; `pre` receives `vW` (Bernoulli units, unless the backend has the fused
   * `linearSigmoid`, which needs no intermediate) or the pre-activations `vW + b_h` (noisy-ReLU units).
   */
  hiddenMeans(h: Tensor, pre: Tensor, v: Tensor): void {
    const backend = this.backend;
    const { weights, hiddenBias } = this.params;
    if (this.options.hidden === 'bernoulli' && backend.linearSigmoid !== undefined) {
      backend.linearSigmoid(h, v, weights, hiddenBias);
      return;
    }
    backend.gemm(pre, v, weights);
    if (this.options.hidden === 'bernoulli') {
      backend.addRowSigmoid(h, pre, hiddenBias);
    } else {
      backend.addRow(pre, pre, hiddenBias);
      backend.relu(h, pre);
    }
  }

  /**
   * {@link hiddenMeans} then {@link sampleHidden} into `hs`: in one pass over the product where the
   * backend has `linearSigmoidSample` (the uniforms are drawn first, the same numbers either way).
   */
  hiddenMeansAndSample(h: Tensor, hs: Tensor, pre: Tensor, v: Tensor, ws: Workspace, rng: RandomSource): void {
    const backend = this.backend;
    if (this.options.hidden === 'bernoulli' && backend.linearSigmoidSample !== undefined) {
      uniformsInto(backend, ws.noiseH, ws.hostH.subarray(0, hs.rows * hs.cols), rng);
      const { weights, hiddenBias } = this.params;
      backend.linearSigmoidSample(h, hs, ws.noiseH, v, weights, hiddenBias);
      return;
    }
    this.hiddenMeans(h, pre, v);
    this.sampleHidden(hs, h, pre, ws, rng);
  }

  /** A hidden sample given the means `h` and pre-activations `pre`. */
  sampleHidden(out: Tensor, h: Tensor, pre: Tensor, ws: Workspace, rng: RandomSource): void {
    const backend = this.backend;
    const noise = ws.hostH.subarray(0, out.rows * out.cols);
    if (this.options.hidden === 'bernoulli') {
      uniformsInto(backend, ws.noiseH, noise, rng);
      backend.bernoulli(out, h, ws.noiseH);
    } else {
      backend.write(ws.noiseH, rng.fillNormal(noise));
      backend.noisyRelu(out, pre, ws.noiseH);
    }
  }

  /** `v = E[v | h]`: σ(hWᵀ + b_v) for Bernoulli units, hWᵀ + b_v for Gaussian ones. */
  visibleMeans(v: Tensor, h: Tensor): void {
    const backend = this.backend;
    const { weights, visibleBias } = this.params;
    if (this.softmax !== undefined) {
      this.softmax.means(v, h, weights, visibleBias);
      return;
    }
    if (this.options.visible === 'bernoulli' && backend.linearSigmoid !== undefined) {
      backend.linearSigmoid(v, h, weights, visibleBias, true);
      return;
    }
    backend.gemm(v, h, weights, { transB: true });
    if (this.options.visible === 'bernoulli') backend.addRowSigmoid(v, v, visibleBias);
    else backend.addRow(v, v, visibleBias);
  }

  /**
   * {@link visibleMeans} into `v`, returning `Σ (v − target)²` (the reconstruction error's sum): in
   * one pass over the product where the backend has `linearSigmoidError`.
   */
  visibleMeansError(v: Tensor, h: Tensor, target: Tensor): number {
    const backend = this.backend;
    if (this.softmax === undefined && this.options.visible === 'bernoulli' && backend.linearSigmoidError !== undefined) {
      const { weights, visibleBias } = this.params;
      return backend.linearSigmoidError(v, target, h, weights, visibleBias, true);
    }
    this.visibleMeans(v, h);
    return backend.sumSquaredDiff(v, target);
  }

  /** A visible sample given the means `v`. */
  sampleVisible(out: Tensor, v: Tensor, ws: Workspace, rng: RandomSource): void {
    const backend = this.backend;
    const noise = ws.hostV.subarray(0, out.rows * out.cols);
    if (this.options.visible === 'bernoulli') {
      uniformsInto(backend, ws.noiseV, noise, rng);
      backend.bernoulli(out, v, ws.noiseV);
      this.softmax?.sample(out, v, rng);
    } else {
      backend.write(ws.noiseV, rng.fillNormal(noise));
      backend.add(out, v, ws.noiseV);
    }
  }

  /**
   * Runs `k` Gibbs steps h → v → h in `ws`'s negative buffers starting from hidden sample `h0`.
   * Visibles are sampled on every step but the last (mean field on the last, Hinton 2010 §3),
   * or on every step for persistent chains. `ws.vn` may already hold the first step's visible
   * means (`firstDone`). Returns the visible tensor the statistics use; `ws.hn` holds the
   * hidden means and, for persistent chains, `ws.hsn` a hidden sample.
   */
  gibbsChain(ws: Workspace, h0: Tensor, k: number, persistent: boolean, rng: RandomSource, firstDone = false): Tensor {
    let hidden = h0;
    let visibleUsed: Tensor = ws.vn;
    for (let step = 1; step <= k; step++) {
      const last = step === k;
      if (!(step === 1 && firstDone)) this.visibleMeans(ws.vn, hidden);
      visibleUsed = ws.vn;
      if (!last || persistent) {
        this.sampleVisible(ws.vs, ws.vn, ws, rng);
        visibleUsed = ws.vs;
      }
      if (!last || persistent) {
        this.hiddenMeansAndSample(ws.hn, ws.hsn, ws.preN, visibleUsed, ws, rng);
        hidden = ws.hsn;
      } else {
        this.hiddenMeans(ws.hn, ws.preN, visibleUsed);
      }
    }
    return visibleUsed;
  }

  /**
   * Free energy `F(v)` of every row of `x` (validated host rows): `−v·b_v − Σ_j softplus((vW + b_h)_j)`
   * for Bernoulli visible units, `½‖v − b_v‖² − Σ_j softplus(…)` for unit-variance Gaussian ones.
   */
  freeEnergy(x: HostMatrix): Float64Array {
    const backend = this.backend;
    const { weights, visibleBias, hiddenBias } = this.params;
    const out = new Float64Array(x.rows);
    const softplusSums = new Float32Array(Math.min(INFERENCE_CHUNK, x.rows));
    const visibleTerms = new Float32Array(softplusSums.length);
    const bernoulli = this.options.visible === 'bernoulli';
    eachChunk(backend, x, this.options, (ws, start, n) => {
      backend.gemm(ws.pre, ws.v0, weights);
      backend.addRow(ws.pre, ws.pre, hiddenBias);
      backend.softplusRowSum(ws.col1, ws.pre);
      backend.read(ws.col1, softplusSums.subarray(0, n));
      if (bernoulli) backend.gemm(ws.col2, ws.v0, visibleBias, { transB: true });
      else backend.rowSquaredDistance(ws.col2, ws.v0, visibleBias);
      backend.read(ws.col2, visibleTerms.subarray(0, n));
      for (let i = 0; i < n; i++) {
        out[start + i] = (bernoulli ? -visibleTerms[i]! : 0.5 * visibleTerms[i]!) - softplusSums[i]!;
      }
    });
    return out;
  }
}
