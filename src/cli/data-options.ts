/**
 * The data option groups: where the rows come from, how they are split and scaled. Scaling is
 * fitted on the training rows only; the fitted scaler and a {@link TrainingRecord} (source, split,
 * a hash and fingerprints of the training rows) travel in the model's metadata, so `evaluate`
 * scores exactly the rows held out at training time and `predict`/`transform` scale new rows the
 * same way.
 */
import * as path from 'node:path';
import type { Argv } from 'yargs';
import {
  type CsvDataset,
  type Dataset,
  loadBundledDigits,
  loadCsv,
  loadFashionMnist,
  loadIdxDataset,
  MinMaxScaler,
  Standardizer,
  take,
  trainTestSplit,
} from '../data/index.js';
import { InvalidOptionError } from '../errors.js';
import type { HostMatrix } from '../validate.js';
import { contentHash, encodeFingerprints, rowFingerprints, type TrainingRecord } from './training-record.js';

/** Flags naming a data source (every command that reads rows). */
export interface SourceArgs {
  readonly data?: string | undefined;
  readonly labels?: string | undefined;
  readonly label?: string | undefined;
  readonly delimiter?: string | undefined;
  readonly limit?: number | undefined;
}

/** Flags of `train`'s data group. */
export interface DataArgs extends SourceArgs {
  readonly data: string;
  readonly unlabeled: boolean;
  readonly 'test-fraction': number;
  readonly scale: 'auto' | 'none' | 'minmax' | 'standardize';
}

const DATA_HELP =
  "'digits' (10,000 real MNIST digits bundled with the package), 'fashion' (Fashion-MNIST from Debian's dataset-fashion-mnist), " +
  'an IDX/IDX.gz images file (with --labels), or a .csv file (with --label, or --unlabeled)';

/** Adds `--data`, `--labels`, `--label`, `--delimiter` and `--limit`; `dataDefault` is `--data`'s default. */
export function sourceOptions<T>(y: Argv<T>, dataHelp: string, dataDefault?: string): Argv<T & SourceArgs> {
  return y
    .option('data', { type: 'string', ...(dataDefault === undefined ? {} : { default: dataDefault }), describe: dataHelp, group: 'Data:' })
    .option('labels', { type: 'string', describe: 'IDX labels file for an IDX images file', group: 'Data:' })
    .option('label', { type: 'string', describe: 'name of the label column of a CSV file (integer or text classes)', group: 'Data:' })
    .option('delimiter', { type: 'string', describe: "CSV field separator: one character, or 'tab' (default ',')", group: 'Data:' })
    .option('limit', { type: 'number', describe: 'use only the first N rows (quick runs)', group: 'Data:' }) as unknown as Argv<
    T & SourceArgs
  >;
}

/** Adds `train`'s data flags. */
export function dataOptions<T>(y: Argv<T>): Argv<T & DataArgs> {
  return sourceOptions(y, DATA_HELP, 'digits')
    .option('unlabeled', {
      type: 'boolean',
      default: false,
      describe: 'a CSV without a label column: every column is a feature, pretraining only',
      group: 'Data:',
    })
    .option('test-fraction', {
      type: 'number',
      default: 0.2,
      describe:
        'share of rows held out for testing (seeded split, stored in the model for evaluate; Fashion-MNIST uses its own 10k test set)',
      group: 'Data:',
    })
    .option('scale', {
      choices: ['auto', 'none', 'minmax', 'standardize'] as const,
      default: 'auto' as const,
      describe:
        "feature scaling fitted on the training rows: 'auto' = none for images, min-max to [0,1] for CSV (standardize for Gaussian visible units)",
      group: 'Data:',
    }) as unknown as Argv<T & DataArgs>;
}

/** A fitted scaler as stored in model metadata. */
export type ScalerJson = { readonly kind: 'minmax'; readonly json: unknown } | { readonly kind: 'standardize'; readonly json: unknown };

