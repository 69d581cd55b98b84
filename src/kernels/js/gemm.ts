/**
 * A cache-blocked, register-tiled single-precision matrix product in portable TypeScript:
 * `c = alpha · op(a) · op(b) + beta · c`, all row-major `Float32Array`s.
 *
 * The loop nest is the Goto/BLIS one (Goto & van de Geijn 2008, "Anatomy of high-performance
 * matrix multiplication"): for each `KC × NC` block of `op(b)` and `MC × KC` block of `op(a)`,
 * both are packed into a contiguous workspace (B as `nr`-wide column panels, A as `mr`-high row
 * panels, zero-padded at the edges, `alpha` folded into A), and a macro-kernel sweeps the panels
 * with an `mr × nr` micro-kernel whose accumulators stay in registers. Packing absorbs the
 * transposes, so all four `transA`/`transB` cases run the same inner loop.
 *
 * Three macro-kernels ({@link GemmKernelKind}), chosen per {@link GemmWorkspace}:
 * - **WebAssembly SIMD** (`'wasm-simd'`, the default where `WebAssembly` accepts the module): a
 *   4 × 8 tile of `f32x4` vectors on float32 panels, the module's bytes emitted at run time by
 *   `wasm-gemm.ts`. Measured 34–41 GFLOP/s, about 4× the asm.js kernel and 9× the TypeScript
 *   one in the same run here (`npx tsx bench/matmul.ts --backends js:wasm-simd,js:asm.js,js:typescript`).
 * - **asm.js** (`'asm.js'`, the fallback where `WebAssembly` is missing, as under
 *   `node --jitless`): a 2 × 4 scalar tile on float64 panels as an asm.js module
 *   ({@link asmMacroKernelSource}), which V8 validates and compiles ahead of time without bounds
 *   or type checks. asm.js validity hangs on details that transpilers rewrite (esbuild — hence
 *   tsx — drops the `"use asm"` directive and prints `0.0` as `0`), so the module is compiled from
 *   its source text with the `Function` constructor, the technique ndarray-ops (cwise) itself
 *   uses. On an engine without asm.js support the same text runs as plain JavaScript, with the
 *   same results.
 * - **plain TypeScript** (`'typescript'`, {@link microKernel}): the asm.js arithmetic in the same
 *   order, where code generation from strings is forbidden too (a content security policy,
 *   `node --jitless --disallow-code-generation-from-strings`), or on request.
 *
 * Numerics. All kernels first round `beta · c` to float32, cut `k` into equal blocks of at most
 * `KC`, and add each block's sums to the float32 `c`, rounding once per block (at most
 * `⌈k / KC⌉ + 1` roundings per element). Within a block each element is a dot product summed in
 * the order `p = 0, 1, …`:
 * - asm.js and TypeScript (same bits): in float64, with `alpha · a` kept in float64 — packing to
 *   float64 is exact, and V8 computes in float64, so a float32 load would cost a conversion;
 * - WebAssembly: in float32 (each product and each sum rounded to float32, or each product-sum
 *   once with the fused multiply-add), with `alpha · a` rounded to float32 when packed. Its error is within Higham's
 *   bound for a float32 dot product of length `k`, which the conformance suite checks; it is
 *   larger than the float64 sum's and the bits differ from the scalar kernels'. Computing those
 *   bits in WebAssembly (f64x2 accumulators) or float32 bits in the scalar kernels (`Math.fround`
 *   after every operation) was measured about 2× slower.
 * Every kernel's order of operations depends only on the shapes, so the same inputs give the
 * same bits on every call.
 */
import { BackendUnavailableError } from '../../errors.js';
import { addRowSigmoidImpl } from './elementwise.js';
import { addRowSigmoid } from './wasm-passes.js';
import { createWasmMacroKernel, wasmGemmSupport } from './wasm-gemm.js';
import { packAFrom, packBFrom } from './gemm-block.js';
import type { PackKernels } from './gemm-block.js';

