/**
 * Restricted Boltzmann machines trained by contrastive divergence (Hinton 2002, 2006), persistent
 * contrastive divergence (Tieleman 2008), with momentum, L2 weight decay and a sparsity penalty as
 * in Hinton's "A practical guide to training RBMs" (2010). Shaped like scikit-learn's
 * `BernoulliRBM`: options kept apart from learned parameters, one method per step of the math.
 */
import type { Backend } from '../kernels/backend.js';
import { defaultBackend } from '../kernels/index.js';
import { DbnError, InvalidDataError, InvalidOptionError, NotFittedError, ShapeMismatchError } from '../errors.js';
import { Random, type RandomSource } from '../random.js';
import { backendScan, type HostMatrix, type MatrixInput, sliceRows, toHostMatrix, validateOptions } from '../validate.js';
import { CdTrainer } from './cd-trainer.js';
import { eachChunk, mapChunks, mapHidden } from './chunks.js';
import type { Collective } from './collective.js';
import { Conditionals } from './conditionals.js';
import { type BatchInfo, collectiveEpoch, type EpochContext, localEpoch } from './epochs.js';
import { readModelFile, writeModelFile, type NamedTensor, type WriteOptions } from './model-file.js';
import { createFromHeader, modelTensors, readParameters, readProgress, restoreTrainingState, type RbmParameters } from './serialization.js';
import { SoftmaxGroup } from './softmax-group.js';
import {
  type EpochMetrics,
  learningRateAt,
  momentumAt,
  type ResolvedRbmOptions,
  type RbmOptions,
  rbmConstraints,
  resolveRbmOptions,
} from './options.js';
import type { Workspace } from './workspace.js';

