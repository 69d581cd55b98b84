/**
 * Sampling from a DBN (Hinton, Osindero & Teh 2006): Gibbs chains in the top-level RBM — the
 * associative memory with a label clamped or free, else the top layer of the stack — then one
 * top-down pass of visible means through the layers below.
 */
import { InvalidOptionError, NotFittedError } from '../errors.js';
import type { Random } from '../random.js';
import type { Rbm } from '../rbm/index.js';
import { type Constraints, type HostMatrix, validateOptions } from '../validate.js';
import type { AssociativeMemory, ChainOptions } from './associative.js';
import { chooseLabelStrength, type StrengthChoice } from './label-strength.js';
import { generateConstraints, type GenerateOptions } from './options.js';

/**
 * The label strength of a clamped chain by default: `'auto'`, chosen per class at sampling time
 * by a pilot (see {@link chooseLabelStrength}). A fixed strength, the same for every digit, could
 * not give every digit both its class and the variety of real digits (bench/RESULTS.md).
 */
export const DEFAULT_LABEL_STRENGTH = 'auto';

/**
 * What {@link Dbn.generate} draws. Each of `chains` chains runs `burnIn` Gibbs steps
 * (v → h → v, sampled), then gives a sample every `thin` steps, passed down the stack (see `downPass`).
 */
export interface GenerateRequest extends GenerateOptions {
  /** Samples to draw (`count × nVisible`). Default 1. */
  readonly count?: number;
  /**
   * Clamp the associative memory's label to this class (needs a DBN with an `associative` top
   * layer). Undefined: see `freeLabel` (without an associative layer, the top RBM's chain).
   */
  readonly label?: number;
  /**
   * Without `label`, with an associative layer: `'uniform'` (default) draws each sample's class
   * uniformly at random and runs that class's clamped chain (with `labelStrength`), so every class
   * appears; `'chain'` lets the label units run free in one joint chain, which tends to stay in
   * a few classes' modes.
   */
  readonly freeLabel?: 'uniform' | 'chain';
  /** Gibbs steps before a chain's first sample. Default `gibbsSteps − 1` (999). */
  readonly burnIn?: number;
  /** Gibbs steps between successive samples of one chain. Default 100. */
  readonly thin?: number;
  /** Chains run side by side. Default `count` (one sample per chain). */
  readonly chains?: number;
  /**
   * Weight of the clamped label in the top RBM's hidden input (see `AssociativeMemory.clamped`):
   * 1 samples the model's exact conditional `p(v | label)`; larger values sharpen it towards the
   * label's digit at some cost in variety. `'auto'` (default, {@link DEFAULT_LABEL_STRENGTH}):
   * per class, the smallest strength of `AUTO_LABEL_STRENGTH`'s ladder at which the model's own
   * free-energy classifier gives 80 % of a pilot's samples p >= 0.9 of the class (see {@link chooseLabelStrength}).
   * Ignored by the joint free chain.
   */
  readonly labelStrength?: number | 'auto';
  /**
   * The top-down pass (Hinton, Osindero & Teh 2006): `'sampled'` (default) draws binary states of
   * the top RBM's visible layer and of every layer below but the input, whose probabilities
   * `E[v | h₁]` are the sample; `'mean'` passes probabilities all the way down (smoother, blurrier).
   */
  readonly downPass?: 'sampled' | 'mean';
}

/** The constraints table of {@link GenerateRequest}. */
export const generateRequestConstraints: Constraints = {
  ...generateConstraints,
  count: { kind: 'integer', min: 1 },
  label: { kind: 'integer', min: 0 },
  burnIn: { kind: 'integer', min: 0 },
  thin: { kind: 'integer', min: 1 },
  chains: { kind: 'integer', min: 1 },
  labelStrength: {
    kind: 'custom',
    expected: "a finite number >= 0 or 'auto'",
    check: (v) => v === 'auto' || (typeof v === 'number' && Number.isFinite(v) && v >= 0),
  },
  downPass: { kind: 'enum', values: ['sampled', 'mean'] },
  freeLabel: { kind: 'enum', values: ['uniform', 'chain'] },
};

/** What sampling (`Dbn.generate`, {@link autoLabelStrength}) needs of a `Dbn`: its stack and associative memory. */
export interface GenerativeStack {
  readonly layers: readonly Rbm[];
  readonly associative: AssociativeMemory | undefined;
}

