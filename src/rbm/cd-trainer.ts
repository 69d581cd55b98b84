/**
 * The training state of an RBM and one step of contrastive divergence on it: CD-k (Hinton 2002) or
 * persistent CD (Tieleman 2008), with momentum, L2 weight decay and the sparsity penalty of Hinton's
 * "A practical guide to training RBMs" (2010), and the discriminative term of a hybrid RBM.
 * Owns the velocities, the gradient buffers, the sparsity estimate, the persistent chains and the
 * per-minibatch-size workspaces; the parameters belong to the {@link Conditionals} it is given.
 */
import type { Backend, CdGradientArgs, Tensor } from '../kernels/backend.js';
import type { RandomSource } from '../random.js';
import type { HostMatrix } from '../validate.js';
import type { Conditionals } from './conditionals.js';
import { DiscriminativeGradient } from './discriminative.js';
import { learningRateAt, momentumAt, type ResolvedRbmOptions } from './options.js';
import type { RoundState } from './round-safety.js';
import type { SoftmaxGroup } from './softmax-group.js';
import { Workspace } from './workspace.js';

/** Tensors shaped like the parameters: `weights` `nVisible × nHidden`, the biases rows. */
export interface ParameterShaped {
  readonly weights: Tensor;
  readonly visibleBias: Tensor;
  readonly hiddenBias: Tensor;
}

export class CdTrainer implements RoundState {
  /** Momentum velocities of the parameters. */
  readonly velocity: ParameterShaped;
  /** The gradient of the last minibatch (written by {@link gradient}). */
  readonly grad: ParameterShaped;
  /** Running estimate `q` of each hidden unit's mean activation (the sparsity penalty's). */
  readonly sparsityEstimate: Tensor;
  /** Persistent chains' hidden samples (`batchSize × nHidden`), created by the first PCD minibatch. */
  chain: Tensor | undefined;
  /** Whether {@link sparsityEstimate} holds an estimate yet (the first minibatch sets it). */
  sparsityInitialized = false;

  private readonly sparsityGrad: Tensor;
  private readonly sparsityTarget: Tensor;
  private readonly visibleMean: Tensor;
  private readonly workspaces = new Map<number, Workspace>();
  private readonly discriminative: DiscriminativeGradient | undefined;
  private labelRows: Tensor | undefined;
  private lastYield = 0;

  constructor(
    readonly backend: Backend,
    private readonly options: ResolvedRbmOptions,
    private readonly units: Conditionals,
    private readonly softmax: SoftmaxGroup | undefined,
  ) {
    const { nVisible: nv, nHidden: nh } = options;
    const shaped = (): ParameterShaped => ({
      weights: backend.alloc(nv, nh),
      visibleBias: backend.alloc(1, nv),
      hiddenBias: backend.alloc(1, nh),
    });
    this.velocity = shaped();
    this.grad = shaped();
    this.sparsityEstimate = backend.alloc(1, nh);
    this.sparsityGrad = backend.alloc(1, nh);
    this.sparsityTarget = backend.alloc(1, nh);
    this.visibleMean = backend.alloc(1, nv);
    backend.fill(this.sparsityTarget, options.sparsityTarget);
    const beta = options.discriminativeWeight;
    this.discriminative = beta > 0 ? new DiscriminativeGradient(backend, nv, nh, options.softmaxUnits, beta) : undefined;
  }

  /**
   * The CD-k / PCD gradient of the minibatch `x` (host rows already validated) into {@link grad}:
   * the mean over its rows, or the sum (`sum`, for a replica whose sum is combined with others').
   * Returns the minibatch's mean squared reconstruction error (before any update).
   */
  gradient(x: HostMatrix, sum: boolean, rng: RandomSource): number {
    return this.statistics(x, sum, rng, undefined);
  }

  /**
   * One training step on the minibatch `x` alone: {@link gradient} (the mean) then
   * {@link applyGradient}`(epoch, 1)`, the update run on each block of the weights' gradient
   * while it is in cache where the backend has the fused kernel (the same bits either way).
   * Returns the minibatch's mean squared reconstruction error (before the update).
   */
  step(x: HostMatrix, epoch: number, rng: RandomSource): number {
    // the update can join the gradient's kernel only when nothing is added to the gradient after it
    const fused = this.backend.cdGradient !== undefined && this.discriminative === undefined && !(this.options.sparsityCost > 0);
    const err = this.statistics(x, false, rng, fused ? this.updateAt(epoch, 1) : undefined);
    if (!fused) this.applyGradient(epoch, 1);
    return err;
  }

