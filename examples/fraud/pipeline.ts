/**
 * The fraud-detection pipeline: load a transactions CSV (the ULB credit-card layout or any CSV
 * with numeric features and a 0/1 label column), split it by time, scale on the training part,
 * pretrain a Gaussian-visible DBN on legitimate training transactions, score the later
 * transactions four ways (two unsupervised DBN scores, the fine-tuned DBN, a logistic-regression
 * baseline), and write the metrics, a precision–recall chart, a report and the ranked scores.
 *
 * Each step is an exported function so that a step can be tested or replaced; in particular
 * {@link Pretrainer} is the seam where a peer-to-peer (multi-bank) pretraining can replace
 * {@link localPretrainer} without changing anything else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  averagePrecision,
  bestThreshold,
  confusionAtThreshold,
  type ConfusionCounts,
  Dbn,
  DatasetError,
  type Dataset,
  type HostMatrix,
  type LayerOptions,
  loadCsv,
  prCurve,
  precisionAtK,
  Random,
  recallAtK,
  rocAuc,
  Standardizer,
  subset,
  timeOrderedSplit,
  type Backend,
} from '../../src/index.js';
import {
  DEFAULT_MODELS,
  fineTuneAveraged,
  type FineTuneRecipe,
  fineTuneRecipe,
  fraudProbability,
  meanScores,
  modelSeed,
  weightedLogLoss,
} from './finetune.js';
import { LogisticRegression } from './logistic.js';
import { type ChartSeries, renderPrChart } from './plot.js';

// ------------------------------------------------------------------ loading

/** Options of {@link loadTransactions}. */
export interface LoadOptions {
  /** The 0/1 label column. Default `'Class'`. */
  readonly label?: string;
  /**
   * The column giving each row's time, used to order the rows (and for time-of-day features):
   * a column name, `'auto'` (default: `'Time'` when the file has it, else the file order) or
   * `'none'` (the file order).
   */
  readonly timeColumn?: string;
}

/** Transactions in time order. */
export interface Transactions {
  readonly file: string;
  /** Raw feature columns (the label removed), rows in time order, `rows × features`. */
  readonly data: Dataset & { readonly y: Int32Array; readonly featureNames: readonly string[] };
  /** The 0-based data-row index of each row in the file (the header not counted). */
  readonly fileRow: Uint32Array;
  /** The time column's name, or undefined when the file order is used. */
  readonly timeColumn: string | undefined;
  readonly positives: number;
}

/**
 * Reads a transactions CSV. Every problem is one {@link DatasetError} naming the file and, where
 * there is one, the row and the column: a missing file or label column, an empty file, a cell
 * that is not a number (from `loadCsv`), a label other than 0/1, or a file holding one class only.
 * Rows are sorted by the time column (stable) when there is one.
 */
export function loadTransactions(file: string, o: LoadOptions = {}): Transactions {
  const label = o.label ?? 'Class';
  const ds = loadCsv(file, { label });
  const y = ds.y as Int32Array;
  const names = ds.featureNames!;
  let positives = 0;
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (v !== 0 && v !== 1) {
      throw new DatasetError(
        `${file}: data row ${i + 1}, column '${label}': expected 0 (legitimate) or 1 (fraud), got ${v}.`,
        'ELABEL',
        file,
      );
    }
    positives += v;
  }
  if (positives === 0 || positives === y.length) {
    const only = positives === 0 ? '0 (legitimate)' : '1 (fraud)';
    throw new DatasetError(
      `${file}: column '${label}' holds only class ${only} in all ${y.length} data rows; expected both 0 (legitimate) and 1 (fraud) rows to train and evaluate a detector.`,
      'ELABEL',
      file,
    );
  }
  const requested = o.timeColumn ?? 'auto';
  let timeColumn: string | undefined;
  if (requested === 'auto') timeColumn = names.includes('Time') ? 'Time' : undefined;
  else if (requested !== 'none') {
    if (!names.includes(requested)) {
      throw new DatasetError(
        `${file}: no column '${requested}' (the time column); the columns are ${names.map((n) => `'${n}'`).join(', ')}.`,
        'ECOLUMN',
        file,
      );
    }
    timeColumn = requested;
  }
  const n = ds.x.rows;
  let fileRow = Uint32Array.from({ length: n }, (_, i) => i);
  let data = ds;
  if (timeColumn !== undefined) {
    const tc = names.indexOf(timeColumn);
    const cols = ds.x.cols;
    const t = (i: number): number => ds.x.data[i * cols + tc]!;
    let sorted = true;
    for (let i = 1; i < n && sorted; i++) sorted = t(i - 1) <= t(i);
    if (!sorted) {
      fileRow = fileRow.sort((a, b) => t(a) - t(b) || a - b);
      data = subset(ds, fileRow, `sorted by ${timeColumn}`);
    }
  }
  return { file, data: data as Transactions['data'], fileRow, timeColumn, positives };
}