/**
 * Cache blocks, shared by every kernel: a `KC × nr` B panel stays in L1 while the `MC × KC` A
 * block streams from L2, and the `KC × NC` B block stays in L2 (1 MB of doubles for the scalar
 * kernels; 1024 columns measured slower, the 1.6 MB block of a 784-wide product no longer
 * fitting beside the rest). `k` is cut into equal blocks of at most `KC`, so no short tail block
 * runs the micro-kernel at a few iterations per tile. The WebAssembly kernel measured within
 * noise for `KC` 128–512 and `MC` 64–256.
 */
export const KC = 256;
export const MC = 64;
export const NC = 512;

/**
 * A macro-kernel on float32 memory, offsets and `ldc` in bytes: for every `mr × nr` tile of an
 * `mc × nc` block (both multiples of the tile), the A panels at `pa` times the B panels at `pb`,
 * `kc` deep, added to the block at `pc`.
 */
export type MacroKernel = (mc: number, nc: number, kc: number, pa: number, pb: number, pc: number, ldc: number) => void;

/**
 * `c = σ(c + bias)` in place on `rows` rows of `4 · groups` float32 at byte offset `pc` (rows `ldc`
 * bytes apart), `bias` the `4 · groups` float32 at `pbias`: the WebAssembly module's `sigmoid`.
 */
export type SigmoidKernel = (pc: number, ldc: number, rows: number, groups: number, pbias: number) => void;
/** The WebAssembly module's `momentum(pp, pv, pg, pairs, lr, mu, wd, gs)` (see `wasm-elementwise.ts`). */
export type MomentumKernel = (pp: number, pv: number, pg: number, pairs: number, lr: number, mu: number, wd: number, gs: number) => void;
/** The WebAssembly module's `colSum(px, rows, pairs, pacc)` (see `wasm-elementwise.ts`). */
export type ColSumKernel = (px: number, rows: number, pairs: number, pacc: number) => void;
/**
 * The WebAssembly module's `packPanels(pdst, psrc, rowBytes, kc, panels)` (see `wasm-gemm.ts`):
 * {@link packB} of `panels` whole 8-wide panels of a `b` whose columns are adjacent (`bCol = 1`),
 * read from the module's memory.
 */
export type PanelKernel = (pdst: number, psrc: number, rowBytes: number, kc: number, panels: number) => void;
/**
 * The WebAssembly module's `transpose4(pdst, psrc, rowBytes, kc, dstStride)` (see `wasm-gemm.ts`):
 * four rows of `kc` float32 (at `psrc`, `rowBytes` apart) written as `kc` groups of four, one per
 * column, `dstStride` bytes apart — packing of a 4-row tile of A or half an 8-wide panel of Bᵀ.
 */
export type TransposeKernel = (pdst: number, psrc: number, rowBytes: number, kc: number, dstStride: number) => void;
/**
 * The WebAssembly module's `scale4(pdst, psrc, srcStride, kc, alpha)` (see `wasm-gemm.ts`): `packA`
 * of a 4-row tile of a transposed A (`kc` groups of four adjacent float32 times `alpha`).
 */
export type ScaleKernel = (pdst: number, psrc: number, srcStride: number, kc: number, alpha: number) => void;
/** The WebAssembly module's `zero(pc, ldc, rows, groups)` (see `wasm-gemm.ts`): `rows` rows of `4 · groups` float32 set to +0. */
export type ZeroKernel = (pc: number, ldc: number, rows: number, groups: number) => void;
/** The WebAssembly module's `bernoulli(pp, pu, po, groups)` (see `wasm-elementwise.ts`). */
export type BernoulliKernel = (pp: number, pu: number, po: number, groups: number) => void;

/** A macro-kernel's memory: the panels' element type, a float32 view of `c`, and the kernel. */
export interface KernelHeap {
  /** The view packed panels are written through: float64 for the scalar kernels, float32 for SIMD. */
  readonly panels: Float64Array | Float32Array;
  /** A float32 view of the same memory, for `c`. */
  readonly f32: Float32Array;
  readonly macro: MacroKernel;
  /** The WebAssembly module's vectorized `σ(c + bias)`; the scalar kernels have none. */
  readonly sigmoid?: SigmoidKernel;
  /** The module's float64-lane momentum step and column sums and its Bernoulli sample (`wasm-passes.ts`); the scalar kernels have none. */
  readonly momentum?: MomentumKernel;
  readonly colSum?: ColSumKernel;
  readonly bernoulli?: BernoulliKernel;
  /** The module's packing of whole tiles and panels (`packAFrom`, `packBFrom`); the scalar kernels have none. */
  readonly packPanels?: PanelKernel;
  readonly transpose4?: TransposeKernel;
  readonly scale4?: ScaleKernel;
}

