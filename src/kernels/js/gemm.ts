/**
 * A cache-blocked, register-tiled single-precision matrix product in portable TypeScript:
 * `c = alpha · op(a) · op(b) + beta · c`, all row-major `Float32Array`s.
 *
 * The loop nest is the Goto/BLIS one (Goto & van de Geijn 2008, "Anatomy of high-performance
 * matrix multiplication"): for each `KC × NC` block of `op(b)` and `MC × KC` block of `op(a)`,
 * both are packed into a contiguous float64 workspace (B as `NR`-wide column panels, A as
 * `MR`-high row panels, zero-padded at the edges, `alpha` folded into A), and a macro-kernel
 * sweeps the panels with an `MR × NR` micro-kernel whose accumulators live in local variables.
 * Packing absorbs the transposes, so all four `transA`/`transB` cases run the same inner loop.
 *
 * Two implementations of the macro-kernel, same arithmetic in the same order:
 * - **asm.js** (the default): the macro-kernel as an asm.js module ({@link asmMacroKernelSource}),
 *   which V8 validates and compiles ahead of time to machine code without bounds or type checks:
 *   measured 1.5–2.2× the plain TypeScript loop in the same run here
 *   (`npx tsx bench/matmul.ts --backends js,js:typescript`).
 *   asm.js is ordinary JavaScript, but its validity hangs on details that transpilers rewrite
 *   (esbuild — hence tsx — drops the `"use asm"` directive and prints `0.0` as `0`), so the module
 *   is compiled from its source text with the `Function` constructor, the technique ndarray-ops
 *   (cwise) itself uses. On an engine without asm.js support the same text runs as plain
 *   JavaScript, with the same results.
 * - **plain TypeScript** ({@link microKernel}): used when code generation from strings is
 *   forbidden (`node --disallow-code-generation-from-strings`, a content security policy), or
 *   on request ({@link GemmWorkspace} constructor).
 *
 * Numerics: `c` is first scaled by `beta`; each `KC`-long block of the product is then summed in
 * float64 and added to `c`, which is rounded to float32 after each block (at most `⌈k / KC⌉ + 1`
 * roundings per element).
 *
 * Why float64 panels: V8 computes in float64, and a `Float32Array` load costs an extra
 * conversion in the inner loop; packing to float64 is exact and measured faster.
 */

/** Micro-tile height and width (the register block): 2 × 4 keeps its 8 accumulators, 4 B values and 1 A value in 13 of x86-64's 16 vector registers. */
const MR = 2;
const NR = 4;
/**
 * Cache blocks: `KC × NR` B panels stay in L1, the `MC × KC` A block and the `KC × NC` B block in
 * L2 (1 MB of doubles; 1024 columns measured slower, the 1.6 MB block of a 784-wide product
 * no longer fitting beside the rest). `k` is cut into equal blocks of at most `KC`, so no short
 * tail block runs the micro-kernel at a few iterations per tile.
 */
const KC = 256;
const MC = 64;
const NC = 512;

/**
 * The macro-kernel of an asm.js module (byte offsets into its heap, `ldc` in bytes); see
 * {@link asmMacroKernelSource}.
 */
type MacroKernel = (mc: number, nc: number, kc: number, pa: number, pb: number, pc: number, ldc: number) => void;

/** Which macro-kernel a {@link GemmWorkspace} runs. */
export type GemmKernelKind = 'asm.js' | 'typescript';

/** A workspace heap: float64 and float32 views of one buffer, and the asm.js macro-kernel linked to it. */
interface Heap {
  readonly f64: Float64Array;
  readonly f32: Float32Array;
  readonly macro: MacroKernel | undefined;
}

/**
 * Scratch memory of {@link gemmImpl}: one heap holding the packed A block and the packed B block
 * (float64) and a float32 copy of `c` with its rows padded to whole tiles. It grows to what the
 * largest product so far needed (rounded up to a power of two, as asm.js requires); one
 * workspace per backend.
 */
