/**
 * Metrics of a ranking score for a binary label (1 = positive, e.g. fraud): average precision,
 * ROC AUC, precision and recall at the top k, the precision–recall and ROC curves, the
 * threshold that maximizes F1, and the confusion matrix at a threshold.
 *
 * Conventions follow scikit-learn (`average_precision_score`, `roc_auc_score`,
 * `precision_recall_curve`, `roc_curve`): a row is predicted positive when its score is
 * `>= threshold`; rows with equal scores are one step of a curve (ties are never split), so
 * average precision is the step-interpolated sum `Σ (R_t − R_{t−1}) · P_t` over the distinct
 * thresholds and ROC AUC counts a tied positive–negative pair as one half. Higher scores mean
 * "more likely positive". Sums are in float64.
 */
import { InvalidDataError, InvalidOptionError, ShapeMismatchError } from '../errors.js';

/** Scores, one per row (any numeric array; NaN is rejected). */
export type Scores = ArrayLike<number>;
/** Binary labels, one per row: 0 or 1. */
export type Labels = ArrayLike<number>;

/** The precision–recall curve, one point per distinct score, highest threshold first. */
export interface PrCurve {
  /** `tp / (tp + fp)` when the rows scoring `>= thresholds[i]` are flagged. */
  readonly precision: Float64Array;
  /** `tp / positives` at the same thresholds (non-decreasing). */
  readonly recall: Float64Array;
  /** The distinct scores, decreasing. */
  readonly thresholds: Float64Array;
}

/** The ROC curve, starting at (0, 0) with threshold `+Infinity`, then one point per distinct score, decreasing. */
export interface RocCurve {
  /** False-positive rate `fp / negatives`. */
  readonly fpr: Float64Array;
  /** True-positive rate `tp / positives`. */
  readonly tpr: Float64Array;
  readonly thresholds: Float64Array;
}

/** Counts of a binary decision `score >= threshold` against the labels. */
export interface ConfusionCounts {
  readonly tp: number;
  readonly fp: number;
  readonly tn: number;
  readonly fn: number;
}

/** The threshold chosen by {@link bestThreshold} and the decision's quality on the rows it was chosen on. */
export interface ThresholdChoice extends ConfusionCounts {
  /** Flag rows with `score >= threshold`. */
  readonly threshold: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
}

/** Cumulative counts at each distinct score, highest first. */
interface Steps {
  /** Distinct scores, decreasing. */
  readonly thresholds: Float64Array;
  /** True positives among rows scoring `>= thresholds[i]`. */
  readonly tps: Float64Array;
  /** False positives among rows scoring `>= thresholds[i]`. */
  readonly fps: Float64Array;
  readonly positives: number;
  readonly negatives: number;
}

function check(where: string, scores: Scores, labels: Labels): void {
  if (scores === null || typeof scores !== 'object' || typeof scores.length !== 'number') {
    throw new ShapeMismatchError(`Argument 'scores' passed to '${where}' must be an array of numbers.`);
  }
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new ShapeMismatchError(`Argument 'labels' passed to '${where}' must be an array of 0/1 labels.`);
  }
  if (scores.length !== labels.length) {
    throw new ShapeMismatchError(
      `Arguments 'scores' and 'labels' passed to '${where}' must have equal lengths, got ${scores.length} and ${labels.length}.`,
    );
  }
  if (scores.length === 0) throw new ShapeMismatchError(`Argument 'scores' passed to '${where}' is empty; expected at least one row.`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y !== 0 && y !== 1)
      throw new InvalidDataError(`Argument 'labels' passed to '${where}' must hold only 0 and 1; element ${i} is ${String(y)}.`);
    const s = scores[i];
    if (typeof s !== 'number' || Number.isNaN(s))
      throw new InvalidDataError(`Argument 'scores' passed to '${where}' must hold numbers (not NaN); element ${i} is ${String(s)}.`);
  }
}