/** A macro-kernel with its tile and its memory. */
export interface KernelMemory {
  readonly mr: number;
  readonly nr: number;
  /** Bytes per packed panel element: 8 (float64) or 4 (float32). */
  readonly panelBytes: 8 | 4;
  /** A heap of at least `bytes` bytes (contents unspecified). */
  get(bytes: number): KernelHeap;
  /** Drops the memory. */
  release(): void;
}

/** Which macro-kernel the js backend's matrix product runs (see {@link JsBackendOptions}). */
export type GemmKernelKind = 'wasm-simd' | 'asm.js' | 'typescript';

/**
 * Scratch memory of {@link gemmImpl}: the kernel's memory, holding the packed A block, the
 * packed B block and a float32 copy of `c` with its rows padded to whole tiles. It grows to what
 * the largest product so far needed; one workspace per backend.
 */
export class GemmWorkspace {
  /** The macro-kernel in use. */
  readonly kernel: GemmKernelKind;
  /** @internal */
  readonly memory: KernelMemory;
  /** Whether the WebAssembly macro-kernel multiplies and adds fused (relaxed SIMD); false for the other kernels. */
  readonly fma: boolean = false;

  /**
   * @param prefer - the kernel to run; by default the first of `'wasm-simd'`, `'asm.js'`,
   *   `'typescript'` that can run here. `'asm.js'` falls back to `'typescript'` where code
   *   generation from strings is forbidden.
   * @param fma - for the WebAssembly kernel: its fused multiply-add module where the engine
   *   accepts it (the default), else the unfused one.
   * @throws {@link BackendUnavailableError} when `'wasm-simd'` is asked for and cannot run.
   */
  constructor(prefer?: GemmKernelKind, fma = true) {
    if (prefer === 'wasm-simd' || prefer === undefined) {
      const support = wasmGemmSupport(fma);
      if ('module' in support) {
        this.kernel = 'wasm-simd';
        this.fma = support.fma;
        this.memory = createWasmMacroKernel(support.module);
        return;
      }
      if (prefer === 'wasm-simd')
        throw new BackendUnavailableError('js', `the 'wasm-simd' gemm kernel was asked for, but ${support.reason}.`);
    }
    const factory = prefer === 'typescript' ? undefined : compileAsmModule();
    this.kernel = factory === undefined ? 'typescript' : 'asm.js';
    this.memory = factory === undefined ? new TypeScriptMemory() : new AsmMemory(factory);
  }

  /** Drops the memory. */
  release(): void {
    this.memory.release();
  }
}

/** Tile of the scalar kernels: 2 × 4 keeps its 8 accumulators, 4 B values and 1 A value in 13 of x86-64's 16 registers. */
const MR = 2;
const NR = 4;

type AsmModuleFactory = (stdlib: typeof globalThis, foreign: undefined, heap: ArrayBuffer) => MacroKernel;

/** An asm.js module linked to a heap that grows in the sizes asm.js allows. */
class AsmMemory implements KernelMemory {
  readonly mr = MR;
  readonly nr = NR;
  readonly panelBytes = 8;
  private heap: KernelHeap | undefined;

  constructor(private readonly factory: AsmModuleFactory) {}

  get(bytes: number): KernelHeap {
    if (this.heap === undefined || this.heap.f32.byteLength < bytes) {
      // asm.js heaps: a power of two from 64 KiB up to 16 MiB, then multiples of 16 MiB.
      const size = bytes <= 1 << 24 ? Math.max(1 << 16, 2 ** Math.ceil(Math.log2(bytes))) : Math.ceil(bytes / (1 << 24)) * (1 << 24);
      const buffer = new ArrayBuffer(size);
      this.heap = { panels: new Float64Array(buffer), f32: new Float32Array(buffer), macro: this.factory(globalThis, undefined, buffer) };
    }
    return this.heap;
  }

