/**
 * Peer-to-peer sync costs (not part of `npm test`). Prints one JSON object:
 * - `throughput`: 784×500 RBM deltas (+ biases, 1.57 MB as float32) through two peers on
 *   loopback in one process: publish (encode) rate, end-to-end rate (encode + send + receive +
 *   decode), for float32 and float16; `applyMs`: a publication's work on the weights with one
 *   remote delta (read the parameters, the fused `deltaStep` pass, write them back); `decodeMs`:
 *   decoding one float32 delta.
 * - `overhead`: CD-1 on 784→500, batch 100, 6 epochs of up to 8,000 rows, publishing every 10
 *   minibatches (`publishEvery`), for each encoding: float32, float16 and sparse (`--sparse`,
 *   default 0.01 of the entries), with a second process publishing one delta of the same shape
 *   and encoding per delta of the trainer (two peers at the same speed: one remote delta merged
 *   per publication point).
 *   `overheadShare`: the time the real `PeerTrainer` run spent in its publication points
 *   (`syncMs`: read, diff, encode, checksum, merge the received deltas, write) plus receiving
 *   (`receiveMs`: the transport decoding every message it received, and the guard), as a share
 *   of plain `Dbn.pretrain` on the same rows in the same process; and the wall-clock
 *   difference between the two (noisier: it also carries the other process, which a real peer
 *   would run on another machine, and the ZeroMQ I/O thread, on the same 2 cores). After a
 *   warm-up run; the best of three runs each, the machine being shared.
 * - `float16`: compression ratio on the wire and the relative rounding error of one real delta.
 * - `timeToTarget`: one process (2 BLAS threads) against two peers (`dbn-node train`, each on
 *   half the rows, 1 BLAS thread each) on this machine: seconds from spawn until the training
 *   reconstruction error reaches the one process's error after `--epochs` epochs.
 *
 * Usage: tsx bench/sync.ts [--backend native|js] [--epochs 4] [--rows 8000] [--sparse 0.01] [--skip-time]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as zmq from 'zeromq';
import { loadBundledDigits } from '../src/data/bundled-digits.js';
import { take } from '../src/data/dataset.js';
import { Dbn } from '../src/dbn/index.js';
import { type DeltaEncoding, PeerTrainer } from '../src/distributed/index.js';
import { createBackend, defaultBackend } from '../src/kernels/index.js';
import type { Backend } from '../src/kernels/backend.js';
import { roundToFloat16 } from '../src/sync/float16.js';
import { Peer } from '../src/sync/peer.js';
import { decode, deltaTopic, encodeDelta, encodeDeltaFrames, encodeHeartbeat, sparseFrame } from '../src/sync/wire.js';
import type { Shape } from '../src/sync/wire.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    epochs: { type: 'string', default: '4' },
    rows: { type: 'string', default: '8000' },
    'skip-time': { type: 'boolean', default: false },
    // child mode: publish a random delta to the trainer at <endpoint> for each of its deltas, until killed
    publisher: { type: 'string' },
    router: { type: 'string' },
    float16: { type: 'boolean', default: false },
    sparse: { type: 'string', default: '0.01' },
    'sparse-child': { type: 'boolean', default: false },
    fingerprint: { type: 'string' },
  },
});

/** Epochs of the overhead runs: 6 × 80 minibatches, so a run's first publications (cold buffers, connections) weigh little. */
const OVERHEAD_EPOCHS = 6;

const NV = 784;
const NH = 500;
const SHAPES: Shape[] = [
  [NV, NH],
  [1, NV],
  [1, NH],
];
const FP = 'ee'.repeat(32);
const RUN = 'bench';

function backendOf(): Backend {
  return values.backend === undefined ? defaultBackend().backend : createBackend(values.backend);
}

/** A SPARSE frame with about `fraction` of `t`'s entries, evenly spread. */
function randomSparse(t: Float32Array, fraction: number): Buffer {
  const m = Math.max(1, Math.round(fraction * t.length));
  const idx = Uint32Array.from({ length: m }, (_, j) => Math.floor((j * t.length) / m));
  return sparseFrame(
    idx,
    Float32Array.from(idx, (k) => t[k]!),
  );
}

function randomDelta(scale: number): Float32Array[] {
  return SHAPES.map(([r, c]) => Float32Array.from({ length: r * c }, () => (Math.random() - 0.5) * scale));
}

