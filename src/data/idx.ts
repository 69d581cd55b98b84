/**
 * IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
 *
 * Layout (big-endian): bytes 0–1 are zero; byte 2 is the element type (0x08 ubyte, 0x09 signed
 * byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64); byte 3 is the number of dimensions
 * `d`; then `d` uint32 sizes; then the elements, last dimension fastest. A file starting with the
 * gzip magic `1f 8b` is inflated first, never past the size its header declares (plus one byte,
 * to see that there is more): a small `.gz` that inflates to gigabytes is refused after reading
 * that one extra byte. Every dimension must be at least 1; labels are capped at
 * {@link MAX_CLASSES}.
 */
import * as fs from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { DatasetError } from '../errors.js';
import { MAX_CLASSES } from './limits.js';
import { validateOptions } from '../validate.js';
import type { Dataset } from './dataset.js';
import { openForRead, readAt } from './read-file.js';

/** The element types of the IDX format. */
export type IdxType = 'ubyte' | 'byte' | 'short' | 'int' | 'float' | 'double';

/** The decoded content of an IDX file. */
export interface IdxArray {
  /** The element type named by the header. */
  readonly type: IdxType;
  /** The dimensions, outermost first (e.g. `[60000, 28, 28]`); `shape[0]` is cut to `limit` when one was given. */
  readonly shape: number[];
  /** `prod(shape)` elements in file order (host byte order). */
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** An IDX header: type, shape and where the data starts. */
export interface IdxHeader {
  readonly type: IdxType;
  readonly shape: number[];
  /** Byte offset of the first element (`4 + 4 * dims`). */
  readonly dataOffset: number;
}

const TYPES: ReadonlyMap<number, { type: IdxType; size: number }> = new Map([
  [0x08, { type: 'ubyte', size: 1 }],
  [0x09, { type: 'byte', size: 1 }],
  [0x0b, { type: 'short', size: 2 }],
  [0x0c, { type: 'int', size: 4 }],
  [0x0d, { type: 'float', size: 4 }],
  [0x0e, { type: 'double', size: 8 }],
]);

const SIZE_OF: Readonly<Record<IdxType, number>> = { ubyte: 1, byte: 1, short: 2, int: 4, float: 4, double: 8 };

const LOAD_OPTIONS = { limit: { kind: 'integer', min: 0 } } as const;

function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function hex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes).toString('hex').padEnd(8, '?')}`;
}

/** Parses the header at the start of `buf` (the inflated content of `file`). */
function parseHeader(file: string, buf: Uint8Array): IdxHeader {
  if (buf.length < 4) {
    throw new DatasetError(
      `${file}: truncated at byte ${buf.length}: expected a 4-byte IDX magic number, the file holds ${buf.length} byte(s).`,
      buf.length === 0 ? 'EEMPTY' : 'ETRUNCATED',
      file,
    );
  }
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new DatasetError(
      `${file}: bad magic number ${hex(buf.subarray(0, 4))} at byte 0: expected an IDX file (0x0000TTDD: two zero bytes, type, dimensions).`,
      'EMAGIC',
      file,
    );
  }
  const t = TYPES.get(buf[2]!);
  if (t === undefined) {
    throw new DatasetError(
      `${file}: unsupported IDX type code 0x${buf[2]!.toString(16).padStart(2, '0')} at byte 2: expected 0x08 (ubyte), 0x09 (byte), 0x0b (short), 0x0c (int), 0x0d (float) or 0x0e (double).`,
      'ETYPE',
      file,
    );
  }
  const dims = buf[3]!;
  if (dims === 0) {
    throw new DatasetError(`${file}: byte 3 says 0 dimensions; expected at least 1.`, 'ESHAPE', file);
  }
  const dataOffset = 4 + 4 * dims;
  if (buf.length < dataOffset) {
    throw new DatasetError(
      `${file}: truncated header: ${dims} dimension sizes need bytes 4..${dataOffset - 1}, the file holds ${buf.length} byte(s).`,
      'ETRUNCATED',
      file,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < dims; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const zero = shape.indexOf(0);
  if (zero >= 0) {
    throw new DatasetError(
      `${file}: dimension ${zero} of shape [${shape.join(', ')}] is 0 (bytes ${4 + 4 * zero}..${7 + 4 * zero}); expected every dimension to be at least 1.`,
      'ESHAPE',
      file,
    );
  }
  return { type: t.type, shape, dataOffset };
}

function describeShape(h: IdxHeader): string {
  return `[${h.shape.join(', ')}] of ${h.type}`;
}

/** Checks that `available` data bytes hold the `items` outer items the caller needs. */
function checkLength(file: string, h: IdxHeader, items: number, available: number, exact: boolean): void {
  const itemBytes = h.shape.slice(1).reduce((a, b) => a * b, 1) * SIZE_OF[h.type];
  const need = items * itemBytes;
  if (available < need) {
    const item = itemBytes === 0 ? 0 : Math.floor(available / itemBytes);
    throw new DatasetError(
      `${file}: truncated: the header declares shape ${describeShape(h)} (${h.shape[0]!} item(s) of ${itemBytes} byte(s) from byte ${h.dataOffset}), ` +
        `but the file ends at byte ${h.dataOffset + available}, inside item ${item} (expected ${h.dataOffset + need} bytes).`,
      'ETRUNCATED',
      file,
    );
  }
  if (exact && available > need) {
    throw new DatasetError(
      `${file}: ${available - need} unexpected byte(s) after the data: the header declares shape ${describeShape(h)}, ` +
        `which ends at byte ${h.dataOffset + need}, but the file holds ${h.dataOffset + available} bytes.`,
      'ESIZE',
      file,
    );
  }
}

function decode(h: IdxHeader, bytes: Uint8Array, count: number): IdxArray['data'] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (h.type) {
    case 'ubyte':
      return new Uint8Array(bytes.subarray(0, count));
    case 'byte':
      return new Int8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count));
    case 'short': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, false);
      return out;
    }
    case 'int': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, false);
      return out;
    }
    case 'float': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, false);
      return out;
    }
    case 'double': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, false);
      return out;
    }
  }
}

/** Bytes of inflated output read to find an IDX header (4 + 4 · 255 at most). */
const HEADER_BYTES = 1024;
/** Most bytes inflated while looking for the header: a compressed prefix that inflates to more is refused. */
const HEADER_INFLATE_CAP = 1 << 20;

/**
 * Inflates `compressed` (all of it, or a prefix when `partial`), producing at most `maxOutput`
 * bytes; `undefined` when the data would inflate to more.
 */
function gunzip(file: string, compressed: Uint8Array, partial: boolean, maxOutput: number): Buffer | undefined {
  try {
    return zlib.gunzipSync(compressed, { maxOutputLength: maxOutput, ...(partial ? { finishFlush: zlib.constants.Z_SYNC_FLUSH } : {}) });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') return undefined;
    const why = err instanceof Error ? err.message : String(err);
    throw new DatasetError(
      `${file}: the gzip data fails to inflate (${why}); expected a complete .gz stream holding an IDX file.`,
      'EGZIP',
      file,
      {
        cause: err,
      },
    );
  }
}

/**
 * The first (at least {@link HEADER_BYTES}, unless the file is shorter) inflated bytes of a gzip
 * file, inflating ever longer prefixes of `compressed` (itself only a prefix of the file when
 * `isPrefix`).
 */
function inflateHead(file: string, compressed: Uint8Array, isPrefix: boolean): Buffer {
  for (let take = Math.min(compressed.length, 256); ; take = Math.min(compressed.length, take * 2)) {
    const out = gunzip(file, compressed.subarray(0, take), isPrefix || take < compressed.length, HEADER_INFLATE_CAP);
    if (out === undefined) {
      throw new DatasetError(
        `${file}: the first ${take} compressed bytes inflate to more than ${HEADER_INFLATE_CAP} bytes before an IDX header ends; expected a .gz stream holding an IDX file.`,
        'EGZIP',
        file,
      );
    }
    if (out.length >= HEADER_BYTES || take === compressed.length) return out;
  }
}

/** Bytes a file with header `h` declares: the header and every element. */
function declaredBytes(file: string, h: IdxHeader): number {
  const bytes = h.dataOffset + h.shape.reduce((a, b) => a * b, 1) * SIZE_OF[h.type];
  if (!Number.isSafeInteger(bytes) || bytes > bufferConstants.MAX_LENGTH) {
    throw new DatasetError(
      `${file}: the header declares shape ${describeShape(h)}, ${bytes} bytes, more than this loader can hold (${bufferConstants.MAX_LENGTH}).`,
      'ESIZE',
      file,
    );
  }
  return bytes;
}

/**
 * The inflated content of a gzip file whose header `h` declares `declared` bytes, never inflating
 * more than `declared + 1`; with `minBytes`, prefixes of the stream are inflated until at least
 * `minBytes` come out (`whole: false`), else the whole stream.
 */
function inflateBounded(
  file: string,
  compressed: Uint8Array,
  h: IdxHeader,
  declared: number,
  minBytes?: number,
): { bytes: Buffer; whole: boolean } {
  const tooLong = (): never => {
    throw new DatasetError(
      `${file}: the gzip data inflates to more than the ${declared} bytes its header declares (shape ${describeShape(h)}); stopped after ${declared + 1}.`,
      'ESIZE',
      file,
    );
  };
  if (minBytes !== undefined) {
    let take = Math.min(compressed.length, minBytes + 4096);
    while (take < compressed.length) {
      const out = gunzip(file, compressed.subarray(0, take), true, declared + 1) ?? tooLong();
      if (out.length >= minBytes) return { bytes: out, whole: false };
      take = Math.min(compressed.length, take * 2);
    }
  }
  return { bytes: gunzip(file, compressed, false, declared + 1) ?? tooLong(), whole: true };
}

/**
 * Reads the header of an IDX or IDX.gz file without decoding its data (for gzip, only the first
 * bytes are inflated). Throws {@link DatasetError} as {@link loadIdx} does.
 */
export function readIdxHeader(path: string): IdxHeader {
  const { fd, size } = openForRead(path);
  try {
    const head = readAt(path, fd, 0, Math.min(size, HEADER_BYTES));
    if (!isGzip(head)) return parseHeader(path, head);
    const compressed = size <= HEADER_BYTES ? head : readAt(path, fd, 0, Math.min(size, 65536));
    return parseHeader(path, inflateHead(path, compressed, size > compressed.length));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Loads an IDX file (`.gz` or not, detected by the gzip magic `1f 8b`).
 *
 * With `limit`, only the first `limit` outer items are decoded (`shape[0]` becomes
 * `min(shape[0], limit)`), and only as much of the file as they need is read; the check that the
 * file is not longer or shorter than its header says is then limited to those items.
 *
 * Throws {@link DatasetError}: `'ENOENT'`/`'EIO'` (cannot read), `'EEMPTY'`, `'EMAGIC'` (first two
 * bytes not zero), `'ETYPE'` (unsupported type code), `'ESHAPE'` (no dimensions, or a dimension of
 * 0), `'ETRUNCATED'` (fewer bytes than the header declares), `'ESIZE'` (trailing bytes, or gzip data
 * inflating to more than the header declares: inflation stops one byte past it), `'EGZIP'` (bad
 * gzip data).
 */
export function loadIdx(path: string, options: { readonly limit?: number } = {}): IdxArray {
  validateOptions('loadIdx', LOAD_OPTIONS, options);
  const { limit } = options;
  const { fd, size } = openForRead(path);
  let content: Uint8Array;
  let whole = true;
  try {
    const head = readAt(path, fd, 0, Math.min(size, HEADER_BYTES));
    if (isGzip(head)) {
      const compressed = readAt(path, fd, 0, size);
      const h = parseHeader(path, inflateHead(path, compressed, false));
      const declared = declaredBytes(path, h);
      const minBytes = limit === undefined ? undefined : h.dataOffset + Math.min(h.shape[0]!, limit) * itemElements(h) * SIZE_OF[h.type];
      const r = inflateBounded(path, compressed, h, declared, minBytes);
      content = r.bytes;
      whole = r.whole;
    } else if (limit !== undefined) {
      const h = parseHeader(path, head);
      const want = h.dataOffset + Math.min(h.shape[0]!, limit) * itemElements(h) * SIZE_OF[h.type];
      content = readAt(path, fd, 0, Math.min(size, want));
      whole = content.length === size;
    } else {
      content = readAt(path, fd, 0, size);
    }
  } finally {
    fs.closeSync(fd);
  }
  const h = parseHeader(path, content);
  const items = Math.min(h.shape[0]!, limit ?? Infinity);
  checkLength(path, h, items, content.length - h.dataOffset, whole && items === h.shape[0]);
  const shape = [items, ...h.shape.slice(1)];
  const count = items * itemElements(h);
  return { type: h.type, shape, data: decode(h, content.subarray(h.dataOffset), count) };
}

function itemElements(h: IdxHeader): number {
  return h.shape.slice(1).reduce((a, b) => a * b, 1);
}

const DATASET_OPTIONS = {
  scale: { kind: 'number', min: 0, minOpen: true },
  limit: { kind: 'integer', min: 0 },
} as const;

/** Options of {@link loadIdxDataset}. */
export interface IdxDatasetOptions {
  /** Every feature is divided by this; default 255 for ubyte images (pixels to [0, 1]), else 1. */
  readonly scale?: number;
  /** Load only the first `limit` items of each file. */
  readonly limit?: number;
}

/**
 * Loads an images IDX file (shape `[n, ...]`, each item flattened to one row) and, optionally,
 * a labels IDX file (shape `[n]`, integer type, values ≥ 0) into a {@link Dataset} with
 * `x` of shape `[n, prod(shape[1:])]`, ubyte pixels scaled to [0, 1] by default.
 *
 * Throws {@link DatasetError} as {@link loadIdx} does, plus `'ESHAPE'` (label count ≠ image count,
 * labels not 1-D), `'ELABEL'` (labels not integers in `[0, MAX_CLASSES)`, see `limits.ts`) and `'ENONFINITE'` (NaN/Inf in float images).
 */
export function loadIdxDataset(imagesPath: string, labelsPath?: string, options: IdxDatasetOptions = {}): Dataset {
  validateOptions('loadIdxDataset', DATASET_OPTIONS, options);
  const images = loadIdx(imagesPath, options.limit !== undefined ? { limit: options.limit } : {});
  const n = images.shape[0]!;
  const cols = images.shape.slice(1).reduce((a, b) => a * b, 1);
  const scale = options.scale ?? (images.type === 'ubyte' ? 255 : 1);
  const src = images.data;
  const data = new Float32Array(src.length);
  if (scale === 255 && images.type === 'ubyte') {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = v / 255;
    for (let i = 0; i < src.length; i++) data[i] = lut[src[i]!]!;
  } else {
    for (let i = 0; i < src.length; i++) {
      const v = src[i]! / scale;
      if (!Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
        throw new DatasetError(
          `${imagesPath}: item ${Math.floor(i / cols)}, element ${i % cols} is ${src[i]!} (scaled: ${v}); expected a finite float32 value.`,
          'ENONFINITE',
          imagesPath,
        );
      }
      data[i] = v;
    }
  }
  const x = { rows: n, cols, data };
  if (labelsPath === undefined) return { x, source: `idx:${imagesPath}` };

  const labels = loadIdx(labelsPath, options.limit !== undefined ? { limit: options.limit } : {});
  if (labels.shape.length !== 1) {
    throw new DatasetError(
      `${labelsPath}: labels must be 1-D (shape [n]); the header declares shape [${labels.shape.join(', ')}].`,
      'ESHAPE',
      labelsPath,
    );
  }
  if (labels.shape[0] !== n) {
    throw new DatasetError(
      `${labelsPath}: holds ${labels.shape[0]!} label(s) but ${imagesPath} holds ${n} image(s); expected one label per image.`,
      'ESHAPE',
      labelsPath,
    );
  }
  if (labels.type === 'float' || labels.type === 'double') {
    throw new DatasetError(
      `${labelsPath}: labels have type ${labels.type}; expected an integer type (ubyte, byte, short or int).`,
      'ELABEL',
      labelsPath,
    );
  }
  const y = new Int32Array(n);
  let classes = 0;
  for (let i = 0; i < n; i++) {
    const c = labels.data[i]!;
    if (c < 0 || c >= MAX_CLASSES) {
      throw new DatasetError(
        `${labelsPath}: label ${i} is ${c}; expected a class index in [0, ${MAX_CLASSES}) (MAX_CLASSES).`,
        'ELABEL',
        labelsPath,
      );
    }
    y[i] = c;
    if (c + 1 > classes) classes = c + 1;
  }
  return { x, y, classes, source: `idx:${imagesPath}` };
}
