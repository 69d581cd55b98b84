/**
 * Restricted Boltzmann machines trained by contrastive divergence (Hinton 2002, 2006), persistent
 * contrastive divergence (Tieleman 2008), with momentum, L2 weight decay and a sparsity penalty as
 * in Hinton's "A practical guide to training RBMs" (2010). Shaped like scikit-learn's
 * `BernoulliRBM`: options kept apart from learned parameters, one method per step of the math.
 */
import type { Backend, Tensor } from '../kernels/backend.js';
import { defaultBackend } from '../kernels/index.js';
import { DbnError, InvalidDataError, InvalidOptionError, ModelFileError, NotFittedError, ShapeMismatchError } from '../errors.js';
import { Random, type RandomSource } from '../random.js';
import { type HostMatrix, type MatrixInput, sliceRows, toHostMatrix, validateOptions } from '../validate.js';
import { type Collective, batchBounds, planEpoch } from './collective.js';
import { readModelFile, requireTensor, writeModelFile, type NamedTensor, type WriteOptions } from './model-file.js';
import { DiscriminativeGradient } from './discriminative.js';
import { SoftmaxGroup } from './softmax-group.js';
import { Workspace, gatherRows, uniformsInto } from './workspace.js';
import {
  type EpochMetrics,
  learningRateAt,
  momentumAt,
  type ResolvedRbmOptions,
  type RbmOptions,
  rbmConstraints,
  resolveRbmOptions,
} from './options.js';

/** Host copies of an RBM's learned parameters. */
export interface RbmParameters {
  /** `nVisible × nHidden`. */
  readonly weights: HostMatrix;
  /** Length `nVisible`. */
  readonly visibleBias: Float32Array;
  /** Length `nHidden`. */
  readonly hiddenBias: Float32Array;
}

/** Progress passed to {@link FitOptions.onBatch} after every minibatch update. */
export interface BatchInfo {
  readonly epoch: number;
  /** 0-based index of the minibatch within the epoch. */
  readonly batch: number;
  readonly batches: number;
  readonly reconstructionError: number;
}

/** Options of {@link Rbm.fit}. */
export interface FitOptions {
  /** Epochs to run now. Default: the model's `epochs` option. */
  readonly epochs?: number;
  /** Held-out rows for the free-energy-gap monitor. */
  readonly validation?: MatrixInput;
  /** Called after every epoch. */
  readonly onEpoch?: (m: EpochMetrics) => void | Promise<void>;
  /** Called after every minibatch update (peer sync hooks in here). */
  readonly onBatch?: (b: BatchInfo) => void | Promise<void>;
  /** Stops training after the current minibatch when aborted. */
  readonly signal?: AbortSignal;
  /**
   * Train as one replica of several (synchronous data-parallel): every minibatch's gradient is
   * summed over the replicas before the update (see {@link Collective}). `batchSize` is then the
   * minibatch size over all replicas together.
   */
  readonly collective?: Collective;
}

/** Options of the sampling methods ({@link Rbm.gibbs}, {@link Rbm.sampleHiddens}, {@link Rbm.sampleVisibles}). */
export interface SampleOptions {
  /** Draw from this generator instead of the model's own (whose stream training continues from). */
  readonly random?: RandomSource;
}

const sampleConstraints = { random: rbmConstraints['random']! } as const;

const fitConstraints = {
  epochs: { kind: 'integer', min: 0 },
  validation: { kind: 'object' },
  onEpoch: { kind: 'function' },
  onBatch: { kind: 'function' },
  signal: { kind: 'object' },
  collective: { kind: 'object' },
} as const;

/** The statistics of one epoch's minibatches. */
interface EpochSums {
  /** Σ over rows of the minibatch reconstruction error (mean squared error per unit). */
  readonly errorSum: number;
  /** Rows trained on (over every replica with a collective). */
  readonly rows: number;
}

/** Rows processed at once by the inference methods. */
const INFERENCE_CHUNK = 1000;

/**
 * A restricted Boltzmann machine with Bernoulli or Gaussian (unit-variance) visible units and
 * Bernoulli or noisy-ReLU hidden units.
 *
 * @example
 * ```ts
 * const rbm = new Rbm({ nVisible: 784, nHidden: 500, seed: 1 });
 * await rbm.fit(digits, { onEpoch: (m) => console.log(m.epoch, m.reconstructionError) });
 * const features = rbm.transform(digits); // rows × 500
 * rbm.save('digits.rbm');
 * ```
 */
export class Rbm {
  /** The resolved options (defaults filled in). */
  readonly options: ResolvedRbmOptions;
  /** The backend every kernel runs on. */
  readonly backend: Backend;
  /** Number of epochs trained so far (by `fit`, or loaded from a file). */
  epochsTrained = 0;
  /** Minibatch updates applied so far. */
  updates = 0;

  private readonly rng: RandomSource;
  private readonly monitorRng: Random;
  private readonly W: Tensor;
  private readonly bv: Tensor;
  private readonly bh: Tensor;
  private readonly vW: Tensor;
  private readonly vbv: Tensor;
  private readonly vbh: Tensor;
  private readonly gW: Tensor;
  private readonly gbv: Tensor;
  private readonly gbh: Tensor;
  private readonly q: Tensor;
  private readonly dq: Tensor;
  private readonly target: Tensor;
  private readonly vmean: Tensor;
  private readonly trainWs = new Map<number, Workspace>();
  private readonly softmax: SoftmaxGroup | undefined;
  private readonly discriminative: DiscriminativeGradient | undefined;
  private labelRows: Tensor | undefined;
  private chain: Tensor | undefined;
  private qInitialized = false;
  private fitted = false;
  private disposed = false;
  private lastYield = 0;