// ------------------------------------------------------------------ features

/** Options of {@link buildFeatures}. */
export interface FeatureOptions {
  /** Columns replaced by `sign(x)·log1p(|x|)` (heavy-tailed amounts). Default: `['Amount']` when present. */
  readonly logColumns?: readonly string[];
  /** Replace the time column (seconds) by the time of day as `(sin, cos)` of `2π·(t mod 86400)/86400`. Default true. */
  readonly timeOfDay?: boolean;
}

/**
 * The model inputs: every feature column except the time column (absolute time would only tell
 * the model which part of the split a row is in), log-scaled amount columns, and the time of day
 * on the unit circle (so 23:59 is next to 00:00). Returns the matrix and the column names.
 */
export function buildFeatures(tx: Transactions, o: FeatureOptions = {}): { x: HostMatrix; names: string[] } {
  const { x, featureNames } = tx.data;
  const logCols = new Set(o.logColumns ?? (featureNames.includes('Amount') ? ['Amount'] : []));
  for (const c of logCols) {
    if (!featureNames.includes(c))
      throw new DatasetError(
        `${tx.file}: no column '${c}' to log-scale; the columns are ${featureNames.map((n) => `'${n}'`).join(', ')}.`,
        'ECOLUMN',
        tx.file,
      );
  }
  const tc = tx.timeColumn === undefined ? -1 : featureNames.indexOf(tx.timeColumn);
  const tod = tc >= 0 && (o.timeOfDay ?? true);
  const keep = featureNames.map((_, j) => j).filter((j) => j !== tc);
  const names = keep.map((j) => (logCols.has(featureNames[j]!) ? `log1p(${featureNames[j]})` : featureNames[j]!));
  if (tod) names.push('tod_sin', 'tod_cos');
  const cols = names.length;
  const out = new Float32Array(x.rows * cols);
  const isLog = keep.map((j) => logCols.has(featureNames[j]!));
  for (let i = 0; i < x.rows; i++) {
    const src = i * x.cols;
    const dst = i * cols;
    for (let k = 0; k < keep.length; k++) {
      const v = x.data[src + keep[k]!]!;
      out[dst + k] = isLog[k] ? Math.sign(v) * Math.log1p(Math.abs(v)) : v;
    }
    if (tod) {
      const a = (2 * Math.PI * (((x.data[src + tc]! % 86_400) + 86_400) % 86_400)) / 86_400;
      out[dst + keep.length] = Math.sin(a);
      out[dst + keep.length + 1] = Math.cos(a);
    }
  }
  return { x: { rows: x.rows, cols, data: out }, names };
}

// ------------------------------------------------------------------ split and scaling

/** One part of the time-ordered split, scaled. */
export interface Part {
  readonly name: 'train' | 'validation' | 'test';
  /** Standardized (and clipped) model inputs, `rows × features`. */
  readonly x: HostMatrix;
  readonly y: Int32Array;
  /** Index of each row in the time-ordered transactions. */
  readonly start: number;
  readonly positives: number;
}

/**
 * Splits the rows in time order into train/validation/test (`fractions`, default 60/20/20),
 * fits a {@link Standardizer} on the training rows only, applies it to all three parts, and clips
 * the results to `±clip` (a handful of extreme rows cannot dominate a Gaussian RBM's updates; the
 * clipped values still rank as the most extreme). Each part must hold a fraud (validation: to
 * choose a threshold; test: to measure) and a legitimate row; otherwise a {@link DatasetError}
 * names the part and its rows.
 */
