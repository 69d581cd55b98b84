/**
 * Options of {@link Rbm}: the constraints table, the defaults, and the learning-rate and
 * momentum schedules.
 */
import type { Backend } from '../kernels/backend.js';
import type { RandomSource } from '../random.js';
import type { Constraints } from '../validate.js';

/** Kinds of visible units. `gaussian` assumes unit variance: standardize the data first. */
export type VisibleUnits = 'bernoulli' | 'gaussian';
/** Kinds of hidden units. `noisy-relu`: Nair & Hinton (2010) noisy rectified linear units. */
export type HiddenUnits = 'bernoulli' | 'noisy-relu';
/** Learning-rate schedule: `ε_e = ε·γ^e` (exponential), `ε/(1+γ·e)` (inverse), or a function of the epoch. */
export type LearningRateSchedule = 'constant' | 'exponential' | 'inverse' | ((epoch: number, base: number) => number);

/** Metrics reported after every epoch of {@link Rbm.fit}. */
export interface EpochMetrics {
  /** 0-based index of the epoch just finished (counting every epoch this model has trained). */
  readonly epoch: number;
  /** Mean squared error between minibatches and their one-step reconstructions, averaged over the epoch. */
  readonly reconstructionError: number;
  /** Mean pseudo-log-likelihood on up to `monitorSize` training rows (Bernoulli RBMs only). */
  readonly pseudoLogLikelihood?: number;
  /** Mean free energy of up to `monitorSize` validation rows minus that of as many training rows (needs `validation`). */
  readonly freeEnergyGap?: number;
  /** Mean hidden activation over the epoch (the sparsity estimate q). */
  readonly meanHiddenActivation: number;
  readonly learningRate: number;
  readonly momentum: number;
  /** Wall time of the epoch in milliseconds. */
  readonly elapsedMs: number;
  /** Rows seen in the epoch. */
  readonly samples: number;
}

/** Options of {@link Rbm}. */
export interface RbmOptions {
  /** Number of visible units. Required. */
  readonly nVisible: number;
  /** Number of hidden units. Required. */
  readonly nHidden: number;
  /** Default `'bernoulli'`. */
  readonly visible?: VisibleUnits;
  /** Default `'bernoulli'`. */
  readonly hidden?: HiddenUnits;
  /** The compute backend (injected). Default: {@link defaultBackend} (native, else js). */
  readonly backend?: Backend;
  /** Base learning rate ε. Default 0.1 (0.01 for Gaussian visible units). */
  readonly learningRate?: number;
  /** Default `'constant'`. */
  readonly learningRateSchedule?: LearningRateSchedule;
  /** γ of the `exponential` (in (0, 1]) and `inverse` (≥ 0) schedules. Default 1 / 0. */
  readonly learningRateDecay?: number;
  /** Momentum for the first `momentumSwitchEpoch` epochs. Default 0.5. */
  readonly initialMomentum?: number;
  /** Momentum afterwards. Default 0.9. */
  readonly finalMomentum?: number;
  /** Epoch at which momentum switches. Default 5. */
  readonly momentumSwitchEpoch?: number;
  /** L2 weight-decay coefficient on the weights (not biases). Default 0.0002. */
  readonly weightDecay?: number;
  /** Target mean activation p of hidden units; enables the sparsity penalty when `sparsityCost > 0`. Default 0.1. */
  readonly sparsityTarget?: number;
  /** Weight of the sparsity penalty (Lee et al. 2008; Hinton 2010 §11). Default 0 (off). */
  readonly sparsityCost?: number;
  /** Decay of the running estimate q of hidden activations. Default 0.9. */
  readonly sparsityDecay?: number;
  /** Gibbs steps per update (CD-k). Default 1. */
  readonly k?: number;
  /** Persistent contrastive divergence (Tieleman 2008): keep the negative chains across updates. Default false. */
  readonly persistent?: boolean;
  /** Minibatch size. Default 100. */
  readonly batchSize?: number;
  /** Epochs of {@link Rbm.fit}. Default 10. */
  readonly epochs?: number;
  /** Shuffle rows every epoch. Default true. */
  readonly shuffle?: boolean;
  /** Seed of the generator that drives initialization, shuffling and sampling. Default: drawn at random (see `rbm.seed`). */
  readonly seed?: number;
  /**
   * The generator of every random number the model draws (initial weights, shuffles, the uniforms
   * and normals of sampling). Default: a {@link Random} seeded with `seed`. Inject one to drive
   * several models or backends from one stream, or fixed values in tests.
   */
  readonly random?: RandomSource;
  /** Standard deviation of the initial weights. Default 0.01. */
  readonly initStd?: number;
  /** Rows used for the per-epoch pseudo-likelihood and free-energy monitors. Default 1000; 0 turns them off. */
  readonly monitorSize?: number;
  /**
   * The last `softmaxUnits` visible units form one softmax group (a one-hot label, as in the
   * top-level associative memory of Hinton, Osindero & Teh 2006): their means are a softmax and
   * a sample switches exactly one of them on. Bernoulli visible units only. Default 0 (none).
   */
  readonly softmaxUnits?: number;
  /**
   * With a softmax label group: weight β of the discriminative term of the hybrid objective
   * `log p(v) + β · log p(label | rest)` (Larochelle & Bengio 2008), whose exact gradient is added
   * to the CD gradient. Default 0 (generative training only).
   */
  readonly discriminativeWeight?: number;
  /**
   * With a softmax label group: `'sampled'` (default) runs the negative phase on the joint
   * `p(v, h)`, the label units sampled like the others (Hinton et al. 2006); `'clamped'` keeps
   * every negative chain's label fixed (the data row's for CD, chain `i`'s label `i mod C` for
   * PCD), so each class's conditional `p(rest | label)` — what label-clamped generation samples —
   * is fitted to that class's rows.
   */
  readonly labelNegativePhase?: 'sampled' | 'clamped';
}

