/**
 * Deep belief networks (Hinton, Osindero & Teh 2006): a stack of {@link Rbm}s trained greedily,
 * layer by layer, each on the hidden means of the layer below; then unrolled into a feed-forward
 * classifier and fine-tuned by backpropagation (Hinton & Salakhutdinov 2006). `Dbn` composes
 * `Rbm`s and a {@link FeedForwardNet}; it holds no kernel code.
 */
import type { Backend } from '../kernels/backend.js';
import { defaultBackend } from '../kernels/index.js';
import { InvalidDataError, InvalidOptionError, ModelFileError, type ModelFileErrorCode, NotFittedError, ShapeMismatchError } from '../errors.js';
import { Random } from '../random.js';
import { Rbm, readModelFile, writeModelFile, type EpochMetrics, type ModelFile, type NamedTensor, type RbmOptions, type WriteOptions } from '../rbm/index.js';
import { requireTensor } from '../rbm/model-file.js';
import { type LabelsLike, toLabels } from '../data/matrix.js';
import { type HostMatrix, type MatrixInput, toHostMatrix, validateOptions } from '../validate.js';
import { argmax, type DenseParameters, type DenseShape, FeedForwardNet, type HiddenActivation, PROBABILITY_FLOOR } from './network.js';
import {
  dbnConstraints,
  type DbnOptions,
  type Evaluation,
  type FineTuneMetrics,
  type FineTuneOptions,
  type FineTuneResult,
  fineTuneConstraints,
  type GenerateOptions,
  generateConstraints,
  layerConstraints,
  type LayerOptions,
  pretrainConstraints,
  type PretrainOptions,
  type ResolvedDbnOptions,
  resolveFineTune,
} from './options.js';
import { type FineTuneEpoch, type ValidationSums, collectiveFineTuneEpoch, localFineTuneEpoch } from './fine-tune-epoch.js';
import { forStage } from '../rbm/collective.js';
import { AssociativeMemory } from './associative.js';
import { type AssociativeTrainOptions, trainAssociative } from './associative-train.js';
import { type GenerateRequest, generateRequestConstraints, generateSamples } from './generate.js';

/** The fine-tuned classifier and the progress of its training run. */
interface Classifier {
  readonly net: FeedForwardNet;
  /** Drives shuffles and dropout masks; checkpointed. */
  readonly rng: Random;
  epochsDone: number;
  /** Best validation score so far (lower is better: log loss or −accuracy). */
  bestScore: number;
  bestEpoch: number;
  sinceBest: number;
  finished: boolean;
  stoppedEarly: boolean;
}

/** Host copies of the fine-tuned classifier's parameters. */
export interface ClassifierParameters {
  /** Activation of each hidden layer, bottom first. */
  readonly activations: readonly HiddenActivation[];
  /** Dense layers, bottom first, the softmax head last: weights `nIn × nOut`, bias `nOut`. */
  readonly layers: readonly DenseParameters[];
}

/** Mean gradients of the cross-entropy, for tests of backpropagation. */
export interface ClassifierGradients {
  /** Mean cross-entropy over the rows. */
  readonly loss: number;
  /** `∂loss/∂weights` and `∂loss/∂bias` of every dense layer, shaped as in {@link ClassifierParameters}. */
  readonly layers: readonly DenseParameters[];
}

/** What {@link Dbn.pretrain} resolves with: the metrics of the epochs run now, per layer. */
export type PretrainHistory = EpochMetrics[][];

const FILE_KIND = 'dbn';

/**
 * A deep belief network: `nVisible → layers[0].nHidden → … → layers[L−1].nHidden`, with an
 * optional softmax classifier on top after {@link Dbn.fineTune}.
 *
 * @example
 * ```ts
 * const dbn = new Dbn({ nVisible: 784, layers: [{ nHidden: 500, epochs: 10 }, { nHidden: 500, epochs: 10 }], seed: 1 });
 * await dbn.pretrain(images);                 // greedy, layer by layer
 * await dbn.fineTune(images, labels, { dropout: 0.5 });
 * const { accuracy } = dbn.evaluate(testImages, testLabels);
 * dbn.save('digits.dbn');
 * ```
 */
export class Dbn {
  /** The options as given (the backend apart), with the seed resolved. */
  readonly options: ResolvedDbnOptions;
  /** The backend every layer runs on. */
  readonly backend: Backend;
  /** The RBMs, bottom first. Layer `i` has `nVisible` equal to layer `i−1`'s `nHidden`. */
  readonly layers: readonly Rbm[];

  /**
   * Free-form JSON-serializable facts stored with the model (e.g. the CLI keeps the data source
   * and the fitted feature scaler here, so `evaluate` scales new rows the same way).
   */
  metadata: Record<string, unknown> = {};

  private classifier: Classifier | undefined;
  private assoc: AssociativeMemory | undefined;
  private readonly fineTuneSeed: number;
  private readonly splitSeed: number;
  private readonly sampleRng: Random;
  private disposed = false;
  /** Layers rebuilt from a file, handed to the constructor by {@link Dbn.load}. */
  private static restoring: Rbm[] | undefined;

