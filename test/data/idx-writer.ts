/** Test helper: writes IDX files by hand (big-endian header and elements), optionally gzipped. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

const CODES = { ubyte: 0x08, byte: 0x09, short: 0x0b, int: 0x0c, float: 0x0d, double: 0x0e } as const;
const SIZES = { ubyte: 1, byte: 1, short: 2, int: 4, float: 4, double: 8 } as const;

/** The bytes of an IDX file of `type` and `shape` holding `values` (row-major). */
export function idxBytes(type: keyof typeof CODES, shape: readonly number[], values: readonly number[]): Buffer {
  const head = 4 + 4 * shape.length;
  const buf = Buffer.alloc(head + values.length * SIZES[type]);
  buf[2] = CODES[type];
  buf[3] = shape.length;
  shape.forEach((d, i) => buf.writeUInt32BE(d, 4 + 4 * i));
  values.forEach((v, i) => {
    const o = head + i * SIZES[type];
    if (type === 'ubyte') buf.writeUInt8(v, o);
    else if (type === 'byte') buf.writeInt8(v, o);
    else if (type === 'short') buf.writeInt16BE(v, o);
    else if (type === 'int') buf.writeInt32BE(v, o);
    else if (type === 'float') buf.writeFloatBE(v, o);
    else buf.writeDoubleBE(v, o);
  });
  return buf;
}

/** A fresh temporary directory. */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-data-test-'));
}

/** Writes `bytes` (gzipped when `gz`) to `dir/name`; returns the path. */
export function writeFile(dir: string, name: string, bytes: Uint8Array, gz = false): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, gz ? zlib.gzipSync(bytes) : bytes);
  return p;
}