export function splitAndScale(
  tx: Transactions,
  x: HostMatrix,
  fractions: readonly [number, number, number] = [0.6, 0.2, 0.2],
  clip = 10,
): { train: Part; validation: Part; test: Part; scaler: Standardizer } {
  const parts = timeOrderedSplit({ x, y: tx.data.y, source: tx.file }, fractions);
  const scaler = new Standardizer().fit(parts.train.x);
  const make = (name: Part['name'], ds: Dataset, start: number): Part => {
    const y = ds.y as Int32Array;
    let positives = 0;
    for (let i = 0; i < y.length; i++) positives += y[i]!;
    if (positives === 0 || positives === y.length) {
      const span = y.length === 0 ? 'no rows' : `time-ordered rows ${start + 1}–${start + y.length}`;
      throw new DatasetError(
        `${tx.file}: the ${name} part of the time-ordered split (${span}) has ${positives === 0 ? 'no fraud' : 'no legitimate'} rows; it needs both. Use more rows or other split fractions.`,
        'ELABEL',
        tx.file,
      );
    }
    const s = scaler.transform(ds.x);
    for (let k = 0; k < s.data.length; k++) s.data[k] = Math.max(-clip, Math.min(clip, s.data[k]!));
    return { name, x: s, y, start, positives };
  };
  const train = make('train', parts.train, 0);
  const validation = make('validation', parts.val, parts.train.x.rows);
  const test = make('test', parts.test, parts.train.x.rows + parts.val.x.rows);
  return { train, validation, test, scaler };
}

// ------------------------------------------------------------------ models

/** What a {@link Pretrainer} is given besides the rows. */
export interface PretrainContext {
  readonly nVisible: number;
  /** The DBN's layers, bottom first (the first has Gaussian visible units). */
  readonly layers: readonly LayerOptions[];
  readonly backend: Backend;
  readonly seed: number;
  readonly log: (line: string) => void;
}

/**
 * Trains the DBN's layers without labels on `rows` (`rows × nVisible`, standardized) and returns
 * it. The pipeline's only assumption is the result: a pretrained {@link Dbn} with `ctx.layers`
 * on `ctx.backend`. A distributed version would give each peer (bank) its own rows, exchange
 * weight deltas, and return the merged model.
 */
export type Pretrainer = (rows: HostMatrix, ctx: PretrainContext) => Promise<Dbn>;

/** Greedy layer-wise pretraining on this machine ({@link Dbn.pretrain}). */
export const localPretrainer: Pretrainer = async (rows, ctx) => {
  const dbn = new Dbn({ nVisible: ctx.nVisible, layers: ctx.layers, backend: ctx.backend, seed: ctx.seed });
  await dbn.pretrain(rows, {
    onEpoch: (layer, m) =>
      ctx.log(
        `  pretrain layer ${layer} epoch ${m.epoch + 1}: reconstruction error ${m.reconstructionError.toFixed(4)} (${(m.elapsedMs / 1000).toFixed(1)} s)`,
      ),
  });
  return dbn;
};

/**
 * How many times each positive row is repeated so that positives make up about `share` of a set
 * of `negatives` negative and `positives` positive rows (at least 1).
 */
export function oversamplingFactor(negatives: number, positives: number, share: number): number {
  return Math.max(1, Math.round((share * negatives) / ((1 - share) * positives)));
}

/**
 * Rows of `part` with every positive row repeated so that positives make up about `share` of the
 * result (at least once each), in a seeded random order. Returns the rows, labels and the factor.
 * `factor` overrides the repetition count (the distributed banks use the one of all banks' rows).
 */
export function oversample(
  part: Part,
  share: number,
  seed: number,
  factor = oversamplingFactor(part.y.length - part.positives, part.positives, share),
): { x: HostMatrix; y: Int32Array; factor: number } {
  const n = part.y.length;
  const idx: number[] = [];
  for (let i = 0; i < n; i++) {
    const copies = part.y[i] === 1 ? factor : 1;
    for (let c = 0; c < copies; c++) idx.push(i);
  }
  const order = new Random(seed).shuffle(idx);
  const cols = part.x.cols;
  const data = new Float32Array(order.length * cols);
  const y = new Int32Array(order.length);
  order.forEach((r, k) => {
    data.set(part.x.data.subarray(r * cols, (r + 1) * cols), k * cols);
    y[k] = part.y[r]!;
  });
  return { x: { rows: order.length, cols, data }, y, factor };
}

/** Per-row squared reconstruction error, averaged over the columns (length `rows`). */
export function rowErrors(x: HostMatrix, r: HostMatrix): Float64Array {
  const out = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let s = 0;
    for (let j = 0; j < x.cols; j++) {
      const d = x.data[i * x.cols + j]! - r.data[i * x.cols + j]!;
      s += d * d;
    }
    out[i] = s / x.cols;
  }
  return out;
}

/**
 * The DBN's layer options: Gaussian visible units below, `lr0` for the first layer and `10·lr0`
 * above, minibatches of 100, `epochs` per layer.
 */
