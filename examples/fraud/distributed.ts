/**
 * The fraud pipeline trained by several banks at once, peer to peer: each bank is its own process
 * (`bank.ts`) holding only its own transactions; the processes train one DBN (pretraining, then
 * fine-tuning of the classifier) by exchanging weight deltas over loopback with {@link PeerTrainer}
 * and the sync `Peer` (ZeroMQ, plaintext on 127.0.0.1). No row or label leaves a bank; besides the
 * deltas, the banks add up aggregate statistics ({@link BankAggregator}: counts, per-column sums,
 * validation-loss sums, the best epoch's weights) so that every step matches the pooled run's.
 *
 * - Banks: a row belongs to bank `bankOf(fileRow, banks, seed)`, a seeded hash of its row in the
 *   input file (the ULB file has no card id, so rows stand in for customers).
 * - Split: the same time boundaries as the pooled run (60/20/20 of all rows, an agreed calendar);
 *   each bank keeps its own training and validation rows. The test part (the latest 20 % of every
 *   bank's transactions) is the common evaluation set, scored by every bank's model.
 * - Scaling: federated standardization ({@link sharedStandardizer}), the pooled run's scaler from
 *   summed statistics; `scaling: 'own'` fits each bank's own instead.
 * - Oversampling: the pooled run's factor, from the summed counts.
 * - Fine-tuning: stopped like the pooled run, on the summed validation loss (see
 *   {@link BankOptions.stopping}).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  averagePrecision,
  type Backend,
  Dbn,
  DatasetError,
  type HostMatrix,
  InvalidOptionError,
  rocAuc,
  Standardizer,
} from '../../src/index.js';
import { BankAggregator } from './aggregate.js';
import { PeerTrainer, type PeerTrainingStats } from '../../src/distributed/index.js';
import {
  type AveragedFineTuneResult,
  DEFAULT_MODELS,
  fineTuneAveraged,
  fineTuneRecipe,
  flattenClassifier,
  fraudProbability,
  meanScores,
  modelSeed,
  unflattenClassifier,
  weightedLogLoss,
} from './finetune.js';
import { modelFingerprint, Peer } from '../../src/sync/index.js';
import {
  buildFeatures,
  type FeatureOptions,
  fraudLayers,
  type LoadOptions,
  loadTransactions,
  oversample,
  oversamplingFactor,
  type Part,
  type PipelineResult,
  rowErrors,
} from './pipeline.js';

/** The bank (`0…banks−1`) holding the row at 0-based data row `fileRow` of the input file: a seeded integer hash. */
export function bankOf(fileRow: number, banks: number, seed: number): number {
  let h = (Math.imul(fileRow + 1, 0x9e3779b1) ^ Math.imul(seed + 0x632be5ab, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return ((h ^ (h >>> 16)) >>> 0) % banks;
}

/** One bank's view of the data: its own training and validation rows and the common test rows, all scaled with `scaler`. */
export interface BankData {
  readonly train: Part;
  readonly validation: Part;
  readonly test: Part;
  readonly scaler: Standardizer;
}

/** Indices (into the time-ordered rows) of bank `bank`'s training and validation rows and of every test row. */
export interface BankRows {
  readonly train: number[];
  readonly validation: number[];
  readonly test: number[];
}

/**
 * The time boundaries of `fractions` over all `rows` rows (the pooled run's, an agreed calendar),
 * bank `bank`'s own training and validation rows within them, and every test row.
 */
export function bankRows(
  fileRow: Uint32Array,
  o: { readonly bank: number; readonly banks: number; readonly seed: number; readonly fractions?: readonly [number, number, number] },
): BankRows {
  const [a, b] = o.fractions ?? [0.6, 0.2, 0.2];
  const n = fileRow.length;
  const b1 = Math.round(a * n);
  const b2 = Math.min(n, Math.round((a + b) * n));
  const own = (from: number, to: number, all: boolean): number[] => {
    const idx: number[] = [];
    for (let i = from; i < to; i++) if (all || bankOf(fileRow[i]!, o.banks, o.seed) === o.bank) idx.push(i);
    return idx;
  };
  return { train: own(0, b1, false), validation: own(b1, b2, false), test: own(b2, n, true) };
}

/** Rows `idx` of `x`. */
export function takeRows(x: HostMatrix, idx: readonly number[]): HostMatrix {
  const data = new Float32Array(idx.length * x.cols);
  idx.forEach((r, k) => data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), k * x.cols));
  return { rows: idx.length, cols: x.cols, data };
}

/**
 * Bank `bank`'s rows of the time-ordered features `x` (`rows × features`, rows in the order of
 * `fileRow`; see {@link bankRows}), standardized with `o.scaler` — by default a scaler fitted on
 * the bank's own training rows — and clipped to `±clip`. A bank with no fraud or no legitimate
 * row in its training part is a {@link DatasetError}.
 */
