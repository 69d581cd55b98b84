/**
 * The `--data` option group shared by `train` and `evaluate`: where the rows come from, how they
 * are split and scaled. Scaling is fitted on the training rows only; the fitted scaler travels in
 * the model file's metadata so `evaluate` applies the same transform.
 */
import type { Argv } from 'yargs';
import {
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

/** Flags of the data group. */
export interface DataArgs {
  readonly data: string;
  readonly labels?: string | undefined;
  readonly label?: string | undefined;
  readonly limit?: number | undefined;
  readonly 'test-fraction': number;
  readonly scale: 'auto' | 'none' | 'minmax' | 'standardize';
}

/** Adds the data flags to a command. */
export function dataOptions<T>(y: Argv<T>, what: 'train' | 'evaluate'): Argv<T & DataArgs> {
  return y
    .option('data', {
      type: 'string',
      default: 'digits',
      describe:
        "'digits' (10,000 real MNIST digits bundled with the package), 'fashion' (Fashion-MNIST from Debian's dataset-fashion-mnist), " +
        'an IDX/IDX.gz images file (with --labels), or a .csv file (with --label)',
      group: 'Data:',
    })
    .option('labels', { type: 'string', describe: 'IDX labels file for an IDX images file', group: 'Data:' })
    .option('label', { type: 'string', describe: 'name of the label column of a CSV file', group: 'Data:' })
    .option('limit', { type: 'number', describe: 'use only the first N rows (quick runs)', group: 'Data:' })
    .option('test-fraction', {
      type: 'number',
      default: 0.2,
      describe: what === 'train' ? 'share of rows held out for testing (seeded split; Fashion-MNIST uses its own 10k test set)' : 'share of rows evaluated (the same seeded split as train)',
      group: 'Data:',
    })
    .option('scale', {
      choices: ['auto', 'none', 'minmax', 'standardize'] as const,
      default: 'auto' as const,
      describe: "feature scaling fitted on the training rows: 'auto' = none for images, min-max to [0,1] for CSV (standardize for Gaussian visible units)",
      group: 'Data:',
    }) as unknown as Argv<T & DataArgs>;
}

/** What {@link loadData} returns. */
export interface LoadedData {
  readonly train: Dataset;
  readonly test: Dataset | undefined;
  /** e.g. "bundled MNIST digits (8000 train / 2000 test)". */
  readonly description: string;
  /** The scaler fitted on the training rows, serializable into the model metadata. */
  readonly scaler: ScalerJson | undefined;
}

/** A fitted scaler as stored in model metadata. */
export type ScalerJson = { readonly kind: 'minmax'; readonly json: unknown } | { readonly kind: 'standardize'; readonly json: unknown };

/** Loads the rows named by the data flags, splits them (seeded) and fits the scaling on the training part. */
export function loadData(a: DataArgs, seed: number, gaussian: boolean, fittedScaler?: ScalerJson): LoadedData {
  if (!(a['test-fraction'] >= 0 && a['test-fraction'] < 1)) {
    throw new InvalidOptionError(`--test-fraction must be a number in [0, 1), got ${a['test-fraction']}.`);
  }
  if (a.limit !== undefined && !(Number.isInteger(a.limit) && a.limit > 0)) {
    throw new InvalidOptionError(`--limit must be a positive integer, got ${a.limit}.`);
  }
  let train: Dataset;
  let test: Dataset | undefined;
  let name: string;
  let images = true;
  if (a.data === 'fashion') {
    const f = loadFashionMnist();
    train = f.train;
    test = f.test;
    name = 'Fashion-MNIST';
    if (a.limit !== undefined) {
      train = take(train, Math.min(a.limit, train.x.rows));
      test = take(test, Math.min(Math.max(1, Math.round(a.limit * a['test-fraction'])), test.x.rows));
    }
  } else {
    let all: Dataset;
    if (a.data === 'digits') {
      all = loadBundledDigits();
      name = 'bundled MNIST digits';
    } else if (/\.csv$/i.test(a.data)) {
      all = loadCsv(a.data, a.label === undefined ? {} : { label: a.label });
      name = a.data;
      images = false;
    } else if (/\.idx\d?(-ubyte)?(\.gz)?$|-ubyte(\.gz)?$/i.test(a.data)) {
      all = loadIdxDataset(a.data, a.labels);
      name = a.data;
    } else {
      throw new InvalidOptionError(`--data must be 'digits', 'fashion', an IDX file (…-ubyte, .idx, optionally .gz) or a .csv file; got '${a.data}'.`);
    }
    if (a.limit !== undefined) all = take(all, Math.min(a.limit, all.x.rows));
    if (a['test-fraction'] > 0 && all.x.rows >= 2) {
      const s = trainTestSplit(all, { testFraction: a['test-fraction'], seed, shuffle: true });
      train = s.train;
      test = s.test;
    } else {
      train = all;
    }
  }
  const kind = a.scale === 'auto' ? (images ? 'none' : gaussian ? 'standardize' : 'minmax') : a.scale;
  let scaler: ScalerJson | undefined = fittedScaler;
  let apply: ((x: HostMatrix) => HostMatrix) | undefined;
  if (fittedScaler !== undefined) {
    apply = scalerFromJson(fittedScaler);
  } else if (kind === 'minmax') {
    const s = new MinMaxScaler().fit(train.x);
    scaler = { kind: 'minmax', json: s.toJSON() };
    apply = (x) => s.transform(x);
  } else if (kind === 'standardize') {
    const s = new Standardizer().fit(train.x);
    scaler = { kind: 'standardize', json: s.toJSON() };
    apply = (x) => s.transform(x);
  }
  if (apply !== undefined) {
    train = { ...train, x: apply(train.x) };
    if (test !== undefined) test = { ...test, x: apply(test.x) };
  }
  const description = `${name} (${train.x.rows} train${test === undefined ? '' : ` / ${test.x.rows} test`}, ${train.x.cols} features)`;
  return { train, test, description, scaler };
}

function scalerFromJson(s: ScalerJson): (x: HostMatrix) => HostMatrix {
  if (s.kind === 'minmax') {
    const m = MinMaxScaler.fromJSON(s.json as Parameters<typeof MinMaxScaler.fromJSON>[0]);
    return (x) => m.transform(x);
  }
  const m = Standardizer.fromJSON(s.json as Parameters<typeof Standardizer.fromJSON>[0]);
  return (x) => m.transform(x);
}
