/**
 * Deep belief networks (Hinton, Osindero & Teh 2006): a stack of {@link Rbm}s trained greedily,
 * layer by layer, each on the hidden means of the layer below; then unrolled into a feed-forward
 * classifier and fine-tuned by backpropagation (Hinton & Salakhutdinov 2006). `Dbn` composes
 * `Rbm`s and a {@link FeedForwardNet}; it holds no kernel code.
 */
import type { Backend } from '../kernels/backend.js';
import { defaultBackend } from '../kernels/index.js';
import { InvalidDataError, InvalidOptionError, ModelFileError, NotFittedError } from '../errors.js';
import { Random } from '../random.js';
import { Rbm, readModelFile, writeModelFile, type EpochMetrics, type ModelFile, type WriteOptions } from '../rbm/index.js';
import type { LabelsLike } from '../data/matrix.js';
import { backendScan, type HostMatrix, type MatrixInput, toHostMatrix, validateOptions } from '../validate.js';
import { argmax, type DenseParameters, FeedForwardNet } from './network.js';
import {
  dbnConstraints,
  type DbnOptions,
  type Evaluation,
  type FineTuneOptions,
  type FineTuneResult,
  fineTuneConstraints,
  type GenerateOptions,
  generateConstraints,
  pretrainConstraints,
  type PretrainOptions,
  type ResolvedDbnOptions,
  resolveFineTune,
} from './options.js';
import { forStage } from '../rbm/collective.js';
import { AssociativeMemory } from './associative.js';
import { type AssociativeTrainOptions, trainAssociative } from './associative-train.js';
import {
  type Classifier,
  type ClassifierParameters,
  checkClassifierParameters,
  classifierFromFile,
  classifierTensors,
  freshClassifier,
  type Stack,
} from './classifier.js';
import { runFineTune, splitValidation } from './fine-tune.js';
import { FILE_KIND, layerTensors, readLayers, savedOptions, serializableLayer, subTensors } from './io.js';
import { checkLayer, deriveSeeds, makeLayer } from './layer-specs.js';
import { checkLabelRange, checkLabels, maxLabel, scoreProbabilities } from './labels.js';
import { type GenerateRequest, generateRequestConstraints, generateSamples } from './generate.js';

export type { ClassifierParameters } from './classifier.js';

/** Mean gradients of the cross-entropy, for tests of backpropagation. */
export interface ClassifierGradients {
  /** Mean cross-entropy over the rows. */
  readonly loss: number;
  /** `∂loss/∂weights` and `∂loss/∂bias` of every dense layer, shaped as in {@link ClassifierParameters}. */
  readonly layers: readonly DenseParameters[];
}

