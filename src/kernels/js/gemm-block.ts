/**
 * One column block of the threaded WebAssembly gemm (`gemm-threads.ts`), run by the main thread
 * and by every worker. The worker threads get these functions as source text
 * (`Function.prototype.toString`), so they use no imports, no closures and no nested functions:
 * only their parameters, `Math` and `Atomics`.
 *
 * The job's parameters sit in the first words of the shared memory ({@link Ctl}). A job has two
 * phases: first the tasks packing `alpha · op(a)` (one per `k` block and row block, from the raw
 * copy of `a` in the shared memory), then the column blocks, which start once every A task is
 * done. A column block is a run of `nr`-wide column panels of `c`: its thread packs those panels
 * of `op(b)` (from the raw copy of `b`), runs the macro-kernel over every row block for each `k`
 * block in order, and, when asked, replaces its columns of the result by `σ(c + bias)`. Every
 * element of `c` is thus summed in the same order whichever thread computes it and however the
 * columns are cut, so the bits do not depend on the thread count.
 */
import type { MacroKernel, PanelKernel, ScaleKernel, SigmoidKernel, TransposeKernel, ZeroKernel, packA, packB } from './gemm.js';

/** Word indices of the control block (an `Int32Array` over the shared memory's first 256 bytes). */
export const Ctl = {
  /** Bumped for every job; idle workers `Atomics.wait` on it. */
  generation: 0,
  /** The next block to claim, `(generation & 0x7fff) << 16 | block`. */
  next: 1,
  /** Blocks finished; the thread finishing the last one notifies. */
  done: 2,
  /** Non-zero: the workers exit. */
  stop: 3,
  blocks: 4,
  panels: 5,
  m: 6,
  n: 7,
  k: 8,
  kcMax: 9,
  mcMax: 10,
  ldc: 11,
  mr: 12,
  nr: 13,
  /** Offsets in float32 elements: raw `b`, packed A, packed B, `c`, and the bias (−1: none). */
  rawB: 14,
  bRow: 15,
  bCol: 16,
  packedA: 17,
  packedB: 18,
  c: 19,
  bias: 20,
  /** Workers that have started and instantiated the module. */
  ready: 21,
  /** Raw `a` (offset in float32 elements) and its strides: `op(a)[i, p] = a[i·aRow + p·aCol]`. */
  rawA: 22,
  aRow: 23,
  aCol: 24,
  /** A-packing tasks of the job, the next to claim (encoded like `next`), and those done. */
  aTasks: 25,
  aNext: 26,
  aDone: 27,
  /** `alpha` as a float64 in words 28–29 (byte offset 112). */
  alpha: 28,
  /** 1: `beta` is 0, and each block zeroes its columns of `c` (padding included) before adding to them. */
  zeroC: 30,
} as const;

/** Bytes reserved for the control block at the start of the shared memory. */
export const CONTROL_BYTES = 256;

/** The packing routines of `gemm.ts` (`packA`, `packB`), passed in so that this file stays self-contained. */
export type PackA = typeof packA;
export type PackB = typeof packB;

/** The WebAssembly module's packing functions (`wasm-gemm.ts`). */
export interface PackKernels {
  readonly packPanels: PanelKernel;
  readonly transpose4: TransposeKernel;
  readonly scale4: ScaleKernel;
}

/** The functions of the WebAssembly module (its instance's exports) that a block uses. */
export interface BlockKernels extends PackKernels {
  readonly macro: MacroKernel;
  readonly sigmoid: SigmoidKernel;
  readonly zero: ZeroKernel;
}

/**
 * `pack(f32, at, mr, a, aRow, aCol, alpha, i0, mc, p0, kc)` where `a` is the `len` float32 at
 * `f32[rawA…]`: whole 4-row tiles are packed by the module — of a transposed `a` (rows adjacent)
 * scaled in float64 lanes as `pack` scales them, of a row-major one transposed when alpha is 1
 * (alpha · a is then `a` itself); the rest (a last shorter tile, a scaled row-major `a`) by
 * `pack` — the same values either way.
 */