/** What {@link loadData} returns. */
export interface LoadedData {
  readonly train: Dataset;
  readonly test: Dataset | undefined;
  /** e.g. "bundled MNIST digits (8000 train / 2000 test)". */
  readonly description: string;
  /** The scaler fitted on the training rows, serializable into the model metadata. */
  readonly scaler: ScalerJson | undefined;
  /** How the model is trained: goes to `metadata.training`. */
  readonly training: TrainingRecord;
  /** Text class labels (CSV), class `i` being `classNames[i]`. */
  readonly classNames: readonly string[] | undefined;
}

/** What to read and how (a CSV's label, columns and fixed classes). */
export interface SourceSpec {
  readonly data: string;
  readonly labels?: string | undefined;
  readonly label?: string | undefined;
  readonly delimiter?: string | undefined;
  /** CSV: the feature columns, in order (a model's inputs). */
  readonly columns?: readonly string[] | undefined;
  /** CSV: the model's text classes. */
  readonly classNames?: readonly string[] | undefined;
}

/** Rows read from a source: all of them, or (Fashion-MNIST) its own train and test sets. */
export interface Source {
  readonly name: string;
  readonly images: boolean;
  readonly all?: CsvDataset;
  readonly fashion?: { readonly train: Dataset; readonly test: Dataset };
}

/** `--delimiter` as the character the CSV reader takes. */
export function delimiterOf(flag: string | undefined): string | undefined {
  if (flag === undefined) return undefined;
  if (flag === 'tab' || flag === '\\t') return '\t';
  if (flag.length !== 1 || flag === '"' || flag === '\r' || flag === '\n' || flag.charCodeAt(0) > 127) {
    throw new InvalidOptionError(`--delimiter must be one ASCII character other than '"' (or 'tab'), got '${flag}'.`);
  }
  return flag;
}

/** True when `data` names a CSV file. */
export function isCsv(data: string): boolean {
  return /\.(csv|tsv|txt)$/i.test(data);
}

/** Reads the rows `spec` names (no split, no scaling). */
export function loadSource(spec: SourceSpec): Source {
  const { data } = spec;
  if (data === 'fashion') return { name: 'Fashion-MNIST', images: true, fashion: loadFashionMnist() };
  if (data === 'digits') return { name: 'bundled MNIST digits', images: true, all: loadBundledDigits() };
  if (isCsv(data)) {
    const delimiter = delimiterOf(spec.delimiter);
    const all = loadCsv(data, {
      ...(spec.label === undefined ? {} : { label: spec.label, labelType: 'category' as const }),
      ...(spec.classNames === undefined || spec.label === undefined ? {} : { classNames: spec.classNames }),
      ...(delimiter === undefined ? {} : { delimiter }),
      ...(spec.columns === undefined ? {} : { columns: spec.columns }),
    });
    return { name: data, images: false, all };
  }
  if (/\.idx\d?(-ubyte)?(\.gz)?$|-ubyte(\.gz)?$/i.test(data)) return { name: data, images: true, all: loadIdxDataset(data, spec.labels) };
  throw new InvalidOptionError(
    `--data must be 'digits', 'fashion', an IDX file (…-ubyte, .idx, optionally .gz) or a .csv file; got '${data}'.`,
  );
}

/** `--data` as stored in a record: built-in names as they are, files as absolute paths. */
export function canonicalData(data: string): string {
  return data === 'digits' || data === 'fashion' ? data : path.resolve(data);
}

/** Checks `--limit`. */
export function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
    throw new InvalidOptionError(`--limit must be a positive integer, got ${limit}.`);
}

/** The train/test split of `source`: Fashion-MNIST's own, else a seeded shuffled split of the first `limit` rows. */
export function splitSource(
  source: Source,
  limit: number | undefined,
  testFraction: number,
  seed: number,
): { train: Dataset; test: Dataset | undefined; rows: number } {
  if (source.fashion !== undefined) {
    let { train, test } = source.fashion;
    if (limit !== undefined) {
      train = take(train, Math.min(limit, train.x.rows));
      test = take(test, Math.min(Math.max(1, Math.round(limit * testFraction)), test.x.rows));
    }
    return { train, test, rows: train.x.rows + test.x.rows };
  }
  let all: Dataset = source.all!;
  if (limit !== undefined) all = take(all, Math.min(limit, all.x.rows));
  if (testFraction > 0 && all.x.rows >= 2) {
    const s = trainTestSplit(all, { testFraction, seed, shuffle: true });
    return { train: s.train, test: s.test, rows: all.x.rows };
  }
  return { train: all, test: undefined, rows: all.x.rows };
}

