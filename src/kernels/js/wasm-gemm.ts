/**
 * The WebAssembly SIMD macro-kernel of the js backend's gemm (`gemm.ts` has the loop nest, the
 * packing and the numerics, which all kernels share): a WebAssembly module whose bytes
 * {@link wasmMacroKernelBytes} emits here, at run time — no toolchain, no binary checked in; the
 * encoder is the documentation of the module.
 *
 * The macro-kernel sweeps `MR × NR` = 4 × 8 tiles: eight `f32x4` accumulators, two `f32x4` of B,
 * one splatted A value, 11 of the 16 xmm registers V8's wasm code uses. Each tile is a loop over
 * `k` of `acc += splat(a[i]) · b[j…j+3]`: by default with relaxed SIMD's `f32x4.relaxed_madd`,
 * which V8 compiles to a fused multiply-add where the CPU has FMA (twice the products per cycle
 * of a multiply and an add: the CD-1 products ran 2.0–2.3× faster on one thread); without it, or
 * with `fma: false`, with `f32x4.mul` then `f32x4.add`. Node 20's V8 accepts relaxed SIMD only
 * behind `--experimental-wasm-relaxed-simd` (V8 turned it on by default from 11.4), so
 * {@link wasmGemmSupport} sets that one flag (`v8.setFlagsFromString`) when the engine refuses
 * the fused module and otherwise falls back to the unfused one. A and B are packed into the
 * module's memory (by the module's packing functions, or TypeScript), which the host creates,
 * imports into the module and grows. Tiles measured on the three CD-1 products (GFLOP/s, same run): 4 × 8 36–46,
 * 3 × 8 34–45, 2 × 16 29–31, 4 × 4 29–36, 4 × 16 25–29, 6 × 8 22–26, 8 × 8 19–23, 5 × 8 20–24
 * (the larger ones spill).
 *
 * Numerics (see `gemm.ts`): every product and sum is an IEEE float32 operation (a fused
 * multiply-add rounds once), each lane summing its element's products in the order `p = 0, 1, …`
 * of the block; so the bits differ from the float64-summing asm.js and TypeScript kernels (within
 * the float32 dot-product bound) and between the fused and unfused modules, and are the same on
 * every call on a machine.
 */
import { setFlagsFromString } from 'node:v8';
import type {
  BernoulliKernel,
  ColSumKernel,
  KernelHeap,
  KernelMemory,
  MacroKernel,
  MomentumKernel,
  PanelKernel,
  ScaleKernel,
  SigmoidKernel,
  TransposeKernel,
} from './gemm.js';
import { F64, I32, V128, VOID, get, i32, load, moduleBytes, op, range, set, simd, store, tee, uleb } from './wasm-encoder.js';
import { bernoulliCode, colSumCode, loadPair, momentumCode, sigmoidCode, storePair } from './wasm-elementwise.js';

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

/** The compiled module and whether its macro-kernel uses relaxed SIMD's fused multiply-add. */
export interface WasmGemmModule {
  readonly module: object;
  readonly fma: boolean;
}

/**
 * Compiles the module once per process and choice: with `fma`, the macro-kernel on
 * `f32x4.relaxed_madd` when the engine accepts relaxed SIMD (on Node 20 after enabling V8's
 * `--experimental-wasm-relaxed-simd`), else the unfused one; the compiled module, or why none
 * can run here (`WebAssembly` missing, as under `node --jitless`, or its SIMD not accepted).
 */
export function wasmGemmSupport(fma = true): WasmGemmModule | { readonly reason: string } {
  const cached = support.get(fma);
  if (cached !== undefined) return cached;
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  let found: WasmGemmModule | { readonly reason: string };
  if (api === undefined) found = { reason: 'this JavaScript engine exposes no WebAssembly (as under node --jitless or --no-expose-wasm)' };
  else if (fma && acceptsRelaxedSimd(api, wasmMacroKernelBytes(MR, NR, undefined, true)))
    found = { module: new api.Module(wasmMacroKernelBytes(MR, NR, undefined, true)), fma: true };
  else {
    const bytes = wasmMacroKernelBytes(MR, NR);
    found = api.validate(bytes)
      ? { module: new api.Module(bytes), fma: false }
      : { reason: 'WebAssembly does not accept the SIMD128 gemm module on this engine' };
  }
  support.set(fma, found);
  return found;
}
const support = new Map<boolean, WasmGemmModule | { readonly reason: string }>();

