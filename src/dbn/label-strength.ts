/**
 * `labelStrength: 'auto'`: a class's label strength chosen at sampling time by the model itself.
 * A larger strength keeps a clamped chain on its label's digit but narrows the samples' variety;
 * how much strength a class needs differs from class to class. A short pilot of chains at each
 * strength of a ladder, lowest first, stops at the first strength at which the model's own
 * free-energy classifier confidently recognises its samples — passed down to the input and back
 * up — as the requested class. Everything is drawn from the caller's generator, so the same seed gives the
 * same choice and the same samples.
 */
import type { RandomSource } from '../random.js';
import type { HostMatrix } from '../validate.js';
import type { AssociativeMemory } from './associative.js';

/** How `labelStrength: 'auto'` searches (see {@link chooseLabelStrength}). */
export interface AutoStrengthOptions {
  /** Strengths tried, in increasing order; when none passes, the one of the highest share (the first of equals). */
  readonly ladder: readonly number[];
  /** Pilot chains per strength. */
  readonly chains: number;
  /** Gibbs steps of each pilot chain before its sample. */
  readonly steps: number;
  /** A pilot sample is recognised when the model gives its class at least this probability, in (0, 1]. */
  readonly confidence: number;
  /** Share of the pilot's samples that must be recognised, in (0, 1]. */
  readonly share: number;
}

/**
 * The search of `labelStrength: 'auto'`. Chosen with bench/generation.ts on the main job's model
 * (bench/RESULTS.md): the ladder spans the strengths different digits need; counting only
 * confident recognitions follows the independent judge more closely than counting the most
 * probable class, and 100 pilot chains keep the share's sampling error near 0.03. A share of 0.8
 * (not 0.9 or 0.85) is the one that kept every digit both in class and varied at bench seeds 1–3:
 * the higher shares pushed 4s and 5s to a strength that narrowed them below half the real spread.
 */
export const AUTO_LABEL_STRENGTH: AutoStrengthOptions = {
  ladder: [1.5, 2, 2.5, 3, 3.5, 4, 5],
  chains: 100,
  steps: 300,
  confidence: 0.9,
  share: 0.8,
};

/** What {@link chooseLabelStrength} found. */
export interface StrengthChoice {
  /** The strength chosen. */
  readonly strength: number;
  /** The share of pilot samples recognised as the class at each strength tried, in ladder order. */
  readonly shares: readonly number[];
}

/**
 * The smallest strength of `o.ladder` at which at least `o.share` of `o.chains` pilot samples of
 * class `label` are recognised — given probability `>= o.confidence` of `label` by `recognise`;
 * if none is, the strength of the highest share (the smallest of equals). Each pilot chain starts
 * as {@link AssociativeMemory.sample}'s do and runs `o.steps` steps.
 *
 * @param recognise maps `chains × nFeatures` binary feature samples of the associative memory to
 *   the class probabilities the model gives each (`chains × classes`).
 */
export function chooseLabelStrength(
  mem: AssociativeMemory,
  label: number,
  recognise: (features: HostMatrix) => HostMatrix,
  random: RandomSource,
  o: AutoStrengthOptions = AUTO_LABEL_STRENGTH,
): StrengthChoice {
  const shares: number[] = [];
  for (const strength of o.ladder) {
    const pilot = mem.sample({
      label,
      labelStrength: strength,
      count: o.chains,
      chains: o.chains,
      burnIn: o.steps,
      thin: 1,
      random,
      states: 'samples',
    });
    const p = recognise(pilot.features);
    let hits = 0;
    for (let r = 0; r < p.rows; r++) if (p.data[r * p.cols + label]! >= o.confidence) hits++;
    shares.push(hits / o.chains);
    if (hits / o.chains >= o.share) return { strength, shares };
  }
  const best = shares.indexOf(Math.max(...shares));
  return { strength: o.ladder[best]!, shares };
}