  constructor(options: DbnOptions) {
    validateOptions('Dbn', dbnConstraints, options);
    if (options.nVisible === undefined || options.layers === undefined) {
      throw new InvalidOptionError(`The '${options.nVisible === undefined ? 'nVisible' : 'layers'}' option of Dbn is required.`);
    }
    const specs = options.layers.map((l, i) => checkLayer(l, i, i === 0 ? undefined : options.layers[i - 1]!));
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    const seeds = deriveSeeds(seed, specs.length + 4);
    this.options = Object.freeze({
      nVisible: options.nVisible,
      layers: Object.freeze(options.layers.map((l) => Object.freeze({ ...l }))),
      seed,
      ...(options.associative === undefined ? {} : { associative: Object.freeze({ ...options.associative }) }),
    });
    this.fineTuneSeed = seeds[specs.length]!;
    this.splitSeed = seeds[specs.length + 1]!;
    this.sampleRng = new Random(seeds[specs.length + 2]!);
    const restored = Dbn.restoring;
    Dbn.restoring = undefined;
    this.backend = restored?.[0]?.backend ?? options.backend ?? defaultBackend().backend;
    if (restored !== undefined) {
      this.layers = Object.freeze(restored.slice());
      return;
    }
    const layers: Rbm[] = [];
    try {
      let nv = options.nVisible;
      for (const [i, spec] of specs.entries()) {
        layers.push(makeLayer({ ...spec, nVisible: nv, backend: this.backend, seed: seeds[i]! }, i));
        nv = spec.nHidden;
      }
    } catch (err) {
      for (const l of layers) l.dispose();
      throw err;
    }
    this.layers = Object.freeze(layers);
    if (options.associative !== undefined) {
      try {
        this.assoc = AssociativeMemory.create(this.nOutput, options.associative, this.backend, seeds[specs.length + 3]!);
      } catch (err) {
        for (const l of layers) l.dispose();
        throw err;
      }
    }
  }

  /** The top-level associative memory (the `associative` option), or undefined. */
  get associative(): AssociativeMemory | undefined {
    return this.assoc;
  }

  /**
   * Trains the associative memory on the top features of `data` (`rows × nVisible`) with their
   * `labels`, until it has run its `epochs` (so a resumed checkpoint continues). Call after
   * {@link pretrain}. Collective training and checkpoints work as in `pretrain`.
   */
  async pretrainAssociative(data: MatrixInput, labels: Int32Array, opts: AssociativeTrainOptions = {}): Promise<EpochMetrics[]> {
    this.assertLive();
    if (this.assoc === undefined) throw new NotFittedError(`Dbn.pretrainAssociative needs the Dbn option 'associative'.`);
    const x = this.checkInput(data, 'Dbn.pretrainAssociative');
    return trainAssociative(this.assoc, () => this.transform(x), labels, this.layers.length + 1, opts, (path) => this.save(path, { overwrite: true, trainingState: true }));
  }

  /** Class probabilities of `data` by the associative memory's free energies (`rows × classes`). */
  freeEnergyProba(data: MatrixInput): HostMatrix {
    this.assertLive();
    if (this.assoc === undefined) throw new NotFittedError(`Dbn.freeEnergyProba needs the Dbn option 'associative'.`);
    return this.assoc.predictProba(this.transform(data));
  }

  /** The seed every layer's seed and the fine-tuning generator derive from. */
  get seed(): number {
    return this.options.seed;
  }

  /** Number of visible units of the first layer (columns of the data). */
  get nVisible(): number {
    return this.options.nVisible;
  }

  /** Width of the top layer (the features of {@link transform}). */
  get nOutput(): number {
    return this.layers[this.layers.length - 1]!.nHidden;
  }

  /** True once every layer has been trained (or loaded trained). */
  get isPretrained(): boolean {
    return this.layers.every((l) => l.isFitted);
  }

  /** Number of classes of the fine-tuned classifier, or undefined before {@link fineTune}. */
  get classes(): number | undefined {
    return this.classifier?.net.classes;
  }

  // ------------------------------------------------------------ pretraining

  /**
   * Greedy layer-wise pretraining: layer `i` trains by CD-k/PCD (its own options) on the hidden
   * means of layer `i−1` for `data` (`rows × nVisible`). Each layer trains until it has run its
   * `epochs`; layers already there are skipped, so calling `pretrain` again on a model from
   * {@link Dbn.resume} continues where the checkpoint left off. Resolves with the metrics of the
   * epochs run now, per layer (`history[i]` for layer `i`).
   */
  async pretrain(data: MatrixInput, opts: PretrainOptions = {}): Promise<PretrainHistory> {
    this.assertLive();
    validateOptions('Dbn.pretrain', pretrainConstraints, opts);
    let x = this.checkInput(data, 'Dbn.pretrain');
    let valid = opts.validation === undefined ? undefined : this.checkInput(opts.validation, 'Dbn.pretrain', 'validation');
    const history: PretrainHistory = this.layers.map(() => []);
    const ckpt = opts.checkpoint;
    for (const [i, rbm] of this.layers.entries()) {
      if (i > 0) {
        if (this.layers.slice(i).every((l) => l.epochsTrained >= l.options.epochs)) break;
        const below = this.layers[i - 1]!;
        x = below.transform(x);
        if (valid !== undefined) valid = below.transform(valid);
      }
      const target = rbm.options.epochs;
      if (rbm.epochsTrained >= target) continue;
      if (opts.signal?.aborted) break;
      await rbm.fit(x, {
        epochs: target - rbm.epochsTrained,
        ...(valid !== undefined ? { validation: valid } : {}),
        ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
        ...(opts.collective !== undefined ? { collective: forStage(opts.collective, i) } : {}),
        ...(opts.onBatch !== undefined ? { onBatch: (b) => opts.onBatch!(i, b) } : {}),
        onEpoch: async (m) => {
          history[i]!.push(m);
          const complete = opts.signal?.aborted !== true;
          if (ckpt !== undefined && complete && (rbm.epochsTrained % ckpt.everyEpochs === 0 || rbm.epochsTrained >= target)) {
            this.save(ckpt.path, { overwrite: true, trainingState: true });
          }
          if (opts.onEpoch) await opts.onEpoch(i, m);
        },
      });
      if (opts.signal?.aborted) break;
    }
    return history;
  }