/**
 * Whether the engine validates `bytes` (a module using relaxed SIMD), enabling V8's relaxed-SIMD
 * flag first when it does not (Node 20: V8 11.3, where the proposal is complete but not on by
 * default). The flag only lets WebAssembly validate the proposal's opcodes.
 */
export function acceptsRelaxedSimd(api: { validate(bytes: Uint8Array): boolean }, bytes: Uint8Array): boolean {
  if (api.validate(bytes)) return true;
  try {
    setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return api.validate(bytes);
}

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
        heap = {
          panels: f32,
          f32,
          macro: exports['macro'] as MacroKernel,
          sigmoid: exports['sigmoid'] as SigmoidKernel,
          momentum: exports['momentum'] as MomentumKernel,
          colSum: exports['colSum'] as ColSumKernel,
          bernoulli: exports['bernoulli'] as BernoulliKernel,
          packPanels: exports['packPanels'] as PanelKernel,
          transpose4: exports['transpose4'] as TransposeKernel,
          scale4: exports['scale4'] as ScaleKernel,
        };
      } else if (memory.buffer.byteLength < bytes) {
        memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
        const f32 = new Float32Array(memory.buffer);
        heap = { ...heap, panels: f32, f32 };
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

/**
 * The bytes of a module that imports `env.memory` and exports these functions (offsets in bytes):
 * - `macro(mc, nc, kc, pa, pb, pc, ldc)`: for every `mr × nr` tile of an `mc × nc` block (both
 *   whole multiples of the tile, all three sizes ≥ 1), the product of the A panels packed at `pa`
 *   (`kc × mr` float32 each, row index fastest) and the B panels at `pb` (`kc × nr` each, column
 *   index fastest) is added to the float32 block at `pc` (rows `ldc` bytes apart). Each tile is
 *   summed in `mr · nr / 4` `f32x4` locals over `p = 0, 1, …, kc − 1`, then added to `c` and stored.
 * - `sigmoid(pc, ldc, rows, groups, pbias)`: `c = σ(c + bias)` in place on `rows` rows of
 *   `4 · groups` float32 at `pc` (rows `ldc` bytes apart), `bias` the `4 · groups` float32 at
 *   `pbias`; see {@link sigmoidCode} for the arithmetic.
 * - `packPanels(pdst, psrc, rowBytes, kc, panels)`: `panels` panels of 8 float32 columns, each
 *   `kc` rows read from `psrc` (the panel's first element; rows `rowBytes` apart, panels 32 bytes
 *   apart) and written one after another from `pdst` — `packB` with `nr = 8` and `bCol = 1`, in
 *   two `v128` copies per row instead of eight scalar ones (1 ≤ kc, 0 ≤ panels).
 * - `transpose4(pdst, psrc, rowBytes, kc, dstStride)`: four rows of `kc` float32 (the first at
 *   `psrc`, `rowBytes` apart) written as `kc` groups of four float32 at `pdst`, `dstStride` bytes
 *   apart, group `p` holding element `p` of each row — four at a time by `i8x16.shuffle`s (a 4 × 4
 *   transpose), the last `kc mod 4` one by one. `packA` of a 4-row tile of a row-major A (alpha
 *   1) with `dstStride` 16; half an 8-wide panel of a B read transposed with 32 (0 ≤ kc).
 * - `scale4(pdst, psrc, srcStride, kc, alpha)`: `kc` groups of four float32 (at `psrc`, `srcStride`
 *   bytes apart) times the float64 `alpha`, each product rounded to float32, written one after
 *   another at `pdst` — `packA` of a 4-row tile of a transposed A, in float64 lanes as `packA`
 *   computes it (0 ≤ kc).
 * - `zero(pc, ldc, rows, groups)`: `rows` rows of `4 · groups` float32 at `pc` (rows `ldc` bytes
 *   apart) set to +0, a `v128` at a time (rows, groups ≥ 1).
 * - `momentum(pp, pv, pg, pairs, lr, mu, wd, gs)`, `colSum(px, rows, pairs, pacc)` and
 *   `bernoulli(pp, pu, po, groups)`: see {@link momentumCode}, {@link colSumCode} and {@link bernoulliCode}.
 * With `sharedMaxPages` the imported memory is a shared one of at most that many 64 KiB pages
 * (the memory the gemm threads of `gemm-threads.ts` share); the code is the same. With `fma`,
 * `macro` multiplies and adds with `f32x4.relaxed_madd` (relaxed SIMD).
 */
export function wasmMacroKernelBytes(mr: number, nr: number, sharedMaxPages?: number, fma = false): Uint8Array {
  if (nr % 4 !== 0) throw new RangeError(`wasmMacroKernelBytes: nr = ${nr} is not a multiple of 4`);
  return moduleBytes(
    [
      { name: 'macro', params: new Array<number>(7).fill(I32), code: macroCode(mr, nr, fma) },
      { name: 'sigmoid', params: new Array<number>(5).fill(I32), code: sigmoidCode() },
      { name: 'momentum', params: [I32, I32, I32, I32, F64, F64, F64, F64], code: momentumCode() },
      { name: 'colSum', params: [I32, I32, I32, I32], code: colSumCode() },
      { name: 'bernoulli', params: [I32, I32, I32, I32], code: bernoulliCode() },
      { name: 'packPanels', params: [I32, I32, I32, I32, I32], code: packPanelsCode() },
      { name: 'transpose4', params: [I32, I32, I32, I32, I32], code: transpose4Code() },
      { name: 'scale4', params: [I32, I32, I32, I32, F64], code: scale4Code() },
      { name: 'zero', params: [I32, I32, I32, I32], code: zeroCode() },
    ],
    sharedMaxPages,
  );
}

/** The locals and body of `macro` (see {@link wasmMacroKernelBytes}). */
function macroCode(mr: number, nr: number, fma: boolean): number[] {
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
  // acc[i][j] = acc[i][j] + x · b[j], fused (relaxed_madd(x, b, acc)) or multiply then add
  const update = (i: number, j: number): number[] =>
    fma
      ? [...get(x), ...get(bv(j)), ...get(acc(i, j)), ...simd(op.f32x4RelaxedMadd), ...set(acc(i, j))]
      : [...get(acc(i, j)), ...get(x), ...get(bv(j)), ...simd(op.f32x4Mul), ...simd(op.f32x4Add), ...set(acc(i, j))];

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
      ...range(lanes).flatMap((j) => update(i, j)),
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

/** The locals and body of `packPanels` (see {@link wasmMacroKernelBytes}). */
function packPanelsCode(): number[] {
  const [pdst, psrc, rowBytes, kc, panels] = [0, 1, 2, 3, 4];
  const [src, p] = [5, 6];
  // prettier-ignore
  const body: number[] = [
    ...get(panels), op.i32Eqz, op.brIf, 0,
    op.loop, VOID, // for each panel
    ...get(psrc), ...set(src), ...get(kc), ...set(p),
    op.loop, VOID, // kc rows: 8 float32 from the row, 8 to the panel
    ...get(pdst), ...get(src), ...load(0), ...store(0),
    ...get(pdst), ...get(src), ...load(16), ...store(16),
    ...get(pdst), ...i32(32), op.i32Add, ...set(pdst),
    ...get(src), ...get(rowBytes), op.i32Add, ...set(src),
    ...get(p), ...i32(1), op.i32Sub, ...tee(p), op.brIf, 0,
    op.end,
    ...get(psrc), ...i32(32), op.i32Add, ...set(psrc),
    ...get(panels), ...i32(1), op.i32Sub, ...tee(panels), op.brIf, 0,
    op.end,
    op.end,
  ];
  return [1, 2, I32, ...body];
}

/** `i8x16.shuffle` of two `f32x4` by float lanes (0–3 the first operand's, 4–7 the second's). */
const shuffle = (lanes: readonly number[]): number[] =>
  simd(op.i8x16Shuffle, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));

/** The locals and body of `transpose4` (see {@link wasmMacroKernelBytes}). */
function transpose4Code(): number[] {
  const [pdst, psrc, rowBytes, kc, dstStride] = [0, 1, 2, 3, 4];
  const [s1, s2, s3, n] = [5, 6, 7, 8];
  const [r0, r1, r2, r3, t0, t1, t2, t3] = [9, 10, 11, 12, 13, 14, 15, 16];
  const rows = [psrc, s1, s2, s3];
  const step = (bytes: number): number[] => rows.flatMap((r) => [...get(r), ...i32(bytes), op.i32Add, ...set(r)]);
  const put = (a: number, b: number, lanes: number[]): number[] => [
    ...get(pdst),
    ...get(a),
    ...get(b),
    ...shuffle(lanes),
    ...store(0),
    ...get(pdst),
    ...get(dstStride),
    op.i32Add,
    ...set(pdst),
  ];
  // prettier-ignore
  const body: number[] = [
    ...get(psrc), ...get(rowBytes), op.i32Add, ...set(s1),
    ...get(s1), ...get(rowBytes), op.i32Add, ...set(s2),
    ...get(s2), ...get(rowBytes), op.i32Add, ...set(s3),
    ...get(kc), ...i32(2), op.i32ShrU, ...set(n),
    op.block, VOID,
    ...get(n), op.i32Eqz, op.brIf, 0,
    op.loop, VOID, // ⌊kc / 4⌋ times: a 4 × 4 block
    ...rows.flatMap((r, i) => [...get(r), ...load(0), ...set([r0, r1, r2, r3][i]!)]),
    ...get(r0), ...get(r1), ...shuffle([0, 4, 1, 5]), ...set(t0), // r0[0] r1[0] r0[1] r1[1]
    ...get(r2), ...get(r3), ...shuffle([0, 4, 1, 5]), ...set(t1), // r2[0] r3[0] r2[1] r3[1]
    ...get(r0), ...get(r1), ...shuffle([2, 6, 3, 7]), ...set(t2), // r0[2] r1[2] r0[3] r1[3]
    ...get(r2), ...get(r3), ...shuffle([2, 6, 3, 7]), ...set(t3), // r2[2] r3[2] r2[3] r3[3]
    ...put(t0, t1, [0, 1, 4, 5]), // column 0
    ...put(t0, t1, [2, 3, 6, 7]), // column 1
    ...put(t2, t3, [0, 1, 4, 5]), // column 2
    ...put(t2, t3, [2, 3, 6, 7]), // column 3
    ...step(16),
    ...get(n), ...i32(1), op.i32Sub, ...tee(n), op.brIf, 0,
    op.end,
    op.end,
    ...get(kc), ...i32(3), op.i32And, ...set(n),
    op.block, VOID,
    ...get(n), op.i32Eqz, op.brIf, 0,
    op.loop, VOID, // the last kc mod 4 columns, one element at a time
    ...rows.flatMap((r, i) => [...get(pdst), ...get(r), op.f32Load, 2, 0, op.f32Store, 2, ...uleb(4 * i)]),
    ...get(pdst), ...get(dstStride), op.i32Add, ...set(pdst),
    ...step(4),
    ...get(n), ...i32(1), op.i32Sub, ...tee(n), op.brIf, 0,
    op.end,
    op.end,
    op.end,
  ];
  return [2, 4, I32, 8, V128, ...body];
}

/** The locals and body of `scale4` (see {@link wasmMacroKernelBytes}). */
function scale4Code(): number[] {
  const [pdst, psrc, srcStride, kc, alpha] = [0, 1, 2, 3, 4];
  const x = 5;
  // prettier-ignore
  const body: number[] = [
    ...get(kc), op.i32Eqz, op.brIf, 0,
    ...get(alpha), ...simd(op.f64x2Splat), ...set(x),
    op.loop, VOID, // kc times: four elements, two float64 pairs
    ...get(pdst), ...get(psrc), ...loadPair(0), ...get(x), ...simd(op.f64x2Mul), ...storePair(0),
    ...get(pdst), ...get(psrc), ...loadPair(8), ...get(x), ...simd(op.f64x2Mul), ...storePair(8),
    ...get(pdst), ...i32(16), op.i32Add, ...set(pdst),
    ...get(psrc), ...get(srcStride), op.i32Add, ...set(psrc),
    ...get(kc), ...i32(1), op.i32Sub, ...tee(kc), op.brIf, 0,
    op.end,
    op.end,
  ];
  return [1, 1, V128, ...body];
}

/** The locals and body of `zero` (see {@link wasmMacroKernelBytes}). */
function zeroCode(): number[] {
  const [pc, ldc, rows, groups] = [0, 1, 2, 3];
  const [at, g] = [4, 5];
  // prettier-ignore
  const body: number[] = [
    op.loop, VOID, // rows times
    ...get(pc), ...set(at), ...get(groups), ...set(g),
    op.loop, VOID, // groups times: four float32 zeros
    ...get(at), ...simd(op.v128Const, ...new Array<number>(16).fill(0)), ...store(0),
    ...get(at), ...i32(16), op.i32Add, ...set(at),
    ...get(g), ...i32(1), op.i32Sub, ...tee(g), op.brIf, 0,
    op.end,
    ...get(pc), ...get(ldc), op.i32Add, ...set(pc),
    ...get(rows), ...i32(1), op.i32Sub, ...tee(rows), op.brIf, 0,
    op.end,
    op.end,
  ];
  return [1, 2, I32, ...body];
}