export class GemmWorkspace {
  /** The macro-kernel in use: `'asm.js'` unless code generation is unavailable or `'typescript'` was asked for. */
  readonly kernel: GemmKernelKind;
  private readonly factory: AsmModuleFactory | undefined;
  private heap: Heap = { f64: new Float64Array(0), f32: new Float32Array(0), macro: undefined };

  /** @param prefer - `'typescript'` to run the plain TypeScript micro-kernel even where asm.js can be compiled. */
  constructor(prefer: GemmKernelKind = 'asm.js') {
    this.factory = prefer === 'asm.js' ? compileAsmModule() : undefined;
    this.kernel = this.factory === undefined ? 'typescript' : 'asm.js';
  }

  /** A heap of at least `n` doubles (contents unspecified). */
  get(n: number): Heap {
    if (this.heap.f64.length < n) {
      // asm.js heaps: a power of two from 64 KiB up to 16 MiB, then multiples of 16 MiB.
      const bytes = n * 8 <= 1 << 24 ? Math.max(1 << 16, 2 ** Math.ceil(Math.log2(n * 8))) : Math.ceil((n * 8) / (1 << 24)) * (1 << 24);
      const buffer = new ArrayBuffer(bytes);
      this.heap = { f64: new Float64Array(buffer), f32: new Float32Array(buffer), macro: this.factory?.(globalThis, undefined, buffer) };
    }
    return this.heap;
  }

  /** Drops the heap. */
  release(): void {
    this.heap = { f64: new Float64Array(0), f32: new Float32Array(0), macro: undefined };
  }
}

type AsmModuleFactory = (stdlib: typeof globalThis, foreign: undefined, heap: ArrayBuffer) => MacroKernel;

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
    Array.from({ length: mr }, (_, i) => [`x = +H[(a + ${8 * i}) >> 3];`, ...bs.map((b, j) => `c${i}_${j} = c${i}_${j} + x * ${b};`)].join(' ')).join('\n'),
    `a = (a + ${8 * mr}) | 0;`,
    `b = (b + ${8 * nr}) | 0;`,
    '}',
    'c = (pc + imul(ir, ldc) + (jr << 2)) | 0;',
    Array.from({ length: mr }, (_, i) => [...bs.map((_, j) => `F[(c + ${4 * j}) >> 2] = +F[(c + ${4 * j}) >> 2] + c${i}_${j};`), 'c = (c + ldc) | 0;'].join(' ')).join('\n'),
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
): void {
  if (m === 0 || n === 0) return;
  // Scale c by beta once; every k-block then adds its partial products.
  const len = m * n;
  if (beta === 0) c.fill(0, 0, len);
  else if (beta !== 1) for (let i = 0; i < len; i++) c[i] = beta * c[i]!;
  if (k === 0 || alpha === 0) return;
  // op(a)[i, p] = a[i·aRow + p·aCol]; op(b)[p, j] = b[p·bRow + j·bCol].
  const aRow = transA ? 1 : k;
  const aCol = transA ? m : 1;
  const bRow = transB ? 1 : n;
  const bCol = transB ? k : 1;
  const mcMax = Math.min(MC, roundUp(m, MR));
  const kcMax = Math.ceil(k / Math.ceil(k / KC));
  const ncMax = Math.min(NC, roundUp(n, NR));
  // Heap layout: packed A block and packed B block (doubles), then c as float32 with its rows
  // padded to whole tiles (the kernels write whole tiles; the padding is never read back).
  const bOffset = mcMax * kcMax;
  const cOffset = bOffset + kcMax * ncMax; // in doubles
  const ldc = roundUp(n, NR);
  const mPad = roundUp(m, MR);
  const { f64: w, f32: cw, macro } = ws.get(cOffset + Math.ceil((mPad * ldc) / 2));
  const c0 = 2 * cOffset; // in floats
  // Zero the padding too: left-over bits there could be denormals, which are slow to add to.
  for (let i = 0; i < mPad; i++) {
    if (i < m) cw.set(c.subarray(i * n, i * n + n), c0 + i * ldc);
    else cw.fill(0, c0 + i * ldc, c0 + i * ldc + n);
    cw.fill(0, c0 + i * ldc + n, c0 + (i + 1) * ldc);
  }

  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    const ncPad = roundUp(nc, NR);
    for (let p0 = 0; p0 < k; p0 += kcMax) {
      const kc = Math.min(kcMax, k - p0);
      packB(w, bOffset, b, bRow, bCol, p0, kc, j0, nc);
      for (let i0 = 0; i0 < m; i0 += MC) {
        const mc = Math.min(MC, m - i0);
        const mcPad = roundUp(mc, MR);
        packA(w, a, aRow, aCol, alpha, i0, mc, p0, kc);
        const pc = c0 + i0 * ldc + j0;
        if (macro !== undefined) macro(mcPad, ncPad, kc, 0, bOffset * 8, pc * 4, ldc * 4);
        else macroKernel(w, cw, mcPad, ncPad, kc, bOffset, pc, ldc);
      }
    }
  }
  for (let i = 0; i < m; i++) c.set(cw.subarray(c0 + i * ldc, c0 + i * ldc + n), i * n);
}

