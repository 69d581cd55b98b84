/**
 * What bench/scaling.ts reports for one run (N peer processes, or one process): time to a fixed
 * test accuracy, minibatches to reach it, bytes per peer per epoch; and the bytes the two
 * exchange topologies move, computed from the layer sizes.
 */
import * as path from 'node:path';
import { readModelFile } from '../../src/rbm/model-file.js';
import type { TrainResult } from './peer-process.js';

/** The training schedule every run of the bench shares. */
export interface Schedule {
  /** Visible units then hidden units of each layer, e.g. [784, 500, 500]. */
  readonly sizes: readonly number[];
  readonly classes: number;
  readonly pretrainEpochs: number;
  readonly batchSize: number;
  /** Share of each replica's training rows that `Dbn.fineTune` holds out for validation (its default). */
  readonly validationFraction: number;
  /** The accuracy to reach, on the held-out validation rows (`validationAccuracy` of `--metrics`). */
  readonly target: number;
}

/** One row of the bench's output. */
export interface RunSummary {
  readonly peers: number;
  readonly trainingRows: number;
  /** Fine-tuning epochs until the validation accuracy first reached the target (null: never). */
  readonly finetuneEpochsToTarget: number | null;
  /** Seconds from launching the processes to the end of that epoch (the slowest peer). */
  readonly wallSecondsToTarget: number | null;
  /** The same, from the first minibatch (after start-up and the start barrier). */
  readonly trainSecondsToTarget: number | null;
  readonly wallSecondsTotal: number;
  /** Minibatches of `batchSize` rows over all peers (one round each) to reach the target: what one process counts. */
  readonly minibatchesToTarget: number | null;
  /** Each peer's share of every such minibatch counted as its own step: N × the above. */
  readonly peerStepsToTarget: number | null;
  readonly finalTestAccuracy: number;
  /** Largest difference between any two peers' saved weights (0: identical replicas). */
  readonly largestReplicaDifference: number;
  readonly epochsRun: number;
  readonly roundsTotal: number | null;
  /** Mean over peers of MiB sent / received per epoch (pretraining epochs of every layer plus fine-tuning epochs). */
  readonly mibSentPerPeerPerEpoch: number | null;
  readonly mibReceivedPerPeerPerEpoch: number | null;
  /** Fewest members any peer's group had at the end (N when no peer was dropped). */
  readonly membersAtEnd: number | null;
  /** Largest view number any peer reached (1: the starting view, no peer dropped). */
  readonly lastView: number | null;
  /** Mean over peers of the seconds spent waiting for rounds to complete (the group's `waitMs`). */
  readonly waitSecondsPerPeer: number | null;
}

function num(r: Record<string, unknown>, key: string): number {
  const v = r[key];
  if (typeof v !== 'number') throw new Error(`metrics record ${JSON.stringify(r)} has no number '${key}'`);
  return v;
}

