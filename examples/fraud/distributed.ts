/**
 * The fraud pipeline trained by several banks at once, peer to peer: each bank is its own process
 * (`bank.ts`) holding only its own transactions; the processes train one DBN (pretraining, then
 * fine-tuning of the classifier) by exchanging weight deltas over loopback with {@link PeerTrainer}
 * and the sync `Peer` (ZeroMQ, plaintext on 127.0.0.1). No row, label or statistic leaves a bank.
 *
 * - Banks: a row belongs to bank `bankOf(fileRow, banks, seed)`, a seeded hash of its row in the
 *   input file (the ULB file has no card id, so rows stand in for customers).
 * - Split: the same time boundaries as the pooled run (60/20/20 of all rows, an agreed calendar);
 *   each bank keeps its own training and validation rows. The test part (the latest 20 % of every
 *   bank's transactions) is the common evaluation set, scored by every bank's model.
 * - Scaling: each bank fits its own {@link Standardizer} on its own training rows (nothing but
 *   deltas is shared; with banks drawn at random their statistics differ only by sampling noise).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { averagePrecision, type Backend, Dbn, DatasetError, type HostMatrix, rocAuc, Standardizer } from '../../src/index.js';
import { PeerTrainer, type PeerTrainingStats } from '../../src/dbn/index.js';
import { modelFingerprint, Peer } from '../../src/sync/index.js';
import { buildFeatures, type FeatureOptions, fraudLayers, type LoadOptions, loadTransactions, oversample, type Part, type PipelineResult, rowErrors } from './pipeline.js';

/** The bank (`0…banks−1`) holding the row at 0-based data row `fileRow` of the input file: a seeded integer hash. */
export function bankOf(fileRow: number, banks: number, seed: number): number {
  let h = (Math.imul(fileRow + 1, 0x9e3779b1) ^ Math.imul(seed + 0x632be5ab, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return ((h ^ (h >>> 16)) >>> 0) % banks;
}

/** One bank's view of the data: its own training and validation rows and the common test rows, all scaled with its own statistics. */
export interface BankData {
  readonly train: Part;
  readonly validation: Part;
  readonly test: Part;
  readonly scaler: Standardizer;
}

/**
 * Bank `bank`'s rows of the time-ordered features `x` (`rows × features`, rows in the order of
 * `fileRow`): the split boundaries of `fractions` over all rows, the bank's own training and
 * validation rows, every test row; standardized with a scaler fitted on the bank's training rows
 * and clipped to `±clip`. A bank with no fraud or no legitimate row in its training part is a
 * {@link DatasetError}.
 */
export function bankData(
  x: HostMatrix,
  y: Int32Array,
  fileRow: Uint32Array,
  o: { readonly bank: number; readonly banks: number; readonly seed: number; readonly fractions?: readonly [number, number, number]; readonly clip?: number; readonly source: string },
): BankData {
  const [a, b] = o.fractions ?? [0.6, 0.2, 0.2];
  const n = x.rows;
  const b1 = Math.round(a * n);
  const b2 = Math.min(n, Math.round((a + b) * n));
  const own = (from: number, to: number, all: boolean): number[] => {
    const idx: number[] = [];
    for (let i = from; i < to; i++) if (all || bankOf(fileRow[i]!, o.banks, o.seed) === o.bank) idx.push(i);
    return idx;
  };
  const take = (idx: readonly number[]): HostMatrix => {
    const data = new Float32Array(idx.length * x.cols);
    idx.forEach((r, k) => data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), k * x.cols));
    return { rows: idx.length, cols: x.cols, data };
  };
  const trainIdx = own(0, b1, false);
  const scaler = new Standardizer().fit(take(trainIdx));
  const clip = o.clip ?? 10;
  const make = (name: Part['name'], idx: readonly number[]): Part => {
    const s = scaler.transform(take(idx));
    for (let k = 0; k < s.data.length; k++) s.data[k] = Math.max(-clip, Math.min(clip, s.data[k]!));
    const py = Int32Array.from(idx, (r) => y[r]!);
    const positives = py.reduce((p, v) => p + v, 0);
    if (name === 'train' && (positives === 0 || positives === py.length)) {
      throw new DatasetError(`${o.source}: bank ${o.bank} of ${o.banks} holds ${py.length} training rows with ${positives} frauds; it needs both classes. Use more rows or fewer banks.`, 'ELABEL', o.source);
    }
    return { name, x: s, y: py, start: idx[0] ?? 0, positives };
  };
  return { train: make('train', trainIdx), validation: make('validation', own(b1, b2, false)), test: make('test', own(b2, n, true)), scaler };
}