  release(): void {
    this.heap = undefined;
  }
}

/** A plain `ArrayBuffer` and {@link macroKernel}. */
class TypeScriptMemory implements KernelMemory {
  readonly mr = MR;
  readonly nr = NR;
  readonly panelBytes = 8;
  private heap: KernelHeap | undefined;

  get(bytes: number): KernelHeap {
    if (this.heap === undefined || this.heap.f32.byteLength < bytes) {
      const buffer = new ArrayBuffer(Math.ceil(bytes / 8) * 8);
      const panels = new Float64Array(buffer);
      const f32 = new Float32Array(buffer);
      this.heap = {
        panels,
        f32,
        macro: (mc, nc, kc, pa, pb, pc, ldc) => macroKernel(panels, f32, mc, nc, kc, pa >> 3, pb >> 3, pc >> 2, ldc >> 2),
      };
    }
    return this.heap;
  }

  release(): void {
    this.heap = undefined;
  }
}

/**
 * Compiles the asm.js module once per process, or returns `undefined` when the engine refuses
 * code generation from strings (then the plain TypeScript micro-kernel runs).
 */
function compileAsmModule(): AsmModuleFactory | undefined {
  if (asmFactory === null) {
    try {
      asmFactory = new Function('stdlib', 'foreign', 'heap', asmMacroKernelSource(MR, NR)) as AsmModuleFactory;
    } catch (e) {
      if (!(e instanceof EvalError)) throw e;
      asmFactory = undefined;
    }
  }
  return asmFactory;
}
let asmFactory: AsmModuleFactory | undefined | null = null;

/**
 * The body of an asm.js module (parameters `stdlib, foreign, heap`) that returns the
 * macro-kernel `macro(mc, nc, kc, pa, pb, pc, ldc)`: for every `mr × nr` tile of an `mc × nc`
 * block (both multiples of the tile), the product of the A panels packed at byte offset `pa`
 * (`kc × mr` float64 each, row index fastest) and the B panels at `pb` (`kc × nr` each, column
 * index fastest) is added to the float32 block at `pc` (rows `ldc` bytes apart). Each tile's
 * `mr·nr` sums are local double variables; the `k` loop adds `a[i]·b[j]` to them in order
 * `p = 0, 1, …`, and each sum is then added to its float32 element in double and rounded once —
 * exactly what {@link macroKernel} does.
 */
export function asmMacroKernelSource(mr: number, nr: number): string {
  const tile = (f: (i: number, j: number) => string, sep = ' '): string =>
    Array.from({ length: mr }, (_, i) => Array.from({ length: nr }, (_, j) => f(i, j)).join(sep)).join('\n');
  const bs = Array.from({ length: nr }, (_, j) => `b${j}`);
  const lines = [
    '"use asm";',
    'var H = new stdlib.Float64Array(heap);',
    'var F = new stdlib.Float32Array(heap);',
    'var imul = stdlib.Math.imul;',
    'function macro(mc, nc, kc, pa, pb, pc, ldc) {',
    'mc = mc | 0; nc = nc | 0; kc = kc | 0; pa = pa | 0; pb = pb | 0; pc = pc | 0; ldc = ldc | 0;',
    'var ir = 0, jr = 0, p = 0, a = 0, b = 0, c = 0, x = 0.0;',
    `var ${bs.map((b) => `${b} = 0.0`).join(', ')};`,
    tile((i, j) => `var c${i}_${j} = 0.0;`),
    `for (jr = 0; (jr | 0) < (nc | 0); jr = (jr + ${nr}) | 0) {`,
    `for (ir = 0; (ir | 0) < (mc | 0); ir = (ir + ${mr}) | 0) {`,
    'a = (pa + (imul(ir, kc) << 3)) | 0;',
    'b = (pb + (imul(jr, kc) << 3)) | 0;',
    tile((i, j) => `c${i}_${j} = 0.0;`),
    'for (p = 0; (p | 0) < (kc | 0); p = (p + 1) | 0) {',
    bs.map((b, j) => `${b} = +H[(b + ${8 * j}) >> 3];`).join(' '),
    Array.from({ length: mr }, (_, i) =>
      [`x = +H[(a + ${8 * i}) >> 3];`, ...bs.map((b, j) => `c${i}_${j} = c${i}_${j} + x * ${b};`)].join(' '),
    ).join('\n'),
    `a = (a + ${8 * mr}) | 0;`,
    `b = (b + ${8 * nr}) | 0;`,
    '}',
    'c = (pc + imul(ir, ldc) + (jr << 2)) | 0;',
    Array.from({ length: mr }, (_, i) =>
      [...bs.map((_, j) => `F[(c + ${4 * j}) >> 2] = +F[(c + ${4 * j}) >> 2] + c${i}_${j};`), 'c = (c + ldc) | 0;'].join(' '),
    ).join('\n'),
    '}',
    '}',
    '}',
    'return macro;',
  ];
  return lines.join('\n');
}