export function bankData(
  x: HostMatrix,
  y: Int32Array,
  fileRow: Uint32Array,
  o: {
    readonly bank: number;
    readonly banks: number;
    readonly seed: number;
    readonly fractions?: readonly [number, number, number];
    readonly clip?: number;
    readonly source: string;
    readonly scaler?: Standardizer;
  },
): BankData {
  const rows = bankRows(fileRow, o);
  const scaler = o.scaler ?? new Standardizer().fit(takeRows(x, rows.train));
  const clip = o.clip ?? 10;
  const make = (name: Part['name'], idx: readonly number[]): Part => {
    const s = scaler.transform(takeRows(x, idx));
    for (let k = 0; k < s.data.length; k++) s.data[k] = Math.max(-clip, Math.min(clip, s.data[k]!));
    const py = Int32Array.from(idx, (r) => y[r]!);
    const positives = py.reduce((p, v) => p + v, 0);
    if (name === 'train' && (positives === 0 || positives === py.length)) {
      throw new DatasetError(
        `${o.source}: bank ${o.bank} of ${o.banks} holds ${py.length} training rows with ${positives} frauds; it needs both classes. Use more rows or fewer banks.`,
        'ELABEL',
        o.source,
      );
    }
    return { name, x: s, y: py, start: idx[0] ?? 0, positives };
  };
  return { train: make('train', rows.train), validation: make('validation', rows.validation), test: make('test', rows.test), scaler };
}

/**
 * Federated standardization: the pooled training rows' per-column mean and standard deviation
 * (population, as {@link Standardizer.fit}), computed from two sums over the banks — first the
 * row count and per-column sums, then per-column sums of squared deviations from the pooled mean
 * (two passes, like `fit`, rather than Σx² − n·mean², which loses digits). Every bank gets the
 * same scaler, equal to the pooled run's up to float64 rounding.
 */
export async function sharedStandardizer(agg: BankAggregator, train: HostMatrix): Promise<Standardizer> {
  const { rows, cols, data } = train;
  const sums = new Float64Array(cols + 1);
  sums[0] = rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) sums[j + 1]! += data[i * cols + j]!;
  const total = await agg.sum('scaling-sums', sums);
  const n = total[0]!;
  const mean = Array.from(total.subarray(1), (v) => v / n);
  const sq = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const d = data[i * cols + j]! - mean[j]!;
      sq[j]! += d * d;
    }
  }
  const sqTotal = await agg.sum('scaling-squares', sq);
  const std = Array.from(sqTotal, (v) => {
    const s = Math.sqrt(v / n);
    return s > 0 ? s : 1;
  });
  return Standardizer.fromJSON({ kind: 'standardizer', mean, std });
}

/** Deltas a bank's queues hold before dropping (send, receive, waiting to be merged). */
const QUEUE = 50_000;

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
  /** Bank 0's aggregation address ({@link BankAggregator}); required for banks ≥ 1. */
  readonly aggregate?: string;
  /** Where `bank-<i>.json` is written. */
  readonly outDir: string;
  readonly hidden?: readonly number[];
  /** Pretraining epochs per layer, in pooled-run epochs (×banks on each bank with `'average'`). Default 10. */
  readonly pretrainEpochs?: number;
  /** Fine-tuning length at most, in pooled-run epochs (×banks on each bank with `'average'`). Default 20. */
  readonly fineTuneEpochs?: number;
  readonly pretrainLearningRate?: number;
  /** Fine-tuning learning rate; default the pooled run's (`DEFAULT_RECIPE` in finetune.ts). */
  readonly fineTuneLearningRate?: number;
  /** Time constant of the fine-tuning weight average, in pooled-run epochs; default the pooled run's. */
  readonly fineTuneAverageEpochs?: number;
  readonly positiveShare?: number;
  /** DBNs in the ensemble, each pretrained and fine-tuned by all banks from its own seed. Default the pooled run's (`DEFAULT_MODELS` in finetune.ts). */
  readonly models?: number;
  /** How the banks' changes combine ({@link MergeRule}). Default `'sum'`. */
  readonly merge?: 'sum' | 'average';
  /** Minibatches between two published deltas. Default 1. */
  readonly publishEvery?: number;
  /**
   * Synchronous rounds ({@link LockstepMode}): every bank holds the same bits
   * after every round and a rerun with the same seed gives the same model. Default true; false:
   * asynchronous merging (deltas added as they arrive, results depend on timing).
   */
  readonly lockstep?: boolean;
  /** `'shared'` (default): federated standardization ({@link sharedStandardizer}); `'own'`: each bank's own training statistics. */
  readonly scaling?: 'shared' | 'own';
  /**
   * `'validation'` (default): early stopping on the pooled validation loss, summed over the banks'
   * own validation rows after every pooled-run epoch, the best check's weights restored;
   * `'fixed'`: `fineTuneEpochs` pooled-run epochs, no stopping.
   */
  readonly stopping?: 'validation' | 'fixed';
  /** Checks without improvement before stopping (`stopping: 'validation'`). Default the pooled run's (4). */
  readonly patience?: number;
  /** Called once the peer and the aggregation socket are bound (bank 0), with their addresses. */
  readonly onAddress?: (peer: string, aggregate: string | undefined) => void;
  readonly log?: (line: string) => void;
}