/** Options of {@link runBank}. */
export interface BankOptions extends LoadOptions, FeatureOptions {
  readonly input: string;
  readonly bank: number;
  readonly banks: number;
  /** Seed of the bank assignment and of the DBN's initial weights (the same on every bank). Default 1. */
  readonly seed?: number;
  readonly backend: Backend;
  /** Seed peers' PUB endpoints (plaintext, loopback). */
  readonly peers: readonly string[];
  /** Where `bank-<i>.json` is written. */
  readonly outDir: string;
  readonly hidden?: readonly number[];
  readonly pretrainEpochs?: number;
  readonly fineTuneEpochs?: number;
  readonly pretrainLearningRate?: number;
  readonly fineTuneLearningRate?: number;
  readonly positiveShare?: number;
  /** How the banks' changes combine ({@link PeerTrainingOptions.merge}). Default `'sum'`. */
  readonly merge?: 'sum' | 'average';
  /** Minibatches between two published deltas. Default 10. */
  readonly publishEvery?: number;
  /** Called once the peer is bound, with its seed address. */
  readonly onAddress?: (address: string) => void;
  readonly log?: (line: string) => void;
}

/** What one bank writes to `bank-<i>.json`. */
export interface BankResult {
  readonly bank: number;
  readonly rows: { readonly train: number; readonly trainFrauds: number; readonly pretrain: number; readonly fineTune: number };
  readonly fineTuneEpochs: number;
  /** Test scores of this bank's model, one per test row (time order). */
  readonly test: { readonly y: number[]; readonly dbn: number[]; readonly freeEnergy: number[]; readonly reconstruction: number[] };
  readonly sync: PeerTrainingStats;
  readonly seconds: Record<string, number>;
}

/**
 * One bank: joins the other banks, pretrains the DBN on its legitimate training rows and
 * fine-tunes it on its oversampled training rows as a {@link PeerTrainer} (fixed epochs, no early
 * stopping: peers cannot each restore their own best epoch), scores the common test rows and
 * writes `bank-<bank>.json`.
 */
export async function runBank(o: BankOptions): Promise<BankResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const seed = o.seed ?? 1;
  const seconds: Record<string, number> = {};
  let clock = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    seconds[name] = (now - clock) / 1000;
    clock = now;
  };
  const tx = loadTransactions(o.input, o);
  const { x } = buildFeatures(tx, o);
  const d = bankData(x, tx.data.y, tx.fileRow, { bank: o.bank, banks: o.banks, seed, source: o.input });
  const legit = d.train.y.reduce<number[]>((acc, v, i) => (v === 0 ? (acc.push(i), acc) : acc), []);
  const pretrainRows: HostMatrix = { rows: legit.length, cols: x.cols, data: new Float32Array(legit.length * x.cols) };
  legit.forEach((r, k) => pretrainRows.data.set(d.train.x.data.subarray(r * x.cols, (r + 1) * x.cols), k * x.cols));
  log(`${d.train.y.length} training rows (${d.train.positives} frauds), ${d.validation.y.length} validation rows, ${d.test.y.length} common test rows`);
  lap('load');

  const hidden = o.hidden ?? [32, 16];
  const dbn = new Dbn({ nVisible: x.cols, layers: fraudLayers(hidden, o.pretrainEpochs ?? 10, o.pretrainLearningRate ?? 0.01), backend: o.backend, seed });
  const fingerprint = modelFingerprint({ format: 'dbn-node-fraud/1', nVisible: x.cols, hidden, seed });
  const peer = await Peer.create({ runId: 'fraud', fingerprint, bind: 'tcp://127.0.0.1:0', plaintext: true, peers: o.peers, heartbeatIntervalMs: 200 });
  const trainer = new PeerTrainer(dbn, peer, { merge: o.merge ?? 'sum', publishEvery: o.publishEvery ?? 10, barrierTimeoutMs: 600_000, normFactor: 1000 });
  try {
    o.onAddress?.(peer.seedAddress);
    await trainer.join({ minPeers: o.banks - 1, timeoutMs: 120_000 });
    log(`joined ${o.banks - 1} other banks`);
    lap('join');
    await trainer.pretrain(pretrainRows, {
      onEpoch: (layer, m) => log(`pretrain layer ${layer} epoch ${m.epoch + 1}: reconstruction error ${m.reconstructionError.toFixed(4)}`),
    });
    lap('pretrain');
    const freeEnergy = Array.from(dbn.layers[0]!.freeEnergy(d.test.x));
    const reconstruction = Array.from(rowErrors(d.test.x, dbn.reconstruct(d.test.x)));
    const over = oversample(d.train, o.positiveShare ?? 0.1, seed + o.bank);
    const epochs = o.fineTuneEpochs ?? 10;
    await trainer.fineTune(over.x, over.y, {
      epochs,
      learningRate: o.fineTuneLearningRate ?? 0.05,
      momentum: 0.9,
      batchSize: 100,
      onEpoch: (m) => log(`fine-tune epoch ${m.epoch + 1}: loss ${m.loss.toFixed(4)}`),
    });
    await trainer.finish();
    lap('fine-tune');
    const p = dbn.predictProba(d.test.x);
    const result: BankResult = {
      bank: o.bank,
      rows: { train: d.train.y.length, trainFrauds: d.train.positives, pretrain: pretrainRows.rows, fineTune: over.x.rows },
      fineTuneEpochs: epochs,
      test: { y: Array.from(d.test.y), dbn: Array.from({ length: d.test.y.length }, (_, i) => p.data[i * 2 + 1]!), freeEnergy, reconstruction },
      sync: trainer.stats(),
      seconds,
    };
    fs.mkdirSync(o.outDir, { recursive: true });
    fs.writeFileSync(path.join(o.outDir, `bank-${o.bank}.json`), JSON.stringify(result));
    return result;
  } finally {
    trainer.close();
    await peer.close();
    dbn.dispose();
  }
}

