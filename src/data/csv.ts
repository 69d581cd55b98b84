/**
 * Numeric CSV files (RFC 4180): a header line of column names, then one record per line;
 * fields separated by a one-character delimiter; a field may be quoted with `"` (inside, `""` is a
 * quote, and delimiters and line breaks are literal); lines end with LF or CRLF; blank lines are
 * skipped; a UTF-8 byte-order mark is ignored. The file is read in chunks by a byte scanner, and
 * numbers are parsed from the bytes, so a 150 MB file needs little more memory than its matrix.
 */
import * as fs from 'node:fs';
import { DatasetError, InvalidOptionError } from '../errors.js';
import { validateOptions } from '../validate.js';
import type { Dataset } from './dataset.js';
import { openForRead, readAt } from './read-file.js';

/** Options of {@link loadCsv} and {@link parseCsv}. */
export interface CsvOptions {
  /** The name of the label column; it goes to `y` and is left out of the features. */
  readonly label?: string;
  /**
   * `'class'` (default): labels must be integers ≥ 0 (`y` is an `Int32Array`); `'number'`: any finite
   * number (`Float32Array`); `'category'`: any text — integers ≥ 0 are used as they are, other
   * labels are mapped to `0 … n−1` in sorted order and their texts returned as `classNames`.
   */
  readonly labelType?: 'class' | 'number' | 'category';
  /** With `labelType: 'category'`, the fixed label texts (class `i` is `classNames[i]`); other labels are refused. */
  readonly classNames?: readonly string[];
  /** Whether the first non-blank line names the columns (default `true`); without one, columns are named `col1 … colN`. */
  readonly hasHeader?: boolean;
  /** The field separator, one ASCII character other than `"`, CR or LF (default `','`). */
  readonly delimiter?: string;
  /** The feature columns to use, in this order (default: every column but the label). Other columns are not parsed. */
  readonly columns?: readonly string[];
}

