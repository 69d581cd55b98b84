/**
 * Data in the shapes people have: every public method that takes a matrix accepts an `ndarray`
 * (2-D, any strides, float32 or float64), a typed array with an explicit shape, `{rows, cols, data}`
 * and `number[][]`; every method that takes class labels accepts any array of integers.
 * {@link toMatrix} and {@link toLabels} convert them to the row-major float32 / int32 arrays the
 * kernels use, copying only when the input is not already in that form.
 */
import ndarray from 'ndarray';
import ops from 'ndarray-ops';
import { InvalidDataError, ShapeMismatchError } from '../errors.js';
import type { HostMatrix } from '../validate.js';

/** The numeric typed arrays accepted as matrix storage. */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Uint32Array;

/**
 * The fields of an [ndarray](https://github.com/scijs/ndarray) that are read: any object with
 * these fields works (strided views, transposes and slices included).
 */
export interface NdArrayLike {
  readonly data: NumericArray | readonly number[];
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly offset: number;
  readonly dtype?: string;
}

/** A flat row-major array with its shape `[rows, cols]`. */
export interface ShapedArray {
  readonly data: NumericArray | readonly number[];
  readonly shape: readonly [number, number];
}

/** `{rows, cols, data}` with row-major data of any numeric type (a {@link HostMatrix} when float32). */
export interface RowsColsMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: NumericArray | readonly number[];
}

/**
 * Everything accepted where a matrix is expected: a {@link HostMatrix}, any {@link RowsColsMatrix},
 * an {@link NdArrayLike} (2-D), a {@link ShapedArray}, or an array of equal-length rows.
 */
export type MatrixLike = HostMatrix | RowsColsMatrix | NdArrayLike | ShapedArray | ArrayLike<ArrayLike<number>>;

/** Everything accepted where class labels are expected: integers ≥ 0 in any array, or a 1-D ndarray. */
export type LabelsLike = Int32Array | NumericArray | readonly number[] | NdArrayLike;

const ACCEPTED =
  'an ndarray (2-D, float32 or float64), {data, shape: [rows, cols]} (a typed array with its shape), {rows, cols, data} or number[][]';
const ACCEPTED_LABELS = 'an array of integer class indices >= 0 (Int32Array, any typed array, number[] or a 1-D ndarray)';

function isNumericArray(x: unknown): x is NumericArray {
  return ArrayBuffer.isView(x) && !(x instanceof DataView) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array);
}

function isStorage(x: unknown): x is NumericArray | readonly number[] {
  return isNumericArray(x) || Array.isArray(x);
}

function isNdArray(x: object): x is NdArrayLike {
  const candidate = x as Partial<NdArrayLike>;
  return (
    Array.isArray(candidate.shape) &&
    Array.isArray(candidate.stride) &&
    typeof candidate.offset === 'number' &&
    candidate.data !== undefined
  );
}