/** The plain TypeScript macro-kernel: what the asm.js one computes, tile by tile with {@link microKernel}. */
function macroKernel(w: Float64Array, cw: Float32Array, mc: number, nc: number, kc: number, pb: number, pc: number, ldc: number): void {
  const t = tile;
  for (let jr = 0; jr < nc; jr += NR) {
    for (let ir = 0; ir < mc; ir += MR) {
      microKernel(w, kc, ir * kc, pb + jr * kc, t);
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

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Packs `alpha · op(a)[i0 : i0+mc, p0 : p0+kc]` as `MR`-high panels, each `kc × MR` with the row index fastest. */
function packA(w: Float64Array, a: Float32Array, aRow: number, aCol: number, alpha: number, i0: number, mc: number, p0: number, kc: number): void {
  let q = 0;
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = Math.min(MR, mc - ir);
    let src = (i0 + ir) * aRow + p0 * aCol;
    if (mr === MR) {
      for (let p = 0; p < kc; p++) {
        w[q] = alpha * a[src]!;
        w[q + 1] = alpha * a[src + aRow]!;
        q += MR;
        src += aCol;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let i = 0; i < MR; i++) w[q + i] = i < mr ? alpha * a[src + i * aRow]! : 0;
        q += MR;
        src += aCol;
      }
    }
  }
}

/** Packs `op(b)[p0 : p0+kc, j0 : j0+nc]` at `w[offset…]` as `NR`-wide panels, each `kc × NR` with the column index fastest. */
function packB(w: Float64Array, offset: number, b: Float32Array, bRow: number, bCol: number, p0: number, kc: number, j0: number, nc: number): void {
  let q = offset;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = Math.min(NR, nc - jr);
    let src = p0 * bRow + (j0 + jr) * bCol;
    if (nr === NR) {
      const c1 = bCol;
      const c2 = 2 * bCol;
      const c3 = 3 * bCol;
      for (let p = 0; p < kc; p++) {
        w[q] = b[src]!;
        w[q + 1] = b[src + c1]!;
        w[q + 2] = b[src + c2]!;
        w[q + 3] = b[src + c3]!;
        q += NR;
        src += bRow;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let j = 0; j < NR; j++) w[q + j] = j < nr ? b[src + j * bCol]! : 0;
        q += NR;
        src += bRow;
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
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  for (let p = 0; p < kc; p++) {
    const b0 = w[pb]!, b1 = w[pb + 1]!, b2 = w[pb + 2]!, b3 = w[pb + 3]!;
    let x = w[pa]!;
    c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
    x = w[pa + 1]!;
    c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
    pa += MR;
    pb += NR;
  }
  out[0] = c00; out[1] = c01; out[2] = c02; out[3] = c03;
  out[4] = c10; out[5] = c11; out[6] = c12; out[7] = c13;
}
