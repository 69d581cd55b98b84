/**
 * IEEE 754 binary16 conversion for the optional float16 payload encoding: round to nearest,
 * ties to even; subnormals kept; overflow goes to ±Infinity; NaN stays NaN (quiet, payload
 * truncated); ±0 keep their sign.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `x` (after rounding `x` to float32). */
export function toFloat16Bits(x: number): number {
  f32[0] = x;
  return halfFromFloat32Bits(u32[0]!);
}

/** The binary16 bit pattern nearest to the float32 whose bits are `u`. */
function halfFromFloat32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value / 2^-24 = significand >> (14 - e), rounded to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let q = m >>> shift;
    const r = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (r > half || (r === half && (q & 1) === 1)) q++;
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const r = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches 0x7c00 = Inf).
  if (r > 0x1000 || (r === 0x1000 && (q & 1) === 1)) q++;
  return sign | q;
}

/** The value of the binary16 bit pattern `h` (0 ≤ h < 65536). */
export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 5.960464477539063e-8; // 2^-24
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : Number.NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

let table: Float32Array | undefined;

/** The value of every binary16 bit pattern, built on first use (256 KiB). */
function halfTable(): Float32Array {
  if (table === undefined) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = fromFloat16Bits(h);
  }
  return table;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Encodes `src` as little-endian binary16 into `out` (2·src.length bytes at `offset`). */
export function encodeFloat16(src: Float32Array, out: Uint8Array, offset = 0): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  if (LITTLE_ENDIAN && ((out.byteOffset + offset) & 1) === 0) {
    const o16 = new Uint16Array(out.buffer, out.byteOffset + offset, src.length);
    for (let i = 0; i < bits.length; i++) o16[i] = halfFromFloat32Bits(bits[i]!);
    return;
  }
  for (let i = 0, o = offset; i < bits.length; i++, o += 2) {
    const h = halfFromFloat32Bits(bits[i]!);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
  }
}

/** Decodes `count` little-endian binary16 values from `bytes` at `offset` into a new Float32Array. */
export function decodeFloat16(bytes: Uint8Array, count: number, offset = 0): Float32Array {
  const t = halfTable();
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN && ((bytes.byteOffset + offset) & 1) === 0) {
    const h16 = new Uint16Array(bytes.buffer, bytes.byteOffset + offset, count);
    for (let i = 0; i < count; i++) out[i] = t[h16[i]!]!;
    return out;
  }
  for (let i = 0, o = offset; i < count; i++, o += 2) out[i] = t[bytes[o]! | (bytes[o + 1]! << 8)]!;
  return out;
}

/**
 * Writes into `out` each value of `src` rounded to the nearest binary16 value (what a float16
 * payload carries), as float32; `out` may be `src`. Values beyond ±65504 become ±Infinity.
 */
export function roundToFloat16(src: Float32Array, out: Float32Array = src): Float32Array {
  const t = halfTable();
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[halfFromFloat32Bits(bits[i]!)]!;
  return out;
}
