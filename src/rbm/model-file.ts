/**
 * The dbn-node model file format, shared by RBMs and DBNs (full description: `docs/model-format.md`).
 *
 * Version 2, written by this library:
 * ```
 * offset  size  field
 * 0       4     magic "DBNM"
 * 4       4     format version, u32 little-endian (2)
 * 8       4     header length H in bytes, u32 LE
 * 12      H     header: UTF-8 JSON object { kind, ..., tensors: [{ name, rows, cols }, ...] }
 * 12+H    P     zero padding so the payload starts at a multiple of 4
 * ...           payload: each tensor of `header.tensors`, in order, rows·cols float32 LE, row-major
 * end-4   4     CRC-32 (IEEE, `node:zlib` crc32) of every byte before it, u32 LE
 * ```
 * Version 1 is the same without the CRC-32 trailer; it still loads, without the checksum's
 * guarantee. On load the magic, version, checksum, header (types and ranges of every field, counts
 * against tensor shapes: `model-header.ts`), tensor sizes against the file length and finite
 * values are checked, each failure a {@link ModelFileError} with its own code.
 *
 * Writes never replace a good file with a bad one: non-finite values are refused, and the bytes go
 * to a temporary file in the same directory, which is fsynced, renamed over the target, and the
 * directory fsynced. A temporary file left by a killed writer is removed by the next save of the
 * same file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ModelFileError } from '../errors.js';
import { validateModelHeader } from './model-header.js';

/** The 4-byte magic number at the start of every model file. */
export const MODEL_MAGIC = 'DBNM';
/** The format version this library writes. */
export const MODEL_FORMAT_VERSION = 2;
/** The format versions this library reads (1: no checksum; 2: CRC-32 trailer). */
export const MODEL_FORMAT_VERSIONS_READ: readonly number[] = [1, 2];

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

/**
 * Writes a model file (format version 2) atomically: the previous file at `file`, if any, is
 * either left as it was or replaced by the complete new one, even if the process is killed.
 * Throws {@link ModelFileError}: `'EEXIST'` (file exists and `overwrite` is not set), `'ESIZE'`
 * (a tensor's data does not match its shape), `'ENONFINITE'` (NaN or ±Inf in a tensor: nothing is
 * written), `'EIO'` (the file system refused).
 */
