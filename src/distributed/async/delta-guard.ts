/**
 * The checks a remote delta passes before it touches the weights. Every bound is taken from this
 * peer's own state, never from what other peers sent (a window of received norms is one a sender
 * can move, a few percent at a time): the right layer and shapes, finite values, a hard cap
 * relative to this peer's own weights, a bound relative to this peer's own recent updates, and a
 * per-sender rate limit. Pure bookkeeping, no I/O; the check after merging (roll back to the last
 * good state) is {@link mergedWeightsSound}.
 */

/** A tensor's shape, `[rows, cols]`. */
export type TensorShape = readonly [rows: number, cols: number];

/**
 * Why a delta was refused: `'layer'` no such group here, `'shape'` wrong shapes, `'nonfinite'` a
 * NaN or an infinity, `'cap'` beyond the hard cap relative to this peer's weights, `'norm'`
 * beyond the bound relative to this peer's own updates, `'rate'` its sender moved the weights too
 * much within the rate window.
 */
export type DeltaRejection = 'layer' | 'shape' | 'nonfinite' | 'cap' | 'norm' | 'rate';

/** Options of {@link DeltaGuard}. */
export interface DeltaGuardOptions {
  /**
   * Hard cap: a delta whose L2 norm exceeds `weightFactor × s` is refused, `s` being this peer's
   * own norm of the group's parameters `‖w‖`, or `weightFloor × √n` (n: the group's entries) when
   * that is larger. Default 10.
   */
  readonly weightFactor?: number;
  /**
   * The least scale the cap, rate limit and merge check use, as an RMS per entry: fresh layers
   * start with tiny weights and take large first steps. Default 0.1.
   */
  readonly weightFloor?: number;
  /** A delta whose norm exceeds `normFactor ×` the median of this peer's own recent updates of the group is refused. Default 10. */
  readonly normFactor?: number;
  /** How many of this peer's own update norms per group the median is taken over. Default 50. */
  readonly normWindow?: number;
  /** The bound on own updates applies once this peer has published this many updates of the group. Default 5. */
  readonly normWarmup?: number;
  /** Per sender and group, the norms accepted within `rateWindowMs` sum to at most `rateFactor × s` (`s` as for the cap). Default 20. */
  readonly rateFactor?: number;
  /** The rate limit's window. Default 1000. */
  readonly rateWindowMs?: number;
}

/**
 * Which window of own norms a delta is judged against: sparse deltas (a few large entries) and
 * dense ones (every entry) have norms of different scales.
 */
export type DeltaKind = 'dense' | 'sparse';

/** What {@link DeltaGuard.check} decides. */
export type GuardVerdict =
  | { readonly ok: true; readonly norm: number }
  | { readonly ok: false; readonly reason: DeltaRejection; readonly detail: string };

/** Where a delta comes from and when it arrived (for the rate limit); omitted: not rate-limited (a test, a snapshot). */
export interface DeltaOrigin {
  readonly sender: string;
  readonly now: number;
}

interface RateWindow {
  readonly times: number[];
  readonly norms: number[];
  total: number;
}

/** Resolved {@link DeltaGuardOptions}. */
export type GuardSettings = Required<DeltaGuardOptions>;

export const GUARD_DEFAULTS: GuardSettings = {
  weightFactor: 10,
  weightFloor: 0.1,
  normFactor: 10,
  normWindow: 50,
  normWarmup: 5,
  rateFactor: 20,
  rateWindowMs: 1000,
};

/** Keeps this peer's own weight norms and update norms per group, and each sender's recent norms. */
export class DeltaGuard {
  readonly settings: GuardSettings;
  private readonly own = new Map<number, number[]>();
  private readonly weightNorms = new Map<number, number>();
  private readonly rates = new Map<string, RateWindow>();

  constructor(opts: DeltaGuardOptions = {}) {
    this.settings = { ...GUARD_DEFAULTS, ...definedOnly(opts) };
  }