/** One model of a bank's ensemble: its seed, fine-tuning epochs, validation losses and the check kept. */
export interface BankModel {
  readonly seed: number;
  readonly fineTuneEpochs: number;
  readonly validationLoss: number[];
  readonly bestCheck: number;
}

/** What one bank writes to `bank-<i>.json`. */
export interface BankResult {
  readonly bank: number;
  readonly rows: { readonly train: number; readonly trainFrauds: number; readonly pretrain: number; readonly fineTune: number };
  readonly scaling: 'shared' | 'own';
  readonly stopping: 'validation' | 'fixed';
  readonly lockstep: boolean;
  /** Each fraud's repetitions in the fine-tuning set. */
  readonly oversamplingFactor: number;
  /** Bank epochs per pooled-run epoch: the number of banks with `'average'`, 1 with `'sum'`. */
  readonly epochScale: number;
  /** Fine-tuning epochs this bank ran. */
  readonly fineTuneEpochs: number;
  /** Pooled validation log loss after every check (one per pooled-run epoch), and the check whose weights were kept (−1: none, fixed length). */
  readonly validationLoss: number[];
  readonly bestCheck: number;
  /** Every model of the ensemble, in order (the fields above repeat the first's). */
  readonly models: BankModel[];
  /** Test scores, one per test row (time order): the ensemble's mean P(fraud), the first model's unsupervised scores. */
  readonly test: { readonly y: number[]; readonly dbn: number[]; readonly freeEnergy: number[]; readonly reconstruction: number[] };
  /**
   * The ensemble's P(fraud) on this bank's own validation rows (and their labels): for the
   * harness to measure the distributed model on the whole validation part, as it measures the
   * test part — a measurement of the simulation, not a step of the training.
   */
  readonly validation: { readonly y: number[]; readonly dbn: number[] };
  /** Each model's PeerTrainer counters. */
  readonly sync: PeerTrainingStats[];
  readonly seconds: Record<string, number>;
}

/**
 * One bank: joins the other banks, agrees with them on the scaling (federated standardization)
 * and the oversampling factor, pretrains the DBN on its legitimate training rows and fine-tunes it
 * on its oversampled training rows as a {@link PeerTrainer}, stopping when the banks' summed
 * validation loss stops improving (see {@link BankOptions.stopping}), scores the common test rows
 * and writes `bank-<bank>.json`.
 */
