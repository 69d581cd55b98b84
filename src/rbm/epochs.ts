/**
 * One training epoch of an RBM: minibatches over the rows of this process alone, or as one replica
 * of several whose gradients are summed every minibatch (synchronous data-parallel, see
 * {@link Collective}).
 */
import type { RandomSource } from '../random.js';
import type { HostMatrix } from '../validate.js';
import type { CdTrainer } from './cd-trainer.js';
import { type Collective, batchBounds, planEpoch } from './collective.js';
import { learningRateAt, type ResolvedRbmOptions } from './options.js';
import { DEFAULT_MAX_STEP_RATIO, RoundSafety } from './round-safety.js';
import { gatherRows } from './workspace.js';

/** Progress passed to {@link FitOptions.onBatch} after every minibatch update. */
export interface BatchInfo {
  readonly epoch: number;
  /** 0-based index of the minibatch within the epoch. */
  readonly batch: number;
  readonly batches: number;
  readonly reconstructionError: number;
}

/** The statistics of one epoch's minibatches. */
export interface EpochSums {
  /** Σ over rows of the minibatch reconstruction error (mean squared error per unit). */
  readonly errorSum: number;
  /** Rows trained on (over every replica with a collective). */
  readonly rows: number;
}

/** What an epoch trains with. */
export interface EpochContext {
  readonly options: ResolvedRbmOptions;
  /** The model's generator (minibatch order and the chains' samples). */
  readonly rng: RandomSource;
  readonly trainer: CdTrainer;
  /** Applies the trainer's gradient times `gradScale` and counts the update. */
  readonly apply: (epoch: number, gradScale: number) => void;
  /** One step on a minibatch of this process alone (gradient and update, see `CdTrainer.step`), counted; returns its error. */
  readonly step: (x: HostMatrix, epoch: number) => number;
  readonly onBatch: ((batch: BatchInfo) => void | Promise<void>) | undefined;
  readonly signal: AbortSignal | undefined;
}

/** A host buffer for minibatches of up to `rows` rows. */
function batchHost(options: ResolvedRbmOptions, rows: number): Float32Array {
  return new Float32Array(Math.max(1, rows) * options.nVisible);
}

/** One epoch of minibatches of `batchSize` rows over `x`, in this process alone. */
export async function localEpoch(context: EpochContext, x: HostMatrix, epoch: number): Promise<EpochSums> {
  const { options, rng, trainer } = context;
  const batchSize = Math.min(options.batchSize, x.rows);
  const batches = Math.ceil(x.rows / batchSize);
  const host = batchHost(options, batchSize);
  const order = options.shuffle ? rng.permutation(x.rows) : undefined;
  let errorSum = 0;
  let rows = 0;
  for (let batch = 0; batch < batches; batch++) {
    const start = batch * batchSize;
    const n = Math.min(batchSize, x.rows - start);
    const err = context.step(gatherRows(x, order, start, n, host), epoch);
    errorSum += err * n;
    rows += n;
    if (context.onBatch) await context.onBatch({ epoch, batch, batches, reconstructionError: err });
    if (context.signal?.aborted) break;
    await trainer.yieldSometimes();
  }
  return { errorSum, rows };
}

/**
 * One epoch as a replica (see {@link Collective}): a plan round, one round per minibatch with
 * this replica's share of the rows, and a summary round. Returns the sums over every replica.
 */
export async function collectiveEpoch(context: EpochContext, x: HostMatrix, epoch: number, collective: Collective): Promise<EpochSums> {
  const { options, rng, trainer } = context;
  const { step: first, rounds } = await planEpoch(collective, epoch, x.rows, options.batchSize);
  const host = batchHost(options, Math.ceil(x.rows / rounds));
  const order = options.shuffle ? rng.permutation(x.rows) : undefined;
  const grads = trainer.gradientBuffers();
  const scalars = new Float64Array(1);
  const safety = new RoundSafety(trainer, collective.maxStepRatio ?? DEFAULT_MAX_STEP_RATIO);
  let errorSum = 0;
  let rows = 0;
  for (let step = first; step < rounds; step++) {
    const { start, end } = batchBounds(x.rows, rounds, step);
    const n = end - start;
    let err = Number.NaN;
    if (n > 0) {
      err = trainer.gradient(gatherRows(x, order, start, n, host), true, rng);
      trainer.readGradient(grads);
      errorSum += err * n;
      rows += n;
    } else {
      for (const grad of grads) grad.fill(0);
    }
    scalars[0] = n;
    await collective.allReduce({ stage: 0, epoch, step }, grads, scalars);
    if (scalars[0]! > 0) {
      trainer.writeGradient(grads);
      const outcome = safety.applyRound({ stage: 0, epoch, step }, scalars[0]!, learningRateAt(options, epoch), () =>
        context.apply(epoch, 1 / scalars[0]!),
      );
      if (!outcome.applied) collective.roundRefused?.({ stage: 0, epoch, step }, outcome.why);
    }
    if (context.onBatch) await context.onBatch({ epoch, batch: step, batches: rounds, reconstructionError: err });
  }
  const sums = Float64Array.of(errorSum, rows);
  await collective.allReduce({ stage: 0, epoch, step: rounds }, [], sums);
  return { errorSum: sums[0]!, rows: sums[1]! };
}