  /** Records this peer's own norm of group `layer`'s parameters (call whenever it reads them). */
  observeWeights(layer: number, norm: number): void {
    if (Number.isFinite(norm)) this.weightNorms.set(layer, norm);
  }

  /** This peer's scale of group `layer` (of `elements` entries) as the bounds use it: its weight norm, at least `weightFloor × √elements`. */
  weightScale(layer: number, elements: number): number {
    return scaleOf(this.weightNorms.get(layer) ?? 0, elements, this.settings);
  }

  /**
   * Checks `tensors` against the `expected` shapes of its layer (`undefined`: no such layer).
   * Records nothing: call {@link acceptRemote} once the delta is taken.
   * @param sumSquares `Σ v²` over the tensors when the caller has it (a decoded delta carries it).
   */
  check(
    layer: number,
    tensors: readonly ArrayLike<number>[],
    shapes: readonly TensorShape[],
    expected: readonly TensorShape[] | undefined,
    sumSquares?: number,
    kind: DeltaKind = 'dense',
    origin?: DeltaOrigin,
  ): GuardVerdict {
    const shapeFault = checkShapes(layer, tensors, shapes, expected);
    if (shapeFault !== undefined) return shapeFault;
    const sq = sumSquares ?? sumOfSquares(tensors);
    // A NaN or ±Infinity anywhere makes the sum of squares non-finite.
    if (!Number.isFinite(sq)) return { ok: false, reason: 'nonfinite', detail: `the delta for layer ${layer} holds a NaN or an infinity` };
    const norm = Math.sqrt(sq);
    const s = this.settings;
    const scale = this.weightScale(layer, elementsOf(expected!));
    if (norm > s.weightFactor * scale) {
      return {
        ok: false,
        reason: 'cap',
        detail: `norm ${norm.toPrecision(3)} > ${s.weightFactor} × this peer's weight norm ${scale.toPrecision(3)} (layer ${layer})`,
      };
    }
    const w = this.own.get(windowKey(layer, kind));
    if (w !== undefined && w.length >= s.normWarmup) {
      const m = median(w);
      if (norm > s.normFactor * m)
        return {
          ok: false,
          reason: 'norm',
          detail: `norm ${norm.toPrecision(3)} > ${s.normFactor} × this peer's own median update ${m.toPrecision(3)} (layer ${layer})`,
        };
    }
    if (origin !== undefined) {
      const sent = this.recentFrom(origin.sender, layer, origin.now);
      if (sent + norm > s.rateFactor * scale) {
        return {
          ok: false,
          reason: 'rate',
          detail: `${origin.sender} sent norms summing to ${(sent + norm).toPrecision(3)} within ${s.rateWindowMs} ms > ${s.rateFactor} × this peer's weight norm ${scale.toPrecision(3)} (layer ${layer})`,
        };
      }
    }
    return { ok: true, norm };
  }

  /** Records a delta this peer published (its update size for `layer` and `kind`). Zero and non-finite norms are ignored. */
  acceptOwn(layer: number, norm: number, kind: DeltaKind = 'dense'): void {
    if (!(norm > 0) || !Number.isFinite(norm)) return;
    const key = windowKey(layer, kind);
    let w = this.own.get(key);
    if (w === undefined) this.own.set(key, (w = []));
    w.push(norm);
    if (w.length > this.settings.normWindow) w.shift();
  }

  /** Records a remote delta taken (for its sender's rate limit). */
  acceptRemote(layer: number, norm: number, origin: DeltaOrigin): void {
    const r = this.window(origin.sender, layer, origin.now);
    r.times.push(origin.now);
    r.norms.push(norm);
    r.total += norm;
  }

  /** The median of this peer's own recent update norms of `layer` and `kind`, or undefined before any. */
  recentMedian(layer: number, kind: DeltaKind = 'dense'): number | undefined {
    const w = this.own.get(windowKey(layer, kind));
    return w === undefined || w.length === 0 ? undefined : median(w);
  }