/**
 * The other peer of `overhead`, speaking the wire format on bare ZeroMQ sockets: it announces
 * itself to the trainer's ROUTER (so the trainer subscribes to it), sends heartbeats, and
 * publishes one delta of the trainer's shape for every delta the trainer publishes, so each
 * publication point of the trainer merges one remote delta, as between two peers training at
 * the same speed. Its deltas are encoded before the run and it never decodes the trainer's:
 * the trainer's real partner would do that work on its own machine, not on the 2 cores the
 * trainer is measured on.
 */
async function publisherMode(): Promise<void> {
  const float16 = values.float16;
  const env = { runId: RUN, fingerprint: values.fingerprint ?? FP, senderId: 'be'.repeat(16) };
  const pub = new zmq.XPublisher({ linger: 0 });
  const router = new zmq.Router({ linger: 0 }); // advertised for snapshots, never asked here
  await pub.bind('tcp://127.0.0.1:0');
  await router.bind('tcp://127.0.0.1:0');
  const self = { pub: pub.lastEndpoint!, router: router.lastEndpoint!, publicKey: null };
  let sequence = 0;
  const heartbeat = (): Buffer[] =>
    encodeHeartbeat(env, {
      lastSequence: sequence,
      self,
      peers: [],
      progress: { epoch: 0, batches: 0, samples: 0 },
      weightFingerprint: [],
    });
  const d = randomDelta(1e-4);
  const fraction = Number(values.sparse);
  const ready = Array.from({ length: 64 }, (_, i) =>
    values['sparse-child']
      ? encodeDeltaFrames(env, {
          layer: 0,
          sequence: i + 1,
          baseSequence: i,
          payload: d.map((t) => randomSparse(t, fraction)),
          shapes: SHAPES,
          sparse: true,
        })
      : encodeDelta(env, { layer: 0, sequence: i + 1, baseSequence: i, tensors: d, shapes: SHAPES, float16 }),
  );
  const subscribed = pub.receive();
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(values.router!);
  await dealer.send(heartbeat());
  await subscribed;
  setInterval(() => void pub.send(heartbeat()).catch(() => undefined), 200);
  const trainer = new zmq.Subscriber({ linger: 0 });
  trainer.subscribe(deltaTopic(RUN, 0));
  trainer.connect(values.publisher!);
  process.on('SIGTERM', () => process.exit(0));
  await new Promise((r) => setTimeout(r, 300)); // heartbeats make the trainer count this peer alive
  process.stdout.write('publishing\n');
  for await (const frames of trainer) {
    void frames;
    const next = ready[sequence];
    if (next === undefined) continue;
    sequence++;
    await pub.send(next);
  }
}