/** The constraints table of {@link RbmOptions}. */
export const rbmConstraints: Constraints = {
  nVisible: { kind: 'integer', min: 1 },
  nHidden: { kind: 'integer', min: 1 },
  visible: { kind: 'enum', values: ['bernoulli', 'gaussian'] },
  hidden: { kind: 'enum', values: ['bernoulli', 'noisy-relu'] },
  backend: {
    kind: 'custom',
    expected: 'a Backend (from createBackend / defaultBackend)',
    check: (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as { gemm?: unknown }).gemm === 'function' &&
      typeof (v as { info?: unknown }).info === 'object',
  },
  learningRate: { kind: 'number', min: 0, minOpen: true },
  learningRateSchedule: {
    kind: 'custom',
    expected: "'constant', 'exponential', 'inverse' or a function (epoch, base) => rate",
    check: (v) => v === 'constant' || v === 'exponential' || v === 'inverse' || typeof v === 'function',
  },
  learningRateDecay: { kind: 'number', min: 0 },
  initialMomentum: { kind: 'number', min: 0, max: 1, maxOpen: true },
  finalMomentum: { kind: 'number', min: 0, max: 1, maxOpen: true },
  momentumSwitchEpoch: { kind: 'integer', min: 0 },
  weightDecay: { kind: 'number', min: 0 },
  sparsityTarget: { kind: 'number', min: 0, max: 1, minOpen: true, maxOpen: true },
  sparsityCost: { kind: 'number', min: 0 },
  sparsityDecay: { kind: 'number', min: 0, max: 1, maxOpen: true },
  k: { kind: 'integer', min: 1 },
  persistent: { kind: 'boolean' },
  batchSize: { kind: 'integer', min: 1 },
  epochs: { kind: 'integer', min: 0 },
  shuffle: { kind: 'boolean' },
  seed: { kind: 'integer', min: 0, max: 2 ** 53 - 1 },
  random: {
    kind: 'custom',
    expected: 'a RandomSource (fillUniform, fillNormal, permutation, int, getState, setState)',
    check: (v) =>
      typeof v === 'object' &&
      v !== null &&
      ['fillUniform', 'fillNormal', 'permutation', 'int', 'getState', 'setState'].every(
        (m) => typeof (v as Record<string, unknown>)[m] === 'function',
      ),
  },
  initStd: { kind: 'number', min: 0, minOpen: true },
  monitorSize: { kind: 'integer', min: 0 },
  softmaxUnits: { kind: 'integer', min: 0 },
  discriminativeWeight: { kind: 'number', min: 0 },
  labelNegativePhase: { kind: 'enum', values: ['sampled', 'clamped'] },
};

/** Resolved options: every default filled in (the backend is held apart). */
export type ResolvedRbmOptions = Required<Omit<RbmOptions, 'backend' | 'seed' | 'random'>> & { readonly seed: number };

/** Fills in the defaults of `o`. */
export function resolveRbmOptions(options: RbmOptions, seed: number): ResolvedRbmOptions {
  const visible = options.visible ?? 'bernoulli';
  const schedule = options.learningRateSchedule ?? 'constant';
  return {
    nVisible: options.nVisible,
    nHidden: options.nHidden,
    visible,
    hidden: options.hidden ?? 'bernoulli',
    learningRate: options.learningRate ?? (visible === 'gaussian' ? 0.01 : 0.1),
    learningRateSchedule: schedule,
    learningRateDecay: options.learningRateDecay ?? (schedule === 'exponential' ? 1 : 0),
    initialMomentum: options.initialMomentum ?? 0.5,
    finalMomentum: options.finalMomentum ?? 0.9,
    momentumSwitchEpoch: options.momentumSwitchEpoch ?? 5,
    weightDecay: options.weightDecay ?? 0.0002,
    sparsityTarget: options.sparsityTarget ?? 0.1,
    sparsityCost: options.sparsityCost ?? 0,
    sparsityDecay: options.sparsityDecay ?? 0.9,
    k: options.k ?? 1,
    persistent: options.persistent ?? false,
    batchSize: options.batchSize ?? 100,
    epochs: options.epochs ?? 10,
    shuffle: options.shuffle ?? true,
    seed,
    initStd: options.initStd ?? 0.01,
    monitorSize: options.monitorSize ?? 1000,
    softmaxUnits: options.softmaxUnits ?? 0,
    discriminativeWeight: options.discriminativeWeight ?? 0,
    labelNegativePhase: options.labelNegativePhase ?? 'sampled',
  };
}

/** The learning rate of `epoch` under the schedule of `o`. */
export function learningRateAt(options: ResolvedRbmOptions, epoch: number): number {
  const schedule = options.learningRateSchedule;
  if (typeof schedule === 'function') return schedule(epoch, options.learningRate);
  if (schedule === 'exponential') return options.learningRate * options.learningRateDecay ** epoch;
  if (schedule === 'inverse') return options.learningRate / (1 + options.learningRateDecay * epoch);
  return options.learningRate;
}

/** The momentum of `epoch` (the usual 0.5 → 0.9 switch). */
export function momentumAt(options: ResolvedRbmOptions, epoch: number): number {
  return epoch < options.momentumSwitchEpoch ? options.initialMomentum : options.finalMomentum;
}