  private statistics(x: HostMatrix, sum: boolean, rng: RandomSource, update: CdGradientArgs['update']): number {
    const backend = this.backend;
    const options = this.options;
    const n = x.rows;
    const ws = this.workspace(n);
    // the minibatch read in place where the backend can (it is only read), else copied in
    const v0 = backend.view?.(x.data, n, options.nVisible) ?? ws.v0;
    if (v0 === ws.v0) backend.write(ws.v0, x.data);
    // positive phase
    this.units.hiddenMeansAndSample(ws.h, ws.hs, ws.pre, v0, ws, rng);
    const clamp = this.softmax !== undefined && options.labelNegativePhase === 'clamped' ? this.softmax : undefined;
    // CD's first negative step reuses these visible means: clamp them already
    if (clamp !== undefined && !options.persistent) clamp.clampFrom = v0;
    // reconstruction error from one Gibbs step (before the update)
    const err = this.units.visibleMeansError(ws.vn, ws.hs, v0) / (n * options.nVisible);
    // persistent chains keep `batchSize` rows, whatever the size of this (last) minibatch
    const negative = options.persistent ? this.workspace(options.batchSize) : ws;
    let visibleNegative: Tensor;
    if (options.persistent) {
      const chain = this.persistentChain(ws);
      if (clamp !== undefined) clamp.clampFrom = this.chainLabels(chain.rows);
      visibleNegative = this.units.gibbsChain(negative, chain, options.k, true, rng);
      backend.copy(chain, negative.hsn);
    } else {
      visibleNegative = this.units.gibbsChain(negative, ws.hs, options.k, false, rng, true);
    }
    if (clamp !== undefined) clamp.clampFrom = undefined;
    this.accumulate(ws, v0, visibleNegative, negative.hn, sum, update);
    return err;
  }

  /**
   * The gradient from the positive statistics `v0` and `ws.h` (n rows) and the negative ones (m chains):
   * each scaled per row, plus the sparsity penalty and the discriminative term.
   */
  private accumulate(
    ws: Workspace,
    v0: Tensor,
    visibleNegative: Tensor,
    hiddenNegative: Tensor,
    sum: boolean,
    update: CdGradientArgs['update'],
  ): void {
    const backend = this.backend;
    const { grad } = this;
    const n = v0.rows;
    const m = visibleNegative.rows;
    const pos = sum ? 1 : 1 / n;
    const negScale = sum ? -n / m : -1 / m;
    if (backend.cdGradient !== undefined) {
      const statistics = { v0, h0: ws.h, vn: visibleNegative, hn: hiddenNegative };
      backend.cdGradient({ grad, ...statistics, positiveScale: pos, negativeScale: negScale, ...(update === undefined ? {} : { update }) });
    } else {
      backend.gemm(grad.weights, v0, ws.h, { transA: true, alpha: pos });
      backend.gemm(grad.weights, visibleNegative, hiddenNegative, { transA: true, alpha: negScale, beta: 1 });
      backend.colSum(grad.visibleBias, v0, pos, 0);
      backend.colSum(grad.visibleBias, visibleNegative, negScale, 1);
      backend.colSum(grad.hiddenBias, ws.h, pos, 0);
      backend.colSum(grad.hiddenBias, hiddenNegative, negScale, 1);
    }
    this.addSparsity(ws, v0, sum);
    const params = this.units.params;
    this.discriminative?.addTo(
      { W: params.weights, bv: params.visibleBias, bh: params.hiddenBias, gW: grad.weights, gbv: grad.visibleBias, gbh: grad.hiddenBias },
      v0,
      pos,
    );
  }

  /** Updates the estimate `q` from this minibatch's hidden means and adds the sparsity penalty's gradient. */
  private addSparsity(ws: Workspace, v0: Tensor, sum: boolean): void {
    const backend = this.backend;
    const { sparsityDecay: decay, sparsityCost } = this.options;
    const n = v0.rows;
    if (this.sparsityInitialized) backend.colSum(this.sparsityEstimate, ws.h, (1 - decay) / n, decay);
    else {
      backend.colSum(this.sparsityEstimate, ws.h, 1 / n, 0);
      this.sparsityInitialized = true;
    }
    if (sparsityCost > 0) {
      // ∂/∂(hidden input) of the cross-entropy between p and q is (q − p): push q towards p
      backend.sub(this.sparsityGrad, this.sparsityTarget, this.sparsityEstimate);
      const cost = sum ? sparsityCost * n : sparsityCost;
      backend.axpy(this.grad.hiddenBias, cost, this.sparsityGrad);
      backend.colSum(this.visibleMean, v0, 1 / n, 0);
      backend.gemm(this.grad.weights, this.visibleMean, this.sparsityGrad, { transA: true, alpha: cost, beta: 1 });
    }
  }

  /** The persistent chains; the first call starts them from this minibatch's hidden samples (repeated). */
  private persistentChain(ws: Workspace): Tensor {
    if (this.chain !== undefined) return this.chain;
    const backend = this.backend;
    const nh = this.options.nHidden;
    const chains = this.options.batchSize;
    const n = ws.hs.rows;
    this.chain = backend.alloc(chains, nh);
    if (n === chains) backend.copy(this.chain, ws.hs);
    else {
      const samples = new Float32Array(n * nh);
      backend.read(ws.hs, samples);
      const start = new Float32Array(chains * nh);
      for (let i = 0; i < chains; i++) start.set(samples.subarray((i % n) * nh, ((i % n) + 1) * nh), i * nh);
      backend.write(this.chain, start);
    }
    return this.chain;
  }