  /** Forgets a sender's rate window (it left). */
  forget(sender: string): void {
    for (const key of [...this.rates.keys()]) if (key.startsWith(`${sender}/`)) this.rates.delete(key);
  }

  private recentFrom(sender: string, layer: number, now: number): number {
    return this.window(sender, layer, now).total;
  }

  private window(sender: string, layer: number, now: number): RateWindow {
    const key = `${sender}/${layer}`;
    let r = this.rates.get(key);
    if (r === undefined) this.rates.set(key, (r = { times: [], norms: [], total: 0 }));
    const since = now - this.settings.rateWindowMs;
    while (r.times.length > 0 && r.times[0]! <= since) {
      r.times.shift();
      r.total -= r.norms.shift()!;
    }
    if (r.times.length === 0) r.total = 0;
    return r;
  }
}

/** The scale of a group of `elements` entries and norm `norm`: the norm, at least `weightFloor × √elements`. */
export function scaleOf(norm: number, elements: number, settings: GuardSettings): number {
  return Math.max(Number.isFinite(norm) ? norm : 0, settings.weightFloor * Math.sqrt(elements));
}

/**
 * The check after merging: whether parameters of `elements` entries whose squared norm went
 * from `beforeSq` to `afterSq` are sound — finite, and not grown beyond what the hard cap allows
 * (each accepted delta adds at most `weightFactor × s`, so `count` of them leave at most
 * `s · (1 + count · weightFactor)`). Otherwise the caller keeps the last good state.
 */
export function mergedWeightsSound(beforeSq: number, afterSq: number, count: number, elements: number, settings: GuardSettings): boolean {
  if (!Number.isFinite(afterSq)) return false;
  const before = scaleOf(Math.sqrt(beforeSq), elements, settings);
  return Math.sqrt(afterSq) <= before * (1 + Math.max(count, 1) * settings.weightFactor) * (1 + 1e-6);
}

/** The entries of tensors of `shapes`. */
export function elementsOf(shapes: readonly TensorShape[]): number {
  let n = 0;
  for (const [rows, cols] of shapes) n += rows * cols;
  return n;
}

/** The entries of `tensors`. */
export function lengthOf(tensors: readonly { readonly length: number }[]): number {
  let n = 0;
  for (const t of tensors) n += t.length;
  return n;
}

/** `Σ v²` over tensors, in float64. */
export function sumOfSquares(tensors: readonly ArrayLike<number>[]): number {
  let sq = 0;
  for (const t of tensors) {
    for (let k = 0; k < t.length; k++) {
      const v = t[k]!;
      sq += v * v;
    }
  }
  return sq;
}

function checkShapes(
  layer: number,
  tensors: readonly ArrayLike<number>[],
  shapes: readonly TensorShape[],
  expected: readonly TensorShape[] | undefined,
): GuardVerdict | undefined {
  if (expected === undefined) return { ok: false, reason: 'layer', detail: `layer ${layer} does not exist here` };
  if (tensors.length !== expected.length || shapes.length !== expected.length) {
    return { ok: false, reason: 'shape', detail: `layer ${layer} has ${expected.length} tensors, the delta ${tensors.length}` };
  }
  for (let i = 0; i < expected.length; i++) {
    const [r, c] = expected[i]!;
    const s = shapes[i]!;
    if (s[0] !== r || s[1] !== c || tensors[i]!.length !== r * c) {
      return { ok: false, reason: 'shape', detail: `tensor ${i} of layer ${layer} is ${r}x${c}, the delta's ${s[0]}x${s[1]}` };
    }
  }
  return undefined;
}

function definedOnly(opts: DeltaGuardOptions): Partial<GuardSettings> {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<GuardSettings>;
}

function windowKey(layer: number, kind: DeltaKind): number {
  return 2 * layer + (kind === 'sparse' ? 1 : 0);
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
