/**
 * How the owner of a chunk combines the members' parts of it: the plain sum, or a
 * Byzantine-robust rule — coordinate-wise trimmed mean or median over the members (Yin et al.
 * 2018, "Byzantine-robust distributed learning: towards optimal statistical rates"), the mean of
 * the values closest to the median (Xie, Koyejo & Gupta 2018), or a selection of whole parts: the
 * parts closest to each other (multi-Krum, Blanchard et al. 2017) — optionally after clipping each
 * member's part to a multiple of the median part norm. Robust results are scaled by the member count, so they stand in for the sum the
 * training loops expect (they divide by the summed row count).
 *
 * Deterministic: a coordinate-wise rule sorts each coordinate's values, so the result does not
 * depend on the members' order; a selection breaks ties by member order and adds the kept parts
 * in member order; the sum adds in member order (the order the caller passes, by id). The chunk
 * owner computes the result once and sends it to everyone, so every replica gets the same bits.
 */
import { InvalidOptionError } from '../errors.js';

/** The rule that combines the members' contributions to a round. */
export type AggregateRule =
  | { readonly kind: 'sum' }
  /** Per coordinate, drop the `trim` largest and `trim` smallest values and average the rest. */
  | { readonly kind: 'trimmed-mean'; readonly trim: number }
  /** Per coordinate, the median value. */
  | { readonly kind: 'median' }
  /**
   * Per coordinate, average the `N − trim` values closest to the median (mean around the median,
   * Xie, Koyejo & Gupta 2018). Unlike the trimmed mean it does not also drop an honest value on the
   * side away from a liar, so one outlying member does not bias the step.
   */
  | { readonly kind: 'mean-around-median'; readonly trim: number }
  /**
   * Whole parts, not coordinates (multi-Krum, Blanchard et al. 2017): each part is scored by the
   * sum of squared L2 distances to its `N − trim − 2` nearest other parts (at least 1), and the mean
   * of the `N − trim` best-scored parts is kept (ties go to the earlier member). A part far from the
   * others — a sign-flipped or scaled gradient, a random direction — is dropped whole, so what is
   * averaged is unbiased honest gradients (a coordinate-wise median is biased where the per-member
   * values are skewed, as sparse per-pixel gradients are).
   */
  | { readonly kind: 'multi-krum'; readonly trim: number };

/** The aggregation of a group's rounds. */
export interface AggregationOptions {
  readonly rule: AggregateRule;
  /**
   * When set: before combining, a member's part whose L2 norm exceeds `clipNorm` × the median of
   * the members' part norms is scaled down to that norm. A multiple (> 0), not an absolute norm:
   * gradient sums scale with the rows of a round.
   */
  readonly clipNorm?: number;
}

/** The names of the rules, as `--aggregate` takes them. */
export const AGGREGATE_KINDS: readonly AggregateRule['kind'][] = ['sum', 'trimmed-mean', 'median', 'mean-around-median', 'multi-krum'];

/** Plain summation (the default). */
export const SUM: AggregationOptions = { rule: { kind: 'sum' } };

/** Checks `options`; an {@link InvalidOptionError} names the bad field. */
export function checkAggregation(options: AggregationOptions): AggregationOptions {
  const r = options.rule;
  if (!AGGREGATE_KINDS.includes(r.kind))
    throw new InvalidOptionError(`The 'aggregate' rule must be ${AGGREGATE_KINDS.join(', ')}. Got '${(r as { kind: string }).kind}'.`);
  if (r.kind !== 'sum' && r.kind !== 'median' && (!Number.isSafeInteger(r.trim) || r.trim < 1 || r.trim > 64))
    throw new InvalidOptionError(`The 'trim' option of the ${r.kind} rule must be an integer in [1, 64]. Got ${r.trim}.`);
  if (options.clipNorm !== undefined && !(Number.isFinite(options.clipNorm) && options.clipNorm > 0))
    throw new InvalidOptionError(`The 'clipNorm' option must be a number in (0, inf). Got ${options.clipNorm}.`);
  return options;
}

