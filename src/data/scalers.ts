/**
 * Per-column scaling fitted on training data and applied unchanged to validation/test data.
 * `transform` always returns a new matrix; the input is never modified.
 */
import { DatasetError, NotFittedError, ShapeMismatchError } from '../errors.js';
import type { HostMatrix, MatrixInput } from '../validate.js';
import { toHostMatrix, validateOptions } from '../validate.js';

function checkCols(owner: string, x: HostMatrix, cols: number): void {
  if (x.cols !== cols) {
    throw new ShapeMismatchError(`Argument 'x' passed to '${owner}.transform' must have ${cols} columns (as fitted), got ${x.cols}.`);
  }
}

function numberArray(owner: string, json: Record<string, unknown>, key: string): Float64Array {
  const v = json[key];
  if (!Array.isArray(v) || !v.every((e) => typeof e === 'number' && Number.isFinite(e))) {
    throw new DatasetError(`${owner}.fromJSON: '${key}' must be an array of finite numbers.`, 'ESHAPE');
  }
  return Float64Array.from(v as number[]);
}

function jsonObject(owner: string, kind: string, json: unknown): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || (json as { kind?: unknown }).kind !== kind) {
    throw new DatasetError(`${owner}.fromJSON: expected an object with kind '${kind}'.`, 'ESHAPE');
  }
  return json as Record<string, unknown>;
}

/** The JSON form of a fitted {@link Standardizer}. */
export interface StandardizerJson {
  readonly kind: 'standardizer';
  readonly mean: number[];
  readonly std: number[];
}

/**
 * Standardizes each column to zero mean and unit variance: `(x - mean) / std`, with the mean and
 * the population standard deviation (divisor `n`) of the training rows; a constant column gets
 * `std = 1` (it becomes all zeros).
 */
export class Standardizer {
  private mean: Float64Array | undefined;
  private std: Float64Array | undefined;

  /** Learns the per-column mean and standard deviation of `x` (shape `[rows, cols]`, rows ≥ 1). */
  fit(x: MatrixInput): this {
    const m = toHostMatrix(x, 'Standardizer.fit', 'x');
    const { rows, cols, data } = m;
    const mean = new Float64Array(cols);
    const sq = new Float64Array(cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j]! += data[i * cols + j]!;
    for (let j = 0; j < cols; j++) mean[j]! /= rows;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const d = data[i * cols + j]! - mean[j]!;
        sq[j]! += d * d;
      }
    }
    const std = new Float64Array(cols);
    for (let j = 0; j < cols; j++) {
      const s = Math.sqrt(sq[j]! / rows);
      std[j] = s > 0 ? s : 1;
    }
    this.mean = mean;
    this.std = std;
    return this;
  }

  /** A new matrix `(x - mean) / std`, shape `[rows, cols]` as `x`. */
  transform(x: MatrixInput): HostMatrix {
    const { mean, std } = this.fitted();
    const m = toHostMatrix(x, 'Standardizer.transform', 'x', { minRows: 0 });
    checkCols('Standardizer', m, mean.length);
    const out = new Float32Array(m.data.length);
    const cols = m.cols;
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = (m.data[i * cols + j]! - mean[j]!) / std[j]!;
    return { rows: m.rows, cols, data: out };
  }

  /** `fit(x)` then `transform(x)`. */
  fitTransform(x: MatrixInput): HostMatrix {
    return this.fit(x).transform(x);
  }

  /** The fitted per-column means and standard deviations (copies). */
  get parameters(): { mean: Float64Array; std: Float64Array } {
    const { mean, std } = this.fitted();
    return { mean: mean.slice(), std: std.slice() };
  }

  /** The fitted parameters as plain JSON. */
  toJSON(): StandardizerJson {
    const { mean, std } = this.fitted();
    return { kind: 'standardizer', mean: Array.from(mean), std: Array.from(std) };
  }

  /** A fitted standardizer from {@link Standardizer.toJSON}'s output; throws {@link DatasetError} if malformed. */
  static fromJSON(json: unknown): Standardizer {
    const fields = jsonObject('Standardizer', 'standardizer', json);
    const mean = numberArray('Standardizer', fields, 'mean');
    const std = numberArray('Standardizer', fields, 'std');
    if (mean.length !== std.length || !std.every((s) => s > 0)) {
      throw new DatasetError(`Standardizer.fromJSON: 'mean' and 'std' must have equal lengths and every std must be > 0.`, 'ESHAPE');
    }
    const s = new Standardizer();
    s.mean = mean;
    s.std = std;
    return s;
  }

  private fitted(): { mean: Float64Array; std: Float64Array } {
    if (this.mean === undefined || this.std === undefined) {
      throw new NotFittedError('This Standardizer is not fitted yet; call fit(trainingData) first.');
    }
    return { mean: this.mean, std: this.std };
  }
}