  // -------------------------------------------------------------- inference

  /**
   * Features of `data` (`rows × nVisible`) from layer `layer` (default: the top): the hidden
   * means passed up the stack, `rows × layers[layer].nHidden`.
   */
  transform(data: MatrixInput, layer = this.layers.length - 1): HostMatrix {
    this.assertLive();
    if (!Number.isSafeInteger(layer) || layer < 0 || layer >= this.layers.length) {
      throw new InvalidOptionError(`Argument 'layer' passed to 'Dbn.transform' must be an integer in [0, ${this.layers.length - 1}]. Got ${String(layer)}.`);
    }
    let h = this.checkInput(data, 'Dbn.transform');
    this.requirePretrained('Dbn.transform', layer);
    for (let i = 0; i <= layer; i++) h = this.layers[i]!.transform(h);
    return h;
  }

  /** Mean-field reconstruction of `data`: hidden means up the stack, visible means down (`rows × nVisible`). */
  reconstruct(data: MatrixInput): HostMatrix {
    this.requirePretrained('Dbn.reconstruct', this.layers.length - 1);
    let v = this.transform(data);
    for (let i = this.layers.length - 1; i >= 0; i--) v = this.layers[i]!.meanVisibles(v);
    return v;
  }

  /**
   * Samples from the model (`count × nVisible`, in [0, 1] for Bernoulli input units): Gibbs
   * chains in the top-level RBM — the associative memory with `label` clamped, if there is one —
   * then one top-down pass (see {@link GenerateRequest}). `generate(n, opts)` is
   * `generate({ count: n, ...opts })`. Training streams are untouched.
   *
   * @example
   * ```ts
   * const sevens = dbn.generate({ label: 7, count: 10, burnIn: 1000, seed: 1 });
   * ```
   */
  generate(request: number | GenerateRequest, opts: GenerateOptions = {}): HostMatrix {
    this.assertLive();
    if (typeof request === 'number') {
      validateOptions('Dbn.generate', generateConstraints, opts);
      if (!Number.isSafeInteger(request) || request < 1) throw new InvalidOptionError(`Argument 'n' passed to 'Dbn.generate' must be an integer >= 1. Got ${String(request)}.`);
      request = { ...opts, count: request };
    }
    validateOptions('Dbn.generate', generateRequestConstraints, request);
    this.requirePretrained('Dbn.generate', this.layers.length - 1);
    const rng = request.seed === undefined ? this.sampleRng : new Random(request.seed);
    return generateSamples(this, request, rng);
  }

  // ------------------------------------------------------------ fine-tuning

