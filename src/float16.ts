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
  return float16FromFloat32(u32[0]!, f32[0]!);
}

/** 2^52: adding then subtracting it rounds a double in [0, 2^51) to an integer, ties to even. */
const ROUND_MAGIC = 4503599627370496;

/**
 * The binary16 bit pattern nearest to a float32 value, given both its bits `u` and its value
 * `x` (bulk loops have both at hand). Branch-free across the normal/subnormal boundary, which
 * small weight deltas straddle at random: the subnormal result is `|x|·2^24` rounded to an
 * integer, ties to even (exact in double precision); the normal one rounds the rebased bits
 * (F. Giesen's `float_to_half_fast3_rtne`); a mask picks one.
 */
export function float16FromFloat32(u: number, x: number): number {
  const a = u & 0x7fffffff;
  const sign = (u >>> 16) & 0x8000;
  // |x| ≥ 65520 rounds to infinity; a NaN stays a quiet NaN with the top bits of its payload.
  if (a >= 0x477ff000) return a > 0x7f800000 ? sign | 0x7e00 | ((a >>> 13) & 0x3ff) : sign | 0x7c00;
  const sub = (a - 0x38800000) >> 31; // −1 when |x| < 2^-14 (a subnormal or zero half), else 0
  const hs = (Math.abs(x) * 16777216 + ROUND_MAGIC - ROUND_MAGIC) | 0;
  const hn = (a - 0x37fff001 + ((a >>> 13) & 1)) >>> 13;
  return sign | (hs & sub) | (hn & ~sub);
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

/** The value of every binary16 bit pattern, indexed by the pattern (256 KiB, built on first use). */
export function float16Table(): Float32Array {
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
    for (let i = 0; i < bits.length; i++) o16[i] = float16FromFloat32(bits[i]!, src[i]!);
    return;
  }
  for (let i = 0, o = offset; i < bits.length; i++, o += 2) {
    const h = float16FromFloat32(bits[i]!, src[i]!);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
  }
}

/** Decodes `count` little-endian binary16 values from `bytes` at `offset` into a new Float32Array. */
export function decodeFloat16(bytes: Uint8Array, count: number, offset = 0): Float32Array {
  const out = new Float32Array(count);
  decodeFloat16Into(bytes, out, offset);
  return out;
}

/**
 * Decodes `out.length` little-endian binary16 values from `bytes` at `offset` into `out`;
 * returns the sum of their squares (float64: non-finite exactly when a value is ±Infinity or
 * NaN, so one pass both decodes and checks).
 */
export function decodeFloat16Into(bytes: Uint8Array, out: Float32Array, offset = 0): number {
  const t = float16Table();
  const count = out.length;
  let sq = 0;
  if (LITTLE_ENDIAN && ((bytes.byteOffset + offset) & 1) === 0) {
    const h16 = new Uint16Array(bytes.buffer, bytes.byteOffset + offset, count);
    for (let i = 0; i < count; i++) {
      const v = t[h16[i]!]!;
      out[i] = v;
      sq += v * v;
    }
    return sq;
  }
  for (let i = 0, o = offset; i < count; i++, o += 2) {
    const v = t[bytes[o]! | (bytes[o + 1]! << 8)]!;
    out[i] = v;
    sq += v * v;
  }
  return sq;
}

/**
 * Writes into `out` each value of `src` rounded to the nearest binary16 value (what a float16
 * payload carries), as float32; `out` may be `src`. Values beyond ±65504 become ±Infinity.
 */
export function roundToFloat16(src: Float32Array, out: Float32Array = src): Float32Array {
  const t = float16Table();
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[float16FromFloat32(bits[i]!, src[i]!)]!;
  return out;
}