export function fraudLayers(hidden: readonly number[], epochs: number, lr0: number): LayerOptions[] {
  return hidden.map((h, i) =>
    i === 0
      ? { nHidden: h, visible: 'gaussian', epochs, learningRate: lr0, batchSize: 100, monitorSize: 0 }
      : { nHidden: h, epochs, learningRate: 10 * lr0, batchSize: 100, monitorSize: 0 },
  );
}

// ------------------------------------------------------------------ the run

/** The scores, in report order. */
export const SCORES = [
  { key: 'dbn', name: 'DBN fine-tuned', kind: 'supervised', color: [31, 119, 180] },
  { key: 'logistic', name: 'Logistic regression', kind: 'supervised baseline', color: [255, 127, 14] },
  { key: 'freeEnergy', name: 'RBM free energy', kind: 'unsupervised', color: [44, 160, 44] },
  { key: 'reconstruction', name: 'DBN reconstruction', kind: 'unsupervised', color: [214, 39, 40] },
] as const;

export type ScoreKey = (typeof SCORES)[number]['key'];

/** Options of {@link runFraudPipeline}. */
export interface PipelineOptions extends LoadOptions, FeatureOptions {
  readonly input: string;
  /** Directory of the outputs (created). */
  readonly outDir: string;
  readonly backend: Backend;
  /** Seed of the DBN, the oversampling and everything else random. Default 1. */
  readonly seed?: number;
  /** Default [0.6, 0.2, 0.2]. */
  readonly fractions?: readonly [number, number, number];
  /** Bound on the standardized inputs. Default 10. */
  readonly clip?: number;
  /** Hidden units per layer, bottom first. Default [32, 16]. */
  readonly hidden?: readonly number[];
  /** Pretraining epochs per layer. Default 10. */
  readonly pretrainEpochs?: number;
  /** Pretrain on legitimate training rows only (`'legit'`, default) or on all of them (`'all'`). */
  readonly pretrainOn?: 'legit' | 'all';
  /** Fine-tuning epochs at most (early stopping on the validation log loss of the averaged weights). Default 20. */
  readonly fineTuneEpochs?: number;
  /**
   * DBNs in the supervised score's ensemble, each pretrained and fine-tuned from its own seed
   * (`modelSeed` in finetune.ts), P(fraud) averaged. Default {@link DEFAULT_MODELS} (3); 1: one DBN.
   */
  readonly models?: number;
  /** Learning rate of the first (Gaussian) layer's pretraining; the layers above use 10×. Default 0.01. */
  readonly pretrainLearningRate?: number;
  /** Fine-tuning learning rate. Default {@link DEFAULT_RECIPE}'s. */
  readonly fineTuneLearningRate?: number;
  /** Time constant of the fine-tuning weight average, in epochs (0: none). Default {@link DEFAULT_RECIPE}'s. */
  readonly fineTuneAverageEpochs?: number;
  /** Share of fraud rows in the fine-tuning set after oversampling. Default 0.1. */
  readonly positiveShare?: number;
  /** Review-team sizes for precision/recall at k. Default [100, 500, 1000]. */
  readonly topK?: readonly number[];
  /** Replaces the local pretraining (e.g. by a peer-to-peer one). */
  readonly pretrain?: Pretrainer;
  /** Marks the input as synthetic in the report. */
  readonly synthetic?: boolean;
  readonly log?: (line: string) => void;
}

/** Test metrics of one score. */
export interface ScoreMetrics {
  readonly key: ScoreKey;
  readonly name: string;
  readonly kind: string;
  readonly averagePrecision: number;
  readonly rocAuc: number;
  /** `k → precision` and `k → recall` among the `k` highest-scoring test rows. */
  readonly precisionAtK: Record<number, number>;
  readonly recallAtK: Record<number, number>;
  /** The threshold of maximal F1 on the validation part, and that F1. */
  readonly threshold: number;
  readonly validationF1: number;
  /** AUPRC on the validation part (what a recipe may be chosen on; the test figures may not). */
  readonly validationAveragePrecision: number;
  /** Test counts at that threshold, and the resulting precision/recall/F1. */
  readonly test: ConfusionCounts & { readonly precision: number; readonly recall: number; readonly f1: number };
}