function steps(scores: Scores, labels: Labels): Steps {
  const n = scores.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => {
    const sa = scores[a]!;
    const sb = scores[b]!;
    return sb > sa ? 1 : sb < sa ? -1 : a - b;
  });
  const thresholds: number[] = [];
  const tps: number[] = [];
  const fps: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    if (labels[i] === 1) tp++;
    else fp++;
    const next = k + 1 < n ? scores[order[k + 1]!]! : Number.NaN;
    if (next !== scores[i]) {
      thresholds.push(scores[i]!);
      tps.push(tp);
      fps.push(fp);
    }
  }
  return {
    thresholds: Float64Array.from(thresholds),
    tps: Float64Array.from(tps),
    fps: Float64Array.from(fps),
    positives: tp,
    negatives: fp,
  };
}

function needClass(where: string, st: Steps, positive: boolean, negative: boolean): void {
  if (positive && st.positives === 0) throw new InvalidDataError(`'${where}' is undefined without positive rows: every label passed is 0.`);
  if (negative && st.negatives === 0) throw new InvalidDataError(`'${where}' is undefined without negative rows: every label passed is 1.`);
}

/**
 * Average precision (the area under the step-interpolated precision–recall curve, "AUPRC"):
 * `Σ_t (R_t − R_{t−1}) · P_t` over the distinct thresholds `t`, highest first, `R_0 = 0`; the
 * value of scikit-learn's `average_precision_score`. `scores` and `labels` have length `rows`;
 * at least one label must be 1. A random ranking scores about the positive rate.
 *
 * @example averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) // 0.8333… = ½·1 + ½·⅔
 */
export function averagePrecision(scores: Scores, labels: Labels): number {
  check('averagePrecision', scores, labels);
  const st = steps(scores, labels);
  needClass('averagePrecision', st, true, false);
  let ap = 0;
  let prevRecall = 0;
  for (let t = 0; t < st.thresholds.length; t++) {
    const recall = st.tps[t]! / st.positives;
    ap += (recall - prevRecall) * (st.tps[t]! / (st.tps[t]! + st.fps[t]!));
    prevRecall = recall;
  }
  return ap;
}

/**
 * Area under the ROC curve: the probability that a random positive row scores above a random
 * negative one, a tie counting ½ (the trapezoidal area of {@link rocCurve}; scikit-learn's
 * `roc_auc_score`). Needs both classes.
 *
 * @example rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) // 0.75
 */
export function rocAuc(scores: Scores, labels: Labels): number {
  check('rocAuc', scores, labels);
  const st = steps(scores, labels);
  needClass('rocAuc', st, true, true);
  let area = 0;
  let tp0 = 0;
  let fp0 = 0;
  for (let t = 0; t < st.thresholds.length; t++) {
    const tp = st.tps[t]!;
    const fp = st.fps[t]!;
    area += ((fp - fp0) * (tp + tp0)) / 2;
    tp0 = tp;
    fp0 = fp;
  }
  return area / (st.positives * st.negatives);
}

/**
 * True positives among the `k` highest-scoring rows. When the k-th place falls inside a group of
 * tied scores, the group contributes in proportion (`positives in group · places left / group
 * size`): the expected count when ties are broken at random, so the result does not depend on
 * the row order.
 */
function positivesInTopK(where: string, scores: Scores, labels: Labels, k: number): { hits: number; positives: number } {
  check(where, scores, labels);
  if (!Number.isSafeInteger(k) || k < 1 || k > scores.length) {
    throw new InvalidOptionError(
      `Argument 'k' passed to '${where}' must be an integer in [1, ${scores.length}] (the number of rows). Got ${String(k)}.`,
    );
  }
  const st = steps(scores, labels);
  let hits = 0;
  let prevTp = 0;
  let prevN = 0;
  for (let t = 0; t < st.thresholds.length; t++) {
    const n = st.tps[t]! + st.fps[t]!;
    if (n >= k) {
      hits = prevTp + ((st.tps[t]! - prevTp) * (k - prevN)) / (n - prevN);
      break;
    }
    prevTp = st.tps[t]!;
    prevN = n;
  }
  return { hits, positives: st.positives };
}

/**
 * Precision among the `k` highest-scoring rows (`1 ≤ k ≤ rows`): the share of a review team's
 * `k` alerts that are real positives. Ties straddling place `k` count in proportion (see the
 * module notes).
 */
