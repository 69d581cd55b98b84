/**
 * Sampling from a DBN (Hinton, Osindero & Teh 2006): Gibbs chains in the top-level RBM — the
 * associative memory with a label clamped or free, else the top layer of the stack — then one
 * top-down pass of visible means through the layers below.
 */
import { InvalidOptionError, NotFittedError } from '../errors.js';
import type { Random } from '../random.js';
import type { Rbm } from '../rbm/index.js';
import { type Constraints, type HostMatrix, validateOptions } from '../validate.js';
import type { AssociativeMemory } from './associative.js';
import { generateConstraints, type GenerateOptions } from './options.js';

/**
 * What {@link Dbn.generate} draws. Each of `chains` chains runs `burnIn` Gibbs steps
 * (v → h → v, sampled), then gives a sample every `thin` steps: `E[v | h]` with `h ~ p(h | v)`,
 * passed down the stack as visible means.
 */
export interface GenerateRequest extends GenerateOptions {
  /** Samples to draw (`count × nVisible`). Default 1. */
  readonly count?: number;
  /**
   * Clamp the associative memory's label to this class (needs a DBN with an `associative` top
   * layer). Undefined: the label units run free with the features (or, without an associative
   * layer, the top RBM's chain).
   */
  readonly label?: number;
  /** Gibbs steps before a chain's first sample. Default `gibbsSteps − 1` (999). */
  readonly burnIn?: number;
  /** Gibbs steps between successive samples of one chain. Default 100. */
  readonly thin?: number;
  /** Chains run side by side. Default `count` (one sample per chain). */
  readonly chains?: number;
}

/** The constraints table of {@link GenerateRequest}. */
export const generateRequestConstraints: Constraints = {
  ...generateConstraints,
  count: { kind: 'integer', min: 1 },
  label: { kind: 'integer', min: 0 },
  burnIn: { kind: 'integer', min: 0 },
  thin: { kind: 'integer', min: 1 },
  chains: { kind: 'integer', min: 1 },
};

/** What {@link generateSamples} needs of a `Dbn`. */
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
  let v: HostMatrix;
  if (mem !== undefined) {
    v = mem.sample({ label: request.label, count, chains, burnIn, thin, random: rng }).features;
    for (let i = dbn.layers.length - 1; i >= 0; i--) v = dbn.layers[i]!.meanVisibles(v);
    return v;
  }
  const top = dbn.layers[dbn.layers.length - 1]!;
  v = topChains(top, { count, chains, burnIn, thin }, rng);
  for (let i = dbn.layers.length - 2; i >= 0; i--) v = dbn.layers[i]!.meanVisibles(v);
  return v;
}

/** Chains in the top RBM of a stack without an associative layer, started from its visible biases. */
function topChains(top: Rbm, settings: { count: number; chains: number; burnIn: number; thin: number }, rng: Random): HostMatrix {
  const nv = top.nVisible;
  const bv = top.getParameters().visibleBias;
  const start = new Float32Array(settings.chains * nv);
  if (top.options.visible === 'bernoulli') {
    rng.fillUniform(start);
    for (let k = 0; k < start.length; k++) start[k] = start[k]! < sigmoid(bv[k % nv]!) ? 1 : 0;
  } else {
    rng.fillNormal(start);
    for (let k = 0; k < start.length; k++) start[k] = start[k]! + bv[k % nv]!;
  }
  let v: HostMatrix = { rows: settings.chains, cols: nv, data: start };
  const out = new Float32Array(settings.count * nv);
  let taken = 0;
  for (let s = 0; taken < settings.count; s++) {
    const steps = s === 0 ? settings.burnIn : settings.thin;
    if (steps > 0) v = top.gibbs(v, steps, { random: rng });
    const means = top.meanVisibles(top.sampleHiddens(v, { random: rng }));
    const n = Math.min(settings.chains, settings.count - taken);
    out.set(means.data.subarray(0, n * nv), taken * nv);
    taken += n;
  }
  return { rows: settings.count, cols: nv, data: out };
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}
