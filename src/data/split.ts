/** Train/test splits and per-peer shards of a {@link Dataset}. Every result holds copies of the rows. */
import { InvalidOptionError } from '../errors.js';
import { Random } from '../random.js';
import { validateOptions } from '../validate.js';
import type { Dataset } from './dataset.js';
import { checkDataset, sliceDataset, subset } from './dataset.js';

/** Options of {@link trainTestSplit}. */
export interface SplitOptions {
  /** The fraction of rows (0 < f < 1) for the test set, rounded up (default 0.2 unless `testSize` is given). */
  readonly testFraction?: number;
  /** The number of test rows; alternative to `testFraction`. */
  readonly testSize?: number;
  /** Seed of the shuffle (default 0). */
  readonly seed?: number;
  /** Shuffle before splitting (default `true`); without, the last rows are the test set. */
  readonly shuffle?: boolean;
  /** Keep the class proportions of `y` in both parts (needs class labels and `shuffle`). */
  readonly stratify?: boolean;
}

const SPLIT_OPTIONS = {
  testFraction: { kind: 'number', min: 0, max: 1, minOpen: true, maxOpen: true },
  testSize: { kind: 'integer', min: 1 },
  seed: { kind: 'integer' },
  shuffle: { kind: 'boolean' },
  stratify: { kind: 'boolean' },
} as const;

/**
 * Splits `ds` into a training and a test part. The test part has `testSize` rows, or
 * `ceil(testFraction · rows)`. With `shuffle`, rows are drawn by a permutation from
 * {@link Random}(`seed`), so one seed always gives the same split; with `stratify`, each class `c`
 * contributes `n_c · testRows / rows` test rows (largest remainders rounded up, so the total is
 * exact) and both parts are then shuffled.
 */
export function trainTestSplit(ds: Dataset, options: SplitOptions = {}): { train: Dataset; test: Dataset } {
  validateOptions('trainTestSplit', SPLIT_OPTIONS, options);
  checkDataset(ds, 'trainTestSplit');
  if (options.testFraction !== undefined && options.testSize !== undefined) {
    throw new InvalidOptionError(`trainTestSplit takes 'testFraction' or 'testSize', not both.`);
  }
  const n = ds.x.rows;
  // The tolerance keeps e.g. 0.1 · 30 = 3.0000000000000004 at 3 test rows.
  const nTest = options.testSize ?? Math.ceil((options.testFraction ?? 0.2) * n - 1e-9);
  if (nTest >= n || nTest < 1) {
    throw new InvalidOptionError(
      `trainTestSplit: a test set of ${nTest} row(s) from ${n} leaves no training or no test rows; expected 1 ≤ test rows < ${n}.`,
    );
  }
  const shuffle = options.shuffle ?? true;
  const rng = new Random(options.seed ?? 0);
  if (options.stratify === true) {
    if (!shuffle) throw new InvalidOptionError(`trainTestSplit: 'stratify' needs 'shuffle' (a stratified split draws rows at random).`);
    if (!(ds.y instanceof Int32Array)) {
      throw new InvalidOptionError(
        `trainTestSplit: 'stratify' needs class labels (an Int32Array 'y'); this dataset has ${ds.y === undefined ? 'none' : 'numeric targets'}.`,
      );
    }
    const { train, test } = stratifiedIndices(ds.y, nTest, rng);
    return { train: subset(ds, train, 'train split'), test: subset(ds, test, 'test split') };
  }
  if (!shuffle) return { train: sliceDataset(ds, 0, n - nTest, 'train split'), test: sliceDataset(ds, n - nTest, n, 'test split') };
  const perm = rng.permutation(n);
  return { train: subset(ds, perm.subarray(nTest), 'train split'), test: subset(ds, perm.subarray(0, nTest), 'test split') };
}

