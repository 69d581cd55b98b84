/**
 * The checks a peer's delta passes before it touches the weights: the right layer, the right
 * shapes, finite values, and a norm not far beyond the recent ones. Pure bookkeeping, no I/O.
 */

/** A tensor's shape, `[rows, cols]`. */
export type TensorShape = readonly [rows: number, cols: number];

/** Why a delta was refused. */
export type DeltaRejection = 'layer' | 'shape' | 'nonfinite' | 'norm';

/** Options of {@link DeltaGuard}. */
export interface DeltaGuardOptions {
  /** A delta whose L2 norm exceeds `normFactor ×` the median of the recent ones is refused. Default 10. */
  readonly normFactor?: number;
  /** How many accepted norms per layer the median is taken over. Default 50. */
  readonly normWindow?: number;
  /** The norm check starts once a layer has this many accepted norms. Default 5. */
  readonly normWarmup?: number;
}

/**
 * Which norm window a delta is judged against: sparse deltas (a few large entries) and dense
 * ones (every entry, e.g. the whole residual a sparse run sends at a stage's end) have norms of
 * different scales, so each kind is compared with its own recent norms.
 */
export type DeltaKind = 'dense' | 'sparse';

/** What {@link DeltaGuard.check} decides. */
export type GuardVerdict = { readonly ok: true; readonly norm: number } | { readonly ok: false; readonly reason: DeltaRejection; readonly detail: string };

/**
 * Checks deltas and keeps, per layer, a window of the norms accepted recently (this peer's own
 * published deltas count too, so the check is armed before the first remote delta arrives).
 */
export class DeltaGuard {
  readonly normFactor: number;
  readonly normWindow: number;
  readonly normWarmup: number;
  private readonly windows = new Map<number, number[]>();

  constructor(opts: DeltaGuardOptions = {}) {
    this.normFactor = opts.normFactor ?? 10;
    this.normWindow = opts.normWindow ?? 50;
    this.normWarmup = opts.normWarmup ?? 5;
  }

  /**
   * Checks `tensors` against the `expected` shapes of its layer (`undefined`: no such layer).
   * Does not record the norm: call {@link accept} once the delta is taken.
   * @param sumSquares `Σ v²` over the tensors when the caller has it (a decoded delta carries
   *   it), sparing a pass over them; computed here otherwise.
   */
  check(
    layer: number,
    tensors: readonly ArrayLike<number>[],
    shapes: readonly TensorShape[],
    expected: readonly TensorShape[] | undefined,
    sumSquares?: number,
    kind: DeltaKind = 'dense',
  ): GuardVerdict {
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
    let sq = sumSquares ?? 0;
    if (sumSquares === undefined) {
      for (const t of tensors) {
        for (let k = 0; k < t.length; k++) {
          const v = t[k]!;
          sq += v * v;
        }
      }
    }
    // A NaN or ±Infinity anywhere makes the sum of squares non-finite.
    if (!Number.isFinite(sq)) return { ok: false, reason: 'nonfinite', detail: `the delta for layer ${layer} holds a NaN or an infinity` };
    const norm = Math.sqrt(sq);
    const w = this.windows.get(windowKey(layer, kind));
    if (w !== undefined && w.length >= this.normWarmup) {
      const m = median(w);
      if (norm > this.normFactor * m) {
        return { ok: false, reason: 'norm', detail: `norm ${norm.toPrecision(3)} > ${this.normFactor} × the recent median ${m.toPrecision(3)} (layer ${layer})` };
      }
    }
    return { ok: true, norm };
  }

  /** Records an accepted (or locally published) delta's norm for `layer` and `kind`. Zero norms are ignored. */
  accept(layer: number, norm: number, kind: DeltaKind = 'dense'): void {
    if (!(norm > 0) || !Number.isFinite(norm)) return;
    const key = windowKey(layer, kind);
    let w = this.windows.get(key);
    if (w === undefined) {
      w = [];
      this.windows.set(key, w);
    }
    w.push(norm);
    if (w.length > this.normWindow) w.shift();
  }

  /** The median of the recent norms of `layer` and `kind`, or undefined before any. */
  recentMedian(layer: number, kind: DeltaKind = 'dense'): number | undefined {
    const w = this.windows.get(windowKey(layer, kind));
    return w === undefined || w.length === 0 ? undefined : median(w);
  }
}

function windowKey(layer: number, kind: DeltaKind): number {
  return 2 * layer + (kind === 'sparse' ? 1 : 0);
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
