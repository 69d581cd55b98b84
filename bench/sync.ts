/**
 * Peer-to-peer sync costs (not part of `npm test`). Prints one JSON object:
 * - `throughput`: 784×500 RBM deltas (+ biases, 1.57 MB as float32) through two peers on
 *   loopback in one process: publish (encode) rate, end-to-end rate (encode + send + receive +
 *   decode), for float32 and float16; `applyMs`: adding one delta to an RBM's parameters.
 * - `overhead`: CD-1 on 784→500, batch 100, publishing every 10 minibatches (`publishEvery`),
 *   with a second process publishing deltas of the same shape at the same cadence: time in
 *   publication points plus receiving (decode + guard) per delta, as a share of the plain
 *   training time; and the wall-clock difference against plain `Dbn.pretrain` on the same rows
 *   (after a warm-up run; the best of two runs each, the machine being shared).
 * - `float16`: compression ratio on the wire and the relative rounding error of one real delta.
 * - `timeToTarget`: one process (2 BLAS threads) against two peers (`dbn-node train`, each on
 *   half the rows, 1 BLAS thread each) on this machine: seconds from spawn until the training
 *   reconstruction error reaches the one process's error after `--epochs` epochs.
 *
 * Usage: tsx bench/sync.ts [--backend native|js] [--epochs 4] [--rows 8000] [--skip-time]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadBundledDigits } from '../src/data/bundled-digits.js';
import { take } from '../src/data/dataset.js';
import { Dbn, DeltaGuard, PeerTrainer } from '../src/dbn/index.js';
import { createBackend, defaultBackend } from '../src/kernels/index.js';
import type { Backend } from '../src/kernels/backend.js';
import { roundToFloat16 } from '../src/sync/float16.js';
import { Peer } from '../src/sync/peer.js';
import { decode, encodeDelta } from '../src/sync/wire.js';
import type { Shape } from '../src/sync/wire.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    epochs: { type: 'string', default: '4' },
    rows: { type: 'string', default: '8000' },
    'skip-time': { type: 'boolean', default: false },
    // child mode: publish random deltas to the trainer at <endpoint> every <ms> until killed
    publisher: { type: 'string' },
    every: { type: 'string' },
    fingerprint: { type: 'string' },
  },
});

const NV = 784;
const NH = 500;
const SHAPES: Shape[] = [[NV, NH], [1, NV], [1, NH]];
const FP = 'ee'.repeat(32);
const RUN = 'bench';

function backendOf(): Backend {
  return values.backend === undefined ? defaultBackend().backend : createBackend(values.backend);
}

function randomDelta(scale: number): Float32Array[] {
  return SHAPES.map(([r, c]) => Float32Array.from({ length: r * c }, () => (Math.random() - 0.5) * scale));
}

async function publisherMode(): Promise<void> {
  const peer = await Peer.create({ runId: RUN, fingerprint: values.fingerprint ?? FP, bind: 'tcp://127.0.0.1:0', plaintext: true, peers: [values.publisher!], heartbeatIntervalMs: 200 });
  await peer.waitForPeers(1, 30_000);
  const d = randomDelta(1e-4);
  const every = Number(values.every);
  const timer = setInterval(() => peer.publishDelta(0, d, SHAPES), every);
  process.on('SIGTERM', () => {
    clearInterval(timer);
    void peer.close().then(() => process.exit(0));
  });
  process.stdout.write('publishing\n');
}

async function throughput(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const float16 of [false, true]) {
    const a = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 100 });
    const b = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, peers: [a.address.pub], heartbeatIntervalMs: 100 });
    await Promise.all([a.waitForPeers(1, 10_000), b.waitForPeers(1, 10_000)]);
    const d = randomDelta(1e-3);
    const n = 100;
    let got = 0;
    const all = new Promise<void>((resolve) => b.on('delta', () => ++got === n && resolve()));
    const t0 = performance.now();
    let encodeMs = 0;
    for (let i = 0; i < n; ) {
      const e0 = performance.now();
      const seq = a.publishDelta(0, d, SHAPES, { float16 });
      encodeMs += performance.now() - e0;
      if (seq === undefined) await a.flush();
      else i++;
      if (i % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    await all;
    const s = (performance.now() - t0) / 1000;
    const bytes = encodeDelta({ runId: RUN, fingerprint: FP, senderId: a.senderId }, { layer: 0, sequence: 1, baseSequence: 0, tensors: d, shapes: SHAPES, float16 }).reduce((x, f) => x + f.length, 0);
    out[float16 ? 'float16' : 'float32'] = {
      deltaBytes: bytes,
      publishPerSecond: Math.round(n / (encodeMs / 1000)),
      endToEndPerSecond: Math.round(n / s),
      endToEndMBps: +((n * bytes) / s / 1e6).toFixed(1),
      lost: b.stats().gaps,
    };
    await Promise.all([a.close(), b.close()]);
  }
  const backend = backendOf();
  const dbn = new Dbn({ nVisible: NV, layers: [{ nHidden: NH }], seed: 1, backend });
  const rbm = dbn.layers[0]!;
  const d = randomDelta(1e-3);
  const reps = 20;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const p = rbm.getParameters();
    const ts = [p.weights.data, p.visibleBias, p.hiddenBias];
    for (let t = 0; t < 3; t++) for (let k = 0; k < ts[t]!.length; k++) ts[t]![k] = ts[t]![k]! + d[t]![k]!;
    rbm.setParameters(p);
  }
  out['applyMs'] = +((performance.now() - t0) / reps).toFixed(2);
  const frames = encodeDelta({ runId: RUN, fingerprint: FP, senderId: 'ab'.repeat(16) }, { layer: 0, sequence: 1, baseSequence: 0, tensors: d, shapes: SHAPES });
  const t1 = performance.now();
  for (let r = 0; r < reps; r++) decode(frames);
  out['decodeMs'] = +((performance.now() - t1) / reps).toFixed(2);
  // One plain JavaScript pass over the 392,000 weights (a sum of squares), warm: the unit most
  // of the sync cost is made of (about 15 such passes per publication with one remote delta).
  const w = d[0]!;
  let sink = 0;
  for (let r = 0; r < 5; r++) sink += sumOfSquares(w);
  const t2 = performance.now();
  for (let r = 0; r < reps; r++) sink += sumOfSquares(w);
  out['jsPassMs'] = +((performance.now() - t2) / reps).toFixed(2);
  if (Number.isNaN(sink)) throw new Error('unreachable');
  dbn.dispose();
  backend.dispose();
  return out;
}

function sumOfSquares(a: Float32Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * a[k]!;
  return s;
}

async function overhead(rows: number): Promise<Record<string, unknown>> {
  const data = take(loadBundledDigits(), rows).x;
  const layers = [{ nHidden: NH, epochs: 3, batchSize: 100 }];
  const batches = 3 * Math.ceil(rows / 100);
  const backend = backendOf();
  const plainRun = async (): Promise<number> => {
    const plain = new Dbn({ nVisible: NV, layers, seed: 1, backend });
    const t0 = performance.now();
    await plain.pretrain(data);
    plain.dispose();
    return performance.now() - t0;
  };
  const peerRun = async (float16: boolean, everyMs: number): Promise<{ wall: number; syncMs: number; syncs: number; delivered: number; applied: number }> => {
    const peer = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 200 });
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/sync.ts', '--publisher', peer.address.pub, '--every', String(Math.round(everyMs)), '--fingerprint', FP], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const dbn = new Dbn({ nVisible: NV, layers, seed: 1, backend });
    const trainer = new PeerTrainer(dbn, peer, { publishEvery: 10, float16, antiEntropyMs: 0, barrierTimeoutMs: 0 });
    const t0 = performance.now();
    await trainer.pretrain(data);
    const wall = performance.now() - t0;
    const s = trainer.stats();
    child.kill('SIGTERM');
    trainer.close();
    await peer.close();
    dbn.dispose();
    return { wall, syncMs: s.syncMs, syncs: s.syncs, delivered: s.transport.delivered, applied: s.applied };
  };
  // Warm up the JIT (a real run has thousands of publications, not a dozen).
  const warmStep = (await plainRun()) / batches;
  await peerRun(false, 10 * warmStep);
  const plainMs = Math.min(await plainRun(), await plainRun());
  const stepMs = plainMs / batches;
  const result: Record<string, unknown> = { rows, batches, publishEvery: 10, stepMs: +stepMs.toFixed(2), remote: 'one other peer publishing a delta every 10 steps' };
  for (const float16 of [false, true]) {
    const runs = [await peerRun(float16, 10 * stepMs), await peerRun(float16, 10 * stepMs)];
    const best = runs.reduce((a, b) => (b.wall < a.wall ? b : a));
    const frames = encodeDelta({ runId: RUN, fingerprint: FP, senderId: 'ab'.repeat(16) }, { layer: 0, sequence: 1, baseSequence: 0, tensors: randomDelta(1e-3), shapes: SHAPES, float16 });
    const guard = new DeltaGuard();
    const d0 = performance.now();
    for (let r = 0; r < 10; r++) {
      const m = decode(frames);
      if (m.kind === 'delta') guard.check(0, m.tensors, m.shapes, SHAPES);
    }
    const receiveMs = (performance.now() - d0) / 10;
    const share = (best.syncMs + best.delivered * receiveMs) / plainMs;
    result[float16 ? 'float16' : 'float32'] = {
      publications: best.syncs,
      remoteDeltasApplied: best.applied,
      msPerPublication: +(best.syncMs / Math.max(1, best.syncs)).toFixed(2),
      receiveMsPerDelta: +receiveMs.toFixed(2),
      overheadShare: +share.toFixed(4),
      // The cost is per publication: publishing every n minibatches divides it by n / 10.
      publishEveryForUnder5Percent: Math.max(1, Math.ceil((10 * share) / 0.05)),
      wallClockShare: +((best.wall - plainMs) / plainMs).toFixed(4),
    };
  }
  backend.dispose();
  return result;
}

async function float16Error(): Promise<Record<string, unknown>> {
  const backend = backendOf();
  const dbn = new Dbn({ nVisible: NV, layers: [{ nHidden: NH, epochs: 1, batchSize: 100 }], seed: 1, backend });
  const x = take(loadBundledDigits(), 1000).x;
  const before = dbn.layers[0]!.getParameters().weights.data.slice();
  await dbn.pretrain(x); // 10 minibatches: one publication's worth
  const after = dbn.layers[0]!.getParameters().weights.data;
  const delta = after.map((v, i) => v - before[i]!);
  const q = roundToFloat16(delta, new Float32Array(delta.length));
  let e = 0;
  let n = 0;
  for (let i = 0; i < delta.length; i++) {
    e += (q[i]! - delta[i]!) ** 2;
    n += delta[i]! ** 2;
  }
  dbn.dispose();
  backend.dispose();
  const frames = (f16: boolean): number =>
    encodeDelta({ runId: RUN, fingerprint: FP, senderId: 'ab'.repeat(16) }, { layer: 0, sequence: 1, baseSequence: 0, tensors: [delta, new Float32Array(NV), new Float32Array(NH)], shapes: SHAPES, float16: f16 }).reduce((s, f) => s + f.length, 0);
  return { compressionRatio: +(frames(false) / frames(true)).toFixed(3), relativeRoundingError: +Math.sqrt(e / n).toExponential(2), residualKeptLocally: true };
}

interface Run {
  readonly name: string;
  readonly spawned: number;
  readonly metrics: string;
  readonly done: Promise<number | null>;
}

function train(dir: string, name: string, args: string[], env: Record<string, string>): Run {
  const metrics = path.join(dir, `${name}.jsonl`);
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/dbn-node.js', 'train', ...args, '--metrics', metrics, '--out', path.join(dir, name), '--quiet'], {
    env: { ...process.env, DBN_NODE_DEV: '1', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.resume();
  return { name, spawned: Date.now(), metrics, done: new Promise((resolve) => child.on('exit', resolve)) };
}

function epochs(run: Run): { t: number; err: number }[] {
  return fs
    .readFileSync(run.metrics, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r['phase'] === 'pretrain')
    .map((r) => ({ t: (Date.parse(r['time'] as string) - run.spawned) / 1000, err: r['reconstructionError'] as number }));
}

async function timeToTarget(rows: number, nEpochs: number): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-bench-sync-'));
  const common = ['--limit', String(rows), '--test-fraction', '0', '--layers', String(NH), '--batch-size', '100', '--finetune', '0', '--no-pictures', '--seed', '1'];
  if (values.backend !== undefined) common.push('--backend', values.backend);
  const single = train(dir, 'single', [...common, '--epochs', String(nEpochs)], {});
  if ((await single.done) !== 0) throw new Error('the single run failed');
  const s = epochs(single);
  const target = s[s.length - 1]!.err;
  // Two peers, same number of minibatch updates each as the single process makes.
  const peer = ['--plaintext', '--bind', 'tcp://127.0.0.1:0', '--min-peers', '1', '--join-timeout-ms', '60000', '--epochs', String(2 * nEpochs), '--anti-entropy-ms', '0'];
  const a = train(dir, 'peer1', [...common, ...peer, '--shard', '1/2'], { OPENBLAS_NUM_THREADS: '1' });
  let seed = '';
  for (let i = 0; i < 600 && seed === ''; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const line = fs.existsSync(a.metrics) ? fs.readFileSync(a.metrics, 'utf8').split('\n').find((l) => l.includes('"event":"start"')) : undefined;
    if (line !== undefined) seed = (JSON.parse(line) as { address: string }).address;
  }
  const b = train(dir, 'peer2', [...common, ...peer, '--shard', '2/2', '--peers', seed], { OPENBLAS_NUM_THREADS: '1' });
  const codes = await Promise.all([a.done, b.done]);
  if (codes.some((c) => c !== 0)) throw new Error('a peer failed');
  const reach = (xs: { t: number; err: number }[]): number | null => xs.find((x) => x.err <= target)?.t ?? null;
  const pa = epochs(a);
  return {
    target: +target.toFixed(5),
    singleSeconds: +(reach(s) ?? Number.NaN).toFixed(1),
    twoPeersSeconds: reach(pa) === null ? null : +reach(pa)!.toFixed(1),
    singleErrorByEpoch: s.map((x) => +x.err.toFixed(5)),
    peerErrorByEpoch: pa.map((x) => +x.err.toFixed(5)),
    note: 'training-set reconstruction error per epoch (each peer on its half); peers share 2 cores with 1 BLAS thread each, the single run uses 2',
  };
}

if (values.publisher !== undefined) {
  await publisherMode();
} else {
  const rows = Number(values.rows);
  const out: Record<string, unknown> = { bench: 'sync', backend: values.backend ?? defaultBackend().reason };
  out['throughput'] = await throughput();
  out['overhead'] = await overhead(Math.min(rows, 4000));
  out['float16'] = await float16Error();
  if (!values['skip-time']) out['timeToTarget'] = await timeToTarget(rows, Number(values.epochs));
  out['machine'] = machine();
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
