/**
 * Option validation by table (one constraints object per class, one helper, one message shape)
 * and data validation at the public boundary.
 */
import { type MatrixLike, toMatrix } from './data/matrix.js';
import { InvalidDataError, InvalidOptionError, ShapeMismatchError } from './errors.js';

/** One constraint on one option. */
export type Constraint =
  | { readonly kind: 'number'; readonly min?: number; readonly max?: number; readonly minOpen?: boolean; readonly maxOpen?: boolean }
  | { readonly kind: 'integer'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'string' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'function' }
  | { readonly kind: 'object' }
  | { readonly kind: 'custom'; readonly expected: string; readonly check: (value: unknown) => boolean };

/** A constraints table: option name → constraint. Options not in the table are rejected. */
export type Constraints = Readonly<Record<string, Constraint>>;

function describe(c: Constraint): string {
  switch (c.kind) {
    case 'number': {
      const lo = c.min === undefined ? '(-inf' : `${c.minOpen ? '(' : '['}${c.min}`;
      const hi = c.max === undefined ? 'inf)' : `${c.max}${c.maxOpen ? ')' : ']'}`;
      return `a number in ${lo}, ${hi}`;
    }
    case 'integer': {
      const lo = c.min === undefined ? '-inf' : String(c.min);
      const hi = c.max === undefined ? 'inf' : String(c.max);
      return `an integer in [${lo}, ${hi}]`;
    }
    case 'boolean':
      return 'a boolean';
    case 'string':
      return 'a string';
    case 'enum':
      return `one of ${c.values.map((v) => `'${v}'`).join(', ')}`;
    case 'function':
      return 'a function';
    case 'object':
      return 'an object';
    case 'custom':
      return c.expected;
  }
}

function satisfies(c: Constraint, v: unknown): boolean {
  switch (c.kind) {
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return false;
      if (c.min !== undefined && (c.minOpen ? v <= c.min : v < c.min)) return false;
      if (c.max !== undefined && (c.maxOpen ? v >= c.max : v > c.max)) return false;
      return true;
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return false;
      if (c.min !== undefined && v < c.min) return false;
      if (c.max !== undefined && v > c.max) return false;
      return true;
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'enum':
      return typeof v === 'string' && c.values.includes(v);
    case 'function':
      return typeof v === 'function';
    case 'object':
      return typeof v === 'object' && v !== null;
    case 'custom':
      return c.check(v);
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}

/**
 * Checks `options` against `constraints`; throws {@link InvalidOptionError} naming the first bad
 * option, e.g. "The 'learningRate' option of Rbm must be a number in (0, inf). Got -1."
 * Options whose value is `undefined` are skipped (defaults apply); unknown names are rejected.
 */
export function validateOptions(owner: string, constraints: Constraints, options: object): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`The options of ${owner} must be an object. Got ${show(options)}.`);
  }
  for (const [name, value] of Object.entries(options)) {
    const c = constraints[name];
    if (c === undefined) {
      const known = Object.keys(constraints).sort().join(', ');
      throw new InvalidOptionError(`${owner} has no option '${name}'. Known options: ${known}.`);
    }
    if (value === undefined) continue;
    if (!satisfies(c, value)) {
      throw new InvalidOptionError(`The '${name}' option of ${owner} must be ${describe(c)}. Got ${show(value)}.`);
    }
  }
}

/** A row-major float32 matrix on the host. */
export interface HostMatrix {
  readonly rows: number;
  readonly cols: number;
  /** `rows * cols` values, row-major. */
  readonly data: Float32Array;
}

/**
 * What a method accepts as a data matrix: a {@link HostMatrix}, an `ndarray` (2-D, any strides),
 * `{data, shape: [rows, cols]}`, `{rows, cols, data}` with any numeric array, or `number[][]`
 * (see {@link toMatrix}).
 */
export type MatrixInput = MatrixLike;

/**
 * Converts `input` to a {@link HostMatrix} with `cols` columns (if given), checking shape and that
 * every value is finite (and in [0, 1] when `unitInterval`). Never mutates or aliases-then-mutates
 * the input: a `HostMatrix` is returned as is (callers must not write to it).
 */
export function toHostMatrix(
  input: MatrixInput,
  where: string,
  arg: string,
  opts: {
    readonly cols?: number;
    readonly unitInterval?: boolean;
    readonly minRows?: number;
    /** A faster scan with {@link firstInvalid}'s meaning (a backend's `firstInvalid`). */
    readonly scan?: (data: Float32Array, unitInterval: boolean) => number;
  } = {},
): HostMatrix {
  let m: HostMatrix;
  if (isHostMatrix(input)) {
    if (!Number.isInteger(input.rows) || !Number.isInteger(input.cols) || input.rows < 0 || input.cols < 0) {
      throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' has an invalid shape ${input.rows}x${input.cols}.`);
    }
    if (input.data.length !== input.rows * input.cols) {
      throw new ShapeMismatchError(
        `Argument '${arg}' passed to '${where}' claims shape ${input.rows}x${input.cols} but holds ${input.data.length} values.`,
      );
    }
    m = input;
  } else {
    m = toMatrix(input, arg, where);
  }
  if (m.rows < (opts.minRows ?? 1)) {
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must have at least ${opts.minRows ?? 1} row(s), got ${m.rows}.`);
  }
  if (opts.cols !== undefined && m.cols !== opts.cols) {
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must have ${opts.cols} columns, got ${m.cols}.`);
  }
  const unit = opts.unitInterval === true;
  const bad = opts.scan !== undefined ? opts.scan(m.data, unit) : firstInvalid(m.data, unit);
  if (bad >= 0) {
    const v = m.data[bad]!;
    const r = Math.floor(bad / m.cols);
    const c = bad % m.cols;
    const expected = unit ? 'a number in [0, 1] (Bernoulli visible units)' : 'a finite number';
    throw new InvalidDataError(`Argument '${arg}' passed to '${where}' must hold ${expected}; row ${r}, column ${c} is ${v}.`);
  }
  return m;
}

/** `{ scan }` for {@link toHostMatrix}'s options: a backend's own `firstInvalid` scan where it has one, else nothing. */
export function backendScan(backend: { firstInvalid?(data: Float32Array, unitInterval: boolean): number }): {
  scan?: (data: Float32Array, unitInterval: boolean) => number;
} {
  return backend.firstInvalid === undefined ? {} : { scan: backend.firstInvalid.bind(backend) };
}

/** The index of the first element of `d` that is not finite (with `unitInterval`, not in [0, 1]), or −1. */
export function firstInvalid(d: Float32Array, unitInterval: boolean): number {
  const lo = unitInterval ? 0 : -3.4028234663852886e38;
  const hi = unitInterval ? 1 : 3.4028234663852886e38;
  // one comparison pair per element, false for NaN as for values out of range
  for (let k = 0; k < d.length; k++) {
    const v = d[k]!;
    if (!(v >= lo && v <= hi)) return k;
  }
  return -1;
}

/** True when `x` has the {@link HostMatrix} shape. */
export function isHostMatrix(x: unknown): x is HostMatrix {
  return (
    typeof x === 'object' &&
    x !== null &&
    (x as { data?: unknown }).data instanceof Float32Array &&
    typeof (x as { rows?: unknown }).rows === 'number' &&
    typeof (x as { cols?: unknown }).cols === 'number'
  );
}

/** Rows `[start, end)` of `m` as a view (no copy). */
export function sliceRows(m: HostMatrix, start: number, end: number): HostMatrix {
  return { rows: end - start, cols: m.cols, data: m.data.subarray(start * m.cols, end * m.cols) };
}
