/**
 * The dbn-node model file format (version 1), shared by RBMs and DBNs.
 *
 * ```
 * offset  size  field
 * 0       4     magic "DBNM"
 * 4       4     format version, u32 little-endian (1)
 * 8       4     header length H in bytes, u32 LE
 * 12      H     header: UTF-8 JSON object { kind, ..., tensors: [{ name, rows, cols }, ...] }
 * 12+H    P     zero padding so the payload starts at a multiple of 4
 * ...           payload: each tensor of `header.tensors`, in order, rows·cols float32 LE, row-major
 * ```
 * The file ends exactly after the last tensor. Files are written atomically (temp file in the
 * same directory, fsync, rename) and validated on load: magic, version, header JSON, tensor
 * sizes against the file length, and finite values — each failure a {@link ModelFileError}
 * with its own code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ModelFileError } from '../errors.js';

/** The 4-byte magic number at the start of every model file. */
export const MODEL_MAGIC = 'DBNM';
/** The format version this library writes and reads. */
export const MODEL_FORMAT_VERSION = 1;

/** A named row-major float32 tensor in a model file. */
export interface NamedTensor {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  /** `rows · cols` values. */
  readonly data: Float32Array;
}

/** The JSON header of a model file (the `tensors` list is managed by this module). */
export interface ModelHeader {
  readonly kind: string;
  readonly [key: string]: unknown;
}

/** Options of {@link writeModelFile}. */
export interface WriteOptions {
  /** Replace an existing file (atomically). Default false: an existing file raises `EEXIST`. */
  readonly overwrite?: boolean;
}

/** Writes a model file atomically. */
export function writeModelFile(file: string, header: ModelHeader, tensors: readonly NamedTensor[], opts: WriteOptions = {}): void {
  if (opts.overwrite !== true && fs.existsSync(file)) {
    throw new ModelFileError(file, 'EEXIST', 'file exists; pass { overwrite: true } to replace it.');
  }
  for (const t of tensors) {
    if (t.data.length !== t.rows * t.cols) {
      throw new ModelFileError(file, 'ESIZE', `tensor '${t.name}' holds ${t.data.length} values, expected ${t.rows}x${t.cols}.`);
    }
  }
  const json = Buffer.from(JSON.stringify({ ...header, tensors: tensors.map(({ name, rows, cols }) => ({ name, rows, cols })) }), 'utf8');
  const pre = 12 + json.length;
  const pad = (4 - (pre % 4)) % 4;
  const payloadBytes = tensors.reduce((s, t) => s + t.data.length * 4, 0);
  const buf = Buffer.alloc(pre + pad + payloadBytes);
  buf.write(MODEL_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(MODEL_FORMAT_VERSION, 4);
  buf.writeUInt32LE(json.length, 8);
  json.copy(buf, 12);
  let off = pre + pad;
  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (isLittleEndian) bytes.copy(buf, off);
    else for (let i = 0; i < t.data.length; i++) buf.writeFloatLE(t.data[i]!, off + i * 4);
    off += t.data.length * 4;
  }
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeSync(fd, buf);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // the temp file was never created
    }
    throw new ModelFileError(file, 'EIO', `cannot write: ${(err as Error).message}`, { cause: err });
  }
}

/** A parsed model file. */
export interface ModelFile {
  readonly header: ModelHeader;
  readonly tensors: ReadonlyMap<string, NamedTensor>;
}

/**
 * Reads and validates a model file. `expectedKind`, when given, must equal `header.kind`
 * (`EKIND` otherwise).
 */
export function readModelFile(file: string, expectedKind?: string): ModelFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EIO';
    throw new ModelFileError(file, code, code === 'ENOENT' ? 'no such model file.' : `cannot read: ${(err as Error).message}`, { cause: err });
  }
  return parseModelFile(buf, file, expectedKind);
}

