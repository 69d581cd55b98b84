/**
 * The WebAssembly SIMD macro-kernel of the js backend's gemm (`gemm.ts` has the loop nest, the
 * packing and the numerics, which all kernels share): a WebAssembly module whose bytes
 * {@link wasmMacroKernelBytes} emits here, at run time — no toolchain, no binary checked in; the
 * encoder is the documentation of the module.
 *
 * The macro-kernel sweeps `MR × NR` = 4 × 8 tiles: eight `f32x4` accumulators, two `f32x4` of B,
 * one splatted A value, 11 of the 16 xmm registers V8's wasm code uses. Each tile is a loop over
 * `k` of `acc += splat(a[i]) · b[j…j+3]` with `f32x4.mul` then `f32x4.add` (Node 20 has SIMD128
 * but not relaxed SIMD, so no fused multiply-add; a fused one would also change the bits). A and
 * B are packed by TypeScript into the module's memory, which the host creates, imports into the
 * module and grows. Tiles measured on the three CD-1 products (GFLOP/s, same run): 4 × 8 36–46,
 * 3 × 8 34–45, 2 × 16 29–31, 4 × 4 29–36, 4 × 16 25–29, 6 × 8 22–26, 8 × 8 19–23, 5 × 8 20–24
 * (the larger ones spill).
 *
 * Numerics (see `gemm.ts`): every product and sum is an IEEE float32 operation, each lane summing
 * its element's products in the order `p = 0, 1, …` of the block; so the bits differ from the
 * float64-summing asm.js and TypeScript kernels (within the float32 dot-product bound), and are
 * the same on every call.
 */
import type { KernelHeap, KernelMemory, MacroKernel, SigmoidKernel } from './gemm.js';

/** Micro-tile height (rows of A per tile) and width (columns of B per tile; a multiple of 4). */
const MR = 4;
const NR = 8;

/** The part of the WebAssembly JavaScript API used here (Node's types do not declare it without the DOM library). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}

const PAGE = 65536;

/**
 * Compiles the module once per process: the compiled module, or why it cannot run here
 * (`WebAssembly` missing, as under `node --jitless`, or the module's SIMD not accepted).
 */
export function wasmGemmSupport(): { readonly module: object } | { readonly reason: string } {
  if (support === undefined) {
    const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    const bytes = wasmMacroKernelBytes(MR, NR);
    if (api === undefined)
      support = { reason: 'this JavaScript engine exposes no WebAssembly (as under node --jitless or --no-expose-wasm)' };
    else if (!api.validate(bytes)) support = { reason: 'WebAssembly does not accept the SIMD128 gemm module on this engine' };
    else support = { module: new api.Module(bytes) };
  }
  return support;
}
let support: { readonly module: object } | { readonly reason: string } | undefined;

/**
 * An instance of the module (`module` from {@link wasmGemmSupport}) with its own memory, as the
 * kernel memory of a `GemmWorkspace`. The memory grows to what the largest product so far needed.
 */