/** What {@link Dbn.pretrain} resolves with: the metrics of the epochs run now, per layer. */
export type PretrainHistory = EpochMetrics[][];

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
    return trainAssociative(
      this.assoc,
      () => this.transform(x),
      labels,
      this.layers.length + 1,
      opts,
      (path) => this.save(path, { overwrite: true, trainingState: true }),
    );
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
        // from the second layer up, x (and valid) are features this loop made: overwritten in place
        // where the widths allow (one array of rows × width less)
        x = i > 1 ? below.transformInPlace(x) : below.transform(x);
        if (valid !== undefined) valid = i > 1 ? below.transformInPlace(valid) : below.transform(valid);
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
      throw new InvalidOptionError(
        `Argument 'layer' passed to 'Dbn.transform' must be an integer in [0, ${this.layers.length - 1}]. Got ${String(layer)}.`,
      );
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
      if (!Number.isSafeInteger(request) || request < 1)
        throw new InvalidOptionError(`Argument 'n' passed to 'Dbn.generate' must be an integer >= 1. Got ${String(request)}.`);
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
    const settings = resolveFineTune(opts);
    const x = this.checkInput(data, 'Dbn.fineTune');
    const y = checkLabels(labels, x.rows, 'Dbn.fineTune', 'labels');
    const unfinished = this.classifier !== undefined && !this.classifier.finished ? this.classifier : undefined;
    const classes = this.fineTuneClasses(unfinished, y, opts);
    let given: { x: HostMatrix; y: Int32Array } | undefined;
    if (opts.validation !== undefined) {
      const validX = this.checkInput(opts.validation.x, 'Dbn.fineTune', 'validation.x');
      given = { x: validX, y: checkLabels(opts.validation.y, validX.rows, 'Dbn.fineTune', 'validation.y') };
      checkLabelRange(given.y, classes, 'Dbn.fineTune', 'validation.y');
    }
    const rows = splitValidation(x, y, settings, given, this.splitSeed);
    let classifier = unfinished;
    if (classifier === undefined) {
      this.classifier?.net.dispose();
      this.classifier = undefined;
      classifier = freshClassifier(this.stack(), classes, settings.init);
      this.classifier = classifier;
    }
    if (opts.onStart) await opts.onStart({ classes, epochsDone: classifier.epochsDone });
    const checkpointPath = opts.checkpoint?.path;
    return runFineTune(classifier, rows, {
      settings,
      opts,
      classes,
      collective: opts.collective === undefined ? undefined : forStage(opts.collective, this.layers.length),
      checkpoint: () => {
        if (checkpointPath !== undefined) this.save(checkpointPath, { overwrite: true, trainingState: true });
      },
    });
  }

  /** The class count of a fine-tuning run: the unfinished run's, else the option, else the labels'; checks the labels against it. */
  private fineTuneClasses(unfinished: Classifier | undefined, y: Int32Array, opts: FineTuneOptions): number {
    if (unfinished !== undefined && opts.classes !== undefined && opts.classes !== unfinished.net.classes) {
      throw new InvalidOptionError(
        `The 'classes' option of Dbn.fineTune must be ${unfinished.net.classes} to continue the unfinished run. Got ${opts.classes}.`,
      );
    }
    if (opts.collective !== undefined && opts.classes === undefined && unfinished === undefined) {
      throw new InvalidOptionError(
        `The 'classes' option of Dbn.fineTune is required with 'collective' (every replica must build the same classifier, whatever labels its own rows hold).`,
      );
    }
    const classes = unfinished !== undefined ? unfinished.net.classes : (opts.classes ?? maxLabel(y) + 1);
    if (classes < 2)
      throw new InvalidDataError(`Argument 'labels' passed to 'Dbn.fineTune' holds a single class (0); pass the 'classes' option (>= 2).`);
    checkLabelRange(y, classes, 'Dbn.fineTune', 'labels');
    return classes;
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
    const { classes, layers } = checkClassifierParameters(this.stack(), p, this.classifier?.net.classes);
    if (this.classifier === undefined) {
      const classifier = freshClassifier(this.stack(), classes, 'random');
      classifier.finished = true;
      this.classifier = classifier;
    }
    for (const [i, layer] of layers.entries()) this.classifier.net.setLayer(i, layer.weights, layer.bias);
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
    const { headers, tensors } = layerTensors(this.layers, state);
    const header: Record<string, unknown> = {
      kind: FILE_KIND,
      library: 'dbn-node',
      options: { nVisible: this.nVisible, seed: this.seed, layers: this.options.layers.map(serializableLayer) },
      layers: headers,
      trainingState: state,
      metadata: this.metadata,
    };
    if (this.assoc !== undefined) {
      const associative = this.assoc.toTensors(state);
      header['options'] = { ...(header['options'] as object), associative: this.options.associative };
      header['associative'] = associative.header;
      for (const tensor of associative.tensors) tensors.push({ ...tensor, name: `associative.${tensor.name}` });
    }
    if (this.classifier !== undefined) {
      const classifier = classifierTensors(this.classifier, this.layers.length, state);
      tensors.push(...classifier.tensors);
      header['classifier'] = classifier.header;
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

  private static fromFile(modelFile: ModelFile, file: string, backendOpt: Backend | undefined): Dbn {
    const header = modelFile.header;
    const saved = savedOptions(modelFile, file);
    const backend = backendOpt ?? defaultBackend().backend;
    const rbms: Rbm[] = [];
    let dbn: Dbn | undefined;
    try {
      readLayers(modelFile, file, backend, saved, rbms);
      Dbn.restoring = rbms;
      try {
        dbn = new Dbn({ ...(saved.options as unknown as DbnOptions), backend });
      } catch (err) {
        if (err instanceof InvalidOptionError)
          throw new ModelFileError(file, 'EHEADER', `invalid options in header: ${err.message}`, { cause: err });
        throw err;
      } finally {
        Dbn.restoring = undefined;
      }
      if (header['classifier'] !== undefined) dbn.classifier = classifierFromFile(dbn.stack(), modelFile, file);
      const associative = saved.options.associative;
      if (associative !== undefined) {
        const tensors = subTensors(modelFile.tensors, 'associative.');
        dbn.assoc = AssociativeMemory.fromTensors(header['associative'], tensors, file, backend, dbn.nOutput, Number(associative.classes));
      }
      const metadata = header['metadata'];
      if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
        throw new ModelFileError(file, 'EHEADER', '"metadata" must be a JSON object.');
      }
      dbn.metadata = (metadata as Record<string, unknown> | undefined) ?? {};
      return dbn;
    } catch (err) {
      if (dbn !== undefined) dbn.dispose();
      else for (const rbm of rbms) rbm.dispose();
      throw err;
    }
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

  /** The stack the classifier is unrolled from. */
  private stack(): Stack {
    return { backend: this.backend, layers: this.layers, fineTuneSeed: this.fineTuneSeed };
  }

  private requireClassifier(where: string): FeedForwardNet {
    this.assertLive();
    if (this.classifier === undefined) throw new NotFittedError(`${where} needs a classifier: call Dbn.fineTune first.`);
    return this.classifier.net;
  }

  private checkInput(data: MatrixInput, where: string, arg = 'data'): HostMatrix {
    const unitInterval = this.layers[0]!.options.visible === 'bernoulli';
    return toHostMatrix(data, where, arg, { cols: this.nVisible, unitInterval, ...backendScan(this.backend) });
  }

  private assertLive(): void {
    if (this.disposed) throw new NotFittedError('This Dbn has been disposed.');
  }

  private requirePretrained(where: string, upTo: number): void {
    const i = this.layers.findIndex((l, k) => k <= upTo && !l.isFitted);
    if (i >= 0)
      throw new NotFittedError(
        `${where} needs pretrained layers, and layer ${i} has no learned weights: call Dbn.pretrain (or Dbn.load) first.`,
      );
  }
}
