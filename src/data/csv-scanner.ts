/**
 * The byte scanner of CSV files (RFC 4180, see `csv.ts`): resumable over chunks, fields kept as
 * byte ranges of the buffer, numbers parsed from the bytes.
 */
import { DatasetError } from '../errors.js';

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
export const NONFINITE_RE = /^[+-]?(?:nan|inf|infinity)$/i;

export type Step = 'record' | 'blank' | 'incomplete' | 'eof';

/** A resumable scanner over the bytes of a CSV file; fields are byte ranges of `buf`. */
export class Scanner {
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
    let at = this.pos;
    if (at >= end) return this.final ? 'eof' : 'incomplete';
    let line = this.line;
    this.nFields = 0;
    this.recordLine = line;
    for (;;) {
      const field = buf[at] === QUOTE ? this.quotedField(at, line) : this.plainField(at, line);
      if (field === undefined) return 'incomplete';
      const fieldEnd = field.end;
      line = field.line;
      if (fieldEnd >= end) {
        if (!this.final) return 'incomplete';
        this.pos = end;
        break;
      }
      const byte = buf[fieldEnd]!;
      if (byte === delim) {
        at = fieldEnd + 1;
        if (at >= end && !this.final) return 'incomplete';
        if (at >= end) {
          this.push(at, at, false, line);
          this.pos = end;
          break;
        }
        continue;
      }
      if (byte === CR) {
        if (fieldEnd + 1 >= end && !this.final) return 'incomplete';
        this.pos = buf[fieldEnd + 1] === LF ? fieldEnd + 2 : fieldEnd + 1;
      } else {
        this.pos = fieldEnd + 1;
      }
      line++;
      break;
    }
    this.line = line;
    if (this.nFields === 1 && this.starts[0] === this.ends[0] && buf[this.starts[0]! - 1] !== QUOTE) return 'blank';
    return 'record';
  }

  /**
   * Scans the quoted field opening at `at` (on line `line`) and records it. Returns the byte after
   * its closing quote and the line there, or undefined when the field is not complete in the buffer.
   */
  private quotedField(at: number, line: number): { end: number; line: number } | undefined {
    const { buf, end, delim } = this;
    let from = at + 1;
    let escaped = false;
    let close: number;
    for (;;) {
      close = buf.indexOf(QUOTE, from);
      if (close < 0 || close >= end) {
        if (!this.final) return undefined;
        throw new DatasetError(
          `${this.name}: line ${line}: a quoted field is never closed (expected a closing '"' before the end of the file).`,
          'EQUOTE',
          this.name,
        );
      }
      if (close + 1 >= end && !this.final) return undefined;
      if (buf[close + 1] !== QUOTE) break;
      escaped = true;
      from = close + 2;
    }
    let lineAfter = line;
    for (let i = at + 1; i < close; i++) if (buf[i] === LF) lineAfter++;
    this.push(at + 1, close, escaped, line);
    const after = close + 1;
    if (after < end && buf[after] !== delim && buf[after] !== CR && buf[after] !== LF) {
      throw new DatasetError(
        `${this.name}: line ${lineAfter}: unexpected character '${String.fromCharCode(buf[after]!)}' after the closing quote of field ${this.nFields}; expected the delimiter or the end of the line.`,
        'EQUOTE',
        this.name,
      );
    }
    return { end: after, line: lineAfter };
  }

  /** Scans the unquoted field starting at `at` and records it; returns the byte after it. */
  private plainField(at: number, line: number): { end: number; line: number } {
    const { buf, end, delim } = this;
    let fieldEnd = at;
    while (fieldEnd < end) {
      const byte = buf[fieldEnd]!;
      if (byte === delim || byte === LF || byte === CR) break;
      fieldEnd++;
    }
    this.push(at, fieldEnd, false, line);
    return { end: fieldEnd, line };
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