  constructor(options: RbmOptions) {
    validateOptions('Rbm', rbmConstraints, options);
    if (options.nVisible === undefined || options.nHidden === undefined) {
      throw new InvalidOptionError(`The '${options.nVisible === undefined ? 'nVisible' : 'nHidden'}' option of Rbm is required.`);
    }
    const s = options.learningRateSchedule;
    if (s === 'exponential' && options.learningRateDecay !== undefined && !(options.learningRateDecay > 0 && options.learningRateDecay <= 1)) {
      throw new InvalidOptionError(`The 'learningRateDecay' option of Rbm must be a number in (0, 1] with the 'exponential' schedule. Got ${options.learningRateDecay}.`);
    }
    checkSoftmaxUnits(options);
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.options = resolveRbmOptions(options, seed);
    this.backend = options.backend ?? defaultBackend().backend;
    this.rng = options.random ?? new Random(seed);
    this.monitorRng = new Random(seed ^ 0x5bd1e995);
    const { nVisible: nv, nHidden: nh } = this.options;
    const b = this.backend;
    this.W = b.alloc(nv, nh);
    this.bv = b.alloc(1, nv);
    this.bh = b.alloc(1, nh);
    this.vW = b.alloc(nv, nh);
    this.vbv = b.alloc(1, nv);
    this.vbh = b.alloc(1, nh);
    this.gW = b.alloc(nv, nh);
    this.gbv = b.alloc(1, nv);
    this.gbh = b.alloc(1, nh);
    this.q = b.alloc(1, nh);
    this.dq = b.alloc(1, nh);
    this.target = b.alloc(1, nh);
    this.vmean = b.alloc(1, nv);
    b.fill(this.target, this.options.sparsityTarget);
    this.softmax = this.options.softmaxUnits > 0 ? new SoftmaxGroup(b, nv, this.options.softmaxUnits) : undefined;
    const beta = this.options.discriminativeWeight;
    this.discriminative = beta > 0 ? new DiscriminativeGradient(b, nv, nh, this.options.softmaxUnits, beta) : undefined;
    const w0 = new Float32Array(nv * nh);
    this.rng.fillNormal(w0, this.options.initStd);
    b.write(this.W, w0);
  }

  /** The seed this model was created with. */
  get seed(): number {
    return this.options.seed;
  }

  /** Number of visible units (columns of the data). */
  get nVisible(): number {
    return this.options.nVisible;
  }

  /** Number of hidden units (columns of {@link Rbm.transform}'s output). */
  get nHidden(): number {
    return this.options.nHidden;
  }

  /** True once the model has been trained (or loaded). */
  get isFitted(): boolean {
    return this.fitted;
  }

  // ---------------------------------------------------------------- training

  /**
   * Trains for `epochs` epochs of minibatch CD-k / PCD over `data` (`rows × nVisible`; Bernoulli
   * visible units need values in [0, 1]). Resolves with the metrics of every epoch.
   */
  async fit(data: MatrixInput, opts: FitOptions = {}): Promise<EpochMetrics[]> {
    this.assertLive();
    validateOptions('Rbm.fit', fitConstraints, opts);
    const x = this.checkData(data, 'Rbm.fit');
    const valid = opts.validation === undefined ? undefined : this.checkData(opts.validation, 'Rbm.fit', 'validation');
    const epochs = opts.epochs ?? this.options.epochs;
    const history: EpochMetrics[] = [];
    for (let e = 0; e < epochs; e++) {
      if (opts.signal?.aborted) break;
      const epoch = this.epochsTrained;
      const started = performance.now();
      const sums = opts.collective === undefined ? await this.localEpoch(x, epoch, opts) : await this.collectiveEpoch(x, epoch, opts, opts.collective);
      this.epochsTrained++;
      const m: EpochMetrics = {
        epoch,
        reconstructionError: sums.rows > 0 ? sums.errorSum / sums.rows : Number.NaN,
        meanHiddenActivation: this.meanOf(this.q),
        learningRate: learningRateAt(this.options, epoch),
        momentum: momentumAt(this.options, epoch),
        elapsedMs: performance.now() - started,
        samples: sums.rows,
        ...this.monitor(x, valid),
      };
      history.push(m);
      if (opts.onEpoch) await opts.onEpoch(m);
    }
    return history;
  }

  /** One epoch of minibatches of `batchSize` rows over `x`, in this process alone. */
  private async localEpoch(x: HostMatrix, epoch: number, opts: FitOptions): Promise<EpochSums> {
    const bs = Math.min(this.options.batchSize, x.rows);
    const batches = Math.ceil(x.rows / bs);
    const host = this.batchHost(bs);
    const order = this.options.shuffle ? this.rng.permutation(x.rows) : undefined;
    let errorSum = 0;
    let rows = 0;
    for (let bi = 0; bi < batches; bi++) {
      const start = bi * bs;
      const n = Math.min(bs, x.rows - start);
      const err = this.gradient(gatherRows(x, order, start, n, host), false);
      this.applyGradient(epoch, 1);
      errorSum += err * n;
      rows += n;
      if (opts.onBatch) await opts.onBatch({ epoch, batch: bi, batches, reconstructionError: err });
      if (opts.signal?.aborted) break;
      await this.yieldSometimes();
    }
    return { errorSum, rows };
  }

  /**
   * One epoch as a replica (see {@link Collective}): a plan round, one round per minibatch with
   * this replica's share of the rows, and a summary round. Returns the sums over every replica.
   */
  private async collectiveEpoch(x: HostMatrix, epoch: number, opts: FitOptions, collective: Collective): Promise<EpochSums> {
    const { step: first, rounds } = await planEpoch(collective, epoch, x.rows, this.options.batchSize);
    const host = this.batchHost(Math.ceil(x.rows / rounds));
    const order = this.options.shuffle ? this.rng.permutation(x.rows) : undefined;
    const grads = this.gradientBuffers();
    const scalars = new Float64Array(1);
    let errorSum = 0;
    let rows = 0;
    for (let step = first; step < rounds; step++) {
      const { start, end } = batchBounds(x.rows, rounds, step);
      const n = end - start;
      let err = Number.NaN;
      if (n > 0) {
        err = this.gradient(gatherRows(x, order, start, n, host), true);
        this.readGradient(grads);
        errorSum += err * n;
        rows += n;
      } else {
        for (const g of grads) g.fill(0);
      }
      scalars[0] = n;
      await collective.allReduce({ stage: 0, epoch, step }, grads, scalars);
      if (scalars[0]! > 0) {
        this.writeGradient(grads);
        this.applyGradient(epoch, 1 / scalars[0]!);
      }
      if (opts.onBatch) await opts.onBatch({ epoch, batch: step, batches: rounds, reconstructionError: err });
    }
    const sums = Float64Array.of(errorSum, rows);
    await collective.allReduce({ stage: 0, epoch, step: rounds }, [], sums);
    return { errorSum: sums[0]!, rows: sums[1]! };
  }