export function packAFrom(
  kernels: PackKernels,
  f32: Float32Array,
  at: number,
  mr: number,
  rawA: number,
  len: number,
  [aRow, aCol, alpha]: readonly [number, number, number],
  [i0, mc, p0, kc]: readonly [number, number, number, number],
  pack: PackA,
): void {
  const whole = (aRow === 1 || (aCol === 1 && alpha === 1)) && mr === 4 ? Math.floor(mc / 4) : 0;
  for (let t = 0; t < whole; t++) {
    const to = (at + t * 4 * kc) * 4;
    if (aRow === 1) kernels.scale4(to, (rawA + i0 + t * 4 + p0 * aCol) * 4, aCol * 4, kc, alpha);
    else kernels.transpose4(to, (rawA + (i0 + t * 4) * aRow + p0) * 4, aRow * 4, kc, 16);
  }
  if (whole * 4 < mc)
    pack(f32, at + whole * 4 * kc, mr, f32.subarray(rawA, rawA + len), aRow, aCol, alpha, i0 + whole * 4, mc - whole * 4, p0, kc);
}

/**
 * `pack(f32, pb, nr, b, bRow, bCol, p0, kc, j0, nc)` where `b` is the `len` float32 at
 * `f32[rawB…]`: whole 8-wide panels are packed by the module, copied two `v128` per row when
 * `b`'s columns are adjacent, transposed four columns at a time when its rows are; the rest (a
 * last narrower panel, other strides) by `pack` — the same values either way.
 */
export function packBFrom(
  kernels: PackKernels,
  f32: Float32Array,
  pb: number,
  nr: number,
  rawB: number,
  len: number,
  [bRow, bCol]: readonly [number, number],
  [p0, kc, j0, nc]: readonly [number, number, number, number],
  pack: PackB,
): void {
  const whole = (bCol === 1 || bRow === 1) && nr === 8 ? Math.floor(nc / 8) : 0;
  if (whole > 0 && bCol === 1) kernels.packPanels(pb * 4, (rawB + p0 * bRow + j0) * 4, bRow * 4, kc, whole);
  else {
    for (let q = 0; q < 2 * whole; q++)
      kernels.transpose4((pb + (q >> 1) * 8 * kc + (q & 1) * 4) * 4, (rawB + p0 + (j0 + q * 4) * bCol) * 4, bCol * 4, kc, 32);
  }
  if (whole * 8 < nc)
    pack(f32, pb + whole * 8 * kc, nr, f32.subarray(rawB, rawB + len), bRow, bCol, p0, kc, j0 + whole * 8, nc - whole * 8);
}

/** Packs A task `task` of the current job: row block `task mod ⌈m / mcMax⌉` of `k` block `⌊task / ⌈m / mcMax⌉⌋`. */
export function packATask(ctl: Int32Array, f32: Float32Array, kernels: BlockKernels, pack: PackA, task: number): void {
  const m = ctl[6]!;
  const k = ctl[8]!;
  const kcMax = ctl[9]!;
  const mcMax = ctl[10]!;
  const mr = ctl[12]!;
  const rowBlocks = Math.ceil(m / mcMax);
  const kb = Math.floor(task / rowBlocks);
  const i0 = (task - kb * rowBlocks) * mcMax;
  const p0 = kb * kcMax;
  const kc = Math.min(kcMax, k - p0);
  const at = ctl[17]! + kb * Math.ceil(m / mr) * mr * kcMax + i0 * kc;
  const alpha = new Float64Array(ctl.buffer, 112, 1)[0]!;
  packAFrom(kernels, f32, at, mr, ctl[22]!, m * k, [ctl[23]!, ctl[24]!, alpha], [i0, Math.min(mcMax, m - i0), p0, kc], pack);
}

/**
 * Computes column block `block` of the current job in `f32` (a view of the whole shared memory).
 * The packed A of every `k` block is already in place; `c` holds `beta · c`, or nothing yet when
 * `beta` is 0 (the block zeroes its columns first).
 */