export function createWasmMacroKernel(module: object): KernelMemory {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly!;
  let memory: WasmMemory | undefined;
  let heap: KernelHeap | undefined;
  return {
    mr: MR,
    nr: NR,
    panelBytes: 4,
    get(bytes) {
      if (memory === undefined || heap === undefined) {
        memory = new api.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
        const exports = new api.Instance(module, { env: { memory } }).exports;
        const f32 = new Float32Array(memory.buffer);
        heap = { panels: f32, f32, macro: exports['macro'] as MacroKernel, sigmoid: exports['sigmoid'] as SigmoidKernel };
      } else if (memory.buffer.byteLength < bytes) {
        memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
        const f32 = new Float32Array(memory.buffer);
        heap = { panels: f32, f32, macro: heap.macro, sigmoid: heap.sigmoid! };
      }
      return heap;
    },
    release() {
      // A WebAssembly memory cannot shrink: drop the instance and its memory.
      memory = undefined;
      heap = undefined;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The module encoder (WebAssembly core spec 2.0 binary format, with the SIMD128 opcodes).

/** Opcodes used by the macro-kernel. SIMD ones follow the 0xfd prefix as a LEB128 u32. */
const op = {
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
  simd: 0xfd,
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  v128Const: 0x0c,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f32x4Ge: 0x46,
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
} as const;
const I32 = 0x7f;
const V128 = 0x7b;
const VOID = 0x40;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
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

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

// Instruction helpers shared by the two functions' encoders.
const get = (l: number): number[] => [op.localGet, ...uleb(l)];
const set = (l: number): number[] => [op.localSet, ...uleb(l)];
const tee = (l: number): number[] => [op.localTee, ...uleb(l)];
const i32 = (v: number): number[] => [op.i32Const, ...sleb(v)];
const simd = (code: number, ...imm: number[]): number[] => [op.simd, ...uleb(code), ...imm];
// memarg: alignment exponent (a hint; V8 handles any address), then the constant offset.
const load = (offset: number): number[] => simd(op.v128Load, 4, ...uleb(offset));
const store = (offset: number): number[] => simd(op.v128Store, 4, ...uleb(offset));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
/** `v128.const` of four equal float32 lanes. */
const f32x4 = (value: number): number[] => simd(op.v128Const, ...new Uint8Array(Float32Array.of(value, value, value, value).buffer));
/** `v128.const` of four equal int32 lanes. */
const i32x4 = (value: number): number[] => simd(op.v128Const, ...new Uint8Array(Int32Array.of(value, value, value, value).buffer));

/**
 * The bytes of a module that imports `env.memory` and exports two functions (all parameters i32,
 * offsets in bytes):
 * - `macro(mc, nc, kc, pa, pb, pc, ldc)`: for every `mr × nr` tile of an `mc × nc` block (both
 *   whole multiples of the tile, all three sizes ≥ 1), the product of the A panels packed at `pa`
 *   (`kc × mr` float32 each, row index fastest) and the B panels at `pb` (`kc × nr` each, column
 *   index fastest) is added to the float32 block at `pc` (rows `ldc` bytes apart). Each tile is
 *   summed in `mr · nr / 4` `f32x4` locals over `p = 0, 1, …, kc − 1`, then added to `c` and stored.
 * - `sigmoid(pc, ldc, rows, groups, pbias)`: `c = σ(c + bias)` in place on `rows` rows of
 *   `4 · groups` float32 at `pc` (rows `ldc` bytes apart), `bias` the `4 · groups` float32 at
 *   `pbias`; see {@link sigmoidCode} for the arithmetic.
 * With `sharedMaxPages` the imported memory is a shared one of at most that many 64 KiB pages
 * (the memory the gemm threads of `gemm-threads.ts` share); the code is the same.
 */
export function wasmMacroKernelBytes(mr: number, nr: number, sharedMaxPages?: number): Uint8Array {
  if (nr % 4 !== 0) throw new RangeError(`wasmMacroKernelBytes: nr = ${nr} is not a multiple of 4`);
  // Memory limits: no maximum (flag 0), or shared with a maximum (flag 3), as the threads' memory must be.
  const memoryLimits = sharedMaxPages === undefined ? [0x00, 0] : [0x03, 0, ...uleb(sharedMaxPages)];
  const macro = macroCode(mr, nr);
  const sigmoid = sigmoidCode();
  // prettier-ignore
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [2, 0x60, 7, ...new Array<number>(7).fill(I32), 0, 0x60, 5, ...new Array<number>(5).fill(I32), 0]), // (i32 × 7) → (), (i32 × 5) → ()
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, ...memoryLimits]), // import env.memory, min 0 pages
    ...section(3, [2, 0, 1]), // two functions, of types 0 and 1
    ...section(7, [2, ...name('macro'), 0x00, 0, ...name('sigmoid'), 0x00, 1]), // exported as "macro" and "sigmoid"
    ...section(10, [2, ...uleb(macro.length), ...macro, ...uleb(sigmoid.length), ...sigmoid]),
  ];
  return Uint8Array.from(bytes);
}