/**
 * `c = alpha · op(a) · op(b) + beta · c`, where `op(a)` is `m × k` and `op(b)` is `k × n`.
 *
 * @param a - `m × k` row-major, or `k × m` when `transA`.
 * @param b - `k × n` row-major, or `n × k` when `transB`.
 * @param c - `m × n` row-major; must not alias `a` or `b`. With `beta = 0` its old contents
 *   are never read (NaN included). With `alpha = 0` (or `k = 0`), `a` and `b` are not read.
 */
export function gemmImpl(
  ws: GemmWorkspace,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  transA: boolean,
  b: Float32Array,
  transB: boolean,
  beta: number,
  c: Float32Array,
  bias?: Float32Array,
): void {
  if (m === 0 || n === 0) return;
  if (k === 0 || alpha === 0) {
    const len = m * n;
    if (beta === 0) c.fill(0, 0, len);
    else if (beta !== 1) for (let i = 0; i < len; i++) c[i] = beta * c[i]!;
    if (bias !== undefined) addRowSigmoid(ws, c, bias, m, n);
    return;
  }
  const { mr, nr } = ws.memory;
  // op(a)[i, p] = a[i·aRow + p·aCol]; op(b)[p, j] = b[p·bRow + j·bCol].
  const aRow = transA ? 1 : k;
  const aCol = transA ? m : 1;
  const bRow = transB ? 1 : n;
  const bCol = transB ? k : 1;
  const mcMax = Math.min(MC, roundUp(m, mr));
  const kcMax = Math.ceil(k / Math.ceil(k / KC));
  const ncMax = Math.min(NC, roundUp(n, nr));
  // Memory: packed A block and packed B block (panel elements), then beta · c as float32 with its
  // rows padded to whole tiles (the kernels write whole tiles; the padding is never read back).
  const ldc = roundUp(n, nr);
  const mPad = roundUp(m, mr);
  const bOffset = mcMax * kcMax;
  const cBytes = roundUp((bOffset + kcMax * ncMax) * ws.memory.panelBytes, 16);
  // Then the bias, padded with zeros to `ldc`, when σ is applied here; then, for the WebAssembly
  // kernel, copies of a and b, which its module packs (packAFrom, packBFrom).
  const rawA = cBytes / 4 + (mPad + 1) * ldc;
  const rawB = rawA + roundUp(m * k, 4);
  const wasm = ws.kernel === 'wasm-simd';
  const heap = ws.memory.get(wasm ? (rawB + roundUp(k * n, 4)) * 4 : rawA * 4);
  const { panels: w, f32: cw, macro } = heap;
  const c0 = cBytes / 4; // in floats
  const fast =
    wasm && heap.packPanels !== undefined && heap.transpose4 !== undefined && heap.scale4 !== undefined
      ? (heap as KernelHeap & PackKernels)
      : undefined;
  if (fast !== undefined) {
    cw.set(a.subarray(0, m * k), rawA);
    cw.set(b.subarray(0, k * n), rawB);
  }
  for (let i = 0; i < mPad; i++) {
    const row = c0 + i * ldc;
    if (i >= m || beta === 0) cw.fill(0, row, row + n);
    else if (beta === 1) cw.set(c.subarray(i * n, i * n + n), row);
    else for (let j = 0, src = i * n; j < n; j++) cw[row + j] = beta * c[src + j]!;
    // Zero the padding too: left-over bits there could be denormals, which are slow to add to.
    cw.fill(0, row + n, row + ldc);
  }
  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    const ncPad = roundUp(nc, nr);
    for (let p0 = 0; p0 < k; p0 += kcMax) {
      const kc = Math.min(kcMax, k - p0);
      if (fast !== undefined) packBFrom(fast, cw, bOffset, nr, rawB, k * n, [bRow, bCol], [p0, kc, j0, nc], packB);
      else packB(w, bOffset, nr, b, bRow, bCol, p0, kc, j0, nc);
      for (let i0 = 0; i0 < m; i0 += MC) {
        const mc = Math.min(MC, m - i0);
        if (fast !== undefined) packAFrom(fast, cw, 0, mr, rawA, m * k, [aRow, aCol, alpha], [i0, mc, p0, kc], packA);
        else packA(w, 0, mr, a, aRow, aCol, alpha, i0, mc, p0, kc);
        macro(roundUp(mc, mr), ncPad, kc, 0, bOffset * ws.memory.panelBytes, (c0 + i0 * ldc + j0) * 4, ldc * 4);
      }
    }
  }
  const vectorSigmoid = bias !== undefined && heap.sigmoid !== undefined;
  if (vectorSigmoid) {
    const b0 = c0 + mPad * ldc;
    cw.set(bias.subarray(0, n), b0);
    cw.fill(0, b0 + n, b0 + ldc);
    heap.sigmoid!(c0 * 4, ldc * 4, m, ldc / 4, b0 * 4);
  }
  for (let i = 0; i < m; i++) c.set(cw.subarray(c0 + i * ldc, c0 + i * ldc + n), i * n);
  if (bias !== undefined && !vectorSigmoid) addRowSigmoidImpl(c, c, bias, n);
}