  /**
   * Supervised fine-tuning: the stack unrolled into a feed-forward network (sigmoid hidden layers,
   * ReLU for noisy-ReLU layers, initialized from each RBM's weights and hidden biases) with a
   * softmax output layer, trained by minibatch backpropagation of the cross-entropy with momentum,
   * L2 weight decay, optional dropout, and early stopping on a validation split (the best weights
   * are restored). `data` is `rows × nVisible`, `labels` (length `rows`) classes in `[0, classes)`.
   *
   * The RBMs are not modified: the network is a copy, so {@link transform} and {@link generate}
   * still use the pretrained weights. A run that was aborted (or loaded from a checkpoint with
   * {@link Dbn.resume}) continues when `fineTune` is called again with the same options; once a run
   * has finished, calling `fineTune` starts a new one.
   */
  async fineTune(data: MatrixInput, labels: LabelsLike, opts: FineTuneOptions = {}): Promise<FineTuneResult> {
    this.assertLive();
    validateOptions('Dbn.fineTune', fineTuneConstraints, opts);
    const o = resolveFineTune(opts);
    const x = this.checkInput(data, 'Dbn.fineTune');
    const y = checkLabels(labels, x.rows, 'Dbn.fineTune', 'labels');
    let c = this.classifier;
    if (c !== undefined && !c.finished && opts.classes !== undefined && opts.classes !== c.net.classes) {
      throw new InvalidOptionError(`The 'classes' option of Dbn.fineTune must be ${c.net.classes} to continue the unfinished run. Got ${opts.classes}.`);
    }
    if (opts.collective !== undefined && opts.classes === undefined && (c === undefined || c.finished)) {
      throw new InvalidOptionError(`The 'classes' option of Dbn.fineTune is required with 'collective' (every replica must build the same classifier, whatever labels its own rows hold).`);
    }
    const classes = c !== undefined && !c.finished ? c.net.classes : (opts.classes ?? maxLabel(y) + 1);
    if (classes < 2) throw new InvalidDataError(`Argument 'labels' passed to 'Dbn.fineTune' holds a single class (0); pass the 'classes' option (>= 2).`);
    checkLabelRange(y, classes, 'Dbn.fineTune', 'labels');

    let train: HostMatrix = x;
    let trainY = y;
    let valid: HostMatrix | undefined;
    let validY: Int32Array | undefined;
    if (opts.validation !== undefined) {
      valid = this.checkInput(opts.validation.x, 'Dbn.fineTune', 'validation.x');
      validY = checkLabels(opts.validation.y, valid.rows, 'Dbn.fineTune', 'validation.y');
      checkLabelRange(validY, classes, 'Dbn.fineTune', 'validation.y');
    } else if (o.validationFraction > 0) {
      const nValid = Math.round(o.validationFraction * x.rows);
      if (nValid < 1 || nValid >= x.rows) {
        throw new InvalidOptionError(`The 'validationFraction' option of Dbn.fineTune leaves ${nValid} of ${x.rows} rows for validation; it needs at least 1 and at most ${x.rows - 1}.`);
      }
      const order = new Random(this.splitSeed).permutation(x.rows);
      [valid, validY] = gather(x, y, order.subarray(0, nValid));
      [train, trainY] = gather(x, y, order.subarray(nValid));
    }

    if (c === undefined || c.finished) {
      this.classifier?.net.dispose();
      this.classifier = undefined;
      c = this.freshClassifier(classes, o.init);
      this.classifier = c;
    }
    if (opts.onStart) await opts.onStart({ classes, epochsDone: c.epochsDone });
    const collective = opts.collective === undefined ? undefined : forStage(opts.collective, this.layers.length);
    const hasValid = valid !== undefined || (collective !== undefined && o.validationFraction > 0);
    const history: FineTuneMetrics[] = [];
    const rates = { hidden: o.dropout, input: o.inputDropout };
    const validate =
      valid === undefined || validY === undefined
        ? undefined
        : (): ValidationSums => {
            const v = scoreProbabilities(c.net.predictProba(valid), validY, classes);
            return { logLossSum: v.logLoss * valid.rows, correct: v.accuracy * valid.rows, rows: valid.rows };
          };
    const ckpt = opts.checkpoint;
    let aborted = false;
    try {
      while (c.epochsDone < o.epochs && !(hasValid && c.sinceBest >= o.patience)) {
        if (opts.signal?.aborted) {
          aborted = true;
          break;
        }
        const epoch = c.epochsDone;
        const started = performance.now();
        const learningRate = o.learningRate * o.learningRateDecay ** epoch;
        const spec: FineTuneEpoch = {
          net: c.net,
          rng: c.rng,
          epoch,
          x: train,
          y: trainY,
          batchSize: o.batchSize,
          update: { learningRate, momentum: o.momentum, weightDecay: o.weightDecay },
          rates,
          onBatch: opts.onBatch,
          signal: opts.signal,
          validate,
        };
        const sums = collective === undefined ? await localFineTuneEpoch(spec) : await collectiveFineTuneEpoch(spec, collective);
        if (sums.aborted) {
          aborted = true;
          break;
        }
        const best = this.judgeEpoch(c, epoch, sums.validation, o.monitor);
        c.epochsDone++;
        const v = sums.validation;
        const m: FineTuneMetrics = {
          epoch,
          loss: sums.lossSum / sums.rows,
          trainAccuracy: sums.correct / sums.rows,
          ...(v !== undefined ? { validationLoss: v.logLossSum / v.rows, validationAccuracy: v.correct / v.rows } : {}),
          best,
          learningRate,
          elapsedMs: performance.now() - started,
        };
        history.push(m);
        if (ckpt !== undefined && c.epochsDone % ckpt.everyEpochs === 0) this.save(ckpt.path, { overwrite: true, trainingState: true });
        if (opts.onEpoch) await opts.onEpoch(m);
      }
      if (!aborted) {
        c.stoppedEarly = hasValid && c.sinceBest >= o.patience;
        if (hasValid) c.net.restoreBest();
        c.finished = true;
        c.net.clearTrainingState();
        if (ckpt !== undefined) this.save(ckpt.path, { overwrite: true, trainingState: true });
      }
    } finally {
      c.net.releaseWorkspaces();
    }
    return { history, epochs: c.epochsDone, bestEpoch: hasValid ? c.bestEpoch : -1, finished: c.finished, stoppedEarly: c.stoppedEarly };
  }

  /** Early-stopping bookkeeping after an epoch: keeps the best weights. Returns whether this epoch is the best so far. */
  private judgeEpoch(c: Classifier, epoch: number, v: ValidationSums | undefined, monitor: 'logLoss' | 'accuracy'): boolean {
    if (v === undefined) return false;
    const score = monitor === 'accuracy' ? -(v.correct / v.rows) : v.logLossSum / v.rows;
    if (score < c.bestScore) {
      c.bestScore = score;
      c.bestEpoch = epoch;
      c.sinceBest = 0;
      c.net.keepBest();
      return true;
    }
    c.sinceBest++;
    return false;
  }

  /** Class probabilities (`rows × classes`, rows summing to 1) from the fine-tuned classifier. */
  predictProba(data: MatrixInput): HostMatrix {
    const net = this.requireClassifier('Dbn.predictProba');
    return net.predictProba(this.checkInput(data, 'Dbn.predictProba'));
  }

  /** The most probable class of every row (length `rows`). */
  predict(data: MatrixInput): Int32Array {
    const net = this.requireClassifier('Dbn.predict');
    const p = net.predictProba(this.checkInput(data, 'Dbn.predict'));
    const out = new Int32Array(p.rows);
    for (let r = 0; r < p.rows; r++) out[r] = argmax(p.data, r * p.cols, p.cols);
    return out;
  }