/** Loads the rows named by `train`'s data flags, splits them (seeded), fits the scaling on the training part and records it all. */
export function loadData(a: DataArgs, seed: number, gaussian: boolean): LoadedData {
  if (!(a['test-fraction'] >= 0 && a['test-fraction'] < 1)) {
    throw new InvalidOptionError(`--test-fraction must be a number in [0, 1), got ${a['test-fraction']}.`);
  }
  checkLimit(a.limit);
  if (isCsv(a.data) && a.label === undefined && !a.unlabeled) {
    throw new InvalidOptionError(
      `--data ${a.data}: name the label column with --label <column>, or pass --unlabeled to use every column as a feature (pretraining only); ` +
        'without either, a label column would silently become a feature.',
    );
  }
  if (a.unlabeled && a.label !== undefined) throw new InvalidOptionError('--unlabeled and --label exclude each other.');
  const source = loadSource(a);
  const split = splitSource(source, a.limit, a['test-fraction'], seed);
  const rows = split.rows;
  let { train, test } = split;
  const raw = train.x;
  const kind = a.scale === 'auto' ? (source.images ? 'none' : gaussian ? 'standardize' : 'minmax') : a.scale;
  let scaler: ScalerJson | undefined;
  if (kind !== 'none') {
    const fitted =
      kind === 'minmax'
        ? { kind, json: new MinMaxScaler().fit(train.x).toJSON() }
        : { kind, json: new Standardizer().fit(train.x).toJSON() };
    scaler = fitted as ScalerJson;
    const apply = scalerFromJson(scaler);
    train = { ...train, x: apply(train.x) };
    if (test !== undefined) test = { ...test, x: apply(test.x) };
  }
  const classNames = source.all?.classNames;
  const delimiter = delimiterOf(a.delimiter);
  const training: TrainingRecord = {
    data: canonicalData(a.data),
    ...(a.labels === undefined ? {} : { labelsFile: path.resolve(a.labels) }),
    ...(a.label === undefined ? {} : { label: a.label }),
    ...(delimiter === undefined ? {} : { delimiter }),
    ...(source.images || train.featureNames === undefined ? {} : { featureNames: train.featureNames }),
    ...(classNames === undefined ? {} : { classNames }),
    ...(a.limit === undefined ? {} : { limit: a.limit }),
    testFraction: a['test-fraction'],
    splitSeed: seed,
    rows,
    trainRows: train.x.rows,
    testRows: test?.x.rows ?? 0,
    trainContentHash: contentHash(raw),
    trainRowFingerprints: encodeFingerprints(rowFingerprints(raw)),
    scale: kind,
  };
  return { train, test, description: describe(source.name, train, test), scaler, training, classNames };
}

/** e.g. "tx.csv (800 train / 200 test, 30 features)". */
export function describe(name: string, train: Dataset, test: Dataset | undefined): string {
  return `${name} (${train.x.rows} train${test === undefined ? '' : ` / ${test.x.rows} test`}, ${train.x.cols} features)`;
}

/** The transform a stored scaler applies. */
export function scalerFromJson(s: ScalerJson): (x: HostMatrix) => HostMatrix {
  if (s.kind === 'minmax') {
    const m = MinMaxScaler.fromJSON(s.json as Parameters<typeof MinMaxScaler.fromJSON>[0]);
    return (x) => m.transform(x);
  }
  const m = Standardizer.fromJSON(s.json as Parameters<typeof Standardizer.fromJSON>[0]);
  return (x) => m.transform(x);
}
