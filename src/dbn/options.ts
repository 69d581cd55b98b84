/**
 * Options of {@link Dbn} and of its methods: types, constraints tables and defaults.
 */
import type { Collective } from '../rbm/collective.js';
import type { Backend } from '../kernels/backend.js';
import type { BatchInfo, EpochMetrics, RbmOptions } from '../rbm/index.js';
import { rbmConstraints } from '../rbm/options.js';
import type { Constraints, MatrixInput } from '../validate.js';
import type { AssociativeOptions } from './associative.js';
import type { LabelsLike } from '../data/matrix.js';

/**
 * Options of one layer of a {@link Dbn}: any {@link RbmOptions} except `nVisible` (the width of
 * the layer below), `backend` (the DBN's), `seed` and `random` (derived from the DBN's seed).
 * Layers above the first have the visible units the layer below implies: Bernoulli above
 * Bernoulli hidden units (they model hidden means in [0, 1]), unit-variance Gaussian above
 * noisy-ReLU ones; `visible` may only be set on the first layer.
 */
export type LayerOptions = Omit<RbmOptions, 'nVisible' | 'backend' | 'seed' | 'random'>;

/** Options of {@link Dbn}. */
export interface DbnOptions {
  /** Number of visible units of the first layer (input features). Required. */
  readonly nVisible: number;
  /** The layers, bottom first (at least one). Required. */
  readonly layers: readonly LayerOptions[];
  /** The compute backend (injected), shared by every layer. Default: `defaultBackend()` (native, else js). */
  readonly backend?: Backend;
  /** Seed from which every layer's seed, the fine-tuning generator and the validation split derive. Default: drawn at random (see `dbn.seed`). */
  readonly seed?: number;
  /**
   * A top-level associative memory above the stack (Hinton, Osindero & Teh 2006): an RBM over
   * [top features, one-hot label] with a softmax label group, trained by
   * {@link Dbn.pretrainAssociative}; it classifies by free energy and generates chosen classes.
   */
  readonly associative?: AssociativeOptions;
}

/** The resolved options of a {@link Dbn} (the backend is held apart). */
export interface ResolvedDbnOptions {
  readonly nVisible: number;
  readonly layers: readonly LayerOptions[];
  readonly seed: number;
  readonly associative?: AssociativeOptions;
}

/** Where and how often to write checkpoints (atomically; an existing file is replaced). */
export interface CheckpointOptions {
  /** File to write (the model-file format, with training state). */
  readonly path: string;
  /** Write after every `everyEpochs` completed epochs (and when a layer or a run finishes). */
  readonly everyEpochs: number;
}

/** Options of {@link Dbn.pretrain}. */
export interface PretrainOptions {
  /** Held-out rows (`rows × nVisible`), carried up the stack for each layer's free-energy-gap monitor. */
  readonly validation?: MatrixInput;
  /** Called after every epoch of every layer. */
  readonly onEpoch?: (layer: number, metrics: EpochMetrics) => void | Promise<void>;
  /** Called after every minibatch update of every layer. */
  readonly onBatch?: (layer: number, info: BatchInfo) => void | Promise<void>;
  /** Stops after the current minibatch when aborted (the epoch in progress is left incomplete). */
  readonly signal?: AbortSignal;
  readonly checkpoint?: CheckpointOptions;
  /**
   * Train as one replica of several (synchronous data-parallel; see {@link Collective}): each
   * minibatch's gradient is summed over the replicas before the same update is applied
   * everywhere. Peer training (`PeerTrainer`) passes one; a single process none.
   */
  readonly collective?: Collective;
}

/** Metrics reported after every epoch of {@link Dbn.fineTune}. */
export interface FineTuneMetrics {
  /** 0-based index of the epoch just finished, counted over the whole fine-tuning run. */
  readonly epoch: number;
  /** Mean training cross-entropy over the epoch's minibatches (with dropout, before each update). */
  readonly loss: number;
  /** Fraction of training rows the minibatches classified right (before each update). */
  readonly trainAccuracy: number;
  /** Mean cross-entropy on the validation rows (absent without validation). */
  readonly validationLoss?: number;
  readonly validationAccuracy?: number;
  /** True when this epoch is the best so far on the validation monitor. */
  readonly best: boolean;
  readonly learningRate: number;
  /** Wall time of the epoch in milliseconds. */
  readonly elapsedMs: number;
}

/** Progress passed to {@link FineTuneOptions.onBatch}. */
export interface FineTuneBatchInfo {
  readonly epoch: number;
  readonly batch: number;
  readonly batches: number;
  /** Mean cross-entropy of the batch before the update. */
  readonly loss: number;
}