export async function runBank(o: BankOptions): Promise<BankResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const seed = o.seed ?? 1;
  const merge = o.merge ?? 'sum';
  const scaling = o.scaling ?? 'shared';
  const stopping = o.stopping ?? 'validation';
  const share = o.positiveShare ?? 0.1;
  const epochScale = merge === 'average' ? o.banks : 1;
  const lockstep = o.lockstep ?? true;
  const models = o.models ?? DEFAULT_MODELS;
  if (o.bank > 0 && o.aggregate === undefined)
    throw new InvalidOptionError(`Bank ${o.bank} needs bank 0's aggregation address (--aggregate).`);
  const seconds: Record<string, number> = {};
  let clock = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    seconds[name] = (seconds[name] ?? 0) + (now - clock) / 1000;
    clock = now;
  };
  const tx = loadTransactions(o.input, o);
  const { x } = buildFeatures(tx, o);
  const agg = o.bank === 0 ? await BankAggregator.host(o.banks) : BankAggregator.connect(o.aggregate!, o.bank, o.banks);
  const hidden = o.hidden ?? [32, 16];
  const layers = fraudLayers(hidden, (o.pretrainEpochs ?? 10) * epochScale, o.pretrainLearningRate ?? 0.01);
  let dbn: Dbn | undefined;
  let peer: Peer | undefined;
  let trainer: PeerTrainer | undefined;
  // Model k's DBN, joined with the other banks through its own Peer and PeerTrainer.
  const connect = async (k: number): Promise<{ dbn: Dbn; peer: Peer; trainer: PeerTrainer }> => {
    const kSeed = modelSeed(seed, k);
    const m = new Dbn({ nVisible: x.cols, layers, backend: o.backend, seed: kSeed });
    dbn = m;
    const fingerprint = modelFingerprint({ format: 'dbn-node-fraud/1', nVisible: x.cols, hidden, seed: kSeed });
    // Model 0's seed peer is on the command line (bank 0 prints its address once bound); for
    // the later models, bank 0 binds a new peer and sends its address to the others as a sum.
    const tag = `peer-${k}`;
    const seeds = k === 0 ? o.peers : o.bank === 0 ? [] : [await shareAddress(agg, tag, undefined)];
    // Queues sized so that no delta is dropped (each is a few kB): publishing every minibatch of a
    // model this small, a bank that the OS deschedules for a moment comes back to thousands of
    // deltas; the defaults (1000) dropped hundreds per bank and left the banks apart.
    const p = await Peer.create({
      runId: `fraud-${k}`,
      fingerprint,
      bind: 'tcp://127.0.0.1:0',
      plaintext: true,
      peers: seeds,
      heartbeatIntervalMs: 200,
      sndHWM: QUEUE,
      rcvHWM: QUEUE,
      maxQueuedMessages: QUEUE,
    });
    peer = p;
    if (k === 0) o.onAddress?.(p.seedAddress, o.bank === 0 ? agg.address : undefined);
    else if (o.bank === 0) await shareAddress(agg, tag, p.seedAddress);
    // With lockstep, minPeers makes a lost bank stop the run rather than leave the others to go on without it.
    const t = new PeerTrainer(m, p, {
      publishEvery: o.publishEvery ?? 1,
      barrierTimeoutMs: 600_000,
      guard: { normFactor: 1000 },
      ...(lockstep ? { mode: { kind: 'lockstep', merge }, minPeers: o.banks - 1 } : { mode: { kind: 'async', merge, maxPending: QUEUE } }),
    });
    trainer = t;
    await t.join({ minPeers: o.banks - 1, timeoutMs: 120_000 });
    // A barrier before training: a lockstep join refuses peers that have trained already, and a
    // bank that saw the others early would start its first minibatch before the last one joined.
    await agg.sum(`joined-${k}`, [1]);
    log(`${models > 1 ? `model ${k + 1} of ${models} (seed ${kSeed}): ` : ''}joined ${o.banks - 1} other banks`);
    return { dbn: m, peer: p, trainer: t };
  };
  try {
    const model0 = await connect(0);
    lap('join');
    const rows = bankRows(tx.fileRow, { bank: o.bank, banks: o.banks, seed });
    const scaler = scaling === 'shared' ? await sharedStandardizer(agg, takeRows(x, rows.train)) : undefined;
    const d = bankData(x, tx.data.y, tx.fileRow, {
      bank: o.bank,
      banks: o.banks,
      seed,
      source: o.input,
      ...(scaler !== undefined ? { scaler } : {}),
    });
    // Counts only: the oversampling factors of all banks' training and validation rows, as the pooled run computes them.
    const counts = await agg.sum('counts', [d.train.y.length, d.train.positives, d.validation.y.length, d.validation.positives]);
    const [nTrain, posTrain, nVal, posVal] = Array.from(counts);
    const factor = oversamplingFactor(nTrain! - posTrain!, posTrain!, share);
    const validationFactor = oversamplingFactor(nVal! - posVal!, posVal!, share);
    const legit = d.train.y.reduce<number[]>((acc, v, i) => (v === 0 ? (acc.push(i), acc) : acc), []);
    const pretrainRows = takeRows(d.train.x, legit);
    log(
      `${d.train.y.length} training rows (${d.train.positives} frauds), ${d.validation.y.length} validation rows (${d.validation.positives} frauds), ${d.test.y.length} common test rows; ${scaling} scaling; frauds ×${factor} (all banks' rows)`,
    );
    const recipe = { ...fineTuneRecipe(o), ...(o.patience !== undefined ? { patience: o.patience } : {}) };
    lap('load');

    // The ensemble, as in the pooled run: model k is pretrained and fine-tuned from seed
    // modelSeed(seed, k) by all banks together, one model after the other, each through its own
    // Peer and PeerTrainer (a PeerTrainer trains one model once); the score is the mean of the
    // models' P(fraud). Every bank ends each model with the same weights, so with the same mean.
    const testScores: Float64Array[] = [];
    const validationScores: Float64Array[] = [];
    const members: BankModel[] = [];
    const sync: PeerTrainingStats[] = [];
    let freeEnergy: number[] = [];
    let reconstruction: number[] = [];
    let pretrainedRows = 0;
    let fineTuneRows = 0;
    for (let k = 0; k < models; k++) {
      const kSeed = modelSeed(seed, k);
      const name = models > 1 ? `model ${k + 1} of ${models} (seed ${kSeed}): ` : '';
      const m = k === 0 ? model0 : await connect(k);
      if (k > 0) lap('join');
      await m.trainer.pretrain(pretrainRows, {
        onEpoch: (layer, e) =>
          log(`${name}pretrain layer ${layer} epoch ${e.epoch + 1}: reconstruction error ${e.reconstructionError.toFixed(4)}`),
      });
      pretrainedRows = pretrainRows.rows;
      lap('pretrain');
      if (k === 0) {
        freeEnergy = Array.from(m.dbn.layers[0]!.freeEnergy(d.test.x));
        reconstruction = Array.from(rowErrors(d.test.x, m.dbn.reconstruct(d.test.x)));
      }

      const over = oversample(d.train, share, kSeed + o.bank, factor);
      fineTuneRows = over.x.rows;
      log(
        `${name}fine-tuning: learning rate ${recipe.learningRate.toPrecision(3)}, momentum ${recipe.momentum.toPrecision(3)}${lockstep ? ', lockstep rounds' : ''}`,
      );
      let ft: AveragedFineTuneResult | undefined;
      let epochsRun = 0;
      if (stopping === 'validation') {
        // The pooled run's recipe (finetune.ts): each bank averages the shared weights it sees after
        // its own minibatches, and the banks add up their validation-loss sums for the averaged
        // weights: Σ w·(−log p(y)) and Σ w over their own validation rows, frauds weighted
        // ×validationFactor as in the pooled run.
        ft = await fineTuneAveraged(m.trainer, m.dbn, over.x, over.y, {
          recipe,
          epochScale,
          validationLoss: async (averaged, check) => {
            const s = weightedLogLoss(fraudProbability(averaged, d.validation.x), d.validation.y, validationFactor);
            const total = await agg.sum(`validation-${k}-${check}`, [s.lossSum, s.weight]);
            return total[0]! / total[1]!;
          },
          log: (line) => log(`${name}${line.trimStart()}`),
        });
        epochsRun = ft.epochs;
      } else {
        await m.trainer.fineTune(over.x, over.y, {
          epochs: recipe.epochs * epochScale,
          learningRate: recipe.learningRate,
          momentum: recipe.momentum,
          batchSize: recipe.batchSize,
          onEpoch: (e) => {
            epochsRun = e.epoch + 1;
            log(`${name}fine-tune epoch ${epochsRun}: loss ${e.loss.toFixed(4)}`);
          },
        });
      }
      await m.trainer.finish();
      if (ft !== undefined) {
        // Each bank holds its own average of the shared weights it saw (they differ by the deltas in
        // flight); the model kept is the banks' mean of their best averages, the same on every bank.
        const total = await agg.sum(`restore-${k}`, flattenClassifier(ft.best));
        m.dbn.setClassifierParameters(unflattenClassifier(total, ft.best, 1 / o.banks));
        log(
          `${name}restored the averaged weights of check ${ft.bestCheck + 1} (validation loss ${ft.validationLoss[ft.bestCheck]!.toFixed(4)}), averaged over the banks`,
        );
      }
      lap('fine-tune');
      const p = m.dbn.predictProba(d.test.x);
      testScores.push(Float64Array.from({ length: d.test.y.length }, (_, i) => p.data[i * 2 + 1]!));
      const pv = m.dbn.predictProba(d.validation.x);
      validationScores.push(Float64Array.from({ length: d.validation.y.length }, (_, i) => pv.data[i * 2 + 1]!));
      members.push({ seed: kSeed, fineTuneEpochs: epochsRun, validationLoss: ft?.validationLoss ?? [], bestCheck: ft?.bestCheck ?? -1 });
      sync.push(m.trainer.stats());
      m.trainer.close();
      trainer = undefined;
      await m.peer.close();
      peer = undefined;
      m.dbn.dispose();
      dbn = undefined;
    }
    const first = members[0]!;
    const result: BankResult = {
      bank: o.bank,
      rows: { train: d.train.y.length, trainFrauds: d.train.positives, pretrain: pretrainedRows, fineTune: fineTuneRows },
      scaling,
      stopping,
      lockstep,
      oversamplingFactor: factor,
      epochScale,
      fineTuneEpochs: first.fineTuneEpochs,
      validationLoss: first.validationLoss,
      bestCheck: first.bestCheck,
      models: members,
      test: { y: Array.from(d.test.y), dbn: Array.from(meanScores(testScores)), freeEnergy, reconstruction },
      validation: { y: Array.from(d.validation.y), dbn: Array.from(meanScores(validationScores)) },
      sync,
      seconds,
    };
    fs.mkdirSync(o.outDir, { recursive: true });
    fs.writeFileSync(path.join(o.outDir, `bank-${o.bank}.json`), JSON.stringify(result));
    return result;
  } finally {
    trainer?.close();
    await peer?.close();
    await agg.close();
    dbn?.dispose();
  }
}