/** One DBN of the supervised score's ensemble: its seed and its fine-tuning run. */
export interface FineTunedModel {
  readonly seed: number;
  readonly fineTuneEpochs: number;
  /** The epoch whose averaged weights were kept (1-based). */
  readonly bestEpoch: number;
  /** The validation loss of the averaged weights after every epoch. */
  readonly validationLoss: readonly number[];
}

/** What {@link runFraudPipeline} returns (also written to `metrics.json`). */
export interface PipelineResult {
  readonly input: string;
  readonly synthetic: boolean;
  readonly rows: number;
  readonly positives: number;
  readonly features: readonly string[];
  readonly parts: Record<'train' | 'validation' | 'test', { rows: number; positives: number; timeFrom?: number; timeTo?: number }>;
  readonly oversamplingFactor: number;
  /** Fine-tuning epochs run by the first DBN of the ensemble, the epoch whose averaged weights were kept (1-based), and the recipe. */
  readonly fineTuneEpochs: number;
  readonly fineTuneBestEpoch: number;
  readonly fineTune: FineTuneRecipe;
  /** Every DBN of the supervised score's ensemble, in order (the first is the one the unsupervised scores use). */
  readonly models: readonly FineTunedModel[];
  readonly logisticIterations: number;
  readonly backend: string;
  readonly seconds: Record<string, number>;
  readonly scores: ScoreMetrics[];
  readonly files: { readonly report: string; readonly metrics: string; readonly chart: string; readonly scores: string };
}

