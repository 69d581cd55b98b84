/**
 * Checks of what another member contributes to a round, judged against this peer's own state
 * (never against a window the sender can move): a member whose part fails is suspected and dropped
 * by a view change, like one that sends NaN.
 *
 * - **Scalars.** Every scalar of every round is a count or a sum of non-negative statistics: it
 *   must be finite and ≥ 0. In an epoch's plan round a member's row count must be an integer of at
 *   most `maxRowRatio` × this peer's own rows (so no peer can stretch an epoch to millions of
 *   rounds); in a minibatch round at most its plan in the proportion this peer's round takes of
 *   its own plan (plus one row).
 * - **Tensor parts.** A member's part of a chunk may not exceed `maxNormRatio` × this peer's own
 *   part of the same chunk in the same round (in L2 norm, scaled by the two row counts), and no
 *   element may exceed {@link HARD_ELEMENT_CAP} × its rows in magnitude, whatever this peer's own
 *   part is. A chunk's combined result from its owner is held to the same bounds times the
 *   member count.
 */
import { InvalidOptionError } from '../errors.js';
import { PLAN_STEP, type RoundPosition } from '../rbm/collective.js';
import { l2Norm } from './robust.js';

/** Limits of a {@link ContributionGuard}. */
export interface GuardOptions {
  /** Largest ratio of a part's norm to this peer's own part of the same chunk (per row). Default 20. */
  readonly maxNormRatio?: number;
  /** Largest ratio of a member's rows in an epoch's plan to this peer's own rows. Default 100. */
  readonly maxRowRatio?: number;
}

/**
 * Largest magnitude of a gradient-sum element per row. A contrastive-divergence or backprop
 * gradient of one row is a product of unit activations and bounded errors, far below it.
 */
export const HARD_ELEMENT_CAP = 1e4;

/** The guard of one group's rounds. */
export class ContributionGuard {
  readonly maxNormRatio: number;
  readonly maxRowRatio: number;
  private plan: { readonly key: string; readonly own: number; readonly rows: Map<string, number> } | undefined;

  constructor(options: GuardOptions = {}) {
    this.maxNormRatio = options.maxNormRatio ?? 20;
    this.maxRowRatio = options.maxRowRatio ?? 100;
    for (const [name, v] of [
      ['maxNormRatio', this.maxNormRatio],
      ['maxRowRatio', this.maxRowRatio],
    ] as const) {
      if (!(Number.isFinite(v) && v >= 1))
        throw new InvalidOptionError(`The '${name}' option of the contribution guard must be a number in [1, inf). Got ${v}.`);
    }
  }

  /**
   * Judges member `id`'s scalars for a round at `position` against this peer's own; returns why
   * they are refused, or `undefined`. Plan rounds are remembered for the minibatch rounds after them.
   */
  judgeScalars(id: string, position: RoundPosition, scalars: Float64Array, own: Float64Array): string | undefined {
    for (let i = 0; i < scalars.length; i++)
      if (!(Number.isFinite(scalars[i]!) && scalars[i]! >= 0)) return `sent the statistic ${scalars[i]} (must be finite and >= 0)`;
    if (scalars.length !== 1 || own.length !== 1) return undefined;
    const key = `${position.stage}/${position.epoch}`;
    const rows = scalars[0]!;
    if (!Number.isSafeInteger(rows)) return `claims ${rows} rows (not an integer)`;
    if (position.step === PLAN_STEP) {
      const limit = this.maxRowRatio * Math.max(own[0]!, 1);
      if (rows > limit) return `claims ${rows} rows for an epoch (this peer has ${own[0]}; at most ${limit} accepted)`;
      if (this.plan?.key !== key) this.plan = { key, own: own[0]!, rows: new Map() };
      this.plan.rows.set(id, rows);
      return undefined;
    }
    const planned = this.plan?.key === key ? this.plan.rows.get(id) : undefined;
    if (planned === undefined) return undefined;
    // A member's share of a minibatch round is its planned rows in the proportion this peer's round takes of its own plan.
    const limit = Math.ceil((planned * (own[0]! + 1)) / Math.max(this.plan!.own, 1)) + 1;
    if (rows > limit) return `claims ${rows} rows for a minibatch round (it planned ${planned} for the epoch; at most ${limit} accepted)`;
    return undefined;
  }

  /**
   * Judges a part (or, with `members` > 1, a combined chunk) of `rows` rows against this peer's
   * own contribution of `ownRows` rows — given as an array (its norm is taken) or as a norm; the
   * exchange passes the norm of this peer's WHOLE gradient, not of the same chunk: a chunk's own
   * part can be near zero where another shard's is not (pixels that are always 0 in this peer's
   * rows), which refused honest members late in training. Returns why it is refused, or `undefined`.
   */
  judgeTensor(part: Float32Array, rows: number, own: Float32Array | number, ownRows: number, members = 1): string | undefined {
    const cap = HARD_ELEMENT_CAP * Math.max(rows, 1) * members;
    for (let i = 0; i < part.length; i++) {
      const v = part[i]!;
      if (!(Math.abs(v) <= cap))
        return Number.isFinite(v)
          ? `sent an element of ${v.toExponential(2)} (more than ${cap.toExponential(2)} for ${rows} rows)`
          : 'sent non-finite values';
    }
    const ownNorm = typeof own === 'number' ? own : l2Norm(own);
    if (ownNorm === 0 || ownRows <= 0) return undefined;
    const norm = l2Norm(part);
    const limit = this.maxNormRatio * members * ownNorm * (Math.max(rows, 1) / ownRows);
    if (norm > limit)
      return `sent a part of norm ${norm.toExponential(2)}, more than ${this.maxNormRatio}× this peer's own (${ownNorm.toExponential(2)}, scaled to ${rows} rows)`;
    return undefined;
  }
}