  /**
   * One CD-k / PCD update on one minibatch (`rows × nVisible`). Returns the minibatch's mean
   * squared reconstruction error (before the update).
   */
  partialFit(batch: MatrixInput): number {
    this.assertLive();
    const x = this.checkData(batch, 'Rbm.partialFit');
    let err = 0;
    for (let start = 0; start < x.rows; start += this.options.batchSize) {
      const n = Math.min(this.options.batchSize, x.rows - start);
      err += this.gradient(sliceRows(x, start, start + n), false) * n;
      this.applyGradient(this.epochsTrained, 1);
    }
    return err / x.rows;
  }

  /**
   * The CD-k / PCD gradient of the minibatch `x` (host rows already validated) into `gW`, `gbv`,
   * `gbh`: the mean over its rows, or the sum (`sum`, for a replica whose sum is combined with
   * others'). Returns the minibatch's mean squared reconstruction error (before any update).
   */
  private gradient(x: HostMatrix, sum: boolean): number {
    const b = this.backend;
    const o = this.options;
    const n = x.rows;
    const ws = this.workspace(n);
    b.write(ws.v0, x.data);
    // positive phase
    this.hiddenMeans(ws.h, ws.pre, ws.v0);
    this.sampleHiddenInto(ws.hs, ws.h, ws.pre, ws);
    const clamp = this.softmax !== undefined && o.labelNegativePhase === 'clamped' ? this.softmax : undefined;
    // CD's first negative step reuses these visible means: clamp them already
    if (clamp !== undefined && !o.persistent) clamp.clampFrom = ws.v0;
    // reconstruction error from one Gibbs step (before the update)
    this.visibleMeans(ws.vn, ws.hs);
    const err = b.sumSquaredDiff(ws.vn, ws.v0) / (n * o.nVisible);
    // persistent chains keep `batchSize` rows, whatever the size of this (last) minibatch
    const neg = o.persistent ? this.workspace(o.batchSize) : ws;
    // negative phase
    let m = n;
    let vNeg: Tensor;
    if (o.persistent) {
      m = o.batchSize;
      if (this.chain === undefined) {
        this.chain = b.alloc(m, o.nHidden);
        if (n === m) b.copy(this.chain, ws.hs);
        else {
          // start the persistent chains from the first rows' hidden samples, repeated
          const hs = new Float32Array(n * o.nHidden);
          b.read(ws.hs, hs);
          const c = new Float32Array(m * o.nHidden);
          for (let i = 0; i < m; i++) c.set(hs.subarray((i % n) * o.nHidden, ((i % n) + 1) * o.nHidden), i * o.nHidden);
          b.write(this.chain, c);
        }
      }
      if (clamp !== undefined) clamp.clampFrom = this.chainLabels(m);
      vNeg = this.gibbsChain(neg, this.chain, o.k, true);
      b.copy(this.chain, neg.hsn);
    } else {
      vNeg = this.gibbsChain(neg, ws.hs, o.k, false, true);
    }
    if (clamp !== undefined) clamp.clampFrom = undefined;
    // gradients
    // positive statistics over the n rows, negative ones over the m chains, each scaled per row
    const pos = sum ? 1 : 1 / n;
    const negScale = sum ? -n / m : -1 / m;
    b.gemm(this.gW, ws.v0, ws.h, { transA: true, alpha: pos });
    b.gemm(this.gW, vNeg, neg.hn, { transA: true, alpha: negScale, beta: 1 });
    b.colSum(this.gbv, ws.v0, pos, 0);
    b.colSum(this.gbv, vNeg, negScale, 1);
    b.colSum(this.gbh, ws.h, pos, 0);
    b.colSum(this.gbh, neg.hn, negScale, 1);
    const d = o.sparsityDecay;
    if (this.qInitialized) b.colSum(this.q, ws.h, (1 - d) / n, d);
    else {
      b.colSum(this.q, ws.h, 1 / n, 0);
      this.qInitialized = true;
    }
    if (o.sparsityCost > 0) {
      // ∂/∂(hidden input) of the cross-entropy between p and q is (q − p): push q towards p
      b.sub(this.dq, this.target, this.q);
      const cost = sum ? o.sparsityCost * n : o.sparsityCost;
      b.axpy(this.gbh, cost, this.dq);
      b.colSum(this.vmean, ws.v0, 1 / n, 0);
      b.gemm(this.gW, this.vmean, this.dq, { transA: true, alpha: cost, beta: 1 });
    }
    this.discriminative?.addTo({ W: this.W, bv: this.bv, bh: this.bh, gW: this.gW, gbv: this.gbv, gbh: this.gbh }, ws.v0, pos);
    return err;
  }

  /** Rows whose label units hold chain `i`'s fixed label `i mod C` (clamped PCD chains). */
  private chainLabels(m: number): Tensor {
    if (this.labelRows === undefined || this.labelRows.rows !== m) {
      if (this.labelRows !== undefined) this.backend.free(this.labelRows);
      const { nVisible: nv, softmaxUnits: c } = this.options;
      const host = new Float32Array(m * nv);
      for (let i = 0; i < m; i++) host[i * nv + nv - c + (i % c)] = 1;
      this.labelRows = this.backend.alloc(m, nv);
      this.backend.write(this.labelRows, host);
    }
    return this.labelRows;
  }