function stratifiedIndices(y: Int32Array, nTest: number, rng: Random): { train: Uint32Array; test: Uint32Array } {
  const n = y.length;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const list = byClass.get(y[i]!);
    if (list === undefined) byClass.set(y[i]!, [i]);
    else list.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const quota = classes.map((c) => (byClass.get(c)!.length * nTest) / n);
  const take = quota.map(Math.floor);
  let left = nTest - take.reduce((a, b) => a + b, 0);
  const order = classes.map((_, k) => k).sort((a, b) => quota[b]! - take[b]! - (quota[a]! - take[a]!) || a - b);
  for (const k of order) {
    if (left === 0) break;
    take[k]!++;
    left--;
  }
  const train: number[] = [];
  const test: number[] = [];
  classes.forEach((c, k) => {
    const rows = rng.shuffle(byClass.get(c)!);
    for (let i = 0; i < rows.length; i++) (i < take[k]! ? test : train).push(rows[i]!);
  });
  return { train: rng.shuffle(Uint32Array.from(train)), test: rng.shuffle(Uint32Array.from(test)) };
}

/**
 * Splits `ds` in its row order into training, validation and test parts (no shuffling: for data
 * ordered in time, the model is trained on the past and tested on the future). `fractions` are
 * `[train, val, test]`, each ≥ 0, summing to 1; the boundaries are `round(train · rows)` and
 * `round((train + val) · rows)`.
 */
export function timeOrderedSplit(
  ds: Dataset,
  fractions: readonly [number, number, number],
): { train: Dataset; val: Dataset; test: Dataset } {
  checkDataset(ds, 'timeOrderedSplit');
  if (
    !Array.isArray(fractions) ||
    fractions.length !== 3 ||
    !fractions.every((f) => typeof f === 'number' && Number.isFinite(f) && f >= 0)
  ) {
    throw new InvalidOptionError(
      `Argument 'fractions' passed to 'timeOrderedSplit' must be [train, val, test], three numbers ≥ 0. Got ${String(fractions)}.`,
    );
  }
  const [a, b, c] = fractions;
  if (Math.abs(a + b + c - 1) > 1e-9) {
    throw new InvalidOptionError(`Argument 'fractions' passed to 'timeOrderedSplit' must sum to 1. Got ${a} + ${b} + ${c} = ${a + b + c}.`);
  }
  const n = ds.x.rows;
  const b1 = Math.round(a * n);
  const b2 = Math.min(n, Math.round((a + b) * n));
  if (b1 === 0) throw new InvalidOptionError(`timeOrderedSplit: a training fraction of ${a} of ${n} rows leaves no training rows.`);
  return {
    train: sliceDataset(ds, 0, b1, 'train part'),
    val: sliceDataset(ds, b1, b2, 'validation part'),
    test: sliceDataset(ds, b2, n, 'test part'),
  };
}

/** How {@link shard} deals rows out. */
export type ShardMode = 'contiguous' | 'strided';

/**
 * The share of peer `index` (0-based) of `count` peers. `'contiguous'` (default): the rows are cut
 * into `count` consecutive blocks, the first `rows mod count` blocks one row longer; `'strided'`:
 * rows `index, index + count, index + 2·count, …`. Either way every row is in exactly one shard and
 * shard sizes differ by at most 1. Throws {@link InvalidOptionError} unless
 * `0 ≤ index < count ≤ rows`.
 */
export function shard(ds: Dataset, index: number, count: number, mode: ShardMode = 'contiguous'): Dataset {
  checkDataset(ds, 'shard');
  const n = ds.x.rows;
  if (!Number.isSafeInteger(count) || count < 1 || count > n) {
    throw new InvalidOptionError(
      `Argument 'count' passed to 'shard' must be an integer in [1, ${n}] (the dataset has ${n} rows). Got ${String(count)}.`,
    );
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new InvalidOptionError(`Argument 'index' passed to 'shard' must be an integer in [0, ${count - 1}]. Got ${String(index)}.`);
  }
  if (mode !== 'contiguous' && mode !== 'strided') {
    throw new InvalidOptionError(`Argument 'mode' passed to 'shard' must be 'contiguous' or 'strided'. Got ${String(mode)}.`);
  }
  const label = `shard ${index + 1}/${count}`;
  if (mode === 'contiguous') {
    const base = Math.floor(n / count);
    const extra = n % count;
    const start = index * base + Math.min(index, extra);
    return sliceDataset(ds, start, start + base + (index < extra ? 1 : 0), label);
  }
  const rows: number[] = [];
  for (let r = index; r < n; r += count) rows.push(r);
  return subset(ds, rows, `${label} strided`);
}