export function gemmBlock(ctl: Int32Array, f32: Float32Array, kernels: BlockKernels, pack: PackB, block: number): void {
  const blocks = ctl[4]!;
  const panels = ctl[5]!;
  const m = ctl[6]!;
  const n = ctl[7]!;
  const k = ctl[8]!;
  const kcMax = ctl[9]!;
  const mcMax = ctl[10]!;
  const ldc = ctl[11]!;
  const mr = ctl[12]!;
  const nr = ctl[13]!;
  const rawB = ctl[14]!;
  const mPad = Math.ceil(m / mr) * mr;
  const first = Math.floor((block * panels) / blocks);
  const last = Math.floor(((block + 1) * panels) / blocks);
  const j0 = first * nr;
  const nc = Math.min(n, last * nr) - j0;
  const ncPad = (last - first) * nr;
  const pb = ctl[18]! + first * nr * kcMax;
  const c0 = ctl[19]!;
  // beta = 0: this block's columns of c start at zero (in parallel, not by the calling thread)
  if (ctl[30] === 1) kernels.zero((c0 + j0) * 4, ldc * 4, mPad, ncPad / 4);
  for (let p0 = 0, kb = 0; p0 < k; p0 += kcMax, kb++) {
    const kc = Math.min(kcMax, k - p0);
    packBFrom(kernels, f32, pb, nr, rawB, k * n, [ctl[15]!, ctl[16]!], [p0, kc, j0, nc], pack);
    const pa = ctl[17]! + kb * mPad * kcMax;
    for (let i0 = 0; i0 < m; i0 += mcMax) {
      const mc = Math.ceil(Math.min(mcMax, m - i0) / mr) * mr;
      kernels.macro(mc, ncPad, kc, (pa + i0 * kc) * 4, pb * 4, (c0 + i0 * ldc + j0) * 4, ldc * 4);
    }
  }
  const bias = ctl[20]!;
  if (bias < 0) return;
  // σ(c + bias) on the block's columns, padding included (j0 and ncPad are multiples of nr, itself
  // of 4), by the module's vectorized sigmoid: the bits of the single-threaded linearSigmoid.
  kernels.sigmoid((c0 + j0) * 4, ldc * 4, m, ncPad / 4, (bias + j0) * 4);
}

/**
 * Claims A tasks of the current job until none is left ({@link packATask}), then column blocks
 * ({@link gemmBlock}), each once the last A task is done; the thread finishing the last block
 * wakes the main thread. `f32` is refreshed from `memory` when the memory has grown since it
 * was made. A claim names the job's generation, so a thread late from an earlier job cannot
 * take part of a later one with stale parameters.
 */
export function runGemmBlocks(
  ctl: Int32Array,
  memory: { readonly buffer: ArrayBufferLike },
  f32: Float32Array,
  kernels: BlockKernels,
  packA: PackA,
  pack: PackB,
): void {
  for (;;) {
    const claim = Atomics.load(ctl, 26);
    const task = claim & 0xffff;
    if (task >= Atomics.load(ctl, 25)) break;
    if (Atomics.compareExchange(ctl, 26, claim, claim + 1) !== claim) continue;
    if (f32.byteLength !== memory.buffer.byteLength) f32 = new Float32Array(memory.buffer);
    packATask(ctl, f32, kernels, packA, task);
    if (Atomics.add(ctl, 27, 1) + 1 === Atomics.load(ctl, 25)) Atomics.notify(ctl, 27);
  }
  for (;;) {
    const claim = Atomics.load(ctl, 1);
    const block = claim & 0xffff;
    if (block >= Atomics.load(ctl, 4)) return;
    if (Atomics.compareExchange(ctl, 1, claim, claim + 1) !== claim) continue;
    // The block's job is the current one (its claim succeeded): wait for its A tasks. A thread
    // late from an earlier job may come here without having seen this job's A phase at all.
    for (let done = Atomics.load(ctl, 27); done < Atomics.load(ctl, 25); done = Atomics.load(ctl, 27)) Atomics.wait(ctl, 27, done);
    if (f32.byteLength !== memory.buffer.byteLength) f32 = new Float32Array(memory.buffer);
    gemmBlock(ctl, f32, kernels, pack, block);
    if (Atomics.add(ctl, 2, 1) + 1 === Atomics.load(ctl, 4)) Atomics.notify(ctl, 2);
  }
}