/** The locals and body of `macro` (see {@link wasmMacroKernelBytes}). */
function macroCode(mr: number, nr: number): number[] {
  const lanes = nr / 4;
  // Locals: parameters 0–6, then i32 ir, jr, p, a, b, c; then v128 accumulators, B vectors, A splat.
  const [mc, nc, kc, pa, pb, pc, ldc] = [0, 1, 2, 3, 4, 5, 6];
  const [ir, jr, p, a, b, c] = [7, 8, 9, 10, 11, 12];
  const acc = (i: number, j: number): number => 13 + i * lanes + j;
  const bv = (j: number): number => 13 + mr * lanes + j;
  const x = 13 + mr * lanes + lanes;
  const nV128 = mr * lanes + lanes + 1;
  const splat = (offset: number): number[] => simd(op.v128Load32Splat, 2, ...uleb(offset));
  const zero = simd(op.v128Const, ...new Array<number>(16).fill(0));

  // One instruction group per line, like an assembly listing: Prettier leaves the layout alone.
  // prettier-ignore
  const body: number[] = [
    ...i32(0), ...set(jr),
    op.loop, VOID, // for jr in 0, nr, …, nc − nr
    ...i32(0), ...set(ir),
    op.loop, VOID, // for ir in 0, mr, …, mc − mr
    // a = pa + ir·kc·4; b = pb + jr·kc·4
    ...get(pa), ...get(ir), ...get(kc), op.i32Mul, ...i32(2), op.i32Shl, op.i32Add, ...set(a),
    ...get(pb), ...get(jr), ...get(kc), op.i32Mul, ...i32(2), op.i32Shl, op.i32Add, ...set(b),
    ...range(mr).flatMap((i) => range(lanes).flatMap((j) => [...zero, ...set(acc(i, j))])),
    ...get(kc), ...set(p),
    op.loop, VOID, // kc times
    ...range(lanes).flatMap((j) => [...get(b), ...load(16 * j), ...set(bv(j))]),
    ...range(mr).flatMap((i) => [
      ...get(a), ...splat(4 * i), ...set(x),
      // acc[i][j] = acc[i][j] + x · b[j]
      ...range(lanes).flatMap((j) => [...get(acc(i, j)), ...get(x), ...get(bv(j)), ...simd(op.f32x4Mul), ...simd(op.f32x4Add), ...set(acc(i, j))]),
    ]),
    ...get(a), ...i32(4 * mr), op.i32Add, ...set(a),
    ...get(b), ...i32(4 * nr), op.i32Add, ...set(b),
    ...get(p), ...i32(1), op.i32Sub, ...tee(p), op.brIf, 0,
    op.end,
    // c = pc + ir·ldc + jr·4; then row by row: c[…] += acc
    ...get(pc), ...get(ir), ...get(ldc), op.i32Mul, op.i32Add, ...get(jr), ...i32(2), op.i32Shl, op.i32Add, ...set(c),
    ...range(mr).flatMap((i) => [
      ...range(lanes).flatMap((j) => [...get(c), ...get(c), ...load(16 * j), ...get(acc(i, j)), ...simd(op.f32x4Add), ...store(16 * j)]),
      ...get(c), ...get(ldc), op.i32Add, ...set(c),
    ]),
    ...get(ir), ...i32(mr), op.i32Add, ...tee(ir), ...get(mc), op.i32LtU, op.brIf, 0,
    op.end,
    ...get(jr), ...i32(nr), op.i32Add, ...tee(jr), ...get(nc), op.i32LtU, op.brIf, 0,
    op.end,
    op.end,
  ];
  return [2, ...uleb(6), I32, ...uleb(nV128), V128, ...body];
}

/**
 * Cephes' `expf` polynomial: e^r ≈ 1 + r + r²·P(r) for |r| ≤ ln 2 / 2, P's coefficients highest
 * first (S. L. Moshier, Cephes Math Library, `expf.c`; relative error about 1 float32 ulp).
 */
