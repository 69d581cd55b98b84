/**
 * Numeric payload helpers of the async wire format: float32/binary16 payload frames, SPARSE
 * frames, finiteness scans and sums of squares. Pure functions on bytes and typed arrays.
 */
import type { WireFormatErrorCode } from '../../errors.js';
import { decodeFloat16Into, encodeFloat16 } from '../float16.js';
import { LITTLE_ENDIAN, u16, u32 } from './format.js';
import type { SparseTensor } from './format.js';

/**
 * A SPARSE frame for a tensor of `n` elements, read and checked: its entries and `Σ v²` (NaN
 * without `values`, whose finiteness is then not checked), or what is wrong with it (a wire
 * error code and a sentence).
 */
export function readSparseChecked(
  frame: Uint8Array,
  n: number,
  values: boolean,
): { readonly tensor: SparseTensor; readonly sumSquares: number } | { readonly problem: [WireFormatErrorCode, string] } {
  if (frame.length % 8 !== 0 || frame.length / 8 > n)
    return { problem: ['ELENGTH', `${frame.length} bytes; a multiple of 8 up to ${8 * n} expected.`] };
  const tensor = readSparse(frame);
  const ix = tensor.indices;
  let prev = -1;
  for (let j = 0; j < ix.length; j++) {
    const k = ix[j]!;
    if (k <= prev || k >= n)
      return { problem: ['EINDEX', `index ${k} at entry ${j} is ${k >= n ? `beyond the ${n} elements` : 'not above the one before'}.`] };
    prev = k;
  }
  if (!values) return { tensor, sumSquares: Number.NaN };
  const sumSquares = sumOfSquares(tensor.values);
  if (!Number.isFinite(sumSquares)) {
    const j = tensor.values.findIndex((v) => !Number.isFinite(v));
    return { problem: ['ENONFINITE', `entry ${j} (element ${ix[j]}) holds ${tensor.values[j]}.`] };
  }
  return { tensor, sumSquares };
}

/** Views (or, unaligned or big-endian, copies) of a SPARSE frame's indices and values. */
export function readSparse(frame: Uint8Array): SparseTensor {
  const m = frame.length >>> 3;
  if (LITTLE_ENDIAN && frame.byteOffset % 4 === 0) {
    return {
      indices: new Uint32Array(frame.buffer, frame.byteOffset, m),
      values: new Float32Array(frame.buffer, frame.byteOffset + 4 * m, m),
    };
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const indices = new Uint32Array(m);
  const values = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    indices[j] = view.getUint32(4 * j, true);
    values[j] = view.getFloat32(4 * (m + j), true);
  }
  return { indices, values };
}

/** The dense form of a sparse tensor of `n` elements. */
export function densify(s: SparseTensor, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let j = 0; j < s.indices.length; j++) out[s.indices[j]!] = s.values[j]!;
  return out;
}

export function payload(t: Float32Array, f16: boolean): Buffer {
  // allocUnsafe: every byte is written below (no zero-fill pass over megabyte deltas).
  if (f16) {
    const b = Buffer.allocUnsafe(t.length * 2);
    encodeFloat16(t, b);
    return b;
  }
  const b = Buffer.allocUnsafe(t.length * 4);
  if (LITTLE_ENDIAN) b.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  else for (let i = 0; i < t.length; i++) b.writeFloatLE(t[i]!, i * 4);
  return b;
}

/** True when every value of `t` is finite with a magnitude below `limit`. */
export function allFinite(t: Float32Array, limit: number): boolean {
  // v·0 is 0 for a finite v and NaN otherwise; a running maximum of |v| catches the limit.
  let z = 0;
  let m = 0;
  for (let k = 0; k < t.length; k++) {
    const v = t[k]!;
    z += v * 0;
    const a = Math.abs(v);
    m = a > m ? a : m;
  }
  return z === 0 && m < limit;
}

/** The index of the first non-finite float32 in `b` (little-endian, length a multiple of 4), or −1. */
export function firstNonFiniteFloat(b: Buffer): number {
  const n = b.length >>> 2;
  if (LITTLE_ENDIAN && (b.byteOffset & 3) === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, n);
    // An all-ones exponent (Infinity, NaN) carries into bit 31: OR the sums, test the sign once.
    let acc = 0;
    for (let k = 0; k < n; k++) acc |= (w[k]! & 0x7f800000) + 0x00800000;
    if (acc >= 0) return -1;
  }
  for (let k = 0; k < n; k++) if ((u32(b, 4 * k) & 0x7f800000) === 0x7f800000) return k;
  return -1;
}

/** The index of the first non-finite binary16 in `b` (little-endian, even length), or −1. */
export function firstNonFiniteHalf(b: Buffer): number {
  const n = b.length >>> 1;
  if (LITTLE_ENDIAN && (b.byteOffset & 3) === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, n >>> 1);
    // Two halves per word: an all-ones exponent carries into bit 15 or bit 31 of its half.
    let acc = 0;
    for (let k = 0; k < w.length; k++) acc |= (w[k]! & 0x7c007c00) + 0x04000400;
    if ((acc & 0x80008000) === 0 && ((n & 1) === 0 || (u16(b, 2 * (n - 1)) & 0x7c00) !== 0x7c00)) return -1;
  }
  for (let k = 0; k < n; k++) if ((u16(b, 2 * k) & 0x7c00) === 0x7c00) return k;
  return -1;
}

/** Fills `out` from a payload frame (copying: the frame's byteOffset may not be a multiple of 4); returns Σ v². */
export function readTensor(frame: Uint8Array, out: Float32Array, f16: boolean): number {
  if (f16) return decodeFloat16Into(frame, out);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(frame);
  else {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return sumOfSquares(out);
}

/**
 * `Σ v²` in float64 (not finite exactly when some `v` is not), in four interleaved partial sums
 * (measured twice as fast as one running sum on a 392,000-value delta: the additions no longer
 * wait on each other). The order is fixed, so the result is the same on every call.
 */
export function sumOfSquares(t: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = t.length;
  const m = n - (n & 3);
  let i = 0;
  for (; i < m; i += 4) {
    const a = t[i]!;
    const b = t[i + 1]!;
    const c = t[i + 2]!;
    const d = t[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (; i < n; i++) {
    const v = t[i]!;
    s0 += v * v;
  }
  return s0 + s1 + (s2 + s3);
}