  /** Accuracy, confusion matrix (rows = true class) and mean log loss on labelled rows. */
  evaluate(data: MatrixInput, labels: LabelsLike): Evaluation {
    const net = this.requireClassifier('Dbn.evaluate');
    const x = this.checkInput(data, 'Dbn.evaluate');
    const y = checkLabels(labels, x.rows, 'Dbn.evaluate', 'labels');
    checkLabelRange(y, net.classes, 'Dbn.evaluate', 'labels');
    return scoreProbabilities(net.predictProba(x), y, net.classes);
  }

  /** Host copies of the classifier's parameters. */
  getClassifierParameters(): ClassifierParameters {
    const net = this.requireClassifier('Dbn.getClassifierParameters');
    return { activations: net.activations, layers: net.getLayers() };
  }

  /**
   * Replaces the classifier's parameters (shapes as in {@link getClassifierParameters}: one dense
   * layer per RBM with its `nIn × nOut` shape, then the head `nOutput × classes`; values finite).
   * Without a classifier, one is created with these parameters and marked finished (a later
   * {@link fineTune} starts a new run). Velocities and the early-stopping state are kept.
   */
  setClassifierParameters(p: ClassifierParameters): void {
    this.assertLive();
    const where = 'Dbn.setClassifierParameters';
    const layers = p?.layers;
    const L = this.layers.length;
    if (!Array.isArray(layers) || layers.length !== L + 1) {
      throw new ShapeMismatchError(`Argument 'p.layers' passed to '${where}' must hold ${L + 1} dense layers (one per RBM, then the head).`);
    }
    const head = layers[L]!;
    const classes = head?.bias instanceof Float32Array ? head.bias.length : 0;
    if (this.classifier !== undefined && classes !== this.classifier.net.classes) {
      throw new ShapeMismatchError(`Argument 'p.layers' passed to '${where}' has a head of ${classes} classes; the classifier has ${this.classifier.net.classes}.`);
    }
    if (classes < 2) throw new ShapeMismatchError(`Argument 'p.layers[${L}].bias' passed to '${where}' must be a Float32Array of at least 2 classes.`);
    const { shapes, activations } = this.netShape(classes);
    if (p.activations !== undefined && (p.activations.length !== activations.length || p.activations.some((a, i) => a !== activations[i]))) {
      throw new ShapeMismatchError(`Argument 'p.activations' passed to '${where}' must be [${activations.join(', ')}].`);
    }
    const checked = layers.map((l, i) => {
      const s = shapes[i]!;
      const w = toHostMatrix(l.weights, where, `p.layers[${i}].weights`, { cols: s.nOut });
      if (w.rows !== s.nIn) throw new ShapeMismatchError(`Argument 'p.layers[${i}].weights' passed to '${where}' must have ${s.nIn} rows, got ${w.rows}.`);
      if (!(l.bias instanceof Float32Array) || l.bias.length !== s.nOut) {
        throw new ShapeMismatchError(`Argument 'p.layers[${i}].bias' passed to '${where}' must be a Float32Array of length ${s.nOut}.`);
      }
      for (let k = 0; k < l.bias.length; k++) {
        if (!Number.isFinite(l.bias[k]!)) throw new InvalidDataError(`Argument 'p.layers[${i}].bias' passed to '${where}' must hold finite values; element ${k} is ${l.bias[k]}.`);
      }
      return { w: w.data, b: l.bias };
    });
    if (this.classifier === undefined) {
      const c = this.freshClassifier(classes, 'random');
      c.finished = true;
      this.classifier = c;
    }
    for (const [i, l] of checked.entries()) this.classifier.net.setLayer(i, l.w, l.b);
  }

  /**
   * The mean cross-entropy of the classifier on `data`/`labels` and its gradient w.r.t. every
   * parameter, computed by the same backpropagation code as training (no dropout, no decay).
   * For tests and diagnostics.
   */
  gradients(data: MatrixInput, labels: LabelsLike): ClassifierGradients {
    const net = this.requireClassifier('Dbn.gradients');
    const x = this.checkInput(data, 'Dbn.gradients');
    const y = checkLabels(labels, x.rows, 'Dbn.gradients', 'labels');
    checkLabelRange(y, net.classes, 'Dbn.gradients', 'labels');
    try {
      return net.gradients(x.data, y, x.rows);
    } finally {
      net.releaseWorkspaces();
    }
  }

  // ---------------------------------------------------------------- files