export function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Packs `alpha · op(a)[i0 : i0+mc, p0 : p0+kc]` at `w[offset…]` as `mr`-high panels, each `kc × mr` with the row index fastest. */
export function packA(
  w: Float64Array | Float32Array,
  offset: number,
  mr: number,
  a: Float32Array,
  aRow: number,
  aCol: number,
  alpha: number,
  i0: number,
  mc: number,
  p0: number,
  kc: number,
): void {
  let q = offset;
  const r1 = aRow;
  const r2 = 2 * aRow;
  const r3 = 3 * aRow;
  for (let ir = 0; ir < mc; ir += mr) {
    const rows = Math.min(mr, mc - ir);
    let src = (i0 + ir) * aRow + p0 * aCol;
    // One loop per tile height (2: scalar kernels, 4: WebAssembly), unrolled.
    if (rows === 4 && mr === 4) {
      for (let p = 0; p < kc; p++, q += 4, src += aCol) {
        w[q] = alpha * a[src]!;
        w[q + 1] = alpha * a[src + r1]!;
        w[q + 2] = alpha * a[src + r2]!;
        w[q + 3] = alpha * a[src + r3]!;
      }
    } else if (rows === 2 && mr === 2) {
      for (let p = 0; p < kc; p++, q += 2, src += aCol) {
        w[q] = alpha * a[src]!;
        w[q + 1] = alpha * a[src + r1]!;
      }
    } else {
      for (let p = 0; p < kc; p++, q += mr, src += aCol) {
        for (let i = 0; i < mr; i++) w[q + i] = i < rows ? alpha * a[src + i * aRow]! : 0;
      }
    }
  }
}