  /** The momentum update of epoch `epoch` from the gradient in `gW`, `gbv`, `gbh`, times `gradScale`. */
  private applyGradient(epoch: number, gradScale: number): void {
    const b = this.backend;
    const o = this.options;
    const learningRate = learningRateAt(o, epoch);
    const momentum = momentumAt(o, epoch);
    b.momentumStep(this.W, this.vW, this.gW, { learningRate, momentum, weightDecay: o.weightDecay, gradScale });
    b.momentumStep(this.bv, this.vbv, this.gbv, { learningRate, momentum, weightDecay: 0, gradScale });
    b.momentumStep(this.bh, this.vbh, this.gbh, { learningRate, momentum, weightDecay: 0, gradScale });
    this.updates++;
    this.fitted = true;
  }

  /** Host buffers shaped like the gradient tensors `[gW, gbv, gbh]`. */
  private gradientBuffers(): Float32Array[] {
    const { nVisible: nv, nHidden: nh } = this.options;
    return [new Float32Array(nv * nh), new Float32Array(nv), new Float32Array(nh)];
  }

  private readGradient(into: readonly Float32Array[]): void {
    this.backend.read(this.gW, into[0]!);
    this.backend.read(this.gbv, into[1]!);
    this.backend.read(this.gbh, into[2]!);
  }

  private writeGradient(from: readonly Float32Array[]): void {
    this.backend.write(this.gW, from[0]!);
    this.backend.write(this.gbv, from[1]!);
    this.backend.write(this.gbh, from[2]!);
  }

  /** A host buffer for minibatches of up to `rows` rows. */
  private batchHost(rows: number): Float32Array {
    return new Float32Array(Math.max(1, rows) * this.options.nVisible);
  }

  /** Lets the event loop turn at most every 50 ms of training. */
  private async yieldSometimes(): Promise<void> {
    if (Date.now() - this.lastYield > 50) {
      await new Promise<void>((r) => setImmediate(r));
      this.lastYield = Date.now();
    }
  }

  /**
   * Runs `k` Gibbs steps h → v → h in `ws`'s negative buffers starting from hidden sample `h0`.
   * Visibles are sampled on every step but the last (mean field on the last, Hinton 2010 §3),
   * or on every step for persistent chains. `ws.vn` may already hold the first step's visible
   * means (`firstDone`). Returns the visible tensor the statistics use; `ws.hn` holds the
   * hidden means and, when `sampleLast`, `ws.hsn` a hidden sample.
   */
  private gibbsChain(ws: Workspace, h0: Tensor, k: number, persistent: boolean, firstDone = false): Tensor {
    let hCur = h0;
    let vUsed: Tensor = ws.vn;
    for (let s = 1; s <= k; s++) {
      const last = s === k;
      if (!(s === 1 && firstDone)) this.visibleMeans(ws.vn, hCur);
      vUsed = ws.vn;
      if (!last || persistent) {
        this.sampleVisibleInto(ws.vs, ws.vn, ws);
        vUsed = ws.vs;
      }
      this.hiddenMeans(ws.hn, ws.preN, vUsed);
      if (!last || persistent) {
        this.sampleHiddenInto(ws.hsn, ws.hn, ws.preN, ws);
        hCur = ws.hsn;
      }
    }
    return vUsed;
  }

  // ------------------------------------------------------- the math, on tensors

  /**
   * `h = E[h | v]`; `pre` receives `vW` (Bernoulli units, unless the backend has the fused
   * `linearSigmoid`, which needs no intermediate) or the pre-activations `vW + b_h` (noisy-ReLU units).
   */
  private hiddenMeans(h: Tensor, pre: Tensor, v: Tensor): void {
    const b = this.backend;
    if (this.options.hidden === 'bernoulli' && b.linearSigmoid !== undefined) {
      b.linearSigmoid(h, v, this.W, this.bh);
      return;
    }
    b.gemm(pre, v, this.W);
    if (this.options.hidden === 'bernoulli') {
      b.addRowSigmoid(h, pre, this.bh);
    } else {
      b.addRow(pre, pre, this.bh);
      b.relu(h, pre);
    }
  }

  /** A hidden sample given the means `h` and pre-activations `pre`. */
  private sampleHiddenInto(out: Tensor, h: Tensor, pre: Tensor, ws: Workspace, rng: RandomSource = this.rng): void {
    const b = this.backend;
    const noise = ws.hostH.subarray(0, out.rows * out.cols);
    if (this.options.hidden === 'bernoulli') {
      uniformsInto(b, ws.noiseH, noise, rng);
      b.bernoulli(out, h, ws.noiseH);
    } else {
      b.write(ws.noiseH, rng.fillNormal(noise));
      b.noisyRelu(out, pre, ws.noiseH);
    }
  }

  /** `v = E[v | h]`: σ(hWᵀ + b_v) for Bernoulli units, hWᵀ + b_v for Gaussian ones. */
  private visibleMeans(v: Tensor, h: Tensor): void {
    const b = this.backend;
    if (this.softmax !== undefined) {
      this.softmax.means(v, h, this.W, this.bv);
      return;
    }
    if (this.options.visible === 'bernoulli' && b.linearSigmoid !== undefined) {
      b.linearSigmoid(v, h, this.W, this.bv, true);
      return;
    }
    b.gemm(v, h, this.W, { transB: true });
    if (this.options.visible === 'bernoulli') b.addRowSigmoid(v, v, this.bv);
    else b.addRow(v, v, this.bv);
  }

  /** A visible sample given the means `v`. */
  private sampleVisibleInto(out: Tensor, v: Tensor, ws: Workspace, rng: RandomSource = this.rng): void {
    const b = this.backend;
    const noise = ws.hostV.subarray(0, out.rows * out.cols);
    if (this.options.visible === 'bernoulli') {
      uniformsInto(b, ws.noiseV, noise, rng);
      b.bernoulli(out, v, ws.noiseV);
      this.softmax?.sample(out, v, rng);
    } else {
      b.write(ws.noiseV, rng.fillNormal(noise));
      b.add(out, v, ws.noiseV);
    }
  }

  // --------------------------------------------------------------- inference