  /** Rows whose label units hold chain `i`'s fixed label `i mod C` (clamped PCD chains). */
  private chainLabels(chains: number): Tensor {
    if (this.labelRows === undefined || this.labelRows.rows !== chains) {
      if (this.labelRows !== undefined) this.backend.free(this.labelRows);
      const { nVisible: nv, softmaxUnits: classes } = this.options;
      const host = new Float32Array(chains * nv);
      for (let i = 0; i < chains; i++) host[i * nv + nv - classes + (i % classes)] = 1;
      this.labelRows = this.backend.alloc(chains, nv);
      this.backend.write(this.labelRows, host);
    }
    return this.labelRows;
  }

  /** The momentum update of epoch `epoch` from the gradient in {@link grad}, times `gradScale`. */
  applyGradient(epoch: number, gradScale: number): void {
    const backend = this.backend;
    const { params, velocity, options: step } = this.updateAt(epoch, gradScale);
    backend.momentumStep(params.weights, velocity.weights, this.grad.weights, step);
    backend.momentumStep(params.visibleBias, velocity.visibleBias, this.grad.visibleBias, { ...step, weightDecay: 0 });
    backend.momentumStep(params.hiddenBias, velocity.hiddenBias, this.grad.hiddenBias, { ...step, weightDecay: 0 });
  }

  /** The momentum update of epoch `epoch` times `gradScale` (weight decay: the weights'). */
  private updateAt(epoch: number, gradScale: number): NonNullable<CdGradientArgs['update']> {
    const options = this.options;
    const learningRate = learningRateAt(options, epoch);
    const momentum = momentumAt(options, epoch);
    return {
      params: this.units.params,
      velocity: this.velocity,
      options: { learningRate, momentum, gradScale, weightDecay: options.weightDecay },
    };
  }

  /** Host buffers shaped like the gradient, in the order `[weights, visibleBias, hiddenBias]`. */
  gradientBuffers(): Float32Array[] {
    const { nVisible: nv, nHidden: nh } = this.options;
    return [new Float32Array(nv * nh), new Float32Array(nv), new Float32Array(nh)];
  }

  readGradient(into: readonly Float32Array[]): void {
    this.backend.read(this.grad.weights, into[0]!);
    this.backend.read(this.grad.visibleBias, into[1]!);
    this.backend.read(this.grad.hiddenBias, into[2]!);
  }

  writeGradient(from: readonly Float32Array[]): void {
    this.backend.write(this.grad.weights, from[0]!);
    this.backend.write(this.grad.visibleBias, from[1]!);
    this.backend.write(this.grad.hiddenBias, from[2]!);
  }

  /** The round-safety state ({@link RoundState}): `[weights, visibleBias, hiddenBias]` then their velocities. */
  stateTensors(): Tensor[] {
    const { params } = this.units;
    const v = this.velocity;
    return [params.weights, params.visibleBias, params.hiddenBias, v.weights, v.visibleBias, v.hiddenBias];
  }

  weightTensors(): { weight: Tensor; gradient: Tensor }[] {
    return [{ weight: this.units.params.weights, gradient: this.grad.weights }];
  }

  /** The mean of the sparsity estimate `q`: the mean hidden activation an epoch reports. */
  meanHiddenActivation(): number {
    const host = new Float32Array(this.options.nHidden);
    this.backend.read(this.sparsityEstimate, host);
    let total = 0;
    for (const value of host) total += value;
    return host.length > 0 ? total / host.length : Number.NaN;
  }

  /** Lets the event loop turn at most every 50 ms of training. */
  async yieldSometimes(): Promise<void> {
    if (Date.now() - this.lastYield > 50) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.lastYield = Date.now();
    }
  }

  /** Frees every tensor this trainer owns. */
  free(): void {
    const backend = this.backend;
    for (const group of [this.velocity, this.grad]) {
      for (const t of [group.weights, group.visibleBias, group.hiddenBias]) backend.free(t);
    }
    for (const t of [this.sparsityEstimate, this.sparsityGrad, this.sparsityTarget, this.visibleMean]) backend.free(t);
    if (this.chain !== undefined) backend.free(this.chain);
    this.discriminative?.free();
    if (this.labelRows !== undefined) backend.free(this.labelRows);
    for (const ws of this.workspaces.values()) ws.free();
    this.workspaces.clear();
  }

  private workspace(n: number): Workspace {
    let ws = this.workspaces.get(n);
    if (ws === undefined) {
      ws = new Workspace(this.backend, n, this.options.nVisible, this.options.nHidden);
      this.workspaces.set(n, ws);
    }
    return ws;
  }
}