/** Runs every step and writes `report.md`, `metrics.json`, `pr-curve.png` and `test-scores.csv` to `outDir`. */
export async function runFraudPipeline(o: PipelineOptions): Promise<PipelineResult> {
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
  const { x, names } = buildFeatures(tx, o);
  const n = x.rows;
  log(
    `loaded ${o.input}: ${n} rows, ${tx.positives} frauds (${pct(tx.positives / n)}), ${tx.data.featureNames.length} columns; ${tx.timeColumn !== undefined ? `ordered by '${tx.timeColumn}'` : 'file order'}`,
  );
  const { train, validation, test } = splitAndScale(tx, x, o.fractions ?? [0.6, 0.2, 0.2], o.clip ?? 10);
  for (const p of [train, validation, test]) log(`  ${p.name}: ${p.y.length} rows, ${p.positives} frauds`);
  lap('load');

  const hidden = o.hidden ?? [32, 16];
  const epochs = o.pretrainEpochs ?? 10;
  const lr0 = o.pretrainLearningRate ?? 0.01;
  const layers = fraudLayers(hidden, epochs, lr0);
  const pretrainRows = o.pretrainOn === 'all' ? train.x : rowsWhere(train, 0);
  log(
    `pretraining ${names.length}→${hidden.join('→')} on ${pretrainRows.rows} ${o.pretrainOn === 'all' ? '' : 'legitimate '}training rows (${o.backend.info.description})`,
  );
  const dbn = await (o.pretrain ?? localPretrainer)(pretrainRows, { nVisible: names.length, layers, backend: o.backend, seed, log });
  lap('pretrain');
  try {
    const scores: Record<ScoreKey, { validation: Float64Array; test: Float64Array }> = {
      freeEnergy: { validation: dbn.layers[0]!.freeEnergy(validation.x), test: dbn.layers[0]!.freeEnergy(test.x) },
      reconstruction: {
        validation: rowErrors(validation.x, dbn.reconstruct(validation.x)),
        test: rowErrors(test.x, dbn.reconstruct(test.x)),
      },
      dbn: { validation: new Float64Array(0), test: new Float64Array(0) },
      logistic: { validation: new Float64Array(0), test: new Float64Array(0) },
    };
    lap('unsupervised scores');

    const share = o.positiveShare ?? 0.1;
    const models = o.models ?? DEFAULT_MODELS;
    const validationWeight = oversamplingFactor(validation.y.length - validation.positives, validation.positives, share);
    const recipe = fineTuneRecipe(o);
    const members: FineTunedModel[] = [];
    const validationScores: Float64Array[] = [];
    const testScores: Float64Array[] = [];
    let factor = 0;
    // The ensemble: model 0 is the DBN pretrained above; each other model is pretrained the same
    // way from its own seed. Each is fine-tuned with the recipe on the training rows oversampled
    // in its own order, and the score is the mean of their P(fraud).
    for (let k = 0; k < models; k++) {
      const kSeed = modelSeed(seed, k);
      const model =
        k === 0
          ? dbn
          : await (o.pretrain ?? localPretrainer)(pretrainRows, {
              nVisible: names.length,
              layers,
              backend: o.backend,
              seed: kSeed,
              log: () => undefined,
            });
      try {
        const over = oversample(train, share, kSeed);
        factor = over.factor;
        log(
          `fine-tuning${models > 1 ? ` model ${k + 1} of ${models} (seed ${kSeed}${k > 0 ? ', pretrained like the first' : ''})` : ''} on ${over.x.rows} rows (each fraud ×${over.factor}), learning rate ${recipe.learningRate}, weights averaged with a time constant of ${recipe.averageEpochs} epochs; early stopping on the validation log loss of the averaged weights (frauds weighted ×${validationWeight})`,
        );
        const ft = await fineTuneAveraged(model, model, over.x, over.y, {
          recipe,
          validationLoss: (averaged) => {
            const s = weightedLogLoss(fraudProbability(averaged, validation.x), validation.y, validationWeight);
            return s.lossSum / s.weight;
          },
          log,
        });
        model.setClassifierParameters(ft.best);
        const probability = (m: HostMatrix): Float64Array => {
          const p = model.predictProba(m);
          return Float64Array.from({ length: m.rows }, (_, i) => p.data[i * 2 + 1]!);
        };
        validationScores.push(probability(validation.x));
        testScores.push(probability(test.x));
        members.push({ seed: kSeed, fineTuneEpochs: ft.epochs, bestEpoch: ft.bestCheck + 1, validationLoss: ft.validationLoss });
      } finally {
        if (k > 0) model.dispose();
      }
    }
    scores.dbn = { validation: meanScores(validationScores), test: meanScores(testScores) };
    lap('fine-tune');

    // scikit-learn's default LogisticRegression(): C = 1, no class weights, solved to convergence.
    const lr = new LogisticRegression({ c: 1, tolerance: 1e-8 }).fit(train.x, train.y);
    log(`logistic regression (C = 1, no class weights): ${lr.iterations} Newton steps${lr.converged ? '' : ' (not converged to 1e-8)'}`);
    scores.logistic = { validation: lr.predictProba(validation.x), test: lr.predictProba(test.x) };
    lap('logistic');

    const ks = (o.topK ?? [100, 500, 1000]).filter((k) => k <= test.y.length);
    const metrics = SCORES.map((s): ScoreMetrics => {
      const v = scores[s.key].validation;
      const t = scores[s.key].test;
      const th = bestThreshold(v, validation.y);
      const c = confusionAtThreshold(t, test.y, th.threshold);
      const precision = c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : 0;
      const recall = c.tp / (c.tp + c.fn);
      return {
        key: s.key,
        name: s.name,
        kind: s.kind,
        averagePrecision: averagePrecision(t, test.y),
        rocAuc: rocAuc(t, test.y),
        precisionAtK: Object.fromEntries(ks.map((k) => [k, precisionAtK(t, test.y, k)])),
        recallAtK: Object.fromEntries(ks.map((k) => [k, recallAtK(t, test.y, k)])),
        threshold: th.threshold,
        validationF1: th.f1,
        validationAveragePrecision: averagePrecision(v, validation.y),
        test: { ...c, precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 },
      };
    });
    for (const m of metrics)
      log(
        `  ${m.name.padEnd(20)} AUPRC ${m.averagePrecision.toFixed(4)}  AUROC ${m.rocAuc.toFixed(4)}  test F1 at validation threshold ${m.test.f1.toFixed(3)}`,
      );

    fs.mkdirSync(o.outDir, { recursive: true });
    const files = {
      report: path.join(o.outDir, 'report.md'),
      metrics: path.join(o.outDir, 'metrics.json'),
      chart: path.join(o.outDir, 'pr-curve.png'),
      scores: path.join(o.outDir, 'test-scores.csv'),
    };
    const prevalence = test.positives / test.y.length;
    const series: ChartSeries[] = SCORES.map((s, i) => ({
      name: `${s.name} AP ${metrics[i]!.averagePrecision.toFixed(3)}`,
      curve: prCurve(scores[s.key].test, test.y),
      color: s.color,
    }));
    fs.writeFileSync(
      files.chart,
      renderPrChart(series, { title: `PRECISION-RECALL, TEST PART (${test.y.length} ROWS, ${test.positives} FRAUDS)`, prevalence }),
    );
    writeScoresCsv(files.scores, tx, test, scores);
    const timeRange = (p: Part): { timeFrom?: number; timeTo?: number } => {
      if (tx.timeColumn === undefined) return {};
      const tc = tx.data.featureNames.indexOf(tx.timeColumn);
      const cols = tx.data.x.cols;
      return { timeFrom: tx.data.x.data[p.start * cols + tc]!, timeTo: tx.data.x.data[(p.start + p.y.length - 1) * cols + tc]! };
    };
    lap('outputs');
    const result: PipelineResult = {
      input: o.input,
      synthetic: o.synthetic ?? false,
      rows: n,
      positives: tx.positives,
      features: names,
      parts: {
        train: { rows: train.y.length, positives: train.positives, ...timeRange(train) },
        validation: { rows: validation.y.length, positives: validation.positives, ...timeRange(validation) },
        test: { rows: test.y.length, positives: test.positives, ...timeRange(test) },
      },
      oversamplingFactor: factor,
      fineTuneEpochs: members[0]!.fineTuneEpochs,
      fineTuneBestEpoch: members[0]!.bestEpoch,
      fineTune: recipe,
      models: members,
      logisticIterations: lr.iterations,
      backend: o.backend.info.description,
      seconds,
      scores: metrics,
      files,
    };
    fs.writeFileSync(files.metrics, `${JSON.stringify(result, null, 2)}\n`);
    fs.writeFileSync(files.report, renderReport(result, o, hidden, epochs));
    return result;
  } finally {
    dbn.dispose();
  }
}