  /** `E[h | v]` for every row of `data` (`rows × nVisible` → `rows × nHidden`). */
  meanHiddens(data: MatrixInput): HostMatrix {
    const x = this.checkData(data, 'Rbm.meanHiddens');
    this.requireFitted('Rbm.meanHiddens');
    return this.mapChunks(x, this.options.nHidden, (ws, out) => {
      this.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.backend.read(ws.h, out);
    });
  }

  /** Features for `data`: the hidden means (as scikit-learn's `transform`). `rows × nHidden`. */
  transform(data: MatrixInput): HostMatrix {
    const x = this.checkData(data, 'Rbm.transform');
    this.requireFitted('Rbm.transform');
    return this.mapChunks(x, this.options.nHidden, (ws, out) => {
      this.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.backend.read(ws.h, out);
    });
  }

  /** A sample of `h ~ p(h | v)` for every row of `data` (`rows × nHidden`), from the model's generator or `opts.random`. */
  sampleHiddens(data: MatrixInput, opts: SampleOptions = {}): HostMatrix {
    const x = this.checkData(data, 'Rbm.sampleHiddens');
    this.requireFitted('Rbm.sampleHiddens');
    const rng = this.samplingSource(opts, 'Rbm.sampleHiddens');
    return this.mapChunks(x, this.options.nHidden, (ws, out) => {
      this.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.sampleHiddenInto(ws.hs, ws.h, ws.pre, ws, rng);
      this.backend.read(ws.hs, out);
    });
  }

  /** `E[v | h]` for every row of `hidden` (`rows × nHidden` → `rows × nVisible`). */
  meanVisibles(hidden: MatrixInput): HostMatrix {
    const h = this.checkHidden(hidden, 'Rbm.meanVisibles');
    this.requireFitted('Rbm.meanVisibles');
    return this.mapHidden(h, (ws, out) => {
      this.visibleMeans(ws.vn, ws.hs);
      this.backend.read(ws.vn, out);
    });
  }

  /** A sample of `v ~ p(v | h)` for every row of `hidden` (`rows × nVisible`), from the model's generator or `opts.random`. */
  sampleVisibles(hidden: MatrixInput, opts: SampleOptions = {}): HostMatrix {
    const h = this.checkHidden(hidden, 'Rbm.sampleVisibles');
    this.requireFitted('Rbm.sampleVisibles');
    const rng = this.samplingSource(opts, 'Rbm.sampleVisibles');
    return this.mapHidden(h, (ws, out) => {
      this.visibleMeans(ws.vn, ws.hs);
      this.sampleVisibleInto(ws.vs, ws.vn, ws, rng);
      this.backend.read(ws.vs, out);
    });
  }

  /**
   * `steps` Gibbs steps v → h → v from every row of `data`: returns the visible sample
   * (`rows × nVisible`). Draws from the model's generator, or from `opts.random` (which leaves
   * the training stream untouched).
   */
  gibbs(data: MatrixInput, steps = 1, opts: SampleOptions = {}): HostMatrix {
    const x = this.checkData(data, 'Rbm.gibbs');
    this.requireFitted('Rbm.gibbs');
    if (!Number.isSafeInteger(steps) || steps < 1) throw new InvalidOptionError(`Argument 'steps' passed to 'Rbm.gibbs' must be an integer >= 1. Got ${steps}.`);
    const rng = this.samplingSource(opts, 'Rbm.gibbs');
    return this.mapChunks(x, this.options.nVisible, (ws, out) => {
      let v = ws.v0;
      for (let s = 0; s < steps; s++) {
        this.hiddenMeans(ws.h, ws.pre, v);
        this.sampleHiddenInto(ws.hs, ws.h, ws.pre, ws, rng);
        this.visibleMeans(ws.vn, ws.hs);
        this.sampleVisibleInto(ws.vs, ws.vn, ws, rng);
        v = ws.vs;
      }
      this.backend.read(v, out);
    });
  }

  /**
   * Free energy `F(v)` of every row (length `rows`): `F(v) = −v·b_v − Σ_j softplus((vW + b_h)_j)`
   * for Bernoulli visible units, `½‖v − b_v‖² − Σ_j softplus(…)` for unit-variance Gaussian ones.
   * Defined for Bernoulli hidden units only.
   */
  freeEnergy(data: MatrixInput): Float64Array {
    this.requireBernoulliHidden('Rbm.freeEnergy');
    const x = this.checkData(data, 'Rbm.freeEnergy');
    this.requireFitted('Rbm.freeEnergy');
    return this.freeEnergyOf(x);
  }

  private freeEnergyOf(x: HostMatrix): Float64Array {
    const b = this.backend;
    const out = new Float64Array(x.rows);
    const sp = new Float32Array(Math.min(INFERENCE_CHUNK, x.rows));
    const lin = new Float32Array(sp.length);
    this.eachChunk(x, (ws, start, n) => {
      b.gemm(ws.pre, ws.v0, this.W);
      b.addRow(ws.pre, ws.pre, this.bh);
      b.softplusRowSum(ws.col1, ws.pre);
      b.read(ws.col1, sp.subarray(0, n));
      if (this.options.visible === 'bernoulli') {
        b.gemm(ws.col2, ws.v0, this.bv, { transB: true });
        b.read(ws.col2, lin.subarray(0, n));
        for (let i = 0; i < n; i++) out[start + i] = -lin[i]! - sp[i]!;
      } else {
        b.rowSquaredDistance(ws.col2, ws.v0, this.bv);
        b.read(ws.col2, lin.subarray(0, n));
        for (let i = 0; i < n; i++) out[start + i] = 0.5 * lin[i]! - sp[i]!;
      }
    });
    return out;
  }

  /**
   * Pseudo-log-likelihood of every row (length `rows`), estimated as scikit-learn does: one
   * visible unit `i` per row chosen at random and flipped, `nVisible · log σ(F(ṽ) − F(v))`.
   * Bernoulli RBMs only (binary data).
   */
  scoreSamples(data: MatrixInput): Float64Array {
    this.requireBernoulliHidden('Rbm.scoreSamples');
    if (this.options.visible !== 'bernoulli') {
      throw new DbnError('Rbm.scoreSamples (pseudo-likelihood) is defined for Bernoulli visible units only.', 'EUNSUPPORTED');
    }
    const x = this.checkData(data, 'Rbm.scoreSamples');
    this.requireFitted('Rbm.scoreSamples');
    return this.pseudoLikelihood(x, this.rng);
  }