export type { BatchInfo } from './epochs.js';
export type { RbmParameters } from './serialization.js';
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
  private readonly units: Conditionals;
  private readonly trainer: CdTrainer;
  private fitted = false;
  private disposed = false;

  constructor(options: RbmOptions) {
    validateOptions('Rbm', rbmConstraints, options);
    if (options.nVisible === undefined || options.nHidden === undefined) {
      throw new InvalidOptionError(`The '${options.nVisible === undefined ? 'nVisible' : 'nHidden'}' option of Rbm is required.`);
    }
    const decay = options.learningRateDecay;
    if (options.learningRateSchedule === 'exponential' && decay !== undefined && !(decay > 0 && decay <= 1)) {
      throw new InvalidOptionError(
        `The 'learningRateDecay' option of Rbm must be a number in (0, 1] with the 'exponential' schedule. Got ${decay}.`,
      );
    }
    checkSoftmaxUnits(options);
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.options = resolveRbmOptions(options, seed);
    const backend = (this.backend = options.backend ?? defaultBackend().backend);
    this.rng = options.random ?? new Random(seed);
    this.monitorRng = new Random(seed ^ 0x5bd1e995);
    const { nVisible: nv, nHidden: nh, softmaxUnits } = this.options;
    const params = { weights: backend.alloc(nv, nh), visibleBias: backend.alloc(1, nv), hiddenBias: backend.alloc(1, nh) };
    const softmax = softmaxUnits > 0 ? new SoftmaxGroup(backend, nv, softmaxUnits) : undefined;
    this.units = new Conditionals(backend, this.options, params, softmax);
    this.trainer = new CdTrainer(backend, this.options, this.units, softmax);
    const initialWeights = new Float32Array(nv * nh);
    this.rng.fillNormal(initialWeights, this.options.initStd);
    backend.write(params.weights, initialWeights);
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
    const context = this.epochContext(opts);
    const history: EpochMetrics[] = [];
    for (let e = 0; e < epochs; e++) {
      if (opts.signal?.aborted) break;
      const epoch = this.epochsTrained;
      const started = performance.now();
      const sums =
        opts.collective === undefined ? await localEpoch(context, x, epoch) : await collectiveEpoch(context, x, epoch, opts.collective);
      this.epochsTrained++;
      const metrics: EpochMetrics = {
        epoch,
        reconstructionError: sums.rows > 0 ? sums.errorSum / sums.rows : Number.NaN,
        meanHiddenActivation: this.trainer.meanHiddenActivation(),
        learningRate: learningRateAt(this.options, epoch),
        momentum: momentumAt(this.options, epoch),
        elapsedMs: performance.now() - started,
        samples: sums.rows,
        ...this.monitor(x, valid),
      };
      history.push(metrics);
      if (opts.onEpoch) await opts.onEpoch(metrics);
    }
    return history;
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
      err += this.stepOn(sliceRows(x, start, start + n), this.epochsTrained) * n;
    }
    return err / x.rows;
  }

  private epochContext(opts: FitOptions): EpochContext {
    return {
      options: this.options,
      rng: this.rng,
      trainer: this.trainer,
      apply: (epoch, gradScale) => this.applyGradient(epoch, gradScale),
      step: (x, epoch) => this.stepOn(x, epoch),
      onBatch: opts.onBatch,
      signal: opts.signal,
    };
  }

  /** The momentum update of epoch `epoch` from the trainer's gradient times `gradScale`; counts it. */
  private applyGradient(epoch: number, gradScale: number): void {
    this.trainer.applyGradient(epoch, gradScale);
    this.updates++;
    this.fitted = true;
  }

  /** One counted training step on the minibatch `x` alone (gradient and update). */
  private stepOn(x: HostMatrix, epoch: number): number {
    const err = this.trainer.step(x, epoch, this.rng);
    this.updates++;
    this.fitted = true;
    return err;
  }

  // --------------------------------------------------------------- inference

  /** Features for `data`: `E[h | v]` for every row (as scikit-learn's `transform`), `rows × nVisible` → `rows × nHidden`. */
  transform(data: MatrixInput): HostMatrix {
    return this.hiddenMeansOf(data, 'Rbm.transform');
  }

  /**
   * `E[h | v]` for every row of `data`: the same as {@link transform}.
   * @deprecated Use {@link transform}; this alias will be removed in a later version.
   */
  meanHiddens(data: MatrixInput): HostMatrix {
    return this.hiddenMeansOf(data, 'Rbm.meanHiddens');
  }

  /**
   * {@link transform} written over `data`'s own array (for a layer with as many hidden as visible
   * units): no new `rows × nHidden` array. `Dbn.pretrain` passes the features of the layer below
   * through its layers this way; the caller must own `data` and read it no more.
   * @internal
   */
  transformInPlace(data: HostMatrix): HostMatrix {
    return this.hiddenMeansOf(data, 'Rbm.transform', this.options.nHidden === this.options.nVisible);
  }

  private hiddenMeansOf(data: MatrixInput, where: string, overwrite = false): HostMatrix {
    const x = this.checkData(data, where);
    this.requireFitted(where);
    const fn = (ws: Workspace, out: Float32Array): void => {
      this.units.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.backend.read(ws.h, out);
    };
    return mapChunks(this.backend, x, this.options, this.options.nHidden, fn, overwrite);
  }

  /** A sample of `h ~ p(h | v)` for every row of `data` (`rows × nHidden`), from the model's generator or `opts.random`. */
  sampleHiddens(data: MatrixInput, opts: SampleOptions = {}): HostMatrix {
    const x = this.checkData(data, 'Rbm.sampleHiddens');
    this.requireFitted('Rbm.sampleHiddens');
    const rng = this.samplingSource(opts, 'Rbm.sampleHiddens');
    return mapChunks(this.backend, x, this.options, this.options.nHidden, (ws, out) => {
      this.units.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.units.sampleHidden(ws.hs, ws.h, ws.pre, ws, rng);
      this.backend.read(ws.hs, out);
    });
  }

  /** `E[v | h]` for every row of `hidden` (`rows × nHidden` → `rows × nVisible`). */
  meanVisibles(hidden: MatrixInput): HostMatrix {
    const h = this.checkHidden(hidden, 'Rbm.meanVisibles');
    this.requireFitted('Rbm.meanVisibles');
    return mapHidden(this.backend, h, this.options, (ws, out) => {
      this.units.visibleMeans(ws.vn, ws.hs);
      this.backend.read(ws.vn, out);
    });
  }

  /** A sample of `v ~ p(v | h)` for every row of `hidden` (`rows × nVisible`), from the model's generator or `opts.random`. */
  sampleVisibles(hidden: MatrixInput, opts: SampleOptions = {}): HostMatrix {
    const h = this.checkHidden(hidden, 'Rbm.sampleVisibles');
    this.requireFitted('Rbm.sampleVisibles');
    const rng = this.samplingSource(opts, 'Rbm.sampleVisibles');
    return mapHidden(this.backend, h, this.options, (ws, out) => {
      this.units.visibleMeans(ws.vn, ws.hs);
      this.units.sampleVisible(ws.vs, ws.vn, ws, rng);
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
    if (!Number.isSafeInteger(steps) || steps < 1)
      throw new InvalidOptionError(`Argument 'steps' passed to 'Rbm.gibbs' must be an integer >= 1. Got ${steps}.`);
    const rng = this.samplingSource(opts, 'Rbm.gibbs');
    return mapChunks(this.backend, x, this.options, this.options.nVisible, (ws, out) => {
      let visible = ws.v0;
      for (let step = 0; step < steps; step++) {
        this.units.hiddenMeans(ws.h, ws.pre, visible);
        this.units.sampleHidden(ws.hs, ws.h, ws.pre, ws, rng);
        this.units.visibleMeans(ws.vn, ws.hs);
        this.units.sampleVisible(ws.vs, ws.vn, ws, rng);
        visible = ws.vs;
      }
      this.backend.read(visible, out);
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
    return this.units.freeEnergy(x);
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
    for (let row = 0; row < x.rows; row++) {
      const at = row * x.cols + rng.int(x.cols);
      flipped[at] = 1 - flipped[at]!;
    }
    const energy = this.units.freeEnergy(x);
    const flippedEnergy = this.units.freeEnergy({ rows: x.rows, cols: x.cols, data: flipped });
    const out = new Float64Array(x.rows);
    for (let i = 0; i < x.rows; i++) out[i] = -x.cols * softplus(-(flippedEnergy[i]! - energy[i]!));
    return out;
  }

  /** Mean squared error between `data` and its mean-field reconstruction `E[v | E[h | v]]`. */
  reconstructionError(data: MatrixInput): number {
    const x = this.checkData(data, 'Rbm.reconstructionError');
    this.requireFitted('Rbm.reconstructionError');
    let sum = 0;
    eachChunk(this.backend, x, this.options, (ws) => {
      this.units.hiddenMeans(ws.h, ws.pre, ws.v0);
      this.units.visibleMeans(ws.vn, ws.h);
      sum += this.backend.sumSquaredDiff(ws.vn, ws.v0);
    });
    return sum / (x.rows * x.cols);
  }

  // ---------------------------------------------------- parameters and files

  /** Host copies of the learned parameters. */
  getParameters(): RbmParameters {
    this.assertLive();
    const { nVisible: nv, nHidden: nh } = this.options;
    const weights = new Float32Array(nv * nh);
    const visibleBias = new Float32Array(nv);
    const hiddenBias = new Float32Array(nh);
    this.readParametersInto(weights, visibleBias, hiddenBias);
    return { weights: { rows: nv, cols: nh, data: weights }, visibleBias, hiddenBias };
  }

  /** Replaces the learned parameters (shapes must match; values finite). Marks the model fitted. */
  setParameters(parameters: RbmParameters): void {
    this.assertLive();
    const { nVisible: nv, nHidden: nh } = this.options;
    const weights = toHostMatrix(parameters.weights, 'Rbm.setParameters', 'weights', { cols: nh });
    if (weights.rows !== nv)
      throw new ShapeMismatchError(`Argument 'weights' passed to 'Rbm.setParameters' must have ${nv} rows, got ${weights.rows}.`);
    checkVector(parameters.visibleBias, nv, 'visibleBias', 'Rbm.setParameters');
    checkVector(parameters.hiddenBias, nh, 'hiddenBias', 'Rbm.setParameters');
    this.writeParameters(weights.data, parameters.visibleBias, parameters.hiddenBias);
  }

  /**
   * Copies the parameters into caller-owned arrays, allocating nothing: `weights` row-major
   * `nVisible × nHidden`, then the biases. For hot loops (peer training reads the weights at every
   * publication); {@link getParameters} is the allocating form.
   */
  readParametersInto(weights: Float32Array, visibleBias: Float32Array, hiddenBias: Float32Array): void {
    this.assertLive();
    this.checkLengths('Rbm.readParametersInto', weights, visibleBias, hiddenBias);
    const params = this.units.params;
    this.backend.read(params.weights, weights);
    this.backend.read(params.visibleBias, visibleBias);
    this.backend.read(params.hiddenBias, hiddenBias);
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
    this.writeParameters(weights, visibleBias, hiddenBias);
  }

  private writeParameters(weights: Float32Array, visibleBias: Float32Array, hiddenBias: Float32Array): void {
    const params = this.units.params;
    this.backend.write(params.weights, weights);
    this.backend.write(params.visibleBias, visibleBias);
    this.backend.write(params.hiddenBias, hiddenBias);
    this.fitted = true;
  }

  private checkLengths(where: string, weights: Float32Array, visibleBias: Float32Array, hiddenBias: Float32Array): void {
    const { nVisible: nv, nHidden: nh } = this.options;
    const want: [string, Float32Array, number][] = [
      ['weights', weights, nv * nh],
      ['visibleBias', visibleBias, nv],
      ['hiddenBias', hiddenBias, nh],
    ];
    for (const [name, array, length] of want) {
      if (!(array instanceof Float32Array) || array.length !== length) {
        throw new ShapeMismatchError(
          `Argument '${name}' passed to '${where}' must be a Float32Array of ${length} values, got ${array instanceof Float32Array ? `${array.length} values` : typeof array}.`,
        );
      }
    }
  }

  /** The header fields and tensors that describe this model (used by {@link save} and by `Dbn`). */
  toTensors(trainingState = false): { header: Record<string, unknown>; tensors: NamedTensor[] } {
    const progress = { epochsTrained: this.epochsTrained, updates: this.updates, fitted: this.fitted };
    return modelTensors(this.options, this.getParameters(), progress, trainingState ? this.trainingParts() : undefined);
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
    const modelFile = readModelFile(file, 'rbm');
    return Rbm.fromTensors(modelFile.header, modelFile.tensors, file, opts.backend);
  }

  /** Rebuilds a model from a header and tensors read from a model file (used by `Dbn`). */
  static fromTensors(header: Record<string, unknown>, tensors: ReadonlyMap<string, NamedTensor>, file: string, backend?: Backend): Rbm {
    const rbm = createFromHeader(header, file, (options) => new Rbm(backend === undefined ? options : { ...options, backend }));
    rbm.setParameters(readParameters(tensors, file, rbm.options));
    const progress = readProgress(header);
    rbm.fitted = progress.fitted;
    rbm.epochsTrained = progress.epochsTrained;
    rbm.updates = progress.updates;
    restoreTrainingState(rbm.trainingParts(), rbm.options, header, tensors, file);
    return rbm;
  }

  /** Frees the model's tensors (not the backend, which the caller owns). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const params = this.units.params;
    for (const t of [params.weights, params.visibleBias, params.hiddenBias]) this.backend.free(t);
    this.trainer.free();
  }

  /** Calls {@link dispose}: `using` releases the object at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ----------------------------------------------------------------- helpers

  private trainingParts(): { backend: Backend; trainer: CdTrainer; rng: RandomSource; monitorRng: RandomSource } {
    return { backend: this.backend, trainer: this.trainer, rng: this.rng, monitorRng: this.monitorRng };
  }

  private monitor(x: HostMatrix, valid: HostMatrix | undefined): { pseudoLogLikelihood?: number; freeEnergyGap?: number } {
    const size = this.options.monitorSize;
    if (size === 0 || this.options.hidden !== 'bernoulli') return {};
    const train = sliceRows(x, 0, Math.min(size, x.rows));
    const out: { pseudoLogLikelihood?: number; freeEnergyGap?: number } = {};
    if (this.options.visible === 'bernoulli') out.pseudoLogLikelihood = mean(this.pseudoLikelihood(train, this.monitorRng));
    if (valid !== undefined) {
      const rows = Math.min(size, valid.rows, x.rows);
      out.freeEnergyGap = mean(this.units.freeEnergy(sliceRows(valid, 0, rows))) - mean(this.units.freeEnergy(sliceRows(x, 0, rows)));
    }
    return out;
  }

  private checkData(data: MatrixInput, where: string, arg = 'data'): HostMatrix {
    this.assertLive();
    const unitInterval = this.options.visible === 'bernoulli';
    return toHostMatrix(data, where, arg, { cols: this.options.nVisible, unitInterval, ...backendScan(this.backend) });
  }

  private checkHidden(data: MatrixInput, where: string): HostMatrix {
    this.assertLive();
    const unitInterval = this.options.hidden === 'bernoulli';
    return toHostMatrix(data, where, 'hidden', { cols: this.options.nHidden, unitInterval, ...backendScan(this.backend) });
  }

  private samplingSource(opts: SampleOptions, where: string): RandomSource {
    validateOptions(where, sampleConstraints, opts);
    return opts.random ?? this.rng;
  }

  private requireBernoulliHidden(where: string): void {
    if (this.options.hidden !== 'bernoulli') {
      throw new DbnError(
        `${where} is defined for Bernoulli hidden units only (noisy-ReLU units have no closed-form free energy).`,
        'EUNSUPPORTED',
      );
    }
  }

  private assertLive(): void {
    if (this.disposed) throw new NotFittedError('This Rbm has been disposed.');
  }

  private requireFitted(where: string): void {
    this.assertLive();
    if (!this.fitted)
      throw new NotFittedError(`${where} needs learned weights: call Rbm.fit (or partialFit, setParameters, Rbm.load) first.`);
  }
}

function checkVector(v: unknown, n: number, arg: string, where: string): asserts v is Float32Array {
  if (!(v instanceof Float32Array) || v.length !== n) {
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must be a Float32Array of length ${n}.`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(v[i]!))
      throw new InvalidDataError(`Argument '${arg}' passed to '${where}' must be finite; element ${i} is ${v[i]}.`);
  }
}

function checkSoftmaxUnits(options: RbmOptions): void {
  const units = options.softmaxUnits ?? 0;
  if (units === 0) {
    if ((options.discriminativeWeight ?? 0) > 0)
      throw new InvalidOptionError(`The 'discriminativeWeight' option of Rbm needs a softmax label group ('softmaxUnits').`);
    return;
  }
  if (units < 2 || units >= options.nVisible)
    throw new InvalidOptionError(
      `The 'softmaxUnits' option of Rbm must be 0 or an integer in [2, ${options.nVisible - 1}] (fewer than nVisible). Got ${units}.`,
    );
  if ((options.visible ?? 'bernoulli') !== 'bernoulli')
    throw new InvalidOptionError(
      `The 'softmaxUnits' option of Rbm needs Bernoulli visible units. Got visible '${String(options.visible)}'.`,
    );
  if ((options.discriminativeWeight ?? 0) > 0 && (options.hidden ?? 'bernoulli') !== 'bernoulli') {
    throw new InvalidOptionError(
      `The 'discriminativeWeight' option of Rbm needs a softmax label group ('softmaxUnits') and Bernoulli hidden units.`,
    );
  }
}

function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function mean(a: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += a[i]!;
  return a.length > 0 ? total / a.length : Number.NaN;
}
