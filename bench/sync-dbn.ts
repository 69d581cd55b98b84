/**
 * K peers against one process on a pretrained + fine-tuned DBN (not part of `npm test`): the
 * bundled digits split 8,000 train / 2,000 test (seeded); the single process trains on all
 * 8,000 rows, each peer (`PeerTrainer` over real ZeroMQ peers on loopback, in this process) on
 * 1/K of them. With `--equal-updates` (the default) every peer runs K× the epochs, so it makes
 * as many minibatch updates as the single process (the same time, on K machines); without it,
 * the same epochs. Fine-tuning runs without early stopping on both sides.
 *
 * Usage: tsx bench/sync-dbn.ts [--peers 4] [--layers 500,500] [--pretrain-epochs 3]
 *        [--finetune-epochs 8] [--merge average|sum] [--no-equal-updates] [--backend native|js]
 * Prints one JSON object: {single: {accuracy, seconds}, peers: {accuracy, seconds, …}, gapPoints, …}.
 */
import { parseArgs } from 'node:util';
import { loadBundledDigits } from '../src/data/bundled-digits.js';
import { shard, trainTestSplit } from '../src/data/split.js';
import { Dbn } from '../src/dbn/index.js';
import { PeerTrainer } from '../src/distributed/index.js';
import type { LayerOptions } from '../src/dbn/index.js';
import { createBackend, defaultBackend } from '../src/kernels/index.js';
import { Peer } from '../src/sync/peer.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '4' },
    layers: { type: 'string', default: '500,500' },
    'pretrain-epochs': { type: 'string', default: '3' },
    'finetune-epochs': { type: 'string', default: '8' },
    merge: { type: 'string', default: 'average' },
    'equal-updates': { type: 'boolean', default: true },
    'no-equal-updates': { type: 'boolean', default: false },
    backend: { type: 'string' },
  },
});

const K = Number(values.peers);
const E = Number(values['pretrain-epochs']);
const F = Number(values['finetune-epochs']);
const scale = values['no-equal-updates'] ? 1 : K;
const merge = values.merge === 'sum' ? 'sum' : 'average';
const backend = values.backend === undefined ? defaultBackend().backend : createBackend(values.backend);
const split = trainTestSplit(loadBundledDigits(), { testFraction: 0.2, seed: 1, shuffle: true });
const layersOf = (epochs: number): LayerOptions[] =>
  values.layers!.split(',').map((n) => ({ nHidden: Number(n), epochs, batchSize: 100, learningRate: 0.05 }));
const fineTune = { learningRate: 0.1, momentum: 0.9, batchSize: 100, validationFraction: 0, classes: 10 };

const t0 = performance.now();
const single = new Dbn({ nVisible: 784, layers: layersOf(E), seed: 1, backend });
await single.pretrain(split.train.x);
await single.fineTune(split.train.x, split.train.y as Int32Array, { ...fineTune, epochs: F });
const singleSeconds = (performance.now() - t0) / 1000;
const singleAcc = single.evaluate(split.test.x, split.test.y as Int32Array).accuracy;

const t1 = performance.now();
const fingerprint = 'ab'.repeat(32);
const peers: Peer[] = [];
for (let i = 0; i < K; i++) {
  peers.push(
    await Peer.create({
      runId: 'bench-dbn',
      fingerprint,
      bind: 'tcp://127.0.0.1:0',
      plaintext: true,
      peers: i === 0 ? [] : [peers[0]!.address.pub],
      heartbeatIntervalMs: 250,
    }),
  );
}
const dbns = peers.map(() => new Dbn({ nVisible: 784, layers: layersOf(E * scale), seed: 1, backend }));
const trainers = peers.map(
  (p, i) =>
    new PeerTrainer(dbns[i]!, p, {
      publishEvery: 10,
      mode: { kind: 'async', merge, antiEntropyMs: 10_000 },
      minPeers: K - 1,
      barrierTimeoutMs: 600_000,
    }),
);
await Promise.all(trainers.map((t) => t.join({ minPeers: K - 1, timeoutMs: 60_000 })));
await Promise.all(
  trainers.map(async (t, i) => {
    const part = shard(split.train, i, K);
    await t.pretrain(part.x);
    await t.fineTune(part.x, part.y as Int32Array, { ...fineTune, epochs: F * scale });
    await t.finish();
  }),
);
const peerSeconds = (performance.now() - t1) / 1000;
const accs = dbns.map((d) => d.evaluate(split.test.x, split.test.y as Int32Array).accuracy);
let maxDiff = 0;
const ref = dbns[0]!.getClassifierParameters().layers;
for (const d of dbns.slice(1)) {
  d.getClassifierParameters().layers.forEach((l, j) => {
    const w = ref[j]!.weights.data;
    for (let k = 0; k < w.length; k++) maxDiff = Math.max(maxDiff, Math.abs(w[k]! - l.weights.data[k]!));
  });
}
const stats = trainers.map((t) => t.stats());
for (const t of trainers) t.close();
await Promise.all(peers.map((p) => p.close()));

process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'sync-dbn',
      data: `bundled digits, ${split.train.x.rows} train / ${split.test.x.rows} test`,
      architecture: `784-${values.layers!.replace(/,/g, '-')}-10`,
      backend: backend.info.description,
      single: { pretrainEpochs: E, fineTuneEpochs: F, accuracy: +singleAcc.toFixed(4), seconds: +singleSeconds.toFixed(1) },
      peers: {
        count: K,
        merge,
        rowsEach: shard(split.train, 0, K).x.rows,
        pretrainEpochs: E * scale,
        fineTuneEpochs: F * scale,
        accuracy: accs.map((a) => +a.toFixed(4)),
        maxClassifierWeightDifference: maxDiff,
        published: stats.map((s) => s.published),
        applied: stats.map((s) => s.applied),
        seconds: +peerSeconds.toFixed(1),
        note: 'all peers in one process (one JS thread, shared BLAS threads): seconds are total compute, not the time on K machines',
      },
      gapPoints: +((singleAcc - accs[0]!) * 100).toFixed(2),
      machine: machine(),
    },
    null,
    2,
  )}\n`,
);
backend.dispose();