/** Packs `op(b)[p0 : p0+kc, j0 : j0+nc]` at `w[offset…]` as `nr`-wide panels, each `kc × nr` with the column index fastest. */
export function packB(
  w: Float64Array | Float32Array,
  offset: number,
  nr: number,
  b: Float32Array,
  bRow: number,
  bCol: number,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
): void {
  let q = offset;
  for (let jr = 0; jr < nc; jr += nr) {
    const cols = Math.min(nr, nc - jr);
    let src = p0 * bRow + (j0 + jr) * bCol;
    if (cols === 8 && nr === 8) {
      const c1 = bCol;
      const c2 = 2 * bCol;
      const c3 = 3 * bCol;
      const c4 = 4 * bCol;
      const c5 = 5 * bCol;
      const c6 = 6 * bCol;
      const c7 = 7 * bCol;
      for (let p = 0; p < kc; p++, q += 8, src += bRow) {
        w[q] = b[src]!;
        w[q + 1] = b[src + c1]!;
        w[q + 2] = b[src + c2]!;
        w[q + 3] = b[src + c3]!;
        w[q + 4] = b[src + c4]!;
        w[q + 5] = b[src + c5]!;
        w[q + 6] = b[src + c6]!;
        w[q + 7] = b[src + c7]!;
      }
    } else if (cols === nr) {
      // nr is a multiple of 4: four columns per step.
      const c1 = bCol;
      const c2 = 2 * bCol;
      const c3 = 3 * bCol;
      const c4 = 4 * bCol;
      for (let p = 0; p < kc; p++, q += nr, src += bRow) {
        for (let j = 0, s = src; j < nr; j += 4, s += c4) {
          w[q + j] = b[s]!;
          w[q + j + 1] = b[s + c1]!;
          w[q + j + 2] = b[s + c2]!;
          w[q + j + 3] = b[s + c3]!;
        }
      }
    } else {
      for (let p = 0; p < kc; p++, q += nr, src += bRow) {
        for (let j = 0; j < nr; j++) w[q + j] = j < cols ? b[src + j * bCol]! : 0;
      }
    }
  }
}

/** The plain TypeScript macro-kernel (offsets in elements): what the asm.js one computes, tile by tile with {@link microKernel}. */
function macroKernel(
  w: Float64Array,
  cw: Float32Array,
  mc: number,
  nc: number,
  kc: number,
  pa: number,
  pb: number,
  pc: number,
  ldc: number,
): void {
  const t = tile;
  for (let jr = 0; jr < nc; jr += NR) {
    for (let ir = 0; ir < mc; ir += MR) {
      microKernel(w, kc, pa + ir * kc, pb + jr * kc, t);
      let ci = pc + ir * ldc + jr;
      for (let i = 0; i < MR * NR; i += NR, ci += ldc) {
        cw[ci] = cw[ci]! + t[i]!;
        cw[ci + 1] = cw[ci + 1]! + t[i + 1]!;
        cw[ci + 2] = cw[ci + 2]! + t[i + 2]!;
        cw[ci + 3] = cw[ci + 3]! + t[i + 3]!;
      }
    }
  }
}

/** The accumulators of the last {@link microKernel} call, row-major `MR × NR`. */
const tile = new Float64Array(MR * NR);

/**
 * One `MR × NR` tile: the A panel at `w[pa…]` times the B panel at `w[pb…]`, `kc` deep, into
 * `out` (row-major `MR × NR`). Branch-free, so V8 optimizes it once with complete type feedback.
 */
function microKernel(w: Float64Array, kc: number, pa: number, pb: number, out: Float64Array): void {
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0;
  let c10 = 0,
    c11 = 0,
    c12 = 0,
    c13 = 0;
  for (let p = 0; p < kc; p++) {
    const b0 = w[pb]!,
      b1 = w[pb + 1]!,
      b2 = w[pb + 2]!,
      b3 = w[pb + 3]!;
    let x = w[pa]!;
    c00 += x * b0;
    c01 += x * b1;
    c02 += x * b2;
    c03 += x * b3;
    x = w[pa + 1]!;
    c10 += x * b0;
    c11 += x * b1;
    c12 += x * b2;
    c13 += x * b3;
    pa += MR;
    pb += NR;
  }
  out[0] = c00;
  out[1] = c01;
  out[2] = c02;
  out[3] = c03;
  out[4] = c10;
  out[5] = c11;
  out[6] = c12;
  out[7] = c13;
}