/** Parses and validates the bytes of a model file; `file` names it in errors. */
export function parseModelFile(buf: Buffer, file: string, expectedKind?: string): ModelFile {
  if (buf.length < 12) throw new ModelFileError(file, 'ETRUNCATED', `file is ${buf.length} bytes, shorter than the 12-byte preamble.`);
  const magic = buf.toString('latin1', 0, 4);
  if (magic !== MODEL_MAGIC) {
    throw new ModelFileError(file, 'EMAGIC', `not a dbn-node model file: magic is ${JSON.stringify(magic)}, expected "${MODEL_MAGIC}".`);
  }
  const version = buf.readUInt32LE(4);
  if (version !== MODEL_FORMAT_VERSION) {
    throw new ModelFileError(file, 'EVERSION', `format version ${version} is not supported (this library reads version ${MODEL_FORMAT_VERSION}).`);
  }
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) {
    throw new ModelFileError(file, 'ETRUNCATED', `header claims ${hlen} bytes but only ${buf.length - 12} follow the preamble.`);
  }
  let header: unknown;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + hlen));
  } catch (err) {
    throw new ModelFileError(file, 'EHEADER', `header is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof header !== 'object' || header === null || typeof (header as { kind?: unknown }).kind !== 'string') {
    throw new ModelFileError(file, 'EHEADER', 'header must be a JSON object with a string "kind".');
  }
  const h = header as ModelHeader & { tensors?: unknown };
  if (expectedKind !== undefined && h.kind !== expectedKind) {
    throw new ModelFileError(file, 'EKIND', `holds a '${h.kind}' model, expected '${expectedKind}'.`);
  }
  const list = h.tensors;
  if (!Array.isArray(list)) throw new ModelFileError(file, 'EHEADER', 'header has no "tensors" list.');
  const pre = 12 + hlen;
  let off = pre + ((4 - (pre % 4)) % 4);
  const tensors = new Map<string, NamedTensor>();
  for (const [i, entry] of list.entries()) {
    const e = entry as { name?: unknown; rows?: unknown; cols?: unknown };
    if (typeof e.name !== 'string' || !isCount(e.rows) || !isCount(e.cols)) {
      throw new ModelFileError(file, 'EHEADER', `tensor entry ${i} must be { name: string, rows: integer >= 0, cols: integer >= 0 }.`);
    }
    if (tensors.has(e.name)) throw new ModelFileError(file, 'EHEADER', `tensor '${e.name}' appears twice.`);
    const bytes = e.rows * e.cols * 4;
    if (off + bytes > buf.length) {
      throw new ModelFileError(file, 'ETRUNCATED', `tensor '${e.name}' (${e.rows}x${e.cols}) needs ${bytes} bytes at offset ${off}, but the file ends at ${buf.length}.`);
    }
    const data = new Float32Array(e.rows * e.cols);
    if (isLittleEndian) Buffer.from(data.buffer).set(buf.subarray(off, off + bytes));
    else for (let k = 0; k < data.length; k++) data[k] = buf.readFloatLE(off + k * 4);
    for (let k = 0; k < data.length; k++) {
      if (!Number.isFinite(data[k]!)) {
        throw new ModelFileError(file, 'ENONFINITE', `tensor '${e.name}' holds ${data[k]} at row ${Math.floor(k / e.cols)}, column ${k % e.cols}.`);
      }
    }
    tensors.set(e.name, { name: e.name, rows: e.rows, cols: e.cols, data });
    off += bytes;
  }
  if (off !== buf.length) {
    throw new ModelFileError(file, 'ESIZE', `file has ${buf.length - off} bytes after the last tensor; expected it to end at ${off}.`);
  }
  return { header: h, tensors };
}

/** The tensor `name` of `file` with the given shape, or a {@link ModelFileError}. */
export function requireTensor(mf: ModelFile, file: string, name: string, rows: number, cols: number): Float32Array {
  const t = mf.tensors.get(name);
  if (t === undefined) throw new ModelFileError(file, 'EHEADER', `missing tensor '${name}'.`);
  if (t.rows !== rows || t.cols !== cols) {
    throw new ModelFileError(file, 'ESIZE', `tensor '${name}' is ${t.rows}x${t.cols}, expected ${rows}x${cols}.`);
  }
  return t.data;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
