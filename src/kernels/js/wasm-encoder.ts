/**
 * A small encoder for the js backend's WebAssembly module (core spec 2.0 binary format, with the
 * SIMD128 opcodes): the opcodes the module uses and helpers that return the bytes of one
 * instruction each, so that the functions in `wasm-gemm.ts` and `wasm-elementwise.ts` read like
 * an assembly listing.
 */

/** Opcodes used by the module. SIMD ones follow the 0xfd prefix as a LEB128 u32. */
export const op = {
  block: 0x02,
  loop: 0x03,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32Ne: 0x47,
  i32LtU: 0x49,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32Shl: 0x74,
  i32And: 0x71,
  i32ShrU: 0x76,
  f32Load: 0x2a,
  f32Store: 0x38,
  simd: 0xfd,
  i8x16Shuffle: 0x0d,
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  v128Const: 0x0c,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  /** Relaxed SIMD: `a · b + c`, fused where the CPU has FMA (then one rounding). */
  f32x4RelaxedMadd: 0x105,
  f32x4Lt: 0x43,
  f32x4Ge: 0x46,
  v128And: 0x4e,
  v128Bitselect: 0x52,
  f32x4Nearest: 0x6a,
  i32x4Shl: 0xab,
  i32x4ShrS: 0xac,
  i32x4Add: 0xae,
  i32x4Sub: 0xb1,
  f32x4Abs: 0xe0,
  f32x4Neg: 0xe1,
  f32x4Sub: 0xe5,
  f32x4Div: 0xe7,
  f32x4Max: 0xe9,
  i32x4TruncSatF32x4S: 0xf8,
  v128Store64Lane: 0x5b,
  v128Load64Zero: 0x5d,
  f32x4DemoteF64x2Zero: 0x5e,
  f64x2PromoteLowF32x4: 0x5f,
  f64x2Splat: 0x14,
  f64x2Add: 0xf0,
  f64x2Sub: 0xf1,
  f64x2Mul: 0xf2,
} as const;
export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;
export const VOID = 0x40;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

export function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

// Instruction helpers shared by the two functions' encoders.
export const get = (l: number): number[] => [op.localGet, ...uleb(l)];
export const set = (l: number): number[] => [op.localSet, ...uleb(l)];
export const tee = (l: number): number[] => [op.localTee, ...uleb(l)];
export const i32 = (v: number): number[] => [op.i32Const, ...sleb(v)];
export const simd = (code: number, ...imm: number[]): number[] => [op.simd, ...uleb(code), ...imm];
// memarg: alignment exponent (a hint; V8 handles any address), then the constant offset.
export const load = (offset: number): number[] => simd(op.v128Load, 4, ...uleb(offset));
export const store = (offset: number): number[] => simd(op.v128Store, 4, ...uleb(offset));
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
/** `v128.const` of four equal float32 lanes. */
export const f32x4 = (value: number): number[] => simd(op.v128Const, ...new Uint8Array(Float32Array.of(value, value, value, value).buffer));
/** `v128.const` of four equal int32 lanes. */
export const i32x4 = (value: number): number[] => simd(op.v128Const, ...new Uint8Array(Int32Array.of(value, value, value, value).buffer));

/** A function of the module: its export name, parameter types, and locals + body bytes. */
export interface WasmFunction {
  readonly name: string;
  readonly params: readonly number[];
  readonly code: readonly number[];
}

/**
 * The bytes of a module importing `env.memory` (unshared without a maximum, or shared with
 * `sharedMaxPages` 64 KiB pages at most) and exporting `functions` (no results) under their names.
 */
export function moduleBytes(functions: readonly WasmFunction[], sharedMaxPages?: number): Uint8Array {
  const memoryLimits = sharedMaxPages === undefined ? [0x00, 0] : [0x03, 0, ...uleb(sharedMaxPages)];
  const count = uleb(functions.length);
  // prettier-ignore
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [...count, ...functions.flatMap((f) => [0x60, ...uleb(f.params.length), ...f.params, 0])]), // one type per function
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, ...memoryLimits]), // import env.memory, min 0 pages
    ...section(3, [...count, ...functions.flatMap((_, i) => uleb(i))]), // function i has type i
    ...section(7, [...count, ...functions.flatMap((f, i) => [...name(f.name), 0x00, ...uleb(i)])]), // exports
    ...section(10, [...count, ...functions.flatMap((f) => [...uleb(f.code.length), ...f.code])]),
  ];
  return Uint8Array.from(bytes);
}