const EXP_POLY = [1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
/** ln 2 in two parts for the range reduction r = t − n·ln 2 (Cody–Waite; `n·LN2_HI` is exact). */
const LN2_HI = 0.693359375;
const LN2_LO = -2.1219444e-4;

/**
 * The locals and body of `sigmoid` (see {@link wasmMacroKernelBytes}), four lanes at a time in
 * float32: z = c + bias; t = max(−|z|, −104); e = eᵗ, as 2ⁿ·e^r with n = nearest(t·log₂e), the
 * reduction r = (t − n·LN2_HI) − n·LN2_LO and {@link EXP_POLY}, the power of two applied as two
 * factors 2^⌊n/2⌋·2^(n−⌊n/2⌋) so that results down to the float32 subnormals come out right; then
 * σ(z) = 1/(1 + e) where z ≥ 0 and e/(1 + e) elsewhere (NaN stays NaN; ±∞ give 1 and 0). The
 * relative error is a few float32 ulps (tested against float64 `1/(1 + Math.exp(−z))`).
 */
function sigmoidCode(): number[] {
  // Locals: parameters 0–4, then i32 i, j, c, b; then v128 z, t, n, r, p, e.
  const [pc, ldc, rows, groups, pbias] = [0, 1, 2, 3, 4];
  const [i, j, c, b] = [5, 6, 7, 8];
  const [z, t, n, r, p, e] = [9, 10, 11, 12, 13, 14];
  const f = (code: number): number[] => simd(code);
  /** 2^k for the int32 lanes k on the stack (−126 ≤ k ≤ 127): (k + 127) << 23 as float32 bits. */
  const pow2 = [...i32x4(127), ...f(op.i32x4Add), ...i32(23), ...f(op.i32x4Shl)];
  // prettier-ignore
  const body: number[] = [
    ...get(rows), op.i32Eqz, op.brIf, 0, // nothing to do
    ...get(groups), op.i32Eqz, op.brIf, 0,
    ...i32(0), ...set(i),
    op.loop, VOID, // for i in 0 … rows − 1
    ...get(pc), ...get(i), ...get(ldc), op.i32Mul, op.i32Add, ...set(c),
    ...get(pbias), ...set(b),
    ...get(groups), ...set(j),
    op.loop, VOID, // groups times
    ...get(c), ...load(0), ...get(b), ...load(0), ...f(op.f32x4Add), ...set(z),
    // t = max(−|z|, −104): below −103.97 every result rounds to 0 or 1 anyway
    ...get(z), ...f(op.f32x4Abs), ...f(op.f32x4Neg), ...f32x4(-104), ...f(op.f32x4Max), ...set(t),
    // n = nearest(t · log₂e); r = (t − n·LN2_HI) − n·LN2_LO
    ...get(t), ...f32x4(Math.LOG2E), ...f(op.f32x4Mul), ...f(op.f32x4Nearest), ...set(n),
    ...get(t), ...get(n), ...f32x4(LN2_HI), ...f(op.f32x4Mul), ...f(op.f32x4Sub),
    ...get(n), ...f32x4(LN2_LO), ...f(op.f32x4Mul), ...f(op.f32x4Sub), ...set(r),
    // p = ((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5
    ...f32x4(EXP_POLY[0]!),
    ...EXP_POLY.slice(1).flatMap((coefficient) => [...get(r), ...f(op.f32x4Mul), ...f32x4(coefficient), ...f(op.f32x4Add)]),
    ...set(p),
    // e = (p·r² + r + 1) · 2^⌊n/2⌋ · 2^(n − ⌊n/2⌋)
    ...get(p), ...get(r), ...get(r), ...f(op.f32x4Mul), ...f(op.f32x4Mul), ...get(r), ...f(op.f32x4Add), ...f32x4(1), ...f(op.f32x4Add),
    ...get(n), ...f(op.i32x4TruncSatF32x4S), ...set(n), // n as int32 lanes from here on
    ...get(n), ...i32(1), ...f(op.i32x4ShrS), ...set(r), // r = ⌊n/2⌋
    ...get(r), ...pow2, ...f(op.f32x4Mul),
    ...get(n), ...get(r), ...f(op.i32x4Sub), ...pow2, ...f(op.f32x4Mul), ...set(e),
    // σ = z ≥ 0 ? 1/(1 + e) : e/(1 + e)
    ...get(c),
    ...f32x4(1), ...get(e), ...f32x4(1), ...f(op.f32x4Add), ...f(op.f32x4Div),
    ...get(e), ...get(e), ...f32x4(1), ...f(op.f32x4Add), ...f(op.f32x4Div),
    ...get(z), ...f32x4(0), ...f(op.f32x4Ge),
    ...f(op.v128Bitselect),
    ...store(0),
    ...get(c), ...i32(16), op.i32Add, ...set(c),
    ...get(b), ...i32(16), op.i32Add, ...set(b),
    ...get(j), ...i32(1), op.i32Sub, ...tee(j), op.brIf, 0,
    op.end,
    ...get(i), ...i32(1), op.i32Add, ...tee(i), ...get(rows), op.i32LtU, op.brIf, 0,
    op.end,
    op.end,
  ];
  return [2, ...uleb(4), I32, ...uleb(6), V128, ...body];
}
