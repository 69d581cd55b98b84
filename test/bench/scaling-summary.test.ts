import test from 'ava';
import type { TrainResult } from '../../bench/scaling/peer-process.js';
import { type Schedule, summarizeRun, topologyBytes } from '../../bench/scaling/summary.js';

const schedule: Schedule = {
  sizes: [784, 500, 500],
  classes: 10,
  pretrainEpochs: 1,
  batchSize: 100,
  validationFraction: 0.1,
  target: 0.82,
};

test('topologyBytes: the sharded all-reduce moves 2(N-1)/N gradients per round, all-to-all N-1', (t) => {
  // By hand: 40 rounds of layer 0 (784*500 + 784 + 500 floats) and of layer 1 (500*500 + 500 + 500),
  // then 10 epochs of 36 rounds of every weight and hidden bias plus the 500x10 head: float32,
  // over 12 epochs. (The byte counters of a 2-peer loopback run measured 82.36 MiB.)
  const floats =
    40 * (784 * 500 + 784 + 500) + 40 * (500 * 500 + 500 + 500) + 10 * 36 * (784 * 500 + 500 + 500 * 500 + 500 + 500 * 10 + 10);
  const gradientMiB = (floats * 4) / 12 / 2 ** 20;
  for (const [peers, sharded, allToAll] of [
    [2, 1, 1],
    [4, 1.5, 3],
    [8, 1.75, 7],
  ] as const) {
    const bytes = topologyBytes(schedule, peers, 4000, 10);
    t.true(Math.abs(bytes.shardedAllReduce - sharded * gradientMiB) < 0.01, `N=${peers}: ${bytes.shardedAllReduce}`);
    t.true(Math.abs(bytes.allToAllDense - allToAll * gradientMiB) < 0.01, `N=${peers}: ${bytes.allToAllDense}`);
  }
});

test('summarizeRun: epochs, minibatches and seconds to the first epoch at the target', (t) => {
  const start = Date.parse('2026-12-03T07:00:00.000Z');
  const at = (ms: number): string => new Date(start + ms).toISOString();
  const accuracies = [0.6, 0.79, 0.83, 0.81, 0.9];
  const result: TrainResult = {
    name: 'one',
    lines: ['data: bundled MNIST digits (4000 train / 1000 test, 784 features)'],
    records: [
      { time: at(3000), phase: 'pretrain', layer: 0, epoch: 0, elapsedMs: 1000 },
      { time: at(4000), phase: 'pretrain', layer: 1, epoch: 0, elapsedMs: 1000 },
      ...accuracies.map((validationAccuracy, epoch) => ({ time: at(5000 + 1000 * epoch), phase: 'finetune', epoch, validationAccuracy })),
      { time: at(9500), phase: 'test', accuracy: 0.88 },
    ],
    launchedAt: start,
    exitedAt: start + 10_000,
    out: '/nonexistent',
  };
  const s = summarizeRun([result], schedule);
  t.is(s.finetuneEpochsToTarget, 3);
  // 2 layers x 40 minibatches of 4,000 rows, then 3 epochs of ceil(3,600 / 100).
  t.is(s.minibatchesToTarget, 2 * 40 + 3 * 36);
  t.is(s.wallSecondsToTarget, 7);
  t.is(s.trainSecondsToTarget, 5);
  t.is(s.wallSecondsTotal, 10);
  t.is(s.epochsRun, 7);
  t.is(s.finalTestAccuracy, 0.88);
  t.is(s.mibSentPerPeerPerEpoch, null);
});