/** Options of {@link runDistributed}: what `bank.ts` is given, less the bank index and the peers. */
export interface DistributedOptions extends Omit<BankOptions, 'bank' | 'peers' | 'backend' | 'onAddress' | 'log'> {
  /** Backend name passed to every bank (`--backend`); default: each bank's default. */
  readonly backendName?: string;
  readonly log?: (line: string) => void;
  /** Longest a bank process may run. Default 30 minutes. */
  readonly timeoutMs?: number;
}

/** Test metrics of one score: the distributed model (bank 0) next to the pooled one. */
export interface DistributedScore {
  readonly key: 'dbn' | 'freeEnergy' | 'reconstruction';
  readonly name: string;
  readonly pooled: { readonly averagePrecision: number; readonly rocAuc: number };
  readonly distributed: { readonly averagePrecision: number; readonly rocAuc: number };
  /** Distributed − pooled AUPRC. */
  readonly gap: number;
}

/** What {@link runDistributed} returns (also written to `distributed.json`). */
export interface DistributedResult {
  readonly banks: number;
  readonly merge: 'sum' | 'average';
  readonly rows: BankResult['rows'][];
  readonly fineTuneEpochs: number;
  readonly scores: DistributedScore[];
  /** Largest |P(fraud)| difference on a test row between bank 0's model and another bank's. */
  readonly maxScoreDifference: number;
  readonly sync: { readonly published: number; readonly applied: number; readonly rejected: number; readonly bytesSent: number }[];
  readonly seconds: number;
}

const BANK_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bank.ts');

/**
 * Runs `banks` processes of `bank.ts` on loopback (bank 0 first; the others take its address as
 * their seed), waits for all, and compares bank 0's test scores with the pooled run's `pooled`.
 * Writes `distributed.json` next to `bank-<i>.json` in `outDir`.
 */