  private pseudoLikelihood(x: HostMatrix, rng: RandomSource): Float64Array {
    const flipped = new Float32Array(x.data);
    for (let r = 0; r < x.rows; r++) {
      const k = r * x.cols + rng.int(x.cols);
      flipped[k] = 1 - flipped[k]!;
    }
    const f = this.freeEnergyOf(x);
    const ff = this.freeEnergyOf({ rows: x.rows, cols: x.cols, data: flipped });
    const out = new Float64Array(x.rows);
    for (let i = 0; i < x.rows; i++) out[i] = -x.cols * softplus(-(ff[i]! - f[i]!));
    return out;
  }

  /** Mean squared error between `data` and its mean-field reconstruction `E[v | E[h | v]]`. */
  reconstructionError(data: MatrixInput): number {
    const x = this.checkData(data, 'Rbm.reconstructionError');
    this.requireFitted('Rbm.reconstructionError');
    let sum = 0;
    this.eachChunk(x, (ws) => {
      this.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.visibleMeans(ws.vn, ws.h);
      sum += this.backend.sumSquaredDiff(ws.vn, ws.v0);
    });
    return sum / (x.rows * x.cols);
  }

  // ---------------------------------------------------- parameters and files

  /** Host copies of the learned parameters. */
  getParameters(): RbmParameters {
    this.assertLive();
    const { nVisible: nv, nHidden: nh } = this.options;
    const w = new Float32Array(nv * nh);
    const bv = new Float32Array(nv);
    const bh = new Float32Array(nh);
    this.backend.read(this.W, w);
    this.backend.read(this.bv, bv);
    this.backend.read(this.bh, bh);
    return { weights: { rows: nv, cols: nh, data: w }, visibleBias: bv, hiddenBias: bh };
  }

  /** Replaces the learned parameters (shapes must match; values finite). Marks the model fitted. */
  setParameters(p: RbmParameters): void {
    this.assertLive();
    const { nVisible: nv, nHidden: nh } = this.options;
    const w = toHostMatrix(p.weights, 'Rbm.setParameters', 'weights', { cols: nh });
    if (w.rows !== nv) throw new ShapeMismatchError(`Argument 'weights' passed to 'Rbm.setParameters' must have ${nv} rows, got ${w.rows}.`);
    checkVector(p.visibleBias, nv, 'visibleBias', 'Rbm.setParameters');
    checkVector(p.hiddenBias, nh, 'hiddenBias', 'Rbm.setParameters');
    this.backend.write(this.W, w.data);
    this.backend.write(this.bv, p.visibleBias);
    this.backend.write(this.bh, p.hiddenBias);
    this.fitted = true;
  }

  /**
   * Copies the parameters into caller-owned arrays, allocating nothing: `weights` row-major
   * `nVisible × nHidden`, then the biases. For hot loops (peer training reads the weights at every
   * publication); {@link getParameters} is the allocating form.
   */
  readParametersInto(weights: Float32Array, visibleBias: Float32Array, hiddenBias: Float32Array): void {
    this.assertLive();
    this.checkLengths('Rbm.readParametersInto', weights, visibleBias, hiddenBias);
    this.backend.read(this.W, weights);
    this.backend.read(this.bv, visibleBias);
    this.backend.read(this.bh, hiddenBias);
  }

  /**
   * Overwrites the parameters from host arrays, checking their lengths but not their values —
   * for callers that have checked the values already (peer training writes weights whose every
   * change passed its finiteness guard). Marks the model fitted. {@link setParameters} is the
   * validating form.
   */
  writeParametersTrusted(weights: Float32Array, visibleBias: Float32Array, hiddenBias: Float32Array): void {
    this.assertLive();
    this.checkLengths('Rbm.writeParametersTrusted', weights, visibleBias, hiddenBias);
    this.backend.write(this.W, weights);
    this.backend.write(this.bv, visibleBias);
    this.backend.write(this.bh, hiddenBias);
    this.fitted = true;
  }

  private checkLengths(where: string, weights: Float32Array, visibleBias: Float32Array, hiddenBias: Float32Array): void {
    const { nVisible: nv, nHidden: nh } = this.options;
    const want: [string, Float32Array, number][] = [['weights', weights, nv * nh], ['visibleBias', visibleBias, nv], ['hiddenBias', hiddenBias, nh]];
    for (const [name, a, n] of want) {
      if (!(a instanceof Float32Array) || a.length !== n) {
        throw new ShapeMismatchError(`Argument '${name}' passed to '${where}' must be a Float32Array of ${n} values, got ${a instanceof Float32Array ? `${a.length} values` : typeof a}.`);
      }
    }
  }

  /**
   * Adds `scale · delta` to the parameters (a peer's weight change, see the sync docs). Shapes
   * as in {@link getParameters}.
   */
  addToParameters(delta: RbmParameters, scale: number): void {
    const p = this.getParameters();
    const add = (dst: Float32Array, src: Float32Array): void => {
      for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! + scale * src[i]!;
    };
    if (delta.weights.data.length !== p.weights.data.length || delta.visibleBias.length !== p.visibleBias.length || delta.hiddenBias.length !== p.hiddenBias.length) {
      throw new ShapeMismatchError(`Argument 'delta' passed to 'Rbm.addToParameters' must match the model's ${this.nVisible}x${this.nHidden} shape.`);
    }
    add(p.weights.data, delta.weights.data);
    add(p.visibleBias, delta.visibleBias);
    add(p.hiddenBias, delta.hiddenBias);
    this.setParameters(p);
  }