/** The JSON form of a fitted {@link MinMaxScaler}. */
export interface MinMaxScalerJson {
  readonly kind: 'minmax';
  readonly min: number[];
  readonly max: number[];
  readonly clip: boolean;
}

/** Options of {@link MinMaxScaler}. */
export interface MinMaxScalerOptions {
  /**
   * Clip transformed values to [0, 1] (default `true`): data not seen in `fit` can fall outside
   * the training range, and Bernoulli visible units need values in [0, 1].
   */
  readonly clip?: boolean;
}

/**
 * Scales each column to [0, 1]: `(x - min) / (max - min)` with the training minimum and maximum;
 * a constant column maps to 0.
 */
export class MinMaxScaler {
  readonly clip: boolean;
  private min: Float64Array | undefined;
  private max: Float64Array | undefined;

  constructor(options: MinMaxScalerOptions = {}) {
    validateOptions('MinMaxScaler', { clip: { kind: 'boolean' } }, options);
    this.clip = options.clip ?? true;
  }

  /** Learns the per-column minimum and maximum of `x` (shape `[rows, cols]`, rows ≥ 1). */
  fit(x: MatrixInput): this {
    const { rows, cols, data } = toHostMatrix(x, 'MinMaxScaler.fit', 'x');
    const min = new Float64Array(cols).fill(Infinity);
    const max = new Float64Array(cols).fill(-Infinity);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const v = data[i * cols + j]!;
        if (v < min[j]!) min[j] = v;
        if (v > max[j]!) max[j] = v;
      }
    }
    this.min = min;
    this.max = max;
    return this;
  }

  /** A new matrix `(x - min) / (max - min)` (clipped to [0, 1] when `clip`), shape as `x`. */
  transform(x: MatrixInput): HostMatrix {
    const { min, max } = this.fitted();
    const m = toHostMatrix(x, 'MinMaxScaler.transform', 'x', { minRows: 0 });
    checkCols('MinMaxScaler', m, min.length);
    const cols = m.cols;
    const scale = new Float64Array(cols);
    for (let j = 0; j < cols; j++) scale[j] = max[j]! > min[j]! ? 1 / (max[j]! - min[j]!) : 0;
    const out = new Float32Array(m.data.length);
    for (let i = 0; i < m.rows; i++) {
      for (let j = 0; j < cols; j++) {
        let v = (m.data[i * cols + j]! - min[j]!) * scale[j]!;
        if (this.clip) v = v < 0 ? 0 : v > 1 ? 1 : v;
        out[i * cols + j] = v;
      }
    }
    return { rows: m.rows, cols, data: out };
  }

  /** `fit(x)` then `transform(x)`. */
  fitTransform(x: MatrixInput): HostMatrix {
    return this.fit(x).transform(x);
  }

  /** The fitted per-column minima and maxima (copies). */
  get parameters(): { min: Float64Array; max: Float64Array } {
    const { min, max } = this.fitted();
    return { min: min.slice(), max: max.slice() };
  }

  /** The fitted parameters as plain JSON. */
  toJSON(): MinMaxScalerJson {
    const { min, max } = this.fitted();
    return { kind: 'minmax', min: Array.from(min), max: Array.from(max), clip: this.clip };
  }

  /** A fitted scaler from {@link MinMaxScaler.toJSON}'s output; throws {@link DatasetError} if malformed. */
  static fromJSON(json: unknown): MinMaxScaler {
    const fields = jsonObject('MinMaxScaler', 'minmax', json);
    const min = numberArray('MinMaxScaler', fields, 'min');
    const max = numberArray('MinMaxScaler', fields, 'max');
    if (min.length !== max.length || min.some((v, j) => v > max[j]!) || typeof fields.clip !== 'boolean') {
      throw new DatasetError(
        `MinMaxScaler.fromJSON: 'min' and 'max' must have equal lengths with min ≤ max, and 'clip' must be a boolean.`,
        'ESHAPE',
      );
    }
    const s = new MinMaxScaler({ clip: fields.clip });
    s.min = min;
    s.max = max;
    return s;
  }

  private fitted(): { min: Float64Array; max: Float64Array } {
    if (this.min === undefined || this.max === undefined) {
      throw new NotFittedError('This MinMaxScaler is not fitted yet; call fit(trainingData) first.');
    }
    return { min: this.min, max: this.max };
  }
}