/** Labelled rows for validation. */
export interface LabelledData {
  /** `rows × nVisible`. */
  readonly x: MatrixInput;
  /** Length `rows`, classes in `[0, classes)`. */
  readonly y: LabelsLike;
}

/** Options of {@link Dbn.fineTune}. */
export interface FineTuneOptions {
  /** Number of classes. Default: `max(labels) + 1` (at least 2). */
  readonly classes?: number;
  /** Default 50. */
  readonly epochs?: number;
  /** Default 0.1. */
  readonly learningRate?: number;
  /** Learning rate of epoch `e` is `learningRate · learningRateDecay^e`. Default 1. */
  readonly learningRateDecay?: number;
  /** Default 0.9. */
  readonly momentum?: number;
  /** L2 weight decay on the weights (not the biases). Default 1e-4. */
  readonly weightDecay?: number;
  /** Default 100. */
  readonly batchSize?: number;
  /** Held-out labelled rows for early stopping; overrides `validationFraction`. */
  readonly validation?: LabelledData;
  /** Fraction of the rows held out (seeded split) when `validation` is absent. 0 turns early stopping off. Default 0.1. */
  readonly validationFraction?: number;
  /** Stop after this many epochs without improvement on the validation monitor; the best weights are restored. Default 10. */
  readonly patience?: number;
  /** What early stopping watches: validation `'logLoss'` (lower is better) or `'accuracy'`. Default `'logLoss'`. */
  readonly monitor?: 'logLoss' | 'accuracy';
  /** Dropout rate of the hidden layers' outputs (Srivastava et al. 2014). Default 0. */
  readonly dropout?: number;
  /** Dropout rate of the input features. Default 0. */
  readonly inputDropout?: number;
  /**
   * How a fresh run initializes the hidden layers: `'auto'` copies each pretrained RBM's weights
   * and hidden biases (a layer never trained gets the random init), `'random'` ignores
   * pretraining (Glorot-uniform weights, zero biases). Default `'auto'`.
   */
  readonly init?: 'auto' | 'random';
  /** Called after every fine-tuning epoch. */
  readonly onEpoch?: (metrics: FineTuneMetrics) => void | Promise<void>;
  /** Called after every fine-tuning minibatch update. */
  readonly onBatch?: (info: FineTuneBatchInfo) => void | Promise<void>;
  /**
   * Called once the classifier exists (fresh or continued), before the first minibatch: peer
   * training reads its starting weights here.
   */
  readonly onStart?: (info: { readonly classes: number; readonly epochsDone: number }) => void | Promise<void>;
  /** Stops after the current minibatch when aborted. */
  readonly signal?: AbortSignal;
  readonly checkpoint?: CheckpointOptions;
  /**
   * Fine-tune as one replica of several (synchronous data-parallel; see {@link Collective}): each
   * minibatch's gradient is summed over the replicas before the same update is applied
   * everywhere; `classes` is then required, and early stopping decides on
   * the validation statistics summed over the replicas. Peer training (`PeerTrainer`) passes one; a single process none.
   */
  readonly collective?: Collective;
}

/** What {@link Dbn.fineTune} resolves with. */
export interface FineTuneResult {
  /** Metrics of the epochs run by this call. */
  readonly history: FineTuneMetrics[];
  /** Epochs completed over the whole run (including before a resume). */
  readonly epochs: number;
  /** The epoch whose weights the network holds at the end (the best on validation), −1 without validation. */
  readonly bestEpoch: number;
  /** True when the run ended (all epochs, or early stopping); false when it was aborted. */
  readonly finished: boolean;
  /** True when early stopping ended the run. */
  readonly stoppedEarly: boolean;
}

/** Options of {@link Dbn.generate}. */
export interface GenerateOptions {
  /** Alternating Gibbs steps in the top RBM. Default 1000. */
  readonly gibbsSteps?: number;
  /** Seed of the sampling generator. Default: the model's own sampling stream (which training does not use). */
  readonly seed?: number;
}

/** The result of {@link Dbn.evaluate}. */
export interface Evaluation {
  /** Fraction of rows whose most probable class is the true one. */
  readonly accuracy: number;
  /** `classes × classes` counts; row = true class, column = predicted class. */
  readonly confusionMatrix: number[][];
  /** Mean cross-entropy `−log p(y | x)` (probabilities floored at 1e-15). */
  readonly logLoss: number;
}

/** Rbm options a Dbn layer may not set. */
const NOT_LAYER_OPTIONS = new Set(['nVisible', 'backend', 'seed', 'random', 'softmaxUnits', 'discriminativeWeight', 'labelNegativePhase']);