export function writeModelFile(file: string, header: ModelHeader, tensors: readonly NamedTensor[], opts: WriteOptions = {}): void {
  const overwrite = opts.overwrite === true;
  if (!overwrite && fs.existsSync(file)) {
    throw new ModelFileError(file, 'EEXIST', 'file exists; pass { overwrite: true } to replace it.');
  }
  for (const t of tensors) {
    if (t.data.length !== t.rows * t.cols) {
      throw new ModelFileError(file, 'ESIZE', `tensor '${t.name}' holds ${t.data.length} values, expected ${t.rows}x${t.cols}.`);
    }
    const bad = firstNonFinite(t.data);
    if (bad >= 0) {
      throw new ModelFileError(
        file,
        'ENONFINITE',
        `refusing to save: tensor '${t.name}' holds ${t.data[bad]} at row ${Math.floor(bad / t.cols)}, column ${bad % t.cols}; ${fs.existsSync(file) ? 'the existing file is left as it was' : 'nothing was written'}.`,
      );
    }
  }
  const buf = encodeModelFile(header, tensors);
  const dir = path.dirname(path.resolve(file));
  removeStaleTemps(dir, path.basename(file));
  const tmp = path.join(dir, `${tempPrefix(path.basename(file))}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let placed = false;
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      writeAll(fd, buf);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (overwrite) {
      fs.renameSync(tmp, file);
    } else {
      placeWithoutReplacing(tmp, file);
    }
    placed = true;
    fsyncDirectory(dir);
  } catch (err) {
    if (!placed) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // the temp file was never created
      }
    }
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && !placed) {
      throw new ModelFileError(file, 'EEXIST', 'file exists; pass { overwrite: true } to replace it.', { cause: err });
    }
    throw new ModelFileError(file, 'EIO', `cannot write: ${(err as Error).message}`, { cause: err });
  }
}

/** The bytes of a version-2 model file holding `header` and `tensors` (shapes already checked). */
export function encodeModelFile(header: ModelHeader, tensors: readonly NamedTensor[]): Buffer {
  const json = Buffer.from(JSON.stringify({ ...header, tensors: tensors.map(({ name, rows, cols }) => ({ name, rows, cols })) }), 'utf8');
  const pre = 12 + json.length;
  const pad = (4 - (pre % 4)) % 4;
  const payloadBytes = tensors.reduce((s, t) => s + t.data.length * 4, 0);
  const buf = Buffer.alloc(pre + pad + payloadBytes + 4);
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
  buf.writeUInt32LE(crc32(buf.subarray(0, off)), off);
  return buf;
}

/** A parsed model file. */
export interface ModelFile {
  /** The format version of the file (1 or 2). */
  readonly version: number;
  /** The CRC-32 stored in (and verified against) the file; undefined for version 1. */
  readonly checksum: number | undefined;
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
    throw new ModelFileError(file, code, code === 'ENOENT' ? 'no such model file.' : `cannot read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseModelFile(buf, file, expectedKind);
}

/**
 * Parses and validates the bytes of a model file; `file` names it in errors. Throws
 * {@link ModelFileError}: `'ETRUNCATED'`, `'EMAGIC'`, `'EVERSION'`, `'ECHECKSUM'` (version 2: the
 * stored CRC-32 differs from the bytes'), `'EHEADER'`, `'ESIZE'`, `'ENONFINITE'`, `'EKIND'`.
 */
export function parseModelFile(buf: Buffer, file: string, expectedKind?: string): ModelFile {
  if (buf.length < 12) throw new ModelFileError(file, 'ETRUNCATED', `file is ${buf.length} bytes, shorter than the 12-byte preamble.`);
  const magic = buf.toString('latin1', 0, 4);
  if (magic !== MODEL_MAGIC) {
    throw new ModelFileError(file, 'EMAGIC', `not a dbn-node model file: magic is ${JSON.stringify(magic)}, expected "${MODEL_MAGIC}".`);
  }
  const version = buf.readUInt32LE(4);
  if (!MODEL_FORMAT_VERSIONS_READ.includes(version)) {
    throw new ModelFileError(
      file,
      'EVERSION',
      `format version ${version} is not supported (this library reads versions ${MODEL_FORMAT_VERSIONS_READ.join(' and ')}).`,
    );
  }
  let body = buf;
  let checksum: number | undefined;
  if (version >= 2) {
    if (buf.length < 16)
      throw new ModelFileError(file, 'ETRUNCATED', `file is ${buf.length} bytes, shorter than a version-2 preamble and checksum (16).`);
    body = buf.subarray(0, buf.length - 4);
    checksum = buf.readUInt32LE(buf.length - 4);
    const actual = crc32(body);
    if (actual !== checksum) {
      // A short or long file says so more precisely than a checksum does.
      try {
        layout(body, file);
      } catch (err) {
        if (err instanceof ModelFileError && (err.code === 'ETRUNCATED' || err.code === 'ESIZE')) throw err;
      }
      throw new ModelFileError(
        file,
        'ECHECKSUM',
        `checksum mismatch: the file stores CRC-32 ${hex32(checksum)}, its bytes give ${hex32(actual)}; the file is corrupt.`,
      );
    }
  }
  const { header, entries, payloadStart } = layout(body, file);
  if (expectedKind !== undefined && header.kind !== expectedKind) {
    throw new ModelFileError(file, 'EKIND', `holds a '${header.kind}' model, expected '${expectedKind}'.`);
  }
  const { tensors: _list, ...fields } = header;
  validateModelHeader(file, fields as Record<string, unknown>, new Map(entries.map((e) => [e.name, e])));
  let off = payloadStart;
  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    const data = new Float32Array(e.rows * e.cols);
    if (isLittleEndian) Buffer.from(data.buffer).set(body.subarray(off, off + data.length * 4));
    else for (let k = 0; k < data.length; k++) data[k] = body.readFloatLE(off + k * 4);
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      throw new ModelFileError(
        file,
        'ENONFINITE',
        `tensor '${e.name}' holds ${data[bad]} at row ${Math.floor(bad / e.cols)}, column ${bad % e.cols}.`,
      );
    }
    tensors.set(e.name, { name: e.name, rows: e.rows, cols: e.cols, data });
    off += data.length * 4;
  }
  return { version, checksum, header, tensors };
}

/**
 * The header and the tensor list of `body` (a file without its checksum), with every tensor's
 * place checked against the length of `body`.
 */
