/**
 * The top-level associative memory of Hinton, Osindero & Teh (2006): an RBM whose visible layer
 * is [the features of the layer below, a one-hot label], the label units forming one softmax
 * group (`Rbm` option `softmaxUnits`). It classifies by the free energy of each label and
 * generates by clamping a label and running its Gibbs chain. It trains through `Rbm.fit` like
 * any layer, so CD-k, PCD (Tieleman 2008) and collective training apply.
 */
import type { Backend } from '../kernels/backend.js';
import { InvalidDataError, InvalidOptionError, ModelFileError, ShapeMismatchError } from '../errors.js';
import type { RandomSource } from '../random.js';
import { Rbm, type EpochMetrics, type FitOptions, type NamedTensor } from '../rbm/index.js';
import { type Constraints, type HostMatrix, type MatrixInput, toHostMatrix, validateOptions } from '../validate.js';
import { rbmConstraints } from '../rbm/options.js';
import { layerConstraints, type LayerOptions } from './options.js';

/** Options of the associative top layer (`Dbn` option `associative`): a layer's options and the number of classes. */
export interface AssociativeOptions extends Omit<LayerOptions, 'visible' | 'softmaxUnits'> {
  /** Number of classes: label units of the softmax group. Required (≥ 2). */
  readonly classes: number;
}

/**
 * Defaults of the associative layer that differ from a layer's: CD-3 on minibatches of 20 with
 * the labels clamped in the negative phase and the discriminative term at β = 1. Chosen by
 * label-clamped samples of the bundled digits (bench/generation.ts, bench/RESULTS.md): PCD and the
 * sampled-label negative phase let most classes' chains fall into a few digits' modes; CD-1's
 * samples of some digits (5s, 7s) vary less than real ones at any strength that keeps them in class.
 */
export const ASSOCIATIVE_DEFAULTS = {
  k: 3,
  persistent: false,
  batchSize: 20,
  learningRate: 0.1,
  discriminativeWeight: 1,
  labelNegativePhase: 'clamped',
} as const;

/** The constraints table of {@link AssociativeOptions}. */
export const associativeConstraints: Constraints = {
  ...Object.fromEntries(Object.entries(layerConstraints).filter(([k]) => k !== 'visible' && k !== 'softmaxUnits')),
  classes: { kind: 'integer', min: 2 },
  discriminativeWeight: rbmConstraints['discriminativeWeight']!,
  labelNegativePhase: rbmConstraints['labelNegativePhase']!,
};

/** How to draw samples from the associative memory's Gibbs chains. */
export interface ChainOptions {
  /** Clamp the label to this class; undefined: let the label units run free with the features. */
  readonly label?: number | undefined;
  /** Samples to return. */
  readonly count: number;
  /** Independent chains run side by side (≤ `count`); each gives `⌈count / chains⌉` samples. */
  readonly chains: number;
  /** Gibbs steps before a chain's first sample. */
  readonly burnIn: number;
  /** Gibbs steps between successive samples of one chain. */
  readonly thin: number;
  /** The generator every chain draws from. */
  readonly random: RandomSource;
  /** Weight of the clamped label in the hidden units' input (see {@link AssociativeMemory.clamped}). Default 1: the exact conditional. */
  readonly labelStrength?: number | undefined;
  /** What a sample holds: `'means'` `E[features | h]` (default), or `'samples'` binary states `features ~ p(features | h)`. */
  readonly states?: 'means' | 'samples' | undefined;
}

/** Samples of the associative memory's visible layer. */
export interface FeatureSamples {
  /** `count × nFeatures`: `E[features | h]` (or a sample of it, see `states`) with `h` sampled from the chain's last state, in [0, 1]. */
  readonly features: HostMatrix;
  /** The label each sample's chain held (the clamped one, or the free chain's softmax sample). */
  readonly labels: Int32Array;
}

/**
 * An RBM over `[features, one-hot label]` with a softmax label group.
 *
 * @example
 * ```ts
 * const mem = AssociativeMemory.create(500, { classes: 10, nHidden: 2000, epochs: 10 }, backend, 1);
 * await mem.fit(dbn.transform(images), labels);
 * const p = mem.predictProba(dbn.transform(testImages)); // rows × 10, by free energy
 * ```
 */
export class AssociativeMemory {
  /** Features of the layer below (visible units before the label group). */
  readonly nFeatures: number;
  readonly classes: number;

  /** Wraps `rbm`, whose last `softmaxUnits` visible units are the label group. */
  constructor(readonly rbm: Rbm) {
    if (rbm.options.softmaxUnits < 2)
      throw new InvalidOptionError(
        `AssociativeMemory needs an Rbm with a softmax label group ('softmaxUnits' >= 2); got ${rbm.options.softmaxUnits}.`,
      );
    this.classes = rbm.options.softmaxUnits;
    this.nFeatures = rbm.nVisible - this.classes;
  }