/** `count × nVisible` samples of `dbn` (see {@link GenerateRequest}), drawn from `rng`. */
export function generateSamples(dbn: GenerativeStack, request: GenerateRequest, rng: Random): HostMatrix {
  validateOptions('Dbn.generate', generateRequestConstraints, request);
  const count = request.count ?? 1;
  const chains = Math.min(request.chains ?? count, count);
  const burnIn = request.burnIn ?? (request.gibbsSteps ?? 1000) - 1;
  const thin = request.thin ?? 100;
  const mem = dbn.associative;
  if (request.label !== undefined && mem === undefined) {
    throw new NotFittedError(
      `The 'label' option of Dbn.generate needs an associative top layer (the Dbn option 'associative', trained by Dbn.pretrainAssociative).`,
    );
  }
  if (mem !== undefined && request.label !== undefined && request.label >= mem.classes) {
    throw new InvalidOptionError(`The 'label' option of Dbn.generate must be an integer in [0, ${mem.classes - 1}]. Got ${request.label}.`);
  }
  const sampled = (request.downPass ?? 'sampled') === 'sampled';
  const labelStrength = request.labelStrength ?? DEFAULT_LABEL_STRENGTH;
  if (mem !== undefined) {
    const states = sampled ? 'samples' : 'means';
    const chain = { count, chains, burnIn, thin, random: rng, states } as const;
    const strengthOf = (label: number): number =>
      labelStrength === 'auto' ? autoLabelStrength(dbn, label, rng, sampled).strength : labelStrength;
    let top: HostMatrix;
    if (request.label !== undefined)
      top = mem.sample({ ...chain, label: request.label, labelStrength: strengthOf(request.label) }).features;
    else if (request.freeLabel === 'chain') top = mem.sample(chain).features;
    else top = uniformLabels(mem, chain, strengthOf);
    return downPass(dbn.layers, dbn.layers.length - 1, top, sampled, rng);
  }
  // a one-layer stack's top chain is over the input itself: its means are the samples
  const top = topChains(
    dbn.layers[dbn.layers.length - 1]!,
    { count, chains, burnIn, thin, sampled: sampled && dbn.layers.length > 1 },
    rng,
  );
  return downPass(dbn.layers, dbn.layers.length - 2, top, sampled, rng);
}

/**
 * `count` feature samples, each of a class drawn uniformly from `random`, in the order drawn:
 * the clamped chains of each class drawn (at most `chains` side by side per class).
 */
function uniformLabels(
  mem: AssociativeMemory,
  o: Omit<ChainOptions, 'label' | 'labelStrength'>,
  strengthOf: (label: number) => number,
): HostMatrix {
  const labels = Array.from({ length: o.count }, () => o.random.int(mem.classes));
  const nf = mem.nFeatures;
  const out = new Float32Array(o.count * nf);
  for (let k = 0; k < mem.classes; k++) {
    const rows = labels.flatMap((l, i) => (l === k ? [i] : []));
    if (rows.length === 0) continue;
    const s = mem.sample({
      ...o,
      label: k,
      labelStrength: strengthOf(k),
      count: rows.length,
      chains: Math.min(o.chains, rows.length),
    }).features;
    rows.forEach((r, i) => out.set(s.data.subarray(i * nf, (i + 1) * nf), r * nf));
  }
  return { rows: o.count, cols: nf, data: out };
}

/**
 * `labelStrength: 'auto'` for class `label` of `dbn`'s associative memory: {@link chooseLabelStrength}
 * with the model's own recognition of a pilot sample — passed down to the input as `generate`
 * does (`sampled` or mean pass), up again by each layer's `transform`, classified by free energy.
 * `Dbn.generate({ label, seed })` makes this choice first, from a generator seeded with `seed`.
 */
export function autoLabelStrength(dbn: GenerativeStack, label: number, random: Random, sampled = true): StrengthChoice {
  const mem = dbn.associative;
  if (mem === undefined)
    throw new NotFittedError(`An automatic label strength needs an associative top layer (the Dbn option 'associative').`);
  const recognise = (features: HostMatrix): HostMatrix => {
    let x = downPass(dbn.layers, dbn.layers.length - 1, features, sampled, random);
    for (const layer of dbn.layers) x = layer.transform(x);
    return mem.predictProba(x);
  };
  return chooseLabelStrength(mem, label, recognise, random);
}

/**
 * From states of the visible layer of `layers[from]` down to the input: binary samples of each
 * layer's visible units but the input's (`sampled`), or means all the way; the input's means last.
 */
function downPass(layers: readonly Rbm[], from: number, top: HostMatrix, sampled: boolean, rng: Random): HostMatrix {
  let v = top;
  for (let i = from; i >= 1; i--) v = sampled ? layers[i]!.sampleVisibles(v, { random: rng }) : layers[i]!.meanVisibles(v);
  return from >= 0 ? layers[0]!.meanVisibles(v) : v;
}

/** Chains in the top RBM of a stack without an associative layer, started from its visible biases. */
function topChains(
  top: Rbm,
  o: { count: number; chains: number; burnIn: number; thin: number; sampled: boolean },
  rng: Random,
): HostMatrix {
  const nv = top.nVisible;
  const bv = top.getParameters().visibleBias;
  const start = new Float32Array(o.chains * nv);
  if (top.options.visible === 'bernoulli') {
    rng.fillUniform(start);
    for (let k = 0; k < start.length; k++) start[k] = start[k]! < sigmoid(bv[k % nv]!) ? 1 : 0;
  } else {
    rng.fillNormal(start);
    for (let k = 0; k < start.length; k++) start[k] = start[k]! + bv[k % nv]!;
  }
  let v: HostMatrix = { rows: o.chains, cols: nv, data: start };
  const out = new Float32Array(o.count * nv);
  let taken = 0;
  for (let s = 0; taken < o.count; s++) {
    const steps = s === 0 ? o.burnIn : o.thin;
    if (steps > 0) v = top.gibbs(v, steps, { random: rng });
    const h = top.sampleHiddens(v, { random: rng });
    const states = o.sampled ? top.sampleVisibles(h, { random: rng }) : top.meanVisibles(h);
    const n = Math.min(o.chains, o.count - taken);
    out.set(states.data.subarray(0, n * nv), taken * nv);
    taken += n;
  }
  return { rows: o.count, cols: nv, data: out };
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}