  /**
   * Saves the whole stack (and the classifier, if any) atomically in the model-file format, kind
   * `'dbn'`: tensors `layer<i>.weights`, `layer<i>.visibleBias`, `layer<i>.hiddenBias`, the
   * classifier's `net.layer<i>.weights|bias` and `head.weights|bias`. With `trainingState`,
   * velocities, generator states and progress are saved too (a checkpoint for {@link Dbn.resume}).
   */
  save(file: string, opts: WriteOptions & { readonly trainingState?: boolean } = {}): void {
    this.assertLive();
    const state = opts.trainingState ?? false;
    const tensors: NamedTensor[] = [];
    const layers = this.layers.map((rbm, i) => {
      const { header, tensors: ts } = rbm.toTensors(state);
      for (const t of ts) tensors.push({ ...t, name: `layer${i}.${t.name}` });
      return header;
    });
    const header: Record<string, unknown> = {
      kind: FILE_KIND,
      library: 'dbn-node',
      options: { nVisible: this.nVisible, seed: this.seed, layers: this.options.layers.map(serializableLayer) },
      layers,
      trainingState: state,
      metadata: this.metadata,
    };
    if (this.assoc !== undefined) {
      const a = this.assoc.toTensors(state);
      header['options'] = { ...(header['options'] as object), associative: this.options.associative };
      header['associative'] = a.header;
      for (const t of a.tensors) tensors.push({ ...t, name: `associative.${t.name}` });
    }
    const c = this.classifier;
    if (c !== undefined) {
      const L = this.layers.length;
      const name = (i: number, what: string): string => (i < L ? `net.layer${i}.${what}` : `head.${what}`);
      const push = (ps: DenseParameters[], w: string, b: string): void => {
        ps.forEach((p, i) => {
          tensors.push({ name: name(i, w), rows: p.weights.rows, cols: p.weights.cols, data: p.weights.data });
          tensors.push({ name: name(i, b), rows: 1, cols: p.bias.length, data: p.bias });
        });
      };
      push(c.net.getLayers(), 'weights', 'bias');
      const ch: Record<string, unknown> = {
        classes: c.net.classes,
        activations: c.net.activations,
        epochsDone: c.epochsDone,
        finished: c.finished,
        stoppedEarly: c.stoppedEarly,
        bestEpoch: c.bestEpoch,
        bestScore: Number.isFinite(c.bestScore) ? c.bestScore : null,
        sinceBest: c.sinceBest,
      };
      if (state && !c.finished) {
        ch['rng'] = c.rng.getState();
        push(c.net.getVelocities(), 'velocityWeights', 'velocityBias');
        const best = c.net.getBest();
        if (best !== undefined) {
          push(best, 'bestWeights', 'bestBias');
          ch['hasBest'] = true;
        }
      }
      header['classifier'] = ch;
    }
    writeModelFile(file, header as { kind: string }, tensors, opts);
  }

  /**
   * Loads a model saved by {@link save} onto `backend` (default: `defaultBackend()`). Every
   * header field and tensor shape is checked; problems raise {@link ModelFileError}.
   */
  static load(file: string, opts: { readonly backend?: Backend } = {}): Dbn {
    return Dbn.fromFile(readModelFile(file, FILE_KIND), file, opts.backend);
  }

  /**
   * Loads a checkpoint (a file saved with `trainingState`, as `checkpoint` options write) so that
   * calling {@link pretrain} or {@link fineTune} again with the same data and options continues
   * exactly where it stopped.
   */
  static resume(file: string, opts: { readonly backend?: Backend } = {}): Dbn {
    const mf = readModelFile(file, FILE_KIND);
    if (mf.header['trainingState'] !== true) {
      throw new ModelFileError(file, 'EHEADER', 'was saved without training state, so it is not a checkpoint (Dbn.load reads it).');
    }
    return Dbn.fromFile(mf, file, opts.backend);
  }