function layout(body: Buffer, file: string): { header: ModelHeader & { tensors?: unknown }; entries: TensorEntry[]; payloadStart: number } {
  const hlen = body.readUInt32LE(8);
  if (12 + hlen > body.length) {
    throw new ModelFileError(file, 'ETRUNCATED', `header claims ${hlen} bytes but only ${body.length - 12} follow the preamble.`);
  }
  let header: unknown;
  try {
    header = JSON.parse(body.toString('utf8', 12, 12 + hlen));
  } catch (err) {
    throw new ModelFileError(file, 'EHEADER', `header is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header) || typeof (header as { kind?: unknown }).kind !== 'string') {
    throw new ModelFileError(file, 'EHEADER', 'header must be a JSON object with a string "kind".');
  }
  const h = header as ModelHeader & { tensors?: unknown };
  const list = h.tensors;
  if (!Array.isArray(list)) throw new ModelFileError(file, 'EHEADER', 'header has no "tensors" list.');
  const pre = 12 + hlen;
  const payloadStart = pre + ((4 - (pre % 4)) % 4);
  let off = payloadStart;
  const entries: TensorEntry[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of list.entries()) {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as { name?: unknown; rows?: unknown; cols?: unknown };
    if (typeof e.name !== 'string' || !isCount(e.rows) || !isCount(e.cols)) {
      throw new ModelFileError(file, 'EHEADER', `tensor entry ${i} must be { name: string, rows: integer >= 0, cols: integer >= 0 }.`);
    }
    if (seen.has(e.name)) throw new ModelFileError(file, 'EHEADER', `tensor '${e.name}' appears twice.`);
    seen.add(e.name);
    const bytes = e.rows * e.cols * 4;
    if (off + bytes > body.length) {
      throw new ModelFileError(
        file,
        'ETRUNCATED',
        `tensor '${e.name}' (${e.rows}x${e.cols}) needs ${bytes} bytes at offset ${off}, but the file ends at ${body.length}.`,
      );
    }
    entries.push({ name: e.name, rows: e.rows, cols: e.cols });
    off += bytes;
  }
  if (off !== body.length) {
    throw new ModelFileError(file, 'ESIZE', `file has ${body.length - off} bytes after the last tensor; expected it to end at ${off}.`);
  }
  return { header: h, entries, payloadStart };
}

interface TensorEntry {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
}

/** The tensor `name` of `file` with the given shape, or a {@link ModelFileError}. */
export function requireTensor(mf: Pick<ModelFile, 'tensors'>, file: string, name: string, rows: number, cols: number): Float32Array {
  const t = mf.tensors.get(name);
  if (t === undefined) throw new ModelFileError(file, 'EHEADER', `missing tensor '${name}'.`);
  if (t.rows !== rows || t.cols !== cols) {
    throw new ModelFileError(file, 'ESIZE', `tensor '${name}' is ${t.rows}x${t.cols}, expected ${rows}x${cols}.`);
  }
  return t.data;
}

/** The name prefix of the temporary files a save of `base` writes (`.<base>.<pid>.<random>.tmp`). */
function tempPrefix(base: string): string {
  return `.${base}.`;
}

/**
 * Removes temporary files of `base` in `dir` left by a writer that was killed: those whose
 * process no longer exists. A live writer's temporary file is left alone.
 */
function removeStaleTemps(dir: string, base: string): void {
  const prefix = tempPrefix(base);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length));
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
    } catch {
      // already removed by another writer
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Moves `tmp` to `file` unless `file` exists. link() fails with EEXIST if `file` appeared since
 * the caller's check, so it is never replaced; file systems without hard links fall back to a
 * check and a rename.
 */
function placeWithoutReplacing(tmp: string, file: string): void {
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    if (fs.existsSync(file)) throw Object.assign(new Error(`${file} exists`), { code: 'EEXIST' });
    fs.renameSync(tmp, file);
    return;
  }
  fs.unlinkSync(tmp);
}

function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done);
}

/** Makes a rename in `dir` durable. Some platforms (Windows) cannot open a directory; there the rename is left to the OS. */
function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (err) {
    if (process.platform === 'win32') return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function firstNonFinite(data: Float32Array): number {
  for (let k = 0; k < data.length; k++) if (!Number.isFinite(data[k]!)) return k;
  return -1;
}

function hex32(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