/** The constraints table of {@link LayerOptions}. */
export const layerConstraints: Constraints = Object.fromEntries(Object.entries(rbmConstraints).filter(([k]) => !NOT_LAYER_OPTIONS.has(k)));

/** The constraints table of {@link DbnOptions}. */
export const dbnConstraints: Constraints = {
  nVisible: rbmConstraints['nVisible']!,
  layers: {
    kind: 'custom',
    expected: 'a non-empty array of layer options ({ nHidden, ... })',
    check: (v) => Array.isArray(v) && v.length > 0 && v.every((l) => typeof l === 'object' && l !== null && !Array.isArray(l)),
  },
  backend: rbmConstraints['backend']!,
  seed: rbmConstraints['seed']!,
  associative: { kind: 'object' },
};

const checkpointConstraint = {
  kind: 'custom',
  expected: '{ path: string, everyEpochs: integer >= 1 }',
  check: (v: unknown) => {
    const checkpoint = v as { path?: unknown; everyEpochs?: unknown } | null;
    return (
      typeof checkpoint === 'object' &&
      checkpoint !== null &&
      typeof checkpoint.path === 'string' &&
      checkpoint.path.length > 0 &&
      typeof checkpoint.everyEpochs === 'number' &&
      Number.isSafeInteger(checkpoint.everyEpochs) &&
      checkpoint.everyEpochs >= 1
    );
  },
} as const;

/** The constraints table of {@link PretrainOptions}. */
export const pretrainConstraints: Constraints = {
  validation: { kind: 'object' },
  onEpoch: { kind: 'function' },
  onBatch: { kind: 'function' },
  signal: { kind: 'object' },
  collective: { kind: 'object' },
  checkpoint: checkpointConstraint,
};

/** The constraints table of {@link FineTuneOptions}. */
export const fineTuneConstraints: Constraints = {
  classes: { kind: 'integer', min: 2 },
  epochs: { kind: 'integer', min: 0 },
  learningRate: { kind: 'number', min: 0, minOpen: true },
  learningRateDecay: { kind: 'number', min: 0, max: 1, minOpen: true },
  momentum: { kind: 'number', min: 0, max: 1, maxOpen: true },
  weightDecay: { kind: 'number', min: 0 },
  batchSize: { kind: 'integer', min: 1 },
  validation: {
    kind: 'custom',
    expected: '{ x: matrix, y: Int32Array }',
    check: (v) =>
      typeof v === 'object' && v !== null && typeof (v as { x?: unknown }).x === 'object' && (v as { y?: unknown }).y instanceof Int32Array,
  },
  validationFraction: { kind: 'number', min: 0, max: 1, maxOpen: true },
  patience: { kind: 'integer', min: 1 },
  monitor: { kind: 'enum', values: ['logLoss', 'accuracy'] },
  dropout: { kind: 'number', min: 0, max: 1, maxOpen: true },
  inputDropout: { kind: 'number', min: 0, max: 1, maxOpen: true },
  init: { kind: 'enum', values: ['auto', 'random'] },
  onEpoch: { kind: 'function' },
  onBatch: { kind: 'function' },
  onStart: { kind: 'function' },
  signal: { kind: 'object' },
  collective: { kind: 'object' },
  checkpoint: checkpointConstraint,
};

/** The constraints table of {@link GenerateOptions}. */
export const generateConstraints: Constraints = {
  gibbsSteps: { kind: 'integer', min: 1 },
  seed: rbmConstraints['seed']!,
};

/** Resolved fine-tuning hyper-parameters. */
export interface ResolvedFineTune {
  readonly epochs: number;
  readonly learningRate: number;
  readonly learningRateDecay: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly batchSize: number;
  readonly validationFraction: number;
  readonly patience: number;
  readonly monitor: 'logLoss' | 'accuracy';
  readonly dropout: number;
  readonly inputDropout: number;
  readonly init: 'auto' | 'random';
}

/** Fills in the defaults of {@link FineTuneOptions}. */
export function resolveFineTune(options: FineTuneOptions): ResolvedFineTune {
  return {
    epochs: options.epochs ?? 50,
    learningRate: options.learningRate ?? 0.1,
    learningRateDecay: options.learningRateDecay ?? 1,
    momentum: options.momentum ?? 0.9,
    weightDecay: options.weightDecay ?? 1e-4,
    batchSize: options.batchSize ?? 100,
    validationFraction: options.validationFraction ?? 0.1,
    patience: options.patience ?? 10,
    monitor: options.monitor ?? 'logLoss',
    dropout: options.dropout ?? 0,
    inputDropout: options.inputDropout ?? 0,
    init: options.init ?? 'auto',
  };
}