  /** The header fields and tensors that describe this model (used by {@link save} and by `Dbn`). */
  toTensors(trainingState = false): { header: Record<string, unknown>; tensors: NamedTensor[] } {
    const p = this.getParameters();
    const { nVisible: nv, nHidden: nh } = this.options;
    const tensors: NamedTensor[] = [
      { name: 'weights', rows: nv, cols: nh, data: p.weights.data },
      { name: 'visibleBias', rows: 1, cols: nv, data: p.visibleBias },
      { name: 'hiddenBias', rows: 1, cols: nh, data: p.hiddenBias },
    ];
    if (trainingState) {
      const read = (name: string, t: Tensor): NamedTensor => {
        const data = new Float32Array(t.rows * t.cols);
        this.backend.read(t, data);
        return { name, rows: t.rows, cols: t.cols, data };
      };
      tensors.push(read('velocityWeights', this.vW), read('velocityVisibleBias', this.vbv), read('velocityHiddenBias', this.vbh), read('sparsityEstimate', this.q));
      if (this.chain !== undefined) tensors.push(read('persistentChain', this.chain));
    }
    const { learningRateSchedule, ...rest } = this.options;
    const header: Record<string, unknown> = {
      options: { ...rest, learningRateSchedule: typeof learningRateSchedule === 'function' ? 'constant' : learningRateSchedule },
      epochsTrained: this.epochsTrained,
      updates: this.updates,
      fitted: this.fitted,
    };
    if (trainingState) header['state'] = { rng: this.rng.getState(), monitorRng: this.monitorRng.getState(), qInitialized: this.qInitialized };
    return { header, tensors };
  }

  /**
   * Saves the model (see `model-file.ts` for the format), atomically. With `trainingState`, the
   * velocities, the sparsity estimate, persistent chains and generator state are saved too, so
   * that {@link Rbm.load} + `fit` continues exactly where training stopped.
   */
  save(file: string, opts: WriteOptions & { readonly trainingState?: boolean } = {}): void {
    this.assertLive();
    const { header, tensors } = this.toTensors(opts.trainingState ?? false);
    writeModelFile(file, { kind: 'rbm', library: 'dbn-node', ...header }, tensors, opts);
  }

  /** Loads a model saved by {@link save} onto `backend` (default: {@link defaultBackend}). */
  static load(file: string, opts: { readonly backend?: Backend } = {}): Rbm {
    const mf = readModelFile(file, 'rbm');
    return Rbm.fromTensors(mf.header, mf.tensors, file, opts.backend);
  }

  /** Rebuilds a model from a header and tensors read from a model file (used by `Dbn`). */
  static fromTensors(header: Record<string, unknown>, tensors: ReadonlyMap<string, NamedTensor>, file: string, backend?: Backend): Rbm {
    const opts = header['options'];
    if (typeof opts !== 'object' || opts === null) throw new ModelFileError(file, 'EHEADER', 'header has no "options" object.');
    let rbm: Rbm;
    try {
      const o = opts as Record<string, unknown>;
      const known = Object.fromEntries(Object.entries(o).filter(([k]) => k in rbmConstraints)) as unknown as RbmOptions;
      rbm = new Rbm(backend === undefined ? known : { ...known, backend });
    } catch (err) {
      if (err instanceof InvalidOptionError) throw new ModelFileError(file, 'EHEADER', `invalid options in header: ${err.message}`, { cause: err });
      throw err;
    }
    const mf = { header: header as { kind: string }, tensors };
    const { nVisible: nv, nHidden: nh } = rbm.options;
    rbm.setParameters({
      weights: { rows: nv, cols: nh, data: requireTensor(mf, file, 'weights', nv, nh) },
      visibleBias: requireTensor(mf, file, 'visibleBias', 1, nv),
      hiddenBias: requireTensor(mf, file, 'hiddenBias', 1, nh),
    });
    rbm.fitted = header['fitted'] !== false;
    rbm.epochsTrained = typeof header['epochsTrained'] === 'number' ? header['epochsTrained'] : 0;
    rbm.updates = typeof header['updates'] === 'number' ? header['updates'] : 0;
    const state = header['state'] as { rng?: unknown; monitorRng?: unknown; qInitialized?: unknown } | undefined;
    if (state !== undefined && tensors.has('velocityWeights')) {
      const b = rbm.backend;
      b.write(rbm.vW, requireTensor(mf, file, 'velocityWeights', nv, nh));
      b.write(rbm.vbv, requireTensor(mf, file, 'velocityVisibleBias', 1, nv));
      b.write(rbm.vbh, requireTensor(mf, file, 'velocityHiddenBias', 1, nh));
      b.write(rbm.q, requireTensor(mf, file, 'sparsityEstimate', 1, nh));
      rbm.qInitialized = state.qInitialized === true;
      const chain = tensors.get('persistentChain');
      if (chain !== undefined) {
        rbm.chain = b.alloc(chain.rows, nh);
        b.write(rbm.chain, requireTensor(mf, file, 'persistentChain', chain.rows, nh));
      }
      if (isState(state.rng)) rbm.rng.setState(state.rng);
      if (isState(state.monitorRng)) rbm.monitorRng.setState(state.monitorRng);
    }
    return rbm;
  }