export function precisionAtK(scores: Scores, labels: Labels, k: number): number {
  return positivesInTopK('precisionAtK', scores, labels, k).hits / k;
}

/** Recall among the `k` highest-scoring rows: the share of all positives found in the top `k`. Needs a positive row. */
export function recallAtK(scores: Scores, labels: Labels, k: number): number {
  const { hits, positives } = positivesInTopK('recallAtK', scores, labels, k);
  if (positives === 0) throw new InvalidDataError(`'recallAtK' is undefined without positive rows: every label passed is 0.`);
  return hits / positives;
}

/**
 * The precision–recall curve: for each distinct score (decreasing), the precision and recall of
 * flagging the rows that score at least that much. The last point has recall 1. Needs a positive row.
 */
export function prCurve(scores: Scores, labels: Labels): PrCurve {
  check('prCurve', scores, labels);
  const st = steps(scores, labels);
  needClass('prCurve', st, true, false);
  const m = st.thresholds.length;
  const precision = new Float64Array(m);
  const recall = new Float64Array(m);
  for (let t = 0; t < m; t++) {
    precision[t] = st.tps[t]! / (st.tps[t]! + st.fps[t]!);
    recall[t] = st.tps[t]! / st.positives;
  }
  return { precision, recall, thresholds: st.thresholds };
}

/** The ROC curve: (0, 0) at threshold `+Infinity`, then one point per distinct score, decreasing, ending at (1, 1). Needs both classes. */
export function rocCurve(scores: Scores, labels: Labels): RocCurve {
  check('rocCurve', scores, labels);
  const st = steps(scores, labels);
  needClass('rocCurve', st, true, true);
  const m = st.thresholds.length + 1;
  const fpr = new Float64Array(m);
  const tpr = new Float64Array(m);
  const thresholds = new Float64Array(m);
  thresholds[0] = Number.POSITIVE_INFINITY;
  for (let t = 1; t < m; t++) {
    fpr[t] = st.fps[t - 1]! / st.negatives;
    tpr[t] = st.tps[t - 1]! / st.positives;
    thresholds[t] = st.thresholds[t - 1]!;
  }
  return { fpr, tpr, thresholds };
}

/** Counts of the decision "flag rows with `score >= threshold`". */
export function confusionAtThreshold(scores: Scores, labels: Labels, threshold: number): ConfusionCounts {
  check('confusionAtThreshold', scores, labels);
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new InvalidOptionError(`Argument 'threshold' passed to 'confusionAtThreshold' must be a number. Got ${String(threshold)}.`);
  }
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const flagged = scores[i]! >= threshold;
    if (labels[i] === 1) {
      if (flagged) tp++;
      else fn++;
    } else if (flagged) fp++;
    else tn++;
  }
  return { tp, fp, tn, fn };
}

/**
 * The threshold with the highest F1 (`2PR / (P + R)`) among the distinct scores, where rows with
 * `score >= threshold` are flagged; on a tie, the highest such threshold (the fewest alerts).
 * Choose it on validation rows and apply it unchanged to test rows. Needs a positive row.
 */
export function bestThreshold(scores: Scores, labels: Labels): ThresholdChoice {
  check('bestThreshold', scores, labels);
  const st = steps(scores, labels);
  needClass('bestThreshold', st, true, false);
  let best = -1;
  let bestF1 = -1;
  for (let t = 0; t < st.thresholds.length; t++) {
    const tp = st.tps[t]!;
    // F1 = 2TP / (2TP + FP + FN), with FN = positives − TP.
    const f1 = (2 * tp) / (tp + st.fps[t]! + st.positives);
    if (f1 > bestF1) {
      bestF1 = f1;
      best = t;
    }
  }
  const tp = st.tps[best]!;
  const fp = st.fps[best]!;
  return {
    threshold: st.thresholds[best]!,
    tp,
    fp,
    fn: st.positives - tp,
    tn: st.negatives - fp,
    precision: tp / (tp + fp),
    recall: tp / st.positives,
    f1: bestF1,
  };
}