/** The L2 norm of `a` (accumulated in float64). */
export function l2Norm(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

/**
 * Combines `parts` (one per member, in id order, equal lengths) into `out` with `options`. With a
 * trimmed mean over too few members to drop `trim` from each end, the largest trim that leaves
 * one value is used (`floor((N − 1) / 2)`: the median for N ≤ 2·trim).
 */
export function aggregateChunks(parts: readonly Float32Array[], options: AggregationOptions, out: Float32Array): void {
  const members = parts.length;
  const inputs = options.clipNorm === undefined ? parts : clipParts(parts, options.clipNorm);
  const rule = options.rule;
  out.fill(0);
  if (rule.kind === 'sum' || members <= 1) {
    for (const part of inputs) for (let i = 0; i < out.length; i++) out[i] = out[i]! + part[i]!;
    return;
  }
  if (rule.kind === 'multi-krum' && members <= 2) {
    // Two parts are each other's only neighbour: nothing tells a liar apart, so they are summed.
    for (const part of inputs) for (let i = 0; i < out.length; i++) out[i] = out[i]! + part[i]!;
    return;
  }
  if (rule.kind === 'multi-krum') {
    meanOfParts(inputs, krumSelection(inputs, rule.trim), out);
    return;
  }
  const column = new Float64Array(members);
  const combine = columnRule(rule, members);
  for (let i = 0; i < out.length; i++) {
    for (let m = 0; m < members; m++) column[m] = inputs[m]![i]!;
    insertionSort(column);
    out[i] = members * combine(column);
  }
}

/** The per-coordinate estimate of a robust rule, over a sorted column of `members` values. */
function columnRule(rule: Exclude<AggregateRule, { kind: 'sum' | 'multi-krum' }>, members: number): (sorted: Float64Array) => number {
  if (rule.kind === 'median') return median;
  if (rule.kind === 'trimmed-mean') {
    const trim = Math.min(rule.trim, Math.floor((members - 1) / 2));
    return (sorted) => trimmedMean(sorted, trim);
  }
  const keep = Math.max(1, members - rule.trim);
  return (sorted) => meanAroundMedian(sorted, keep);
}

/**
 * The mean of the `keep` values of `sorted` closest to its median: they form a contiguous window,
 * grown from the middle one value at a time towards the closer side (the lower side on a tie).
 */
function meanAroundMedian(sorted: Float64Array, keep: number): number {
  const center = median(sorted);
  let lo = (sorted.length - 1) >> 1;
  let hi = lo;
  let sum = sorted[lo]!;
  while (hi - lo + 1 < keep) {
    const below = lo > 0 ? center - sorted[lo - 1]! : Number.POSITIVE_INFINITY;
    const above = hi < sorted.length - 1 ? sorted[hi + 1]! - center : Number.POSITIVE_INFINITY;
    if (below <= above) sum += sorted[--lo]!;
    else sum += sorted[++hi]!;
  }
  return sum / keep;
}

/**
 * The indices (ascending) of the `max(1, N − trim)` parts multi-Krum keeps: each part's score is
 * the sum of its squared distances to its `max(1, N − trim − 2)` nearest other parts; the lowest
 * scores are kept, the earlier member first on a tie.
 */
export function krumSelection(parts: readonly Float32Array[], trim: number): number[] {
  const members = parts.length;
  const distances = Array.from({ length: members }, () => new Float64Array(members));
  for (let a = 0; a < members; a++)
    for (let b = a + 1; b < members; b++) {
      const d = squaredDistance(parts[a]!, parts[b]!);
      distances[a]![b] = d;
      distances[b]![a] = d;
    }
  const neighbours = Math.max(1, members - trim - 2);
  const scores = distances.map((row, m) => {
    const others = row.filter((_, k) => k !== m).sort();
    let score = 0;
    for (let k = 0; k < Math.min(neighbours, others.length); k++) score += others[k]!;
    return score;
  });
  const order = scores.map((_, m) => m).sort((a, b) => scores[a]! - scores[b]! || a - b);
  return order.slice(0, Math.max(1, members - trim)).sort((a, b) => a - b);
}

function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s;
}

/** `out` = N × the mean of the `chosen` parts (added in float64, in member order), N the member count. */
function meanOfParts(parts: readonly Float32Array[], chosen: readonly number[], out: Float32Array): void {
  const scale = parts.length / chosen.length;
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (const m of chosen) s += parts[m]![i]!;
    out[i] = scale * s;
  }
}

function clipParts(parts: readonly Float32Array[], clipNorm: number): Float32Array[] {
  const norms = parts.map(l2Norm);
  const sorted = Float64Array.from(norms).sort();
  const limit = clipNorm * median(sorted);
  return parts.map((p, m) => {
    const n = norms[m]!;
    if (n <= limit || n === 0) return p;
    const scale = limit / n;
    return p.map((v) => v * scale);
  });
}

function insertionSort(a: Float64Array): void {
  for (let i = 1; i < a.length; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  const mid = n >> 1;
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function trimmedMean(sorted: Float64Array, trim: number): number {
  let s = 0;
  for (let i = trim; i < sorted.length - trim; i++) s += sorted[i]!;
  return s / (sorted.length - 2 * trim);
}