const OPTIONS = {
  label: { kind: 'string' },
  labelType: { kind: 'enum', values: ['class', 'number', 'category'] },
  classNames: {
    kind: 'custom',
    expected: 'a non-empty array of distinct strings',
    check: (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string') && new Set(v).size === v.length,
  },
  hasHeader: { kind: 'boolean' },
  delimiter: {
    kind: 'custom',
    expected: 'one ASCII character other than \'"\', CR or LF',
    check: (v: unknown) => typeof v === 'string' && v.length === 1 && v.charCodeAt(0) < 128 && !'"\r\n'.includes(v),
  },
  columns: {
    kind: 'custom',
    expected: 'a non-empty array of column names',
    check: (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string'),
  },
} as const;

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const CHUNK = 16 << 20;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NONFINITE_RE = /^[+-]?(?:nan|inf|infinity)$/i;

type Step = 'record' | 'blank' | 'incomplete' | 'eof';

/** A resumable scanner over the bytes of a CSV file; fields are byte ranges of `buf`. */
class Scanner {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  final = false;
  line = 1;
  recordLine = 1;
  nFields = 0;
  starts: number[] = [];
  ends: number[] = [];
  escaped: boolean[] = [];
  lines: number[] = [];

  constructor(
    readonly name: string,
    readonly delim: number,
  ) {}

  private push(s: number, e: number, esc: boolean, line: number): void {
    const k = this.nFields++;
    this.starts[k] = s;
    this.ends[k] = e;
    this.escaped[k] = esc;
    this.lines[k] = line;
  }

  /** Scans one record from `pos`; on `'incomplete'` nothing is consumed. */
  next(): Step {
    const { buf, end, delim } = this;
    let p = this.pos;
    if (p >= end) return this.final ? 'eof' : 'incomplete';
    const startLine = this.line;
    let line = startLine;
    this.nFields = 0;
    this.recordLine = startLine;
    for (;;) {
      let e: number;
      if (buf[p] === QUOTE) {
        const fieldLine = line;
        let q = p + 1;
        let esc = false;
        let close: number;
        for (;;) {
          close = buf.indexOf(QUOTE, q);
          if (close < 0 || close >= end) {
            if (!this.final) return 'incomplete';
            throw new DatasetError(
              `${this.name}: line ${fieldLine}: a quoted field is never closed (expected a closing '"' before the end of the file).`,
              'EQUOTE',
              this.name,
            );
          }
          if (close + 1 >= end && !this.final) return 'incomplete';
          if (buf[close + 1] === QUOTE) {
            esc = true;
            q = close + 2;
            continue;
          }
          break;
        }
        for (let i = p + 1; i < close; i++) if (buf[i] === LF) line++;
        this.push(p + 1, close, esc, fieldLine);
        e = close + 1;
        if (e < end && buf[e] !== delim && buf[e] !== CR && buf[e] !== LF) {
          throw new DatasetError(
            `${this.name}: line ${line}: unexpected character '${String.fromCharCode(buf[e]!)}' after the closing quote of field ${this.nFields}; expected the delimiter or the end of the line.`,
            'EQUOTE',
            this.name,
          );
        }
      } else {
        e = p;
        while (e < end) {
          const b = buf[e]!;
          if (b === delim || b === LF || b === CR) break;
          e++;
        }
        this.push(p, e, false, line);
      }
      if (e >= end) {
        if (!this.final) return 'incomplete';
        this.pos = end;
        break;
      }
      const b = buf[e]!;
      if (b === delim) {
        p = e + 1;
        if (p >= end && !this.final) return 'incomplete';
        if (p >= end) {
          this.push(p, p, false, line);
          this.pos = end;
          break;
        }
        continue;
      }
      if (b === CR) {
        if (e + 1 >= end && !this.final) return 'incomplete';
        this.pos = buf[e + 1] === LF ? e + 2 : e + 1;
      } else {
        this.pos = e + 1;
      }
      line++;
      break;
    }
    this.line = line;
    if (this.nFields === 1 && this.starts[0] === this.ends[0] && buf[this.starts[0]! - 1] !== QUOTE) return 'blank';
    return 'record';
  }

  /** The text of field `k` of the current record (quotes removed, `""` unescaped). */
  text(k: number): string {
    const s = this.buf.toString('utf8', this.starts[k], this.ends[k]);
    return this.escaped[k] ? s.replaceAll('""', '"') : s;
  }

  /** Field `k` as a number, or `NaN` when it is not a decimal number (validated by the caller). */
  number(k: number): number {
    if (this.escaped[k]) return parseDecimalString(this.text(k));
    return parseDecimal(this.buf, this.starts[k]!, this.ends[k]!);
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

/**
 * Parses a decimal number from bytes `[s, e)` (surrounding spaces allowed); `NaN` when the text
 * is not one. With ≤ 15 significant digits and a power of ten ≤ 22 the result is one correctly
 * rounded division or multiplication of exact doubles (Clinger's fast path); otherwise `Number()`
 * decides. Either way the value equals `Number(text)`.
 */
function parseDecimal(buf: Buffer, s: number, e: number): number {
  while (s < e && isSpace(buf[s]!)) s++;
  while (e > s && isSpace(buf[e - 1]!)) e--;
  let p = s;
  let neg = false;
  if (p < e && (buf[p] === 0x2d || buf[p] === 0x2b)) {
    neg = buf[p] === 0x2d;
    p++;
  }
  let m = 0;
  let sig = 0;
  let exp = 0;
  let digits = 0;
  while (p < e) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) break;
    if (m !== 0 || d !== 0) {
      if (sig < 15) m = m * 10 + d;
      else exp++;
      sig++;
    }
    digits++;
    p++;
  }
  if (p < e && buf[p] === 0x2e) {
    p++;
    while (p < e) {
      const d = buf[p]! - 0x30;
      if (d < 0 || d > 9) break;
      if (m !== 0 || d !== 0) {
        if (sig < 15) {
          m = m * 10 + d;
          exp--;
        }
        sig++;
      } else {
        exp--;
      }
      digits++;
      p++;
    }
  }
  if (digits === 0) return Number.NaN;
  if (p < e && (buf[p] === 0x65 || buf[p] === 0x45)) {
    p++;
    let eneg = false;
    if (p < e && (buf[p] === 0x2d || buf[p] === 0x2b)) {
      eneg = buf[p] === 0x2d;
      p++;
    }
    let x = 0;
    const from = p;
    while (p < e) {
      const d = buf[p]! - 0x30;
      if (d < 0 || d > 9) break;
      if (x < 1e6) x = x * 10 + d;
      p++;
    }
    if (p === from) return Number.NaN;
    exp += eneg ? -x : x;
  }
  if (p !== e) return Number.NaN;
  if (sig > 15 || exp < -22 || exp > 22) return Number(buf.toString('latin1', s, e));
  const v = exp < 0 ? m / POW10[-exp]! : m * POW10[exp]!;
  return neg ? -v : v;
}

function parseDecimalString(t: string): number {
  const s = t.trim();
  return NUMBER_RE.test(s) ? Number(s) : Number.NaN;
}

function show(t: string): string {
  const s = t.length > 40 ? `${t.slice(0, 40)}…` : t;
  return `'${s}'`;
}

function listColumns(names: readonly string[]): string {
  const shown = names.slice(0, 60).map((n) => `'${n}'`).join(', ');
  return names.length > 60 ? `${shown}, … (${names.length} in all)` : shown;
}

/** A {@link Dataset} read from CSV: with `labelType: 'category'` and text labels, `classNames[i]` is the text of class `i`. */
export interface CsvDataset extends Dataset {
  readonly classNames?: readonly string[];
}

/** Growable typed array. */
class Column<T extends Float32Array | Int32Array> {
  length = 0;
  constructor(
    public data: T,
    private readonly make: (n: number) => T,
  ) {}
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    const bigger = this.make(Math.max(this.data.length * 2, this.length + extra, 1024));
    bigger.set(this.data.subarray(0, this.length));
    this.data = bigger;
  }
  done(): T {
    return this.data.slice(0, this.length) as T;
  }
}

/** Reads records from `sc`, refilling it from `refill` when it runs dry; builds the dataset. */
function build(sc: Scanner, refill: (() => boolean) | undefined, options: CsvOptions): CsvDataset {
  const name = sc.name;
  const step = (): Step => {
    for (;;) {
      const r = sc.next();
      if (r === 'blank') continue;
      if (r === 'incomplete' && refill !== undefined && refill()) continue;
      return r;
    }
  };
  let first = step();
  if (first === 'eof') throw new DatasetError(`${name}: the file is empty; expected a header line and data rows.`, 'EEMPTY', name);

  const hasHeader = options.hasHeader ?? true;
  const nCols = sc.nFields;
  const headerLine = sc.recordLine;
  const header: string[] = [];
  for (let k = 0; k < nCols; k++) header.push(hasHeader ? sc.text(k) : `col${k + 1}`);
  if (hasHeader) {
    const seen = new Map<string, number>();
    header.forEach((h, k) => {
      const prev = seen.get(h);
      if (prev !== undefined) {
        throw new DatasetError(`${name}: line ${headerLine}: columns ${prev + 1} and ${k + 1} are both named '${h}'; expected unique column names.`, 'EHEADER', name);
      }
      seen.set(h, k);
    });
    first = step();
  }
  const index = (col: string, role: string): number => {
    const k = header.indexOf(col);
    if (k < 0) {
      throw new DatasetError(`${name}: no column '${col}' (${role}); the columns are ${listColumns(header)}.`, 'ECOLUMN', name);
    }
    return k;
  };
  const labelIdx = options.label === undefined ? -1 : index(options.label, 'the label');
  let featureIdx: number[];
  if (options.columns !== undefined) {
    featureIdx = options.columns.map((c) => index(c, 'a requested feature'));
    if (labelIdx >= 0 && featureIdx.includes(labelIdx)) {
      throw new InvalidOptionError(`Column '${options.label}' passed to 'loadCsv' is the label; it cannot also be in 'columns'.`);
    }
    if (new Set(featureIdx).size !== featureIdx.length) {
      throw new InvalidOptionError(`The 'columns' option of loadCsv names a column twice: ${options.columns.join(', ')}.`);
    }
  } else {
    featureIdx = header.map((_, k) => k).filter((k) => k !== labelIdx);
  }
  if (featureIdx.length === 0) {
    throw new DatasetError(`${name}: no feature columns left (the only column is the label '${options.label}').`, 'ECOLUMN', name);
  }
  const featureNames = featureIdx.map((k) => header[k]!);
  const cols = featureIdx.length;
  const labelType = options.labelType ?? 'class';
  const classLabels = labelType === 'class';
  const texts: string[] = [];
  const fixedClasses = options.classNames === undefined ? undefined : new Map(options.classNames.map((c, i) => [c, i]));

  const x = new Column(new Float32Array(0), (n) => new Float32Array(n));
  const yi = new Column(new Int32Array(0), (n) => new Int32Array(n));
  const yf = new Column(new Float32Array(0), (n) => new Float32Array(n));
  let classes = 0;
  let rows = 0;

  const bad = (k: number, expected: string, code: string): never => {
    const t = sc.text(k);
    if (t.trim() === '') {
      throw new DatasetError(`${name}: line ${sc.lines[k]!} (data row ${rows + 1}), column '${header[k]!}': missing value (an empty cell); expected ${expected}.`, 'EMISSING', name);
    }
    throw new DatasetError(`${name}: line ${sc.lines[k]!}, column '${header[k]!}': expected ${expected}, got ${show(t)}.`, code, name);
  };
  const value = (k: number, expected: string): number => {
    const v = sc.number(k);
    if (Number.isNaN(v)) bad(k, expected, NONFINITE_RE.test(sc.text(k).trim()) ? 'ENONFINITE' : 'ENONNUMERIC');
    if (!Number.isFinite(Math.fround(v))) bad(k, `${expected} within the float32 range`, 'ENONFINITE');
    return v;
  };

  for (let r = first; r !== 'eof'; r = step()) {
    if (r === 'incomplete') throw new Error('unreachable: a final chunk cannot be incomplete');
    if (sc.nFields !== nCols) {
      throw new DatasetError(
        `${name}: line ${sc.recordLine}: expected ${nCols} fields (as ${hasHeader ? `in the header on line ${headerLine}` : `on line ${headerLine}`}), got ${sc.nFields}.`,
        'ERAGGED',
        name,
      );
    }
    x.reserve(cols);
    const out = x.data;
    let o = x.length;
    for (let j = 0; j < cols; j++) out[o++] = value(featureIdx[j]!, 'a number');
    x.length = o;
    if (labelIdx >= 0) {
      if (labelType === 'category') {
        const t = sc.text(labelIdx).trim();
        if (t === '') bad(labelIdx, 'a class label', 'EMISSING');
        if (fixedClasses !== undefined) {
          const c = fixedClasses.get(t);
          if (c === undefined) bad(labelIdx, `one of the classes ${listColumns(options.classNames!)}`, 'ELABEL');
          yi.reserve(1);
          yi.data[yi.length++] = c!;
        } else {
          texts.push(t);
        }
      } else if (classLabels) {
        const c = value(labelIdx, 'an integer class label ≥ 0');
        if (!Number.isInteger(c) || c < 0 || c > 0x7fffffff) bad(labelIdx, 'an integer class label ≥ 0', 'ELABEL');
        yi.reserve(1);
        yi.data[yi.length++] = c;
        if (c + 1 > classes) classes = c + 1;
      } else {
        yf.reserve(1);
        yf.data[yf.length++] = value(labelIdx, 'a number');
      }
    }
    rows++;
  }
  if (rows === 0) {
    throw new DatasetError(`${name}: no data rows${hasHeader ? ` after the header on line ${headerLine}` : ''}.`, 'EEMPTY', name);
  }
  const ds: Dataset = { x: { rows, cols, data: x.done() }, featureNames, source: `csv:${name}` };
  if (labelIdx < 0) return ds;
  if (labelType === 'category') {
    if (options.classNames !== undefined) return { ...ds, y: yi.done(), classes: options.classNames.length, classNames: options.classNames, labelName: options.label! };
    return { ...ds, ...categories(texts), labelName: options.label! };
  }
  return classLabels
    ? { ...ds, y: yi.done(), classes, labelName: options.label! }
    : { ...ds, y: yf.done(), labelName: options.label! };
}

/** Class indices for label texts: the integers themselves when every label is an integer ≥ 0, else indices into the sorted distinct texts. */
function categories(texts: readonly string[]): { y: Int32Array; classes: number; classNames?: readonly string[] } {
  const y = new Int32Array(texts.length);
  if (texts.every((t) => /^\d{1,9}$/.test(t))) {
    let classes = 0;
    texts.forEach((t, i) => {
      y[i] = Number(t);
      classes = Math.max(classes, y[i]! + 1);
    });
    return { y, classes };
  }
  const names = [...new Set(texts)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(names.map((n, i) => [n, i]));
  texts.forEach((t, i) => (y[i] = index.get(t)!));
  return { y, classes: names.length, classNames: names };
}

function delimiterByte(options: CsvOptions): number {
  return (options.delimiter ?? ',').charCodeAt(0);
}

/**
 * Parses CSV text already in memory (see {@link loadCsv}); `name` stands for the file in messages.
 * Returns a {@link Dataset} with `x` of shape `[records, features]` and `featureNames`.
 */
export function parseCsv(text: string | Uint8Array, name = 'csv text', options: CsvOptions = {}): CsvDataset {
  validateOptions('parseCsv', OPTIONS, options);
  const sc = new Scanner(name, delimiterByte(options));
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  sc.buf = bytes;
  sc.end = bytes.length;
  sc.pos = hasBom(bytes, 0) ? 3 : 0;
  sc.final = true;
  return build(sc, undefined, options);
}

function hasBom(b: Buffer, p: number): boolean {
  return b[p] === 0xef && b[p + 1] === 0xbb && b[p + 2] === 0xbf;
}

/**
 * Loads a numeric CSV file into a {@link Dataset}: `x` of shape `[records, features]` (float32),
 * `featureNames`, and, with `label`, `y` (class indices with `classes = max + 1`, or numbers).
 * Columns not selected are not parsed and may hold text.
 *
 * Every problem is a {@link DatasetError} whose message names the file, the 1-based line and the
 * column, e.g. `creditcard.csv: line 17, column 'Amount': expected a number, got 'abc'.` Codes:
 * `'ENOENT'`/`'EIO'`, `'EEMPTY'` (no header or no data rows), `'EHEADER'` (duplicate names),
 * `'ECOLUMN'` (a named column is missing; the message lists the columns), `'ERAGGED'` (a record
 * with a different number of fields than the header), `'EQUOTE'` (unclosed quote, text after a
 * closing quote), `'EMISSING'` (an empty cell: the message names the line, the data row and the
 * column), `'ENONNUMERIC'` (text), `'ENONFINITE'` (NaN, Inf, beyond float32), `'ELABEL'` (a class
 * label that is not an integer ≥ 0, or not one of `classNames`).
 */
export function loadCsv(path: string, options: CsvOptions = {}): CsvDataset {
  validateOptions('loadCsv', OPTIONS, options);
  return readCsvFile(path, options, CHUNK);
}

/** {@link loadCsv} reading `chunkBytes` at a time (exported for tests of the chunk boundaries). */
export function readCsvFile(path: string, options: CsvOptions, chunkBytes: number): CsvDataset {
  const { fd } = openForRead(path);
  try {
    const sc = new Scanner(path, delimiterByte(options));
    let filePos = hasBom(readAt(path, fd, 0, 3), 0) ? 3 : 0;
    const refill = (): boolean => {
      if (sc.final) return false;
      const rest = sc.end - sc.pos;
      const size = Math.max(chunkBytes, 2 * rest);
      const next = sc.buf.length >= size && sc.pos > 0 ? sc.buf : Buffer.allocUnsafe(size);
      sc.buf.copy(next, 0, sc.pos, sc.end);
      let n: number;
      try {
        n = fs.readSync(fd, next, rest, next.length - rest, filePos);
      } catch (err) {
        throw new DatasetError(`${path}: cannot read the file (${(err as Error).message}).`, 'EIO', path, { cause: err });
      }
      filePos += n;
      sc.buf = next;
      sc.pos = 0;
      sc.end = rest + n;
      if (n === 0) sc.final = true;
      return true;
    };
    refill();
    return build(sc, refill, options);
  } finally {
    fs.closeSync(fd);
  }
}
