/**
 * One epoch of supervised fine-tuning (minibatch backpropagation), alone or as one replica of
 * several ({@link Collective}): the loop {@link Dbn.fineTune} runs for every epoch.
 */
import type { RandomSource } from '../random.js';
import { type Collective, batchBounds, planEpoch } from '../rbm/collective.js';
import { DEFAULT_MAX_STEP_RATIO, RoundSafety } from '../rbm/round-safety.js';
import type { HostMatrix } from '../validate.js';
import type { DropoutRates, FeedForwardNet, UpdateOptions } from './network.js';
import type { FineTuneBatchInfo } from './options.js';

/** What one epoch needs. */
export interface FineTuneEpoch {
  readonly net: FeedForwardNet;
  readonly rng: RandomSource;
  readonly epoch: number;
  readonly x: HostMatrix;
  readonly y: Int32Array;
  /** The minibatch size (over every replica with a collective). */
  readonly batchSize: number;
  readonly update: UpdateOptions;
  readonly rates: DropoutRates;
  readonly onBatch?: ((info: FineTuneBatchInfo) => void | Promise<void>) | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Scores this replica's validation rows with the current weights: summed log loss, correct count, rows. */
  readonly validate?: (() => ValidationSums) | undefined;
}

/** Summed validation statistics. */
export interface ValidationSums {
  readonly logLossSum: number;
  readonly correct: number;
  readonly rows: number;
}

/** An epoch's sums: over this process, or over every replica with a collective. */
export interface FineTuneEpochSums {
  readonly lossSum: number;
  readonly correct: number;
  readonly rows: number;
  /** Present when the epoch has validation rows (with a collective: any replica has). */
  readonly validation?: ValidationSums;
  /** The epoch stopped early because the signal was aborted. */
  readonly aborted: boolean;
}

/** Gathers rows `order[start..start+n)` of `x`/`y` into the host buffers. */
function gather(e: FineTuneEpoch, order: Uint32Array, start: number, n: number, hostX: Float32Array, hostY: Int32Array): void {
  const cols = e.x.cols;
  for (let r = 0; r < n; r++) {
    const src = order[start + r]!;
    hostX.set(e.x.data.subarray(src * cols, (src + 1) * cols), r * cols);
    hostY[r] = e.y[src]!;
  }
}

let lastYield = 0;

/** Lets the event loop turn at most every 50 ms of training. */
async function yieldSometimes(): Promise<void> {
  if (Date.now() - lastYield > 50) {
    await new Promise<void>((r) => setImmediate(r));
    lastYield = Date.now();
  }
}

/** One epoch in this process alone: minibatches of `batchSize` rows. */
export async function localFineTuneEpoch(e: FineTuneEpoch): Promise<FineTuneEpochSums> {
  const { x, net } = e;
  const bs = Math.min(e.batchSize, x.rows);
  const batches = Math.ceil(x.rows / bs);
  const hostX = new Float32Array(bs * x.cols);
  const hostY = new Int32Array(bs);
  const order = e.rng.permutation(x.rows);
  let lossSum = 0;
  let correct = 0;
  let rows = 0;
  for (let bi = 0; bi < batches; bi++) {
    const start = bi * bs;
    const n = Math.min(bs, x.rows - start);
    gather(e, order, start, n, hostX, hostY);
    const res = net.trainBatch(hostX.subarray(0, n * x.cols), hostY, n, e.update, e.rates, e.rng);
    lossSum += res.lossSum;
    correct += res.correct;
    rows += n;
    if (e.onBatch) await e.onBatch({ epoch: e.epoch, batch: bi, batches, loss: res.lossSum / n });
    if (e.signal?.aborted) return { lossSum, correct, rows, aborted: true };
    await yieldSometimes();
  }
  const validation = e.validate?.();
  return { lossSum, correct, rows, ...(validation === undefined ? {} : { validation }), aborted: false };
}

/**
 * One epoch as a replica: a plan round, one round per minibatch (this replica's share of the
 * rows, gradients summed over every replica, the same update everywhere), then a summary round
 * that sums the training and validation statistics, so every replica takes the same
 * early-stopping decision.
 */
export async function collectiveFineTuneEpoch(e: FineTuneEpoch, collective: Collective): Promise<FineTuneEpochSums> {
  const { x, net } = e;
  const { step: first, rounds } = await planEpoch(collective, e.epoch, x.rows, e.batchSize);
  const most = Math.max(1, Math.ceil(x.rows / rounds));
  const hostX = new Float32Array(most * x.cols);
  const hostY = new Int32Array(most);
  const order = e.rng.permutation(x.rows);
  const grads = net.gradientBuffers();
  const scalars = new Float64Array(1);
  const safety = new RoundSafety(net, collective.maxStepRatio ?? DEFAULT_MAX_STEP_RATIO);
  let lossSum = 0;
  let correct = 0;
  let rows = 0;
  for (let step = first; step < rounds; step++) {
    const { start, end } = batchBounds(x.rows, rounds, step);
    const n = end - start;
    let loss = Number.NaN;
    if (n > 0) {
      gather(e, order, start, n, hostX, hostY);
      const res = net.gradientSum(hostX.subarray(0, n * x.cols), hostY, n, e.rates, e.rng);
      net.readGradient(grads);
      lossSum += res.lossSum;
      correct += res.correct;
      rows += n;
      loss = res.lossSum / n;
    } else {
      for (const grad of grads) grad.fill(0);
    }
    scalars[0] = n;
    await collective.allReduce({ stage: 0, epoch: e.epoch, step }, grads, scalars);
    if (scalars[0]! > 0) {
      net.writeGradient(grads);
      const outcome = safety.applyRound({ stage: 0, epoch: e.epoch, step }, scalars[0]!, e.update.learningRate, () =>
        net.applyGradient(e.update, 1 / scalars[0]!),
      );
      if (!outcome.applied) collective.roundRefused?.({ stage: 0, epoch: e.epoch, step }, outcome.why);
    }
    if (e.onBatch) await e.onBatch({ epoch: e.epoch, batch: step, batches: rounds, loss });
    if (e.signal?.aborted) return { lossSum, correct, rows, aborted: true };
  }
  const v = e.validate?.();
  const sums = Float64Array.of(lossSum, correct, rows, v?.logLossSum ?? 0, v?.correct ?? 0, v?.rows ?? 0);
  await collective.allReduce({ stage: 0, epoch: e.epoch, step: rounds }, [], sums);
  const validRows = sums[5]!;
  const validation = validRows > 0 ? { logLossSum: sums[3]!, correct: sums[4]!, rows: validRows } : undefined;
  return { lossSum: sums[0]!, correct: sums[1]!, rows: sums[2]!, ...(validation === undefined ? {} : { validation }), aborted: false };
}