  private static fromFile(mf: ModelFile, file: string, backendOpt: Backend | undefined): Dbn {
    const h = mf.header;
    const options = h['options'] as { nVisible?: unknown; seed?: unknown; layers?: unknown } | undefined;
    if (typeof options !== 'object' || options === null || !Array.isArray(options.layers)) {
      throw new ModelFileError(file, 'EHEADER', 'header has no "options" object with a "layers" list.');
    }
    const headers = h['layers'];
    if (!Array.isArray(headers) || headers.length !== options.layers.length) {
      throw new ModelFileError(file, 'EHEADER', `header must hold one "layers" entry per layer (${options.layers.length}).`);
    }
    const backend = backendOpt ?? defaultBackend().backend;
    const rbms: Rbm[] = [];
    let dbn: Dbn | undefined;
    try {
      const specs = options.layers as LayerOptions[];
      let nv = options.nVisible;
      for (const [i, lh] of headers.entries()) {
        if (typeof lh !== 'object' || lh === null) throw new ModelFileError(file, 'EHEADER', `layer ${i}'s header is not an object.`);
        const rbm = layerFromFile(lh as Record<string, unknown>, subTensors(mf.tensors, `layer${i}.`), file, backend, i);
        rbms.push(rbm);
        const spec = specs[i];
        const visible = i === 0 ? (spec?.visible ?? 'bernoulli') : impliedVisible(specs[i - 1]);
        if (rbm.nVisible !== nv || rbm.nHidden !== spec?.nHidden || rbm.options.visible !== visible) {
          throw new ModelFileError(file, 'EHEADER', `layer ${i} is a ${rbm.nVisible}x${rbm.nHidden} '${rbm.options.visible}'-visible RBM, but the DBN options call for ${String(nv)}x${String(spec?.nHidden)} '${visible}'-visible.`);
        }
        nv = rbm.nHidden;
      }
      Dbn.restoring = rbms;
      try {
        dbn = new Dbn({ ...(options as unknown as DbnOptions), backend });
      } catch (err) {
        if (err instanceof InvalidOptionError) throw new ModelFileError(file, 'EHEADER', `invalid options in header: ${err.message}`, { cause: err });
        throw err;
      } finally {
        Dbn.restoring = undefined;
      }
      if (h['classifier'] !== undefined) dbn.classifier = dbn.classifierFromFile(mf, file);
      const assoc = (options as { associative?: { classes?: unknown } }).associative;
      if (assoc !== undefined) {
        dbn.assoc = AssociativeMemory.fromTensors(h['associative'], subTensors(mf.tensors, 'associative.'), file, backend, dbn.nOutput, Number(assoc.classes));
      }
      const meta = h['metadata'];
      if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) {
        throw new ModelFileError(file, 'EHEADER', '"metadata" must be a JSON object.');
      }
      dbn.metadata = (meta as Record<string, unknown> | undefined) ?? {};
      return dbn;
    } catch (err) {
      if (dbn !== undefined) dbn.dispose();
      else for (const r of rbms) r.dispose();
      throw err;
    }
  }

  private classifierFromFile(mf: ModelFile, file: string): Classifier {
    const ch = mf.header['classifier'] as Record<string, unknown>;
    const fail = (msg: string): never => {
      throw new ModelFileError(file, 'EHEADER', `classifier: ${msg}`);
    };
    if (typeof ch !== 'object' || ch === null) fail('not an object.');
    const classes = ch['classes'];
    if (typeof classes !== 'number' || !Number.isSafeInteger(classes) || classes < 2) fail(`'classes' must be an integer >= 2, got ${String(classes)}.`);
    const count = (k: string, min: number): number => {
      const v = ch[k];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(`'${k}' must be an integer >= ${min}, got ${String(v)}.`);
      return v as number;
    };
    const { shapes, activations } = this.netShape(classes as number);
    const acts = ch['activations'];
    if (!Array.isArray(acts) || acts.length !== activations.length || acts.some((a, i) => a !== activations[i])) {
      fail(`'activations' must be ${JSON.stringify(activations)} for these layers.`);
    }
    const hasState = mf.header['trainingState'] === true && ch['finished'] === false;
    const net = new FeedForwardNet(this.backend, activations, shapes);
    const c: Classifier = {
      net,
      rng: new Random(this.fineTuneSeed),
      epochsDone: 0,
      bestScore: Number.POSITIVE_INFINITY,
      bestEpoch: -1,
      sinceBest: 0,
      finished: !hasState,
      stoppedEarly: ch['stoppedEarly'] === true,
    };
    try {
      const L = this.layers.length;
      const name = (i: number, what: string): string => (i < L ? `net.layer${i}.${what}` : `head.${what}`);
      const read = (w: string, b: string, set: (i: number, w: Float32Array, b: Float32Array) => void): void => {
        shapes.forEach((s, i) => set(i, requireTensor(mf, file, name(i, w), s.nIn, s.nOut), requireTensor(mf, file, name(i, b), 1, s.nOut)));
      };
      read('weights', 'bias', (i, w, b) => net.setLayer(i, w, b));
      c.epochsDone = count('epochsDone', 0);
      c.bestEpoch = count('bestEpoch', -1);
      if (hasState) {
        const score = ch['bestScore'];
        if (score !== null && typeof score !== 'number') fail(`'bestScore' must be a number or null.`);
        c.bestScore = score === null ? Number.POSITIVE_INFINITY : (score as number);
        c.sinceBest = count('sinceBest', 0);
        const rng = ch['rng'];
        if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < 2 ** 32)) {
          fail("'rng' must be 4 unsigned 32-bit integers.");
        }
        c.rng.setState(rng as [number, number, number, number]);
        read('velocityWeights', 'velocityBias', (i, w, b) => net.setVelocities(i, w, b));
        if (ch['hasBest'] === true) read('bestWeights', 'bestBias', (i, w, b) => net.setBest(i, w, b));
      }
    } catch (err) {
      net.dispose();
      throw err;
    }
    return c;
  }

  /** Frees every layer's and the classifier's tensors (not the backend, which the caller owns). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of this.layers) l.dispose();
    this.assoc?.dispose();
    this.classifier?.net.dispose();
    this.classifier = undefined;
  }

  /** Calls {@link dispose}: `using` releases the object at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---------------------------------------------------------------- helpers

  private freshClassifier(classes: number, init: 'auto' | 'random'): Classifier {
    const { shapes, activations } = this.netShape(classes);
    const net = new FeedForwardNet(this.backend, activations, shapes);
    const rng = new Random(this.fineTuneSeed);
    const L = this.layers.length;
    const top = shapes[L]!;
    net.setLayer(L, rng.fillNormal(new Float32Array(top.nIn * top.nOut), 0.01), new Float32Array(top.nOut));
    for (const [i, rbm] of this.layers.entries()) {
      const s = shapes[i]!;
      if (init === 'auto' && rbm.isFitted) {
        const p = rbm.getParameters();
        net.setLayer(i, p.weights.data, p.hiddenBias);
      } else {
        // Glorot & Bengio (2010) uniform init; ×4 for the logistic sigmoid, He et al. (2015) for ReLU.
        const limit = activations[i] === 'relu' ? Math.sqrt(6 / s.nIn) : 4 * Math.sqrt(6 / (s.nIn + s.nOut));
        const w = rng.fillUniform(new Float32Array(s.nIn * s.nOut));
        for (let k = 0; k < w.length; k++) w[k] = (2 * w[k]! - 1) * limit;
        net.setLayer(i, w, new Float32Array(s.nOut));
      }
    }
    return { net, rng, epochsDone: 0, bestScore: Number.POSITIVE_INFINITY, bestEpoch: -1, sinceBest: 0, finished: false, stoppedEarly: false };
  }

  private netShape(classes: number): { shapes: DenseShape[]; activations: HiddenActivation[] } {
    const shapes: DenseShape[] = this.layers.map((l) => ({ nIn: l.nVisible, nOut: l.nHidden }));
    shapes.push({ nIn: this.nOutput, nOut: classes });
    const activations = this.layers.map((l): HiddenActivation => (l.options.hidden === 'noisy-relu' ? 'relu' : 'sigmoid'));
    return { shapes, activations };
  }

  private requireClassifier(where: string): FeedForwardNet {
    this.assertLive();
    if (this.classifier === undefined) throw new NotFittedError(`${where} needs a classifier: call Dbn.fineTune first.`);
    return this.classifier.net;
  }

  private checkInput(data: MatrixInput, where: string, arg = 'data'): HostMatrix {
    return toHostMatrix(data, where, arg, { cols: this.nVisible, unitInterval: this.layers[0]!.options.visible === 'bernoulli' });
  }

  private assertLive(): void {
    if (this.disposed) throw new NotFittedError('This Dbn has been disposed.');
  }

  private requirePretrained(where: string, upTo: number): void {
    const i = this.layers.findIndex((l, k) => k <= upTo && !l.isFitted);
    if (i >= 0) throw new NotFittedError(`${where} needs pretrained layers, and layer ${i} has no learned weights: call Dbn.pretrain (or Dbn.load) first.`);
  }
}

// ------------------------------------------------------------------ module helpers

/** Validates layer `i`'s options; returns them with the visible units the layer below implies. */
function checkLayer(l: LayerOptions, i: number, below: LayerOptions | undefined): LayerOptions {
  const owner = `Dbn layer ${i}`;
  validateOptions(owner, layerConstraints, l);
  if (l.nHidden === undefined) throw new InvalidOptionError(`The 'nHidden' option of ${owner} is required.`);
  if (below !== undefined) {
    const implied = impliedVisible(below);
    if (l.visible !== undefined && l.visible !== implied) {
      throw new InvalidOptionError(
        `The 'visible' option of ${owner} must be '${implied}' (implied by the '${below.hidden ?? 'bernoulli'}' hidden units of layer ${i - 1}) or omitted. Got '${l.visible}'.`,
      );
    }
    return { ...l, visible: implied };
  }
  return l;
}