  /** A fresh associative memory over `nFeatures` features (CD-3, minibatches of 20, learning rate 0.1, discriminative weight 1, labels clamped in the negative phase, unless `options` say otherwise). */
  static create(nFeatures: number, options: AssociativeOptions, backend: Backend, seed: number): AssociativeMemory {
    validateOptions('Dbn associative layer', associativeConstraints, options);
    if (options.nHidden === undefined) throw new InvalidOptionError(`The 'nHidden' option of the Dbn associative layer is required.`);
    const { classes, ...layer } = options;
    const rbm = new Rbm({ ...ASSOCIATIVE_DEFAULTS, ...layer, nVisible: nFeatures + classes, softmaxUnits: classes, backend, seed });
    return new AssociativeMemory(rbm);
  }

  /** Hidden units of the associative RBM. */
  get nHidden(): number {
    return this.rbm.nHidden;
  }

  /** `[features, one-hot(labels)]` (`rows × (nFeatures + classes)`). */
  join(features: MatrixInput, labels: Int32Array, where: string): HostMatrix {
    const x = toHostMatrix(features, where, 'features', { cols: this.nFeatures, unitInterval: true });
    checkLabels(labels, x.rows, this.classes, where);
    const nv = this.rbm.nVisible;
    const data = new Float32Array(x.rows * nv);
    for (let r = 0; r < x.rows; r++) {
      data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), r * nv);
      data[r * nv + this.nFeatures + labels[r]!] = 1;
    }
    return { rows: x.rows, cols: nv, data };
  }

  /** Trains on `features` (`rows × nFeatures`, in [0, 1]) with their `labels` by `Rbm.fit`. */
  fit(features: MatrixInput, labels: Int32Array, opts: FitOptions = {}): Promise<EpochMetrics[]> {
    return this.rbm.fit(this.join(features, labels, 'AssociativeMemory.fit'), opts);
  }

  /** `F([x, e_k])` for every row and class (`rows × classes`): the free energy with label `k` clamped. */
  labelFreeEnergies(features: MatrixInput): HostMatrix {
    const x = toHostMatrix(features, 'AssociativeMemory.labelFreeEnergies', 'features', { cols: this.nFeatures, unitInterval: true });
    const out = new Float32Array(x.rows * this.classes);
    const labels = new Int32Array(x.rows);
    for (let k = 0; k < this.classes; k++) {
      labels.fill(k);
      const f = this.rbm.freeEnergy(this.join(x, labels, 'AssociativeMemory.labelFreeEnergies'));
      for (let r = 0; r < x.rows; r++) out[r * this.classes + k] = f[r]!;
    }
    return { rows: x.rows, cols: this.classes, data: out };
  }

  /** `p(label = k | features) = exp(−F([x, e_k])) / Σ_j exp(−F([x, e_j]))` (`rows × classes`). */
  predictProba(features: MatrixInput): HostMatrix {
    const f = this.labelFreeEnergies(features);
    const c = this.classes;
    for (let r = 0; r < f.rows; r++) {
      let min = Number.POSITIVE_INFINITY;
      for (let k = 0; k < c; k++) min = Math.min(min, f.data[r * c + k]!);
      let sum = 0;
      for (let k = 0; k < c; k++) {
        const e = Math.exp(min - f.data[r * c + k]!);
        f.data[r * c + k] = e;
        sum += e;
      }
      for (let k = 0; k < c; k++) f.data[r * c + k] = f.data[r * c + k]! / sum;
    }
    return f;
  }

  /** The class of lowest free energy for every row (length `rows`). */
  predict(features: MatrixInput): Int32Array {
    const p = this.predictProba(features);
    const out = new Int32Array(p.rows);
    for (let r = 0; r < p.rows; r++) {
      let best = 0;
      for (let k = 1; k < p.cols; k++) if (p.data[r * p.cols + k]! > p.data[r * p.cols + best]!) best = k;
      out[r] = best;
    }
    return out;
  }

  /**
   * The RBM over the features alone with label `k` clamped: weights and visible biases of the
   * feature units, hidden biases `b_h + strength · W[k]`. With `strength` 1 (the default) exactly
   * `p(features, h | label = k)`; a larger `strength` weighs the label as if it were shown that many
   * times, `p_s(features, h | k) ∝ exp(−E(features, h) + (s − 1) W[k]·h)`, which sharpens the
   * conditional towards the features the label predicts. The caller disposes it.
   */
  clamped(label: number, strength = 1): Rbm {
    if (!Number.isSafeInteger(label) || label < 0 || label >= this.classes) {
      throw new InvalidOptionError(
        `The 'label' passed to the associative memory must be an integer in [0, ${this.classes - 1}]. Got ${String(label)}.`,
      );
    }
    if (!Number.isFinite(strength) || strength < 0)
      throw new InvalidOptionError(
        `The 'labelStrength' passed to the associative memory must be a finite number >= 0. Got ${String(strength)}.`,
      );
    const p = this.rbm.getParameters();
    const nf = this.nFeatures;
    const nh = this.rbm.nHidden;
    const hiddenBias = new Float32Array(p.hiddenBias);
    const row = (nf + label) * nh;
    for (let j = 0; j < nh; j++) hiddenBias[j] = hiddenBias[j]! + strength * p.weights.data[row + j]!;
    const rbm = new Rbm({ nVisible: nf, nHidden: nh, backend: this.rbm.backend, seed: this.rbm.seed, monitorSize: 0 });
    rbm.setParameters({
      weights: { rows: nf, cols: nh, data: p.weights.data.slice(0, nf * nh) },
      visibleBias: p.visibleBias.slice(0, nf),
      hiddenBias,
    });
    return rbm;
  }

  /**
   * Runs `chains` Gibbs chains (label clamped, or free) from label-driven starts (see
   * see `startChains`), `burnIn` steps, then takes a sample every `thin` steps until `count` are taken; each
   * sample is `E[features | h]` (or, with `states: 'samples'`, `features ~ p(features | h)`) with
   * `h ~ p(h | v)` from the chain's state. Deterministic for a
   * given generator state and backend.
   */
  sample(o: ChainOptions): FeatureSamples {
    const nf = this.nFeatures;
    const perChain = Math.ceil(o.count / o.chains);
    const clamped = o.label === undefined ? undefined : this.clamped(o.label, o.labelStrength);
    const rbm = clamped ?? this.rbm;
    const nv = rbm.nVisible;
    try {
      let v = this.startChains(rbm, o.chains, o.label, o.random);
      const features = new Float32Array(o.count * nf);
      const labels = new Int32Array(o.count);
      let taken = 0;
      for (let s = 0; s < perChain && taken < o.count; s++) {
        const steps = s === 0 ? o.burnIn : o.thin;
        if (steps > 0) v = rbm.gibbs(v, steps, { random: o.random });
        const h = rbm.sampleHiddens(v, { random: o.random });
        const out = o.states === 'samples' ? rbm.sampleVisibles(h, { random: o.random }) : rbm.meanVisibles(h);
        for (let r = 0; r < o.chains && taken < o.count; r++, taken++) {
          features.set(out.data.subarray(r * nv, r * nv + nf), taken * nf);
          labels[taken] = o.label ?? labelOf(v.data, r * nv + nf, this.classes);
        }
      }
      return { features: { rows: o.count, cols: nf, data: features }, labels };
    } finally {
      clamped?.dispose();
    }
  }

  /**
   * Starting states of `chains` chains in `rbm` (the clamped RBM when `label` is given, else the
   * joint one): from features all off and the label (given, or uniform at random), a hidden
   * sample `h ~ p(h | v)` and a visible sample `v ~ p(v | h)` — so each chain starts in its
   * label's region rather than in whichever mode a random start falls into first.
   */
  private startChains(rbm: Rbm, chains: number, label: number | undefined, random: RandomSource): HostMatrix {
    const nv = rbm.nVisible;
    const v0 = new Float32Array(chains * nv);
    if (label === undefined) for (let r = 0; r < chains; r++) v0[r * nv + this.nFeatures + random.int(this.classes)] = 1;
    return rbm.sampleVisibles(rbm.sampleHiddens({ rows: chains, cols: nv, data: v0 }, { random }), { random });
  }

  /** The header and tensors that describe this layer in a model file (see `Rbm.toTensors`). */
  toTensors(trainingState: boolean): { header: Record<string, unknown>; tensors: NamedTensor[] } {
    return this.rbm.toTensors(trainingState);
  }

  /** Rebuilds the layer from a model file's header and tensors (checked against `nFeatures` and `classes`). */
  static fromTensors(
    header: unknown,
    tensors: ReadonlyMap<string, NamedTensor>,
    file: string,
    backend: Backend,
    nFeatures: number,
    classes: number,
  ): AssociativeMemory {
    if (typeof header !== 'object' || header === null) throw new ModelFileError(file, 'EHEADER', '"associative" must be an object.');
    const rbm = Rbm.fromTensors(header as Record<string, unknown>, tensors, file, backend);
    if (rbm.options.softmaxUnits !== classes || rbm.nVisible !== nFeatures + classes) {
      const got = `${rbm.nVisible} visible units with a softmax group of ${rbm.options.softmaxUnits}`;
      rbm.dispose();
      throw new ModelFileError(
        file,
        'EHEADER',
        `associative layer: has ${got}; the options call for ${nFeatures} features + ${classes} classes.`,
      );
    }
    return new AssociativeMemory(rbm);
  }

  /** Frees the associative RBM's tensors. */
  dispose(): void {
    this.rbm.dispose();
  }
}

/** The index of the unit that is on among `v[offset .. offset+n)`. */
function labelOf(v: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (v[offset + j]! > v[offset + best]!) best = j;
  return best;
}

function checkLabels(labels: unknown, rows: number, classes: number, where: string): asserts labels is Int32Array {
  if (!(labels instanceof Int32Array))
    throw new ShapeMismatchError(`Argument 'labels' passed to '${where}' must be an Int32Array of class indices.`);
  if (labels.length !== rows)
    throw new ShapeMismatchError(`Argument 'labels' passed to '${where}' must hold ${rows} labels (one per row), got ${labels.length}.`);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    if (v < 0 || v >= classes)
      throw new InvalidDataError(`Argument 'labels' passed to '${where}' must hold classes in [0, ${classes - 1}]; element ${i} is ${v}.`);
  }
}