async function throughput(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const float16 of [false, true]) {
    const a = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 100 });
    const b = await Peer.create({
      runId: RUN,
      fingerprint: FP,
      bind: 'tcp://127.0.0.1:0',
      plaintext: true,
      peers: [a.address.pub],
      heartbeatIntervalMs: 100,
    });
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
    const bytes = encodeDelta(
      { runId: RUN, fingerprint: FP, senderId: a.senderId },
      { layer: 0, sequence: 1, baseSequence: 0, tensors: d, shapes: SHAPES, float16 },
    ).reduce((x, f) => x + f.length, 0);
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
  // What a publication point with one remote delta does to the weights, outside training: read
  // the parameters, one fused pass (the backend's deltaStep kernel, else a plain loop), write.
  const base = rbm.getParameters();
  const baseT = [base.weights.data, base.visibleBias, base.hiddenBias];
  const next = baseT.map((x) => new Float32Array(x.length));
  const curNext = baseT.map((x) => new Float32Array(x.length));
  const sent = baseT.map((x) => new Float32Array(x.length));
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const p = rbm.getParameters();
    const cur = [p.weights.data, p.visibleBias, p.hiddenBias];
    for (let t = 0; t < 3; t++) {
      const args = {
        cur: cur[t]!,
        base: baseT[t]!,
        remote: [d[t]!],
        share: 1,
        keep: false,
        delta: sent[t]!,
        baseNext: next[t]!,
        curNext: curNext[t]!,
      };
      if (backend.deltaStep !== undefined) backend.deltaStep(args);
      else for (let k = 0; k < args.cur.length; k++) args.curNext[k] = args.cur[k]! + d[t]![k]!;
    }
    rbm.setParameters({ weights: { rows: NV, cols: NH, data: curNext[0]! }, visibleBias: curNext[1]!, hiddenBias: curNext[2]! });
  }
  out['applyMs'] = +((performance.now() - t0) / reps).toFixed(2);
  const frames = encodeDelta(
    { runId: RUN, fingerprint: FP, senderId: 'ab'.repeat(16) },
    { layer: 0, sequence: 1, baseSequence: 0, tensors: d, shapes: SHAPES },
  );
  const t1 = performance.now();
  for (let r = 0; r < reps; r++) decode(frames);
  out['decodeMs'] = +((performance.now() - t1) / reps).toFixed(2);
  // One plain JavaScript pass over the 392,000 weights (a sum of squares), warm: the unit of
  // what is left in JavaScript (the wire's checks on both sides, the parameters' re-check).
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
  const layers = [{ nHidden: NH, epochs: OVERHEAD_EPOCHS, batchSize: 100 }];
  const batches = OVERHEAD_EPOCHS * Math.ceil(rows / 100);
  const backend = backendOf();
  const plainRun = async (): Promise<number> => {
    const plain = new Dbn({ nVisible: NV, layers, seed: 1, backend });
    const t0 = performance.now();
    await plain.pretrain(data);
    plain.dispose();
    return performance.now() - t0;
  };
  type Encoding = 'float32' | 'float16' | 'sparse';
  const fraction = Number(values.sparse);
  const peerRun = async (
    encoding: Encoding,
  ): Promise<{ wall: number; syncMs: number; receiveMs: number; syncs: number; delivered: number; applied: number; ratio: number }> => {
    const float16 = encoding === 'float16';
    const peer = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 200 });
    const args = [
      '--import',
      'tsx',
      'bench/sync.ts',
      '--publisher',
      peer.address.pub,
      '--router',
      peer.address.router,
      '--fingerprint',
      FP,
    ];
    if (float16) args.push('--float16');
    if (encoding === 'sparse') args.push('--sparse-child', '--sparse', String(fraction));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const dbn = new Dbn({ nVisible: NV, layers, seed: 1, backend });
    const deltaEncoding: DeltaEncoding = encoding === 'sparse' ? { kind: 'sparse', fraction } : { kind: float16 ? 'float16' : 'float32' };
    const mode = { kind: 'async', antiEntropyMs: 0, encoding: deltaEncoding } as const;
    const trainer = new PeerTrainer(dbn, peer, { publishEvery: 10, mode, barrierTimeoutMs: 0 });
    const t0 = performance.now();
    await trainer.pretrain(data);
    const wall = performance.now() - t0;
    const s = trainer.stats();
    child.kill('SIGTERM');
    trainer.close();
    await peer.close();
    dbn.dispose();
    return {
      wall,
      syncMs: s.syncMs,
      receiveMs: s.receiveMs,
      syncs: s.syncs,
      delivered: s.transport.delivered,
      applied: s.applied,
      ratio: s.compressionRatio,
    };
  };
  // Warm up the JIT (a real run has thousands of publications, not a dozen).
  await plainRun();
  await peerRun('float32');
  await peerRun('float16');
  await peerRun('sparse');
  const plainMs = Math.min(await plainRun(), await plainRun(), await plainRun());
  const stepMs = plainMs / batches;
  const result: Record<string, unknown> = {
    rows,
    batches,
    publishEvery: 10,
    stepMs: +stepMs.toFixed(2),
    remote: 'another process publishing one delta of the same encoding per delta of the trainer',
  };
  for (const encoding of ['float32', 'float16', 'sparse'] as const) {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await peerRun(encoding));
    // The run with the least sync time: the machine is shared, interference only adds.
    const best = runs.reduce((a, b) => (b.syncMs + b.receiveMs < a.syncMs + a.receiveMs ? b : a));
    const fastest = runs.reduce((a, b) => (b.wall < a.wall ? b : a));
    const share = (best.syncMs + best.receiveMs) / plainMs;
    result[encoding === 'sparse' ? `sparse ${fraction}` : encoding] = {
      ...(encoding === 'sparse' ? { compressionRatio: +best.ratio.toFixed(1) } : {}),
      publications: best.syncs,
      remoteDeltasDelivered: best.delivered,
      remoteDeltasApplied: best.applied,
      msPerPublication: +(best.syncMs / Math.max(1, best.syncs)).toFixed(2),
      receiveMsPerDelta: +(best.receiveMs / Math.max(1, best.delivered)).toFixed(2),
      overheadShare: +share.toFixed(4),
      overheadShareRuns: runs.map((r) => +((r.syncMs + r.receiveMs) / plainMs).toFixed(4)),
      // The cost is per publication: publishing every n minibatches divides it by n / 10.
      publishEveryForUnder5Percent: Math.max(1, Math.ceil((10 * share) / 0.05)),
      wallClockShare: +((fastest.wall - plainMs) / plainMs).toFixed(4),
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
    encodeDelta(
      { runId: RUN, fingerprint: FP, senderId: 'ab'.repeat(16) },
      {
        layer: 0,
        sequence: 1,
        baseSequence: 0,
        tensors: [delta, new Float32Array(NV), new Float32Array(NH)],
        shapes: SHAPES,
        float16: f16,
      },
    ).reduce((s, f) => s + f.length, 0);
  return {
    compressionRatio: +(frames(false) / frames(true)).toFixed(3),
    relativeRoundingError: +Math.sqrt(e / n).toExponential(2),
    residualKeptLocally: true,
  };
}