/** Visible units of the layer above one with these options. */
function impliedVisible(below: LayerOptions | undefined): 'bernoulli' | 'gaussian' {
  return below?.hidden === 'noisy-relu' ? 'gaussian' : 'bernoulli';
}

function makeLayer(o: RbmOptions, i: number): Rbm {
  try {
    return new Rbm(o);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new InvalidOptionError(err.message.replace(/ of Rbm\b/g, ` of Dbn layer ${i}`));
    throw err;
  }
}

/** `count` seeds derived deterministically from `seed`. */
function deriveSeeds(seed: number, count: number): number[] {
  const r = new Random(seed);
  return Array.from({ length: count }, () => r.nextUint32());
}

/** Layer options as JSON can hold them (a schedule function is recorded as 'constant', as Rbm does). */
function serializableLayer(l: LayerOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...l };
  if (typeof l.learningRateSchedule === 'function') out['learningRateSchedule'] = 'constant';
  return out;
}

/** `Rbm.fromTensors`, with its errors naming the layer. */
function layerFromFile(header: Record<string, unknown>, tensors: ReadonlyMap<string, NamedTensor>, file: string, backend: Backend, i: number): Rbm {
  try {
    return Rbm.fromTensors(header, tensors, file, backend);
  } catch (err) {
    if (!(err instanceof ModelFileError)) throw err;
    const detail = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
    throw new ModelFileError(file, err.code as ModelFileErrorCode, `layer ${i}: ${detail}`, { cause: err });
  }
}

/** The tensors whose names start with `prefix`, with the prefix removed. */
function subTensors(all: ReadonlyMap<string, NamedTensor>, prefix: string): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [k, t] of all) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), { ...t, name: k.slice(prefix.length) });
  return out;
}

function checkLabels(labels: unknown, rows: number, where: string, arg: string): Int32Array {
  const y = toLabels(labels, arg, where);
  if (y.length !== rows) throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must hold ${rows} labels (one per row), got ${y.length}.`);
  return y;
}

function checkLabelRange(labels: Int32Array, classes: number, where: string, arg: string): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (v < 0 || v >= classes) throw new InvalidDataError(`Argument '${arg}' passed to '${where}' must hold classes in [0, ${classes - 1}]; element ${i} is ${v}.`);
  }
}

function maxLabel(labels: Int32Array): number {
  let m = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > m) m = labels[i]!;
  return m;
}

/** Rows `idx` of `x` and their labels, copied. */
function gather(x: HostMatrix, y: Int32Array, idx: Uint32Array): [HostMatrix, Int32Array] {
  const c = x.cols;
  const data = new Float32Array(idx.length * c);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    data.set(x.data.subarray(r * c, (r + 1) * c), i * c);
    labels[i] = y[r]!;
  }
  return [{ rows: idx.length, cols: c, data }, labels];
}

/** Accuracy, confusion matrix and mean log loss of class probabilities `p` (`rows × classes`). */
function scoreProbabilities(p: HostMatrix, y: Int32Array, classes: number): Evaluation {
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  let loss = 0;
  for (let r = 0; r < p.rows; r++) {
    const pred = argmax(p.data, r * p.cols, p.cols);
    const t = y[r]!;
    confusion[t]![pred]!++;
    if (pred === t) correct++;
    loss -= Math.log(Math.max(p.data[r * p.cols + t]!, PROBABILITY_FLOOR));
  }
  return { accuracy: correct / p.rows, confusionMatrix: confusion, logLoss: loss / p.rows };
}