function rowsWhere(p: Part, label: number): HostMatrix {
  const idx: number[] = [];
  for (let i = 0; i < p.y.length; i++) if (p.y[i] === label) idx.push(i);
  const cols = p.x.cols;
  const data = new Float32Array(idx.length * cols);
  idx.forEach((r, k) => data.set(p.x.data.subarray(r * cols, (r + 1) * cols), k * cols));
  return { rows: idx.length, cols, data };
}

function pct(v: number): string {
  return `${(v * 100).toFixed(3)} %`;
}

/** The shortest decimal that reads back as the same float32 (so 149.62 prints as 149.62, not 149.6199951171875). */
function float32String(v: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = String(Number(v.toPrecision(p)));
    if (Math.fround(Number(s)) === Math.fround(v)) return s;
  }
  return String(v);
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Every test row, ranked by the fine-tuned DBN's score (highest first). */
function writeScoresCsv(file: string, tx: Transactions, test: Part, scores: Record<ScoreKey, { test: Float64Array }>): void {
  const names = tx.data.featureNames;
  const cols = tx.data.x.cols;
  const extra = [tx.timeColumn, names.includes('Amount') ? 'Amount' : undefined].filter((c): c is string => c !== undefined);
  const extraIdx = extra.map((c) => names.indexOf(c));
  const n = test.y.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores.dbn.test[b]! - scores.dbn.test[a]! || a - b);
  const header = ['rank', 'file_row', ...extra, 'label', ...SCORES.map((s) => s.key)].map(csvField).join(',');
  const lines = [header];
  order.forEach((i, rank) => {
    const r = test.start + i;
    const fields = [
      String(rank + 1),
      String(tx.fileRow[r]!),
      ...extraIdx.map((c) => float32String(tx.data.x.data[r * cols + c]!)),
      String(test.y[i]!),
    ];
    for (const s of SCORES) fields.push(scores[s.key].test[i]!.toPrecision(6));
    lines.push(fields.join(','));
  });
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function f(v: number, d = 4): string {
  return v.toFixed(d);
}