  /** Frees the model's tensors (not the backend, which the caller owns). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const b = this.backend;
    for (const t of [this.W, this.bv, this.bh, this.vW, this.vbv, this.vbh, this.gW, this.gbv, this.gbh, this.q, this.dq, this.target, this.vmean]) b.free(t);
    if (this.chain !== undefined) b.free(this.chain);
    this.discriminative?.free();
    if (this.labelRows !== undefined) b.free(this.labelRows);
    for (const ws of this.trainWs.values()) ws.free();
    this.trainWs.clear();
  }

  /** Calls {@link dispose}: `using` releases the object at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ----------------------------------------------------------------- helpers

  private monitor(x: HostMatrix, valid: HostMatrix | undefined): { pseudoLogLikelihood?: number; freeEnergyGap?: number } {
    const size = this.options.monitorSize;
    if (size === 0 || this.options.hidden !== 'bernoulli') return {};
    const train = sliceRows(x, 0, Math.min(size, x.rows));
    const out: { pseudoLogLikelihood?: number; freeEnergyGap?: number } = {};
    if (this.options.visible === 'bernoulli') out.pseudoLogLikelihood = mean(this.pseudoLikelihood(train, this.monitorRng));
    if (valid !== undefined) {
      const k = Math.min(size, valid.rows, x.rows);
      out.freeEnergyGap = mean(this.freeEnergyOf(sliceRows(valid, 0, k))) - mean(this.freeEnergyOf(sliceRows(x, 0, k)));
    }
    return out;
  }

  private workspace(n: number): Workspace {
    let ws = this.trainWs.get(n);
    if (ws === undefined) {
      ws = new Workspace(this.backend, n, this.options.nVisible, this.options.nHidden);
      this.trainWs.set(n, ws);
    }
    return ws;
  }

  /** Runs `fn` on chunks of `x` uploaded into `ws.v0`, with temporary workspaces. */
  private eachChunk(x: HostMatrix, fn: (ws: Workspace, start: number, n: number) => void): void {
    this.assertLive();
    const temp = new Map<number, Workspace>();
    try {
      for (let start = 0; start < x.rows; start += INFERENCE_CHUNK) {
        const n = Math.min(INFERENCE_CHUNK, x.rows - start);
        let ws = temp.get(n);
        if (ws === undefined) {
          ws = new Workspace(this.backend, n, this.options.nVisible, this.options.nHidden);
          temp.set(n, ws);
        }
        this.backend.write(ws.v0, x.data.subarray(start * x.cols, (start + n) * x.cols));
        fn(ws, start, n);
      }
    } finally {
      for (const ws of temp.values()) ws.free();
    }
  }

  private mapChunks(x: HostMatrix, cols: number, fn: (ws: Workspace, out: Float32Array) => void): HostMatrix {
    const data = new Float32Array(x.rows * cols);
    this.eachChunk(x, (ws, start, n) => fn(ws, data.subarray(start * cols, (start + n) * cols)));
    return { rows: x.rows, cols, data };
  }

  /** Like {@link mapChunks} for hidden-side input, uploaded into `ws.hs`. */
  private mapHidden(h: HostMatrix, fn: (ws: Workspace, out: Float32Array) => void): HostMatrix {
    this.assertLive();
    const nv = this.options.nVisible;
    const data = new Float32Array(h.rows * nv);
    const temp = new Map<number, Workspace>();
    try {
      for (let start = 0; start < h.rows; start += INFERENCE_CHUNK) {
        const n = Math.min(INFERENCE_CHUNK, h.rows - start);
        let ws = temp.get(n);
        if (ws === undefined) {
          ws = new Workspace(this.backend, n, nv, this.options.nHidden);
          temp.set(n, ws);
        }
        this.backend.write(ws.hs, h.data.subarray(start * h.cols, (start + n) * h.cols));
        fn(ws, data.subarray(start * nv, (start + n) * nv));
      }
    } finally {
      for (const ws of temp.values()) ws.free();
    }
    return { rows: h.rows, cols: nv, data };
  }

  private checkData(data: MatrixInput, where: string, arg = 'data'): HostMatrix {
    return toHostMatrix(data, where, arg, { cols: this.options.nVisible, unitInterval: this.options.visible === 'bernoulli' });
  }

  private checkHidden(data: MatrixInput, where: string): HostMatrix {
    return toHostMatrix(data, where, 'hidden', { cols: this.options.nHidden, unitInterval: this.options.hidden === 'bernoulli' });
  }

  private samplingSource(opts: SampleOptions, where: string): RandomSource {
    validateOptions(where, sampleConstraints, opts);
    return opts.random ?? this.rng;
  }

  private requireBernoulliHidden(where: string): void {
    if (this.options.hidden !== 'bernoulli') {
      throw new DbnError(`${where} is defined for Bernoulli hidden units only (noisy-ReLU units have no closed-form free energy).`, 'EUNSUPPORTED');
    }
  }

  private meanOf(t: Tensor): number {
    const host = new Float32Array(t.rows * t.cols);
    this.backend.read(t, host);
    return mean(host);
  }

  private assertLive(): void {
    if (this.disposed) throw new NotFittedError('This Rbm has been disposed.');
  }

  private requireFitted(where: string): void {
    this.assertLive();
    if (!this.fitted) throw new NotFittedError(`${where} needs learned weights: call Rbm.fit (or partialFit, setParameters, Rbm.load) first.`);
  }
}

function checkVector(v: unknown, n: number, arg: string, where: string): asserts v is Float32Array {
  if (!(v instanceof Float32Array) || v.length !== n) {
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must be a Float32Array of length ${n}.`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(v[i]!)) throw new InvalidDataError(`Argument '${arg}' passed to '${where}' must be finite; element ${i} is ${v[i]}.`);
  }
}

function checkSoftmaxUnits(o: RbmOptions): void {
  const s = o.softmaxUnits ?? 0;
  if (s === 0) {
    if ((o.discriminativeWeight ?? 0) > 0) throw new InvalidOptionError(`The 'discriminativeWeight' option of Rbm needs a softmax label group ('softmaxUnits').`);
    return;
  }
  if (s < 2 || s >= o.nVisible) throw new InvalidOptionError(`The 'softmaxUnits' option of Rbm must be 0 or an integer in [2, ${o.nVisible - 1}] (fewer than nVisible). Got ${s}.`);
  if ((o.visible ?? 'bernoulli') !== 'bernoulli') throw new InvalidOptionError(`The 'softmaxUnits' option of Rbm needs Bernoulli visible units. Got visible '${String(o.visible)}'.`);
  if ((o.discriminativeWeight ?? 0) > 0 && (s === 0 || (o.hidden ?? 'bernoulli') !== 'bernoulli')) {
    throw new InvalidOptionError(`The 'discriminativeWeight' option of Rbm needs a softmax label group ('softmaxUnits') and Bernoulli hidden units.`);
  }
}

function isState(x: unknown): x is [number, number, number, number] {
  return Array.isArray(x) && x.length === 4 && x.every((v) => typeof v === 'number');
}

function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return a.length > 0 ? s / a.length : Number.NaN;
}