/** A short description of what was given, for error messages. */
export function describeInput(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (typeof x !== 'object') return `a ${typeof x}`;
  if (isNdArray(x)) return `a ${x.shape.length}-D ndarray of shape [${x.shape.join(', ')}] (dtype ${x.dtype ?? typeof x.data})`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} of length ${(x as unknown as ArrayLike<unknown>).length ?? x.byteLength}`;
  if (Array.isArray(x)) {
    const first: unknown = x[0];
    return x.length === 0
      ? 'an empty array'
      : Array.isArray(first) || isNumericArray(first)
        ? `an array of ${x.length} rows`
        : `an array of ${x.length} ${typeof first}s`;
  }
  const keys = Object.keys(x).slice(0, 6);
  return `an object with keys {${keys.join(', ')}}`;
}

function bad(arg: string, method: string, x: unknown, why?: string): ShapeMismatchError {
  const detail = why === undefined ? '' : ` (${why})`;
  return new ShapeMismatchError(`Argument '${arg}' passed to '${method}' must be ${ACCEPTED}; got ${describeInput(x)}${detail}.`);
}

function checkDims(rows: unknown, cols: unknown, arg: string, method: string, x: unknown): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || (rows as number) < 0 || (cols as number) < 0) {
    throw bad(arg, method, x, `shape [${String(rows)}, ${String(cols)}] is not two integers >= 0`);
  }
}

/** Row-major float32 copy of flat storage; values pass through `Math.fround` as any Float32Array store would. */
function flatToHost(
  rows: number,
  cols: number,
  data: NumericArray | readonly number[],
  arg: string,
  method: string,
  x: unknown,
): HostMatrix {
  if (data.length !== rows * cols) {
    throw new ShapeMismatchError(
      `Argument '${arg}' passed to '${method}' claims shape [${rows}, ${cols}] but holds ${data.length} values (expected ${rows * cols}).`,
    );
  }
  if (data instanceof Float32Array) return { rows, cols, data };
  if (Array.isArray(data)) {
    const out = new Float32Array(data.length);
    for (let k = 0; k < data.length; k++) {
      const v: unknown = data[k];
      if (typeof v !== 'number') throw bad(arg, method, x, `element ${k} is ${describeInput(v)}, not a number`);
      out[k] = v;
    }
    return { rows, cols, data: out };
  }
  return { rows, cols, data: Float32Array.from(data as ArrayLike<number>) };
}

function ndToHost(x: NdArrayLike, arg: string, method: string): HostMatrix {
  if (x.shape.length !== 2) throw bad(arg, method, x, 'an ndarray must have 2 dimensions: [rows, cols]');
  const [rows, cols] = x.shape as [number, number];
  checkDims(rows, cols, arg, method, x);
  if (!isStorage(x.data)) throw bad(arg, method, x, 'its data is not a numeric array');
  const out = new Float32Array(rows * cols);
  if (rows * cols === 0) return { rows, cols, data: out };
  if (x.stride.length !== 2 || !x.stride.every((s) => Number.isSafeInteger(s))) throw bad(arg, method, x, 'its stride is not two integers');
  const [s0, s1] = x.stride as [number, number];
  const last = x.offset + Math.max(0, s0 * (rows - 1)) + Math.max(0, s1 * (cols - 1));
  const first = x.offset + Math.min(0, s0 * (rows - 1)) + Math.min(0, s1 * (cols - 1));
  if (!Number.isSafeInteger(x.offset) || first < 0 || last >= x.data.length) {
    throw bad(arg, method, x, `its offset and strides reach outside its ${x.data.length} values`);
  }
  const src = ndarray(x.data as ndarray.Data<number>, [rows, cols], [s0, s1], x.offset);
  ops.assign(ndarray(out, [rows, cols]), src);
  return { rows, cols, data: out };
}

function rowsToHost(x: ArrayLike<ArrayLike<number>>, arg: string, method: string): HostMatrix {
  const rows = x.length;
  const first = rows > 0 ? x[0] : undefined;
  const cols = first === undefined || first === null ? 0 : first.length;
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const row: unknown = x[i];
    if (row === null || typeof row !== 'object' || typeof (row as ArrayLike<unknown>).length !== 'number') {
      throw bad(arg, method, x, `row ${i} is ${describeInput(row)}, not an array of numbers`);
    }
    const r = row as ArrayLike<unknown>;
    if (r.length !== cols)
      throw new ShapeMismatchError(
        `Argument '${arg}' passed to '${method}': row ${i} has ${r.length} columns, expected ${cols} (as row 0).`,
      );
    for (let j = 0; j < cols; j++) {
      const v = r[j];
      if (typeof v !== 'number') throw bad(arg, method, x, `row ${i}, column ${j} is ${describeInput(v)}, not a number`);
      data[i * cols + j] = v;
    }
  }
  return { rows, cols, data };
}

/**
 * Converts any accepted matrix shape ({@link MatrixLike}) to a row-major float32 {@link HostMatrix}
 * of shape `[rows, cols]`. A {@link HostMatrix} is returned as is (not copied); everything else is
 * copied. Checks structure only (shape, storage, element types); values are checked by the caller.
 * Throws {@link ShapeMismatchError} naming `argName`, `method`, what was given and what is accepted.
 */
export function toMatrix(x: unknown, argName: string, method: string): HostMatrix {
  if (x === null || typeof x !== 'object') throw bad(argName, method, x);
  if (isNdArray(x)) return ndToHost(x, argName, method);
  const candidate = x as { rows?: unknown; cols?: unknown; data?: unknown; shape?: unknown };
  if (candidate.data !== undefined && (candidate.rows !== undefined || candidate.cols !== undefined)) {
    checkDims(candidate.rows, candidate.cols, argName, method, x);
    if (!isStorage(candidate.data)) throw bad(argName, method, x, "'data' is not a numeric array");
    return flatToHost(candidate.rows as number, candidate.cols as number, candidate.data, argName, method, x);
  }
  if (candidate.data !== undefined && candidate.shape !== undefined) {
    if (!Array.isArray(candidate.shape) || candidate.shape.length !== 2) throw bad(argName, method, x, "'shape' must be [rows, cols]");
    checkDims(candidate.shape[0], candidate.shape[1], argName, method, x);
    if (!isStorage(candidate.data)) throw bad(argName, method, x, "'data' is not a numeric array");
    return flatToHost(candidate.shape[0] as number, candidate.shape[1] as number, candidate.data, argName, method, x);
  }
  if (isNumericArray(x)) throw bad(argName, method, x, 'a flat typed array needs its shape: pass {data, shape: [rows, cols]}');
  if (typeof (x as ArrayLike<unknown>).length === 'number') {
    const rows = x as ArrayLike<unknown>;
    if (rows.length > 0 && typeof rows[0] === 'number')
      throw bad(argName, method, x, 'a flat array of numbers needs its shape: pass {data, shape: [rows, cols]}');
    return rowsToHost(x as ArrayLike<ArrayLike<number>>, argName, method);
  }
  throw bad(argName, method, x);
}

/**
 * Converts class labels given as any integer array ({@link LabelsLike}) to an `Int32Array`
 * (returned as is when it already is one). Every value must be an integer in `[0, 2^31)`;
 * throws {@link ShapeMismatchError} for a wrong container and {@link InvalidDataError} naming the
 * first bad element.
 */
export function toLabels(y: unknown, argName: string, method: string): Int32Array {
  let values: ArrayLike<unknown>;
  if (y instanceof Int32Array) values = y;
  else if (y !== null && typeof y === 'object' && isNdArray(y)) {
    if (y.shape.length !== 1) {
      throw new ShapeMismatchError(`Argument '${argName}' passed to '${method}' must be ${ACCEPTED_LABELS}; got ${describeInput(y)}.`);
    }
    const n = y.shape[0]!;
    const s = y.stride[0]!;
    const pick: unknown[] = [];
    for (let i = 0; i < n; i++) pick.push((y.data as ArrayLike<unknown>)[y.offset + i * s]);
    values = pick;
  } else if (isNumericArray(y) || Array.isArray(y)) values = y as ArrayLike<unknown>;
  else throw new ShapeMismatchError(`Argument '${argName}' passed to '${method}' must be ${ACCEPTED_LABELS}; got ${describeInput(y)}.`);
  if (values instanceof Int32Array) {
    for (let i = 0; i < values.length; i++) {
      if (values[i]! < 0)
        throw new InvalidDataError(
          `Argument '${argName}' passed to '${method}' must hold integer class indices >= 0; element ${i} is ${values[i]}.`,
        );
    }
    return values;
  }
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new InvalidDataError(
        `Argument '${argName}' passed to '${method}' must hold integer class indices >= 0; element ${i} is ${typeof v === 'number' ? v : describeInput(v)}.`,
      );
    }
    out[i] = v;
  }
  return out;
}