/** Longest address {@link shareAddress} carries, in characters. */
const ADDRESS_CHARS = 256;

/**
 * Sends bank 0's peer address to every bank through the sums (round `tag`): bank 0 contributes
 * the address's character codes, the others zeros, and every bank reads the total back as text.
 * Every bank must call it for `tag`, bank 0 with its `address`, the others with `undefined`.
 */
export async function shareAddress(agg: BankAggregator, tag: string, address: string | undefined): Promise<string> {
  const codes = new Float64Array(ADDRESS_CHARS);
  if (address !== undefined) {
    if (address.length === 0 || address.length > ADDRESS_CHARS || !/^[\x21-\x7e]+$/.test(address)) {
      throw new InvalidOptionError(`shareAddress: the address must be 1–${ADDRESS_CHARS} printable ASCII characters, got '${address}'.`);
    }
    for (let i = 0; i < address.length; i++) codes[i] = address.charCodeAt(i);
  }
  const total = await agg.sum(tag, codes);
  let out = '';
  for (const c of total) {
    if (c === 0) break;
    out += String.fromCharCode(c);
  }
  if (out === '') throw new InvalidOptionError(`shareAddress: round '${tag}' carried no address (bank 0 must contribute one).`);
  return out;
}

/** Options of {@link runDistributed}: what `bank.ts` is given, less the bank index and the peers. */
export interface DistributedOptions extends Omit<BankOptions, 'bank' | 'peers' | 'aggregate' | 'backend' | 'onAddress' | 'log'> {
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
  readonly publishEvery: number;
  readonly scaling: 'shared' | 'own';
  readonly stopping: 'validation' | 'fixed';
  /** Synchronous rounds (the banks held the same bits after every round). */
  readonly lockstep: boolean;
  readonly rows: BankResult['rows'][];
  /** Bank epochs per pooled-run epoch (banks with `'average'`, 1 with `'sum'`). */
  readonly epochScale: number;
  /** Fine-tuning epochs each bank ran. */
  readonly fineTuneEpochs: number;
  /** Pooled validation loss after every check, and the check kept (−1 with `stopping: 'fixed'`). */
  readonly validationLoss: number[];
  readonly bestCheck: number;
  readonly oversamplingFactor: number;
  readonly scores: DistributedScore[];
  /**
   * The fine-tuned DBN's AUPRC on the whole validation part: the pooled model's, the distributed
   * model's (each bank scoring its own validation rows, pooled by the harness) and the gap.
   */
  readonly validation: { readonly pooled: number; readonly distributed: number; readonly gap: number };
  /** Largest |P(fraud)| difference on a test row between bank 0's model and another bank's. */
  readonly maxScoreDifference: number;
  /** Per bank, summed over the models of the ensemble. */
  readonly sync: {
    readonly published: number;
    readonly applied: number;
    readonly rejected: number;
    readonly bytesSent: number;
    readonly rounds: number;
    readonly padded: number;
    readonly waitSeconds: number;
  }[];
  /** Every model of the ensemble (bank 0's record; the fields above repeat the first's). */
  readonly models: BankModel[];
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
  const args = (bank: number, peers: readonly string[], aggregate: string | undefined): string[] => {
    const a = [
      '--input',
      o.input,
      '--bank',
      String(bank),
      '--banks',
      String(o.banks),
      '--out',
      o.outDir,
      '--seed',
      String(o.seed ?? 1),
      '--merge',
      o.merge ?? 'sum',
    ];
    for (const p of peers) a.push('--peer', p);
    if (aggregate !== undefined) a.push('--aggregate', aggregate);
    if (o.scaling !== undefined) a.push('--scaling', o.scaling);
    if (o.stopping !== undefined) a.push('--stopping', o.stopping);
    if (o.patience !== undefined) a.push('--patience', String(o.patience));
    if (o.pretrainLearningRate !== undefined) a.push('--pretrain-learning-rate', String(o.pretrainLearningRate));
    if (o.fineTuneLearningRate !== undefined) a.push('--finetune-learning-rate', String(o.fineTuneLearningRate));
    if (o.fineTuneAverageEpochs !== undefined) a.push('--finetune-average', String(o.fineTuneAverageEpochs));
    if (o.backendName !== undefined) a.push('--backend', o.backendName);
    if (o.label !== undefined) a.push('--label', o.label);
    if (o.timeColumn !== undefined) a.push('--time-column', o.timeColumn);
    if (o.logColumns !== undefined) a.push('--log-columns', o.logColumns.join(','));
    if (o.timeOfDay === false) a.push('--no-time-of-day');
    if (o.hidden !== undefined) a.push('--hidden', o.hidden.join(','));
    if (o.pretrainEpochs !== undefined) a.push('--pretrain-epochs', String(o.pretrainEpochs));
    if (o.fineTuneEpochs !== undefined) a.push('--finetune-epochs', String(o.fineTuneEpochs));
    if (o.positiveShare !== undefined) a.push('--positive-share', String(o.positiveShare));
    if (o.models !== undefined) a.push('--models', String(o.models));
    if (o.publishEvery !== undefined) a.push('--publish-every', String(o.publishEvery));
    if (o.lockstep === false) a.push('--no-lockstep');
    return a;
  };
  const timeoutMs = o.timeoutMs ?? 30 * 60_000;
  const children: ReturnType<typeof spawn>[] = [];
  const runOne = (
    bank: number,
    peers: readonly string[],
    aggregate: string | undefined,
    onAddress?: (peer: string, aggregate: string) => void,
  ): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', BANK_SCRIPT, ...args(bank, peers, aggregate)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const tail: string[] = [];
      let carry = '';
      const onData = (buf: Buffer): void => {
        carry += buf.toString('utf8');
        const lines = carry.split('\n');
        carry = lines.pop()!;
        for (const line of lines) {
          const m = /^peer: (\S+) aggregate: (\S+)$/.exec(line);
          if (m !== null) onAddress?.(m[1]!, m[2]!);
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
    let seedAddress: (peer: string, aggregate: string) => void = () => undefined;
    const addressed = new Promise<[string, string]>((resolve) => (seedAddress = (p, a) => resolve([p, a])));
    const first = runOne(0, [], undefined, seedAddress);
    const [address, aggregate] = await Promise.race([
      addressed,
      first.then(() => Promise.reject(new Error('bank 0 exited before binding its peer'))),
    ]);
    log(`bank 0 listens on ${address} (deltas) and ${aggregate} (sums); starting banks 1–${o.banks - 1}`);
    const rest = Array.from({ length: o.banks - 1 }, (_, i) => runOne(i + 1, [address], aggregate));
    await Promise.all([first, ...rest]);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  const results = Array.from(
    { length: o.banks },
    (_, i) => JSON.parse(fs.readFileSync(path.join(o.outDir, `bank-${i}.json`), 'utf8')) as BankResult,
  );
  const b0 = results[0]!;
  const y = Int32Array.from(b0.test.y);
  const names = { dbn: 'DBN fine-tuned', freeEnergy: 'RBM free energy', reconstruction: 'DBN reconstruction' } as const;
  const scores = (['dbn', 'freeEnergy', 'reconstruction'] as const).map((key): DistributedScore => {
    const s = Float64Array.from(b0.test[key]);
    const p = pooled.scores.find((m) => m.key === key)!;
    const ap = averagePrecision(s, y);
    return {
      key,
      name: names[key],
      pooled: { averagePrecision: p.averagePrecision, rocAuc: p.rocAuc },
      distributed: { averagePrecision: ap, rocAuc: rocAuc(s, y) },
      gap: ap - p.averagePrecision,
    };
  });
  const vy = Int32Array.from(results.flatMap((r) => r.validation.y));
  const vDistributed = averagePrecision(Float64Array.from(results.flatMap((r) => r.validation.dbn)), vy);
  const vPooled = pooled.scores.find((m) => m.key === 'dbn')!.validationAveragePrecision;
  let maxScoreDifference = 0;
  for (const r of results.slice(1))
    r.test.dbn.forEach((v, i) => (maxScoreDifference = Math.max(maxScoreDifference, Math.abs(v - b0.test.dbn[i]!))));
  const result: DistributedResult = {
    banks: o.banks,
    merge: o.merge ?? 'sum',
    publishEvery: o.publishEvery ?? 1,
    scaling: b0.scaling,
    stopping: b0.stopping,
    lockstep: b0.lockstep,
    rows: results.map((r) => r.rows),
    epochScale: b0.epochScale,
    fineTuneEpochs: b0.fineTuneEpochs,
    validationLoss: b0.validationLoss,
    bestCheck: b0.bestCheck,
    oversamplingFactor: b0.oversamplingFactor,
    scores,
    validation: { pooled: vPooled, distributed: vDistributed, gap: vDistributed - vPooled },
    maxScoreDifference,
    // Each bank's counters summed over the models of the ensemble.
    sync: results.map((r) => {
      const sum = (f: (s: PeerTrainingStats) => number): number => r.sync.reduce((a, s) => a + f(s), 0);
      return {
        published: sum((s) => s.published),
        applied: sum((s) => s.applied),
        rejected: sum((s) => Object.values(s.rejected).reduce((a, b) => a + b, 0)),
        bytesSent: sum((s) => s.bytes.sent),
        rounds: sum((s) => s.lockstep.rounds),
        padded: sum((s) => s.lockstep.padded),
        waitSeconds: sum((s) => s.lockstep.waitMs) / 1000,
      };
    }),
    models: b0.models,
    seconds: (performance.now() - started) / 1000,
  };
  fs.writeFileSync(path.join(o.outDir, 'distributed.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/** The report section comparing the distributed model with the pooled one (Markdown). */
export function renderDistributedSection(r: DistributedResult, pooled: PipelineResult): string {
  const f = (v: number): string => v.toFixed(4);
  const per =
    r.epochScale === 1
      ? ''
      : ` (${r.epochScale} bank epochs per pooled epoch, since '${r.merge}' moves the shared weights by the mean of the banks' changes)`;
  const scaling =
    r.scaling === 'shared'
      ? 'standardize with the pooled training statistics, computed from summed per-column counts, sums and squared deviations (federated standardization: no row leaves a bank)'
      : 'standardize with their own training statistics';
  const stopping =
    r.stopping === 'validation'
      ? `stop fine-tuning like the pooled run: after every pooled-run epoch${per} each bank computes the weighted validation log loss of its running average of the shared weights on its own validation rows, the banks sum these, and training stops after ${r.validationLoss.length - 1 - r.bestCheck} checks without improvement; the averaged weights of the best check (${r.bestCheck + 1}) are restored as the mean of the banks' averages. Validation loss per check: ${r.validationLoss.map((v) => v.toFixed(4)).join(', ')}`
      : `fine-tune for a fixed ${r.fineTuneEpochs} epochs per bank, no early stopping`;
  const out = [
    '',
    `## Distributed: ${r.banks} banks, peer to peer`,
    '',
    `Each bank is its own process holding only its rows (a seeded hash of the file row picks the bank): ${r.rows.map((x, i) => `bank ${i} ${x.train} training rows, ${x.trainFrauds} frauds`).join('; ')}. The banks ${scaling}, oversample frauds ×${r.oversamplingFactor} (the factor of all banks' rows, as the pooled run), pretrain the same ${pooled.features.length}→… DBN${r.models.length === 1 ? '' : `s (an ensemble of ${r.models.length}, seeds ${r.models.map((m) => m.seed).join(', ')}, trained one after the other, each through its own peers; score: the mean of their P(fraud))`} on their legitimate rows and fine-tune ${r.models.length === 1 ? 'it' : 'each'} on their oversampled rows, exchanging weight deltas every ${r.publishEvery} minibatch${r.publishEvery === 1 ? '' : 'es'} (PeerTrainer, merge '${r.merge}', ZeroMQ on loopback)${r.lockstep ? ` in lockstep: ${r.sync[0]!.rounds} synchronous rounds, after each of which every bank holds the same weights (the same bits on a rerun with this seed)` : ', asynchronously (deltas merged as they arrive: a rerun gives other bits)'}. They ${stopping}. ${r.models.length === 1 ? `Each bank ran ${r.fineTuneEpochs} fine-tuning epochs.` : `(Validation losses and stopping: the first model's.) Fine-tuning epochs per model: ${r.models.map((m) => `${m.fineTuneEpochs} (best ${m.bestCheck + 1})`).join(', ')}.`} Bank 0's model scores the common test part (${pooled.parts.test.rows} rows, ${pooled.parts.test.positives} frauds); the pooled model is the one above, from the same run.`,
    '',
    '| score | pooled AUPRC | distributed AUPRC | gap | pooled AUROC | distributed AUROC |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.scores.map(
      (s) =>
        `| ${s.name} | ${f(s.pooled.averagePrecision)} | ${f(s.distributed.averagePrecision)} | ${s.gap >= 0 ? '+' : ''}${f(s.gap)} | ${f(s.pooled.rocAuc)} | ${f(s.distributed.rocAuc)} |`,
    ),
    '',
    `On the validation part (each bank scoring its own validation rows, pooled here): fine-tuned DBN AUPRC pooled ${f(r.validation.pooled)}, distributed ${f(r.validation.distributed)} (gap ${r.validation.gap >= 0 ? '+' : ''}${f(r.validation.gap)}).`,
    '',
    `One run of either model moves by about 0.01 AUPRC with its seed (README.md, "Distributed"): read the gap against several seeds, not this run alone.`,
    '',
    `Deltas published / applied per bank: ${r.sync.map((s, i) => `bank ${i} ${s.published} / ${s.applied} (${s.rejected} rejected, ${(s.bytesSent / 1e6).toFixed(1)} MB sent)`).join('; ')}. Largest difference of P(fraud) on a test row between bank 0 and another bank: ${r.maxScoreDifference.toExponential(2)}. Distributed run: ${r.seconds.toFixed(1)} s.`,
    '',
  ];
  return out.join('\n');
}
