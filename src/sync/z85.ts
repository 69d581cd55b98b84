/**
 * Z85 (ZeroMQ RFC 32) encoding of 32-byte CURVE keys: 40 printable characters.
 */

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** True when `s` is a 40-character Z85 string (the text form of a 32-byte CURVE key). */
export function isZ85Key(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 40) return false;
  for (let i = 0; i < 40; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || DECODE[c]! < 0) return false;
  }
  return z85Decode(s) !== undefined;
}

/** Decodes a Z85 string whose length is a multiple of 5; `undefined` if it is not valid Z85. */
export function z85Decode(s: string): Uint8Array | undefined {
  if (s.length % 5 !== 0) return undefined;
  const out = new Uint8Array((s.length / 5) * 4);
  for (let i = 0, o = 0; i < s.length; i += 5, o += 4) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const c = s.charCodeAt(i + j);
      const d = c < 128 ? DECODE[c]! : -1;
      if (d < 0) return undefined;
      v = v * 85 + d;
    }
    if (v > 0xffffffff) return undefined;
    out[o] = (v >>> 24) & 0xff;
    out[o + 1] = (v >>> 16) & 0xff;
    out[o + 2] = (v >>> 8) & 0xff;
    out[o + 3] = v & 0xff;
  }
  return out;
}

/** Encodes bytes (length a multiple of 4) as Z85. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError(`Z85 encodes multiples of 4 bytes, got ${bytes.length}.`);
  let s = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    const chars = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chars[j] = ALPHABET[v % 85]!;
      v = Math.floor(v / 85);
    }
    s += chars.join('');
  }
  return s;
}
