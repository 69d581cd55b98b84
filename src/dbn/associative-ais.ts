/**
 * `log Z` of the associative memory by annealed importance sampling (Salakhutdinov & Murray 2008).
 * The label group is one-hot, so `Z = Σ_k exp(b_k) · Z_k`, where `b_k` is label `k`'s visible
 * bias and `Z_k` the partition function of the features-only RBM with the label clamped (hidden
 * biases `b_h + W[k]`, see {@link AssociativeMemory.clamped}): one ordinary AIS run per class.
 */
import { type AisOptions, type AisResult, averageLogLikelihood, estimateLogPartition } from './ais.js';
import type { AssociativeMemory } from './associative.js';
import type { MatrixInput } from '../validate.js';

/** {@link estimateAssociativeLogPartition}'s result: the combined estimate and one per class. */
export interface AssociativeAisResult extends AisResult {
  /** The AIS estimate of each clamped-label RBM's `log Z_k`. */
  readonly perLabel: readonly AisResult[];
}

/**
 * Estimates `log Z` of the associative memory (features and one-hot label). `opts` are those of
 * {@link estimateLogPartition}, applied to each class's clamped RBM; `baseRateVisibleBias` has
 * one value per feature; class `k` uses seed `seed + k`. `logZStd` combines the per-class
 * standard errors by the delta method.
 */
export function estimateAssociativeLogPartition(mem: AssociativeMemory, opts: AisOptions = {}): AssociativeAisResult {
  const labelBias = mem.rbm.getParameters().visibleBias.subarray(mem.nFeatures);
  const seed = opts.seed ?? mem.rbm.seed;
  const perLabel: AisResult[] = [];
  for (let k = 0; k < mem.classes; k++) {
    const rbm = mem.clamped(k);
    try {
      perLabel.push(estimateLogPartition(rbm, { ...opts, seed: seed + k }));
    } finally {
      rbm.dispose();
    }
  }
  const terms = perLabel.map((r, k) => labelBias[k]! + r.logZ);
  const logZ = logSumExp(terms);
  let variance = 0;
  for (const [k, r] of perLabel.entries()) variance += (Math.exp(terms[k]! - logZ) * r.logZStd) ** 2;
  const logZStd = Math.sqrt(variance);
  return {
    logZ,
    logZStd,
    logZLow: 3 * logZStd < 1 ? logZ + Math.log1p(-3 * logZStd) : Number.NEGATIVE_INFINITY,
    logZHigh: logZ + Math.log1p(3 * logZStd),
    logZBase: logSumExp(perLabel.map((r, k) => labelBias[k]! + r.logZBase)),
    runs: perLabel[0]!.runs,
    steps: perLabel[0]!.steps,
    perLabel,
  };
}

/** Mean `log p(features, label)` of labelled rows under the associative memory, given its `log Z`. */
export function associativeLogLikelihood(mem: AssociativeMemory, features: MatrixInput, labels: Int32Array, logZ: number): number {
  return averageLogLikelihood(mem.rbm, mem.join(features, labels, 'associativeLogLikelihood'), logZ);
}

function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}
