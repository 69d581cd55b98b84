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
import { Scanner, type Step } from './csv-scanner.js';
import { listColumns, RowCollector } from './csv-rows.js';

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
    expected: "one ASCII character other than '\"', CR or LF",
    check: (v: unknown) => typeof v === 'string' && v.length === 1 && v.charCodeAt(0) < 128 && !'"\r\n'.includes(v),
  },
  columns: {
    kind: 'custom',
    expected: 'a non-empty array of column names',
    check: (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string'),
  },
} as const;

const CHUNK = 16 << 20;

/** A {@link Dataset} read from CSV: with `labelType: 'category'` and text labels, `classNames[i]` is the text of class `i`. */
export interface CsvDataset extends Dataset {
  readonly classNames?: readonly string[];
}

/** Reads records from `scanner`, refilling it from `refill` when it runs dry; builds the dataset. */
function build(scanner: Scanner, refill: (() => boolean) | undefined, options: CsvOptions): CsvDataset {
  const name = scanner.name;
  const step = (): Step => {
    for (;;) {
      const result = scanner.next();
      if (result === 'blank') continue;
      if (result === 'incomplete' && refill !== undefined && refill()) continue;
      return result;
    }
  };
  let first = step();
  if (first === 'eof') throw new DatasetError(`${name}: the file is empty; expected a header line and data rows.`, 'EEMPTY', name);
  const hasHeader = options.hasHeader ?? true;
  const header = readHeader(scanner, hasHeader);
  if (hasHeader) first = step();
  const layout = { ...header, hasHeader, fields: header.names.length, ...selectColumns(name, header.names, options) };
  const collector = new RowCollector(scanner, layout, options);
  for (let result = first; result !== 'eof'; result = step()) {
    if (result === 'incomplete') throw new Error('unreachable: a final chunk cannot be incomplete');
    collector.add();
  }
  return collector.finish();
}

/** The column names: the first record's texts (checked unique) or `col1 … colN`. */
function readHeader(scanner: Scanner, hasHeader: boolean): { names: string[]; headerLine: number } {
  const name = scanner.name;
  const headerLine = scanner.recordLine;
  const names: string[] = [];
  for (let k = 0; k < scanner.nFields; k++) names.push(hasHeader ? scanner.text(k) : `col${k + 1}`);
  if (hasHeader) {
    const seen = new Map<string, number>();
    names.forEach((column, k) => {
      const previous = seen.get(column);
      if (previous !== undefined) {
        throw new DatasetError(
          `${name}: line ${headerLine}: columns ${previous + 1} and ${k + 1} are both named '${column}'; expected unique column names.`,
          'EHEADER',
          name,
        );
      }
      seen.set(column, k);
    });
  }
  return { names, headerLine };
}

/** The index of the label column (−1 for none) and of the feature columns, from the options. */
function selectColumns(name: string, header: readonly string[], options: CsvOptions): { labelIndex: number; featureIndices: number[] } {
  const index = (column: string, role: string): number => {
    const k = header.indexOf(column);
    if (k < 0) throw new DatasetError(`${name}: no column '${column}' (${role}); the columns are ${listColumns(header)}.`, 'ECOLUMN', name);
    return k;
  };
  const labelIndex = options.label === undefined ? -1 : index(options.label, 'the label');
  let featureIndices: number[];
  if (options.columns !== undefined) {
    featureIndices = options.columns.map((column) => index(column, 'a requested feature'));
    if (labelIndex >= 0 && featureIndices.includes(labelIndex)) {
      throw new InvalidOptionError(`Column '${options.label}' passed to 'loadCsv' is the label; it cannot also be in 'columns'.`);
    }
    if (new Set(featureIndices).size !== featureIndices.length) {
      throw new InvalidOptionError(`The 'columns' option of loadCsv names a column twice: ${options.columns.join(', ')}.`);
    }
  } else {
    featureIndices = header.map((_, k) => k).filter((k) => k !== labelIndex);
  }
  if (featureIndices.length === 0) {
    throw new DatasetError(`${name}: no feature columns left (the only column is the label '${options.label}').`, 'ECOLUMN', name);
  }
  return { labelIndex, featureIndices };
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