function renderReport(r: PipelineResult, o: PipelineOptions, hidden: readonly number[], epochs: number): string {
  const ks = Object.keys(r.scores[0]!.precisionAtK).map(Number);
  const p = r.parts;
  const span = (q: { timeFrom?: number; timeTo?: number }): string => (q.timeFrom === undefined ? '' : ` | ${q.timeFrom}–${q.timeTo}`);
  const out: string[] = [];
  out.push('# Fraud detection report', '');
  if (r.synthetic)
    out.push(
      '> **Synthetic data.** These numbers come from `synthetic-creditcard.csv`, written by `examples/fraud/generate.ts`; they say nothing about real fraud.',
      '',
    );
  out.push(
    `Input: \`${r.input}\` — ${r.rows} rows, ${r.positives} frauds (prevalence ${pct(r.positives / r.rows)}). Backend: ${r.backend}.`,
    '',
    '## Split (by time, no shuffling)',
    '',
    `| part | rows | frauds | prevalence${p.train.timeFrom === undefined ? '' : ' | time range'} |`,
    `|---|---:|---:|---:${p.train.timeFrom === undefined ? '' : '|---'}|`,
  );
  for (const [name, q] of Object.entries(p)) out.push(`| ${name} | ${q.rows} | ${q.positives} | ${pct(q.positives / q.rows)}${span(q)} |`);
  out.push(
    '',
    `Features (${r.features.length}): ${r.features.join(', ')}. Standardized with the training part's means and standard deviations, clipped to ±${o.clip ?? 10}.`,
    '',
    '## Scores',
    '',
    `- **DBN fine-tuned** (supervised): ${r.models.length === 1 ? 'a' : `the mean P(fraud) of ${r.models.length}`} ${r.features.length}→${hidden.join('→')} DBN${r.models.length === 1 ? '' : 's'} (Gaussian visible units, Bernoulli hidden${r.models.length === 1 ? '' : `; seeds ${r.models.map((m) => m.seed).join(', ')}, each pretrained and fine-tuned on its own`}), pretrained ${epochs} epochs per layer on the ${o.pretrainOn === 'all' ? '' : 'legitimate '}training rows, then fine-tuned with a softmax output on the training rows with each fraud repeated ×${r.oversamplingFactor} (learning rate ${r.fineTune.learningRate}, momentum ${r.fineTune.momentum}, minibatches of ${r.fineTune.batchSize}; the weights' moving average (time constant ${r.fineTune.averageEpochs} epochs) kept at the epoch of lowest validation log loss: ${r.models.map((m) => `epoch ${m.bestEpoch} of ${m.fineTuneEpochs}`).join(', ')}). Score: P(fraud).`,
    `- **Logistic regression** (baseline): scikit-learn's default \`LogisticRegression()\` on the same inputs — L2 with C = 1 (objective C·Σ logloss + ½‖w‖², intercept not penalized), no class weights — solved by Newton's method in float64 to a gradient below 1e-8 (${r.logisticIterations} steps).`,
    `- **RBM free energy** (unsupervised): F(v) of the pretrained first layer; high = unlike the legitimate training transactions.`,
    `- **DBN reconstruction** (unsupervised): mean squared error of the mean-field reconstruction through the pretrained stack.`,
    '',
    '## Test metrics',
    '',
    `Test part: ${p.test.rows} rows, ${p.test.positives} frauds. AUPRC = average precision (step-interpolated, as scikit-learn); a random ranking scores the prevalence, ${f(p.test.positives / p.test.rows)}. P@k / R@k: precision / recall among the k highest-scoring test rows (the alerts a review team of that size would see).`,
    '',
    `| score | kind | AUPRC | AUROC | ${ks.map((k) => `P@${k} | R@${k}`).join(' | ')} |`,
    `|---|---|---:|---:|${ks.map(() => '---:|---:').join('|')}|`,
  );
  for (const m of r.scores) {
    out.push(
      `| ${m.name} | ${m.kind} | ${f(m.averagePrecision)} | ${f(m.rocAuc)} | ${ks.map((k) => `${f(m.precisionAtK[k]!, 3)} | ${f(m.recallAtK[k]!, 3)}`).join(' | ')} |`,
    );
  }
  out.push(
    '',
    '## Alert threshold (chosen on validation, applied to test)',
    '',
    'The threshold maximizes F1 on the validation part; rows scoring at or above it are flagged. Confusion matrix on the test part: TP = frauds flagged, FP = legitimate flagged, FN = frauds missed, TN = legitimate passed.',
    '',
    '| score | threshold | validation F1 | TP | FP | FN | TN | test precision | test recall | test F1 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const m of r.scores) {
    const t = m.test;
    out.push(
      `| ${m.name} | ${m.threshold.toPrecision(5)} | ${f(m.validationF1, 3)} | ${t.tp} | ${t.fp} | ${t.fn} | ${t.tn} | ${f(t.precision, 3)} | ${f(t.recall, 3)} | ${f(t.f1, 3)} |`,
    );
  }
  out.push(
    '',
    '## Files',
    '',
    '- `pr-curve.png`: the precision–recall curves of every score on the test part (dashed: a random ranking).',
    '- `test-scores.csv`: every test row ranked by the fine-tuned DBN (rank, 0-based data row of the input file, time, amount, label, every score).',
    '- `metrics.json`: everything in this report, machine-readable.',
    '',
    '![precision-recall curves](pr-curve.png)',
    '',
    `Timings (s): ${Object.entries(r.seconds)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}.`,
    '',
  );
  return out.join('\n');
}