interface Run {
  readonly name: string;
  readonly spawned: number;
  readonly metrics: string;
  readonly done: Promise<number | null>;
}

function train(dir: string, name: string, args: string[], env: Record<string, string>): Run {
  const metrics = path.join(dir, `${name}.jsonl`);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bin/dbn-node.js', 'train', ...args, '--metrics', metrics, '--out', path.join(dir, name), '--quiet'],
    {
      env: { ...process.env, DBN_NODE_DEV: '1', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
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
  const common = [
    '--limit',
    String(rows),
    '--test-fraction',
    '0',
    '--layers',
    String(NH),
    '--batch-size',
    '100',
    '--finetune',
    '0',
    '--no-pictures',
    '--seed',
    '1',
  ];
  if (values.backend !== undefined) common.push('--backend', values.backend);
  const single = train(dir, 'single', [...common, '--epochs', String(nEpochs)], {});
  if ((await single.done) !== 0) throw new Error('the single run failed');
  const s = epochs(single);
  const target = s[s.length - 1]!.err;
  // Two peers, same number of minibatch updates each as the single process makes.
  const pair = async (name: string, extra: string[]): Promise<{ t: number; err: number }[]> => {
    const peer = [
      '--plaintext',
      '--bind',
      'tcp://127.0.0.1:0',
      '--min-peers',
      '1',
      '--join-timeout-ms',
      '60000',
      '--epochs',
      String(2 * nEpochs),
      '--anti-entropy-ms',
      '0',
      ...extra,
    ];
    const a = train(dir, `${name}1`, [...common, ...peer, '--shard', '1/2'], { OPENBLAS_NUM_THREADS: '1' });
    let seed = '';
    for (let i = 0; i < 600 && seed === ''; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const line = fs.existsSync(a.metrics)
        ? fs
            .readFileSync(a.metrics, 'utf8')
            .split('\n')
            .find((l) => l.includes('"event":"start"'))
        : undefined;
      if (line !== undefined) seed = (JSON.parse(line) as { address: string }).address;
    }
    const b = train(dir, `${name}2`, [...common, ...peer, '--shard', '2/2', '--peers', seed], { OPENBLAS_NUM_THREADS: '1' });
    const codes = await Promise.all([a.done, b.done]);
    if (codes.some((c) => c !== 0)) throw new Error(`a peer of ${name} failed`);
    return epochs(a);
  };
  const reach = (xs: { t: number; err: number }[]): number | null => xs.find((x) => x.err <= target)?.t ?? null;
  const seconds = (xs: { t: number; err: number }[]): number | null => (reach(xs) === null ? null : +reach(xs)!.toFixed(1));
  const pa = await pair('dense', []);
  const fraction = values.sparse;
  const ps = await pair('sparse', ['--sparse', fraction]);
  return {
    target: +target.toFixed(5),
    singleSeconds: +(reach(s) ?? Number.NaN).toFixed(1),
    twoPeersSeconds: seconds(pa),
    [`twoPeersSparse${fraction}Seconds`]: seconds(ps),
    singleErrorByEpoch: s.map((x) => +x.err.toFixed(5)),
    peerErrorByEpoch: pa.map((x) => +x.err.toFixed(5)),
    [`peerSparse${fraction}ErrorByEpoch`]: ps.map((x) => +x.err.toFixed(5)),
    note: 'training-set reconstruction error per epoch (each peer on its half); peers share 2 cores with 1 BLAS thread each, the single run uses 2',
  };
}

if (values.publisher !== undefined) {
  await publisherMode();
} else {
  const rows = Number(values.rows);
  const out: Record<string, unknown> = { bench: 'sync', backend: values.backend ?? defaultBackend().reason };
  out['throughput'] = await throughput();
  out['overhead'] = await overhead(Math.min(rows, 8000));
  out['float16'] = await float16Error();
  if (!values['skip-time']) out['timeToTarget'] = await timeToTarget(rows, Number(values.epochs));
  out['machine'] = machine();
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