export async function runDistributed(o: DistributedOptions, pooled: PipelineResult): Promise<DistributedResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const args = (bank: number, peers: readonly string[]): string[] => {
    const a = ['--input', o.input, '--bank', String(bank), '--banks', String(o.banks), '--out', o.outDir, '--seed', String(o.seed ?? 1), '--merge', o.merge ?? 'sum'];
    for (const p of peers) a.push('--peer', p);
    if (o.backendName !== undefined) a.push('--backend', o.backendName);
    if (o.label !== undefined) a.push('--label', o.label);
    if (o.timeColumn !== undefined) a.push('--time-column', o.timeColumn);
    if (o.logColumns !== undefined) a.push('--log-columns', o.logColumns.join(','));
    if (o.timeOfDay === false) a.push('--no-time-of-day');
    if (o.hidden !== undefined) a.push('--hidden', o.hidden.join(','));
    if (o.pretrainEpochs !== undefined) a.push('--pretrain-epochs', String(o.pretrainEpochs));
    if (o.fineTuneEpochs !== undefined) a.push('--finetune-epochs', String(o.fineTuneEpochs));
    if (o.positiveShare !== undefined) a.push('--positive-share', String(o.positiveShare));
    if (o.publishEvery !== undefined) a.push('--publish-every', String(o.publishEvery));
    return a;
  };
  const timeoutMs = o.timeoutMs ?? 30 * 60_000;
  const children: ReturnType<typeof spawn>[] = [];
  const runOne = (bank: number, peers: readonly string[], onAddress?: (a: string) => void): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', BANK_SCRIPT, ...args(bank, peers)], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const tail: string[] = [];
      let carry = '';
      const onData = (buf: Buffer): void => {
        carry += buf.toString('utf8');
        const lines = carry.split('\n');
        carry = lines.pop()!;
        for (const line of lines) {
          const m = /^peer: (\S+)$/.exec(line);
          if (m !== null) onAddress?.(m[1]!);
          else log(`  [bank ${bank}] ${line}`);
          tail.push(line);
          if (tail.length > 20) tail.shift();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`bank ${bank} exited with ${code ?? signal}:\n${tail.join('\n')}`));
      });
    });
  try {
    let seedAddress: (a: string) => void = () => undefined;
    const addressed = new Promise<string>((resolve) => (seedAddress = resolve));
    const first = runOne(0, [], seedAddress);
    const address = await Promise.race([addressed, first.then(() => Promise.reject(new Error('bank 0 exited before binding its peer')))]);
    log(`bank 0 listens on ${address}; starting banks 1–${o.banks - 1}`);
    const rest = Array.from({ length: o.banks - 1 }, (_, i) => runOne(i + 1, [address]));
    await Promise.all([first, ...rest]);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  const results = Array.from({ length: o.banks }, (_, i) => JSON.parse(fs.readFileSync(path.join(o.outDir, `bank-${i}.json`), 'utf8')) as BankResult);
  const b0 = results[0]!;
  const y = Int32Array.from(b0.test.y);
  const names = { dbn: 'DBN fine-tuned', freeEnergy: 'RBM free energy', reconstruction: 'DBN reconstruction' } as const;
  const scores = (['dbn', 'freeEnergy', 'reconstruction'] as const).map((key): DistributedScore => {
    const s = Float64Array.from(b0.test[key]);
    const p = pooled.scores.find((m) => m.key === key)!;
    const ap = averagePrecision(s, y);
    return { key, name: names[key], pooled: { averagePrecision: p.averagePrecision, rocAuc: p.rocAuc }, distributed: { averagePrecision: ap, rocAuc: rocAuc(s, y) }, gap: ap - p.averagePrecision };
  });
  let maxScoreDifference = 0;
  for (const r of results.slice(1)) r.test.dbn.forEach((v, i) => (maxScoreDifference = Math.max(maxScoreDifference, Math.abs(v - b0.test.dbn[i]!))));
  const result: DistributedResult = {
    banks: o.banks,
    merge: o.merge ?? 'sum',
    rows: results.map((r) => r.rows),
    fineTuneEpochs: b0.fineTuneEpochs,
    scores,
    maxScoreDifference,
    sync: results.map((r) => ({ published: r.sync.published, applied: r.sync.applied, rejected: Object.values(r.sync.rejected).reduce((a, b) => a + b, 0), bytesSent: r.sync.bytes.sent })),
    seconds: (performance.now() - started) / 1000,
  };
  fs.writeFileSync(path.join(o.outDir, 'distributed.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** The report section comparing the distributed model with the pooled one (Markdown). */
export function renderDistributedSection(r: DistributedResult, pooled: PipelineResult): string {
  const f = (v: number): string => v.toFixed(4);
  const out = [
    '',
    `## Distributed: ${r.banks} banks, peer to peer`,
    '',
    `Each bank is its own process holding only its rows (a seeded hash of the file row picks the bank): ${r.rows.map((x, i) => `bank ${i} ${x.train} training rows, ${x.trainFrauds} frauds`).join('; ')}. The banks standardize with their own training statistics, pretrain the same ${pooled.features.length}→… DBN on their legitimate rows and fine-tune it on their oversampled rows (${r.fineTuneEpochs} epochs, no early stopping), exchanging only weight deltas (PeerTrainer, merge '${r.merge}', ZeroMQ on loopback). Bank 0's model scores the common test part (${pooled.parts.test.rows} rows, ${pooled.parts.test.positives} frauds); the pooled model is the one above, from the same run.`,
    '',
    '| score | pooled AUPRC | distributed AUPRC | gap | pooled AUROC | distributed AUROC |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.scores.map((s) => `| ${s.name} | ${f(s.pooled.averagePrecision)} | ${f(s.distributed.averagePrecision)} | ${s.gap >= 0 ? '+' : ''}${f(s.gap)} | ${f(s.pooled.rocAuc)} | ${f(s.distributed.rocAuc)} |`),
    '',
    `Deltas published / applied per bank: ${r.sync.map((s, i) => `bank ${i} ${s.published} / ${s.applied} (${s.rejected} rejected, ${(s.bytesSent / 1e6).toFixed(1)} MB sent)`).join('; ')}. Largest difference of P(fraud) on a test row between bank 0 and another bank (same shared weights, each bank's own scaler): ${r.maxScoreDifference.toExponential(2)}. Distributed run: ${r.seconds.toFixed(1)} s.`,
    '',
  ];
  return out.join('\n');
}
