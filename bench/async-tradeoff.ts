/**
 * The trade-off of the asynchronous mode: 3 peers (processes on this machine, loopback,
 * plaintext) on thirds of the bundled digits, synchronous rounds (`PeerGroup`, what the CLI's
 * peer mode runs) against `PeerTrainer` with its defaults (asynchronous, 'average', float32,
 * publish every 10 minibatches), all peers at equal speed and with one peer slowed by an
 * artificial delay after each of its minibatches (`--delay-ms`, a bench-only knob). Every peer
 * builds the same model from the same seed with the library's defaults; the only difference is
 * how the peers combine their work. Prints JSON: per setting, each peer's test accuracy, the
 * largest difference between the replicas' parameters, and the wall time; plus one process on
 * all the rows for reference.
 *
 *   npx tsx bench/async-tradeoff.ts [--rows 3000] [--test 2000] [--layers 100,100] [--epochs 2]
 *     [--finetune 5] [--delay-ms 20] [--backend native] [--modes sync,async]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { resolvePeerArgs } from '../src/cli/peer-options.js';
import { type Dataset, loadBundledDigits, shard } from '../src/data/index.js';
import { Dbn } from '../src/dbn/dbn.js';
import { enterRun, modelBytes, PeerGroup, PeerTrainer, runFingerprint } from '../src/distributed/index.js';
import { createBackend } from '../src/kernels/index.js';
import { Peer } from '../src/sync/peer.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '3000' },
    test: { type: 'string', default: '2000' },
    layers: { type: 'string', default: '100,100' },
    epochs: { type: 'string', default: '2' },
    finetune: { type: 'string', default: '5' },
    'delay-ms': { type: 'string', default: '20' },
    backend: { type: 'string', default: 'native' },
    child: { type: 'boolean', default: false },
    mode: { type: 'string', default: 'async' },
    index: { type: 'string', default: '0' },
    ports: { type: 'string', default: '' },
    delay: { type: 'string', default: '0' },
    out: { type: 'string', default: '' },
    modes: { type: 'string', default: 'sync,async' },
  },
});

const PEERS = 3;
const rows = Number(values.rows);
const testRows = Number(values.test);
const hidden = values.layers.split(',').map(Number);
const epochs = Number(values.epochs);
const finetune = Number(values.finetune);

/** The first `rows` digits for training, the next `test` for testing. */
function data(): { train: Dataset; test: Dataset } {
  const all = loadBundledDigits();
  const slice = (from: number, to: number): Dataset => ({
    ...all,
    x: { rows: to - from, cols: all.x.cols, data: all.x.data.slice(from * all.x.cols, to * all.x.cols) },
    y: (all.y as Int32Array).slice(from, to),
  });
  return { train: slice(0, rows), test: slice(rows, rows + testRows) };
}

function model(): Dbn {
  return new Dbn({
    nVisible: 784,
    layers: hidden.map((nHidden) => ({ nHidden, epochs })),
    seed: 1,
    backend: createBackend(values.backend),
  });
}

function accuracy(dbn: Dbn, test: Dataset): number {
  const predicted = dbn.predict(test.x);
  const labels = test.y as Int32Array;
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) right++;
  return right / labels.length;
}