function shardRows(result: TrainResult): number {
  for (const line of result.lines) {
    const shard = /shard \d+\/\d+: (\d+) training rows/.exec(line);
    if (shard !== null) return Number(shard[1]);
    const whole = /\((\d+) train \/ \d+ test/.exec(line);
    if (whole !== null) return Number(whole[1]);
  }
  throw new Error(`${result.name}: no line gives its training rows`);
}

function largestDifference(files: readonly string[]): number {
  const models = files.map((f) => readModelFile(f));
  let largest = 0;
  for (const [name, tensor] of models[0]!.tensors) {
    for (const other of models.slice(1)) {
      const data = other.tensors.get(name)!.data;
      for (let i = 0; i < tensor.data.length; i++) largest = Math.max(largest, Math.abs(tensor.data[i]! - data[i]!));
    }
  }
  return largest;
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** Summarizes one run from its processes' output and `--metrics` records. */
export function summarizeRun(results: readonly TrainResult[], s: Schedule): RunSummary {
  const launchedAt = Math.min(...results.map((r) => r.launchedAt));
  const rows = results.map(shardRows);
  const trainingRows = rows.reduce((a, b) => a + b, 0);
  const finetuneRows = rows.reduce((a, b) => a + b - Math.round(s.validationFraction * b), 0);
  const pretrainBatches = Math.ceil(trainingRows / s.batchSize);
  const finetuneBatches = Math.ceil(finetuneRows / s.batchSize);
  const layers = s.sizes.length - 1;
  let reachedAt = -Infinity;
  let trainStart = Infinity;
  let epochs: number | null = null;
  for (const r of results) {
    const first = r.records.find((m) => m['phase'] === 'pretrain')!;
    trainStart = Math.min(trainStart, Date.parse(String(first['time'])) - num(first, 'elapsedMs'));
    const hit = r.records.find((m) => m['phase'] === 'finetune' && num(m, 'validationAccuracy') >= s.target);
    if (hit === undefined) continue;
    epochs = num(hit, 'epoch') + 1;
    reachedAt = Math.max(reachedAt, Date.parse(String(hit['time'])));
  }
  const finetuneEpochs = results[0]!.records.filter((m) => m['phase'] === 'finetune').length;
  const epochsRun = layers * s.pretrainEpochs + finetuneEpochs;
  const stats = results.map((r) => r.records.find((m) => m['phase'] === 'peers' && m['event'] === 'stats'));
  const mib = (key: string): number | null =>
    stats.every((x) => x !== undefined) && results.length > 1
      ? round(stats.reduce((a, x) => a + num(x!, key), 0) / results.length / epochsRun / 2 ** 20, 2)
      : null;
  const minibatches = epochs === null ? null : layers * s.pretrainEpochs * pretrainBatches + epochs * finetuneBatches;
  const test = results[0]!.records.find((m) => m['phase'] === 'test');
  return {
    peers: results.length,
    trainingRows,
    finetuneEpochsToTarget: epochs,
    wallSecondsToTarget: epochs === null ? null : round((reachedAt - launchedAt) / 1000, 1),
    trainSecondsToTarget: epochs === null ? null : round((reachedAt - trainStart) / 1000, 1),
    wallSecondsTotal: round((Math.max(...results.map((r) => r.exitedAt)) - launchedAt) / 1000, 1),
    minibatchesToTarget: minibatches,
    peerStepsToTarget: minibatches === null ? null : minibatches * results.length,
    finalTestAccuracy: test === undefined ? Number.NaN : num(test, 'accuracy'),
    largestReplicaDifference: results.length > 1 ? largestDifference(results.map((r) => path.join(r.out, 'model.dbn'))) : 0,
    epochsRun,
    roundsTotal: stats[0] === undefined ? null : num(stats[0], 'rounds'),
    mibSentPerPeerPerEpoch: mib('bytesSent'),
    mibReceivedPerPeerPerEpoch: mib('bytesReceived'),
    membersAtEnd: stats.every((x) => x !== undefined) && results.length > 1 ? Math.min(...stats.map((x) => num(x!, 'members'))) : null,
    lastView: stats.every((x) => x !== undefined) && results.length > 1 ? Math.max(...stats.map((x) => num(x!, 'view'))) : null,
    waitSecondsPerPeer:
      stats.every((x) => x !== undefined) && results.length > 1
        ? round(stats.reduce((a, x) => a + num(x!, 'waitMs'), 0) / results.length / 1000, 1)
        : null,
  };
}

/**
 * MiB each peer sends per epoch (and receives as much), averaged over the run's epochs as
 * {@link RunSummary} does, computed from the parameters each round sums (float32, framing left
 * out): the sharded all-reduce moves `2 (N − 1) / N` times them per round, an all-to-all exchange
 * of dense deltas `N − 1` times.
 */
export function topologyBytes(
  s: Schedule,
  peers: number,
  trainingRows: number,
  finetuneEpochs: number,
): { shardedAllReduce: number; allToAllDense: number } {
  const layers = s.sizes.length - 1;
  const pretrainRounds = Math.ceil(trainingRows / s.batchSize);
  const finetuneRounds = Math.ceil((trainingRows * (1 - s.validationFraction)) / s.batchSize);
  let perRunFloats = 0;
  let finetuneFloats = s.sizes[layers]! * s.classes + s.classes;
  for (let l = 0; l < layers; l++) {
    const visible = s.sizes[l]!;
    const hidden = s.sizes[l + 1]!;
    perRunFloats += s.pretrainEpochs * pretrainRounds * (visible * hidden + visible + hidden);
    finetuneFloats += visible * hidden + hidden;
  }
  perRunFloats += finetuneEpochs * finetuneRounds * finetuneFloats;
  const perEpochMiB = (perRunFloats * 4) / (layers * s.pretrainEpochs + finetuneEpochs) / 2 ** 20;
  return { shardedAllReduce: round((perEpochMiB * 2 * (peers - 1)) / peers, 2), allToAllDense: round(perEpochMiB * (peers - 1), 2) };
}
