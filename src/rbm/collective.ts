/**
 * The hook through which several replicas of one model train as one: synchronous data-parallel
 * minibatch training. Every replica computes the gradient of its own rows; a {@link Collective}
 * sums the replicas' gradients (an all-reduce) so that every replica applies the same update and
 * holds the same bits. The models know nothing of networks: peer training (`src/distributed/`)
 * implements the interface over ZeroMQ; a single process passes none.
 *
 * The rounds of an epoch, as every replica runs them:
 * 1. the **plan** round (step {@link PLAN_STEP}): each replica contributes its row count; the
 *    epoch then has `rounds = ceil(total rows / batchSize)` minibatch rounds, and each replica
 *    splits its own (shuffled) rows into `rounds` nearly equal parts ({@link batchBounds}), so one
 *    round covers about `batchSize` rows over all replicas: the same minibatch size, learning rate
 *    and number of updates per epoch as one process on all the rows;
 * 2. the minibatch rounds `0 … rounds − 1`: tensors hold the gradient summed over this replica's
 *    rows of the round, scalars `[rows]`; after the sum every replica applies
 *    `update(Σ gradient / Σ rows)`;
 * 3. the **summary** round (step `rounds`): scalars only, the epoch's statistics summed.
 */

/** The step number of an epoch's plan round. */
export const PLAN_STEP = -1;

/** Which round a replica is in: a stage (layer `i` pretraining, or fine-tuning), an epoch, a step. */
export interface RoundPosition {
  /** Set by the model that owns the loop: `Rbm.fit` uses 0; `Dbn` uses the layer index, or the number of layers for fine-tuning. */
  readonly stage: number;
  /** The epoch within the stage (0-based, counting epochs trained before a checkpoint). */
  readonly epoch: number;
  /** {@link PLAN_STEP}, a minibatch round `0 … rounds − 1`, or `rounds` for the summary. */
  readonly step: number;
}

/** Where a replica that joined a running group enters an epoch. */
export interface ResumePoint {
  /** The first round this replica takes part in (0 … rounds; never the plan round). */
  readonly step: number;
  /** The epoch's number of minibatch rounds, as agreed in its plan round. */
  readonly rounds: number;
}

/** A sum over every replica taking part in a round. */
export interface Collective {
  /**
   * Replaces every element of `tensors` and `scalars` by its sum over the replicas taking part in
   * the round at `position`, in an order fixed independently of arrival, so every replica gets the
   * same bits. Replicas call it with the same positions in the same order and arrays of the same
   * lengths. Rejects (e.g. a `SyncError`) when the round cannot complete.
   */
  allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void>;
  /**
   * For a replica that joined a running group from a snapshot taken inside `epoch` of `stage`:
   * where it enters that epoch. `undefined` otherwise (the epoch starts at its plan round).
   */
  resumePoint?(stage: number, epoch: number): ResumePoint | undefined;
  /**
   * Largest step a combined round may take, as a multiple of the L2 norm of each weight matrix it
   * changes (`learningRate × ‖Σ gradient‖ / Σ rows`); a round above it is skipped by every replica
   * alike (see `round-safety.ts`). Default `DEFAULT_MAX_STEP_RATIO`; `Infinity` turns the cap off.
   */
  readonly maxStepRatio?: number;
  /** Told when a combined round is skipped (step above the cap) or rolled back (non-finite parameters after it), and why. */
  roundRefused?(position: RoundPosition, why: string): void;
}

/** A collective for the loop of stage `stage` (positions from the loop carry stage 0). */
export function forStage(collective: Collective, stage: number): Collective {
  return {
    allReduce: (p, tensors, scalars) => collective.allReduce({ stage, epoch: p.epoch, step: p.step }, tensors, scalars),
    resumePoint: (_stage, epoch) => collective.resumePoint?.(stage, epoch),
    ...(collective.maxStepRatio === undefined ? {} : { maxStepRatio: collective.maxStepRatio }),
    roundRefused: (p, why) => collective.roundRefused?.({ stage, epoch: p.epoch, step: p.step }, why),
  };
}

/** Rows `[start, end)` of this replica's `rows` (shuffled) rows that minibatch round `step` of `rounds` covers. */
export function batchBounds(rows: number, rounds: number, step: number): { readonly start: number; readonly end: number } {
  return { start: Math.floor((step * rows) / rounds), end: Math.floor(((step + 1) * rows) / rounds) };
}

/**
 * Runs an epoch's plan round, or takes the entry point of a joined replica: the epoch's number of
 * minibatch rounds and the first round this replica takes part in.
 */
export async function planEpoch(collective: Collective, epoch: number, rows: number, batchSize: number): Promise<ResumePoint> {
  const entry = collective.resumePoint?.(0, epoch);
  if (entry !== undefined) return entry;
  const total = Float64Array.of(rows);
  await collective.allReduce({ stage: 0, epoch, step: PLAN_STEP }, [], total);
  return { step: 0, rounds: Math.max(1, Math.ceil(total[0]! / batchSize)) };
}