/** Every parameter, RBMs then classifier, concatenated. */
function parameters(dbn: Dbn): Float32Array {
  const parts: Float32Array[] = [];
  for (const l of dbn.layers) {
    const p = l.getParameters();
    parts.push(p.weights.data, p.visibleBias, p.hiddenBias);
  }
  for (const l of dbn.getClassifierParameters().layers) parts.push(l.weights.data, l.bias);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One peer: trains its shard in `mode`, sleeping `delay` ms after each minibatch; writes its parameters and prints its figures. */
async function child(): Promise<void> {
  const { train, test } = data();
  const index = Number(values.index);
  const ports = values.ports.split(',').map(Number);
  const delay = Number(values.delay);
  const part = shard(train, index, PEERS);
  const dbn = model();
  const onBatch = delay > 0 ? () => new Promise<void>((resolve) => setTimeout(resolve, delay)) : undefined;
  const hook = onBatch === undefined ? {} : { onBatch };
  const others = ports.filter((_, j) => j !== index).map((p) => `tcp://127.0.0.1:${p}`);
  const t0 = performance.now();
  let stats: Record<string, unknown> = {};
  if (values.mode === 'async') {
    const peer = await Peer.create({
      runId: 'tradeoff',
      fingerprint: 'ab'.repeat(32),
      bind: `tcp://127.0.0.1:${ports[index]}`,
      plaintext: true,
      peers: others,
    });
    const trainer = new PeerTrainer(dbn, peer);
    await trainer.join({ minPeers: PEERS - 1, timeoutMs: 120_000 });
    await trainer.pretrain(part.x, hook);
    await trainer.fineTune(part.x, part.y as Int32Array, { epochs: finetune, classes: 10, ...hook });
    await trainer.finish();
    const s = trainer.stats();
    stats = {
      published: s.published,
      applied: s.applied,
      rejected: s.rejected,
      rolledBack: s.rolledBack,
      barrierTimeouts: s.barrierTimeouts,
      antiEntropy: s.antiEntropy,
    };
    trainer.close();
    await peer.close();
  } else {
    const config = (await resolvePeerArgs({
      bind: `tcp://127.0.0.1:${ports[index]}`,
      peers: others.join(','),
      plaintext: true,
      shard: `${index + 1}/${PEERS}`,
    }))!;
    const maxFrameBytes = dbn.layers.reduce((s, l) => s + 3 * (l.nVisible + 1) * (l.nHidden + 1), 0) * 4 + (16 << 20);
    const group = await PeerGroup.open({ ...config.group, fingerprint: runFingerprint(dbn, { hidden, epochs, finetune }), maxFrameBytes });
    const scratch = path.join(path.dirname(values.out), `.scratch-${index}.dbn`);
    await enterRun(group, dbn, scratch);
    await dbn.pretrain(part.x, { collective: group, ...hook });
    await dbn.fineTune(part.x, part.y as Int32Array, { epochs: finetune, classes: 10, validationFraction: 0, collective: group, ...hook });
    await group.finish(() => modelBytes(dbn, scratch));
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  fs.writeFileSync(values.out, parameters(dbn));
  console.log(JSON.stringify({ index, accuracy: accuracy(dbn, test), trainSeconds, stats }));
  dbn.dispose();
  process.exit(0);
}

interface PeerResult {
  readonly index: number;
  readonly accuracy: number;
  readonly trainSeconds: number;
  readonly stats: Record<string, unknown>;
}

/** Runs 3 peers in `mode`, peer 2 delayed by `delay` ms a minibatch; returns their figures. */
async function setting(mode: 'sync' | 'async', delay: number, basePort: number): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-tradeoff-'));
  const ports = Array.from({ length: PEERS }, (_, i) => basePort + 4 * i);
  const shared = [
    '--rows',
    values.rows,
    '--test',
    values.test,
    '--layers',
    values.layers,
    '--epochs',
    values.epochs,
    '--finetune',
    values.finetune,
    '--backend',
    values.backend,
  ];
  const t0 = performance.now();
  const runs = ports.map((_, i) => {
    const args = [
      '--import',
      'tsx',
      process.argv[1]!,
      '--child',
      '--mode',
      mode,
      '--index',
      String(i),
      '--ports',
      ports.join(','),
      '--delay',
      String(i === PEERS - 1 ? delay : 0),
      '--out',
      path.join(dir, `${i}.f32`),
      ...shared,
    ];
    const proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
    });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    return new Promise<PeerResult>((resolve, reject) =>
      proc.on('exit', (code) =>
        code === 0
          ? resolve(JSON.parse(out.trim().split('\n').pop()!) as PeerResult)
          : reject(new Error(`${mode} peer ${i} exited with ${code}`)),
      ),
    );
  });
  const results = await Promise.all(runs);
  const wallSeconds = (performance.now() - t0) / 1000;
  const params = ports.map((_, i) => new Float32Array(fs.readFileSync(path.join(dir, `${i}.f32`)).buffer.slice(0)));
  let replicaDifference = 0;
  for (let i = 1; i < PEERS; i++)
    for (let k = 0; k < params[0]!.length; k++) replicaDifference = Math.max(replicaDifference, Math.abs(params[0]![k]! - params[i]![k]!));
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    mode,
    slowPeerDelayMs: delay,
    accuracies: results.map((r) => r.accuracy),
    replicaDifference,
    wallSeconds,
    trainSeconds: results.map((r) => r.trainSeconds),
    peerStats: results.map((r) => r.stats),
  };
}

async function main(): Promise<void> {
  const { train, test } = data();
  const t0 = performance.now();
  const alone = model();
  await alone.pretrain(train.x);
  await alone.fineTune(train.x, train.y as Int32Array, { epochs: finetune, classes: 10, validationFraction: 0 });
  const onePeer = { accuracy: accuracy(alone, test), wallSeconds: (performance.now() - t0) / 1000 };
  alone.dispose();
  const delay = Number(values['delay-ms']);
  const basePort = 20_000 + (process.pid % 500) * 40;
  const settings: Record<string, unknown>[] = [];
  let n = 0;
  for (const mode of values.modes.split(',') as ('sync' | 'async')[])
    for (const d of [0, delay]) settings.push(await setting(mode, d, basePort + 12 * n++));
  const config = {
    rows,
    test: testRows,
    layers: [784, ...hidden, 10],
    epochs,
    finetune,
    peers: PEERS,
    backend: values.backend,
    blasThreadsPerPeer: 1,
  };
  const avx512 = fs.existsSync('/proc/cpuinfo') && /\bavx512f\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  console.log(
    JSON.stringify(
      { bench: 'async-tradeoff', machine: { ...machine(), avx512, loadAverage: os.loadavg() }, config, onePeer, settings },
      null,
      2,
    ),
  );
}

await (values.child ? child() : main());
