/**
 * A cache-blocked, register-tiled single-precision matrix product in portable TypeScript:
 * `c = alpha · op(a) · op(b) + beta · c`, all row-major `Float32Array`s.
 *
 * The loop nest is the Goto/BLIS one (Goto & van de Geijn 2008, "Anatomy of high-performance
 * matrix multiplication"): for each `KC × NC` block of `op(b)` and `MC × KC` block of `op(a)`,
 * both are packed into a contiguous float64 workspace (B as `NR`-wide column panels, A as
 * `MR`-high row panels, zero-padded at the edges, `alpha` folded into A), and a `4 × 4`
 * micro-kernel sweeps the panels with its sixteen accumulators in local variables. Packing
 * absorbs the transposes, so all four `transA`/`transB` cases run the same inner loop.
 *
 * Numerics: `c` is first scaled by `beta`; each `KC`-long block of the product is then summed in
 * float64 and added to `c`, which is rounded to float32 after each block (at most `⌈k / KC⌉ + 1`
 * roundings per element).
 *
 * Why float64 panels: V8 computes in float64, and a `Float32Array` load costs an extra
 * conversion in the inner loop; packing to float64 is exact and measured faster.
 */

/** Micro-tile height and width (the register block). */
const MR = 4;
const NR = 4;
/** Cache blocks: `KC × NR` B panels stay in L1, the `MC × KC` A block in L2, the `KC × NC` B block in L2/L3. */
const KC = 256;
const MC = 64;
const NC = 1024;

/**
 * Scratch memory of {@link gemmImpl}: one float64 buffer holding the packed A block followed by
 * the packed B block. It grows to what the largest product so far needed and never beyond
 * `MC·KC + KC·NC` doubles (2.2 MB); one workspace per backend.
 */
export class GemmWorkspace {
  private buffer = new Float64Array(0);

  /** A buffer of at least `n` doubles (contents unspecified). */
  get(n: number): Float64Array {
    if (this.buffer.length < n) this.buffer = new Float64Array(n);
    return this.buffer;
  }

  /** Drops the buffer. */
  release(): void {
    this.buffer = new Float64Array(0);
  }
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
  const kcMax = Math.min(KC, k);
  const ncMax = Math.min(NC, roundUp(n, NR));
  const bOffset = mcMax * kcMax;
  const w = ws.get(bOffset + kcMax * ncMax);

  const t = tile;
  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const kc = Math.min(KC, k - p0);
      packB(w, bOffset, b, bRow, bCol, p0, kc, j0, nc);
      for (let i0 = 0; i0 < m; i0 += MC) {
        const mc = Math.min(MC, m - i0);
        packA(w, a, aRow, aCol, alpha, i0, mc, p0, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = Math.min(MR, mc - ir);
            microKernel(w, kc, ir * kc, bOffset + jr * kc, t);
            let ci = (i0 + ir) * n + j0 + jr;
            if (mr === MR && nr === NR) {
              for (let i = 0; i < MR * NR; i += NR, ci += n) {
                c[ci] = c[ci]! + t[i]!;
                c[ci + 1] = c[ci + 1]! + t[i + 1]!;
                c[ci + 2] = c[ci + 2]! + t[i + 2]!;
                c[ci + 3] = c[ci + 3]! + t[i + 3]!;
              }
            } else {
              for (let i = 0; i < mr; i++, ci += n) {
                for (let j = 0; j < nr; j++) c[ci + j] = c[ci + j]! + t[i * NR + j]!;
              }
            }
          }
        }
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
      const r1 = aRow;
      const r2 = 2 * aRow;
      const r3 = 3 * aRow;
      for (let p = 0; p < kc; p++) {
        w[q] = alpha * a[src]!;
        w[q + 1] = alpha * a[src + r1]!;
        w[q + 2] = alpha * a[src + r2]!;
        w[q + 3] = alpha * a[src + r3]!;
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
 * `out` (row-major `MR × NR`). Branch-free, so V8 optimizes it once with complete type feedback
 * (with the `beta` store-back in here it deoptimized hundreds of times while warming up).
 * Against 2 × 4, 3 × 3, 3 × 4 and 4 × 2 tiles, k-unrolling, and int32 index arithmetic in
 * interleaved A/B runs on Node 20, none was faster; 4 × 8 spills too many accumulators.
 */
function microKernel(w: Float64Array, kc: number, pa: number, pb: number, out: Float64Array): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  // B in registers, one A value at a time (faster than loading all eight operands first).
  for (let p = 0; p < kc; p++) {
    const b0 = w[pb]!, b1 = w[pb + 1]!, b2 = w[pb + 2]!, b3 = w[pb + 3]!;
    let x = w[pa]!;
    c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
    x = w[pa + 1]!;
    c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
    x = w[pa + 2]!;
    c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
    x = w[pa + 3]!;
    c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
    pa += MR;
    pb += NR;
  }
  out[0] = c00; out[1] = c01; out[2] = c02; out[3] = c03;
  out[4] = c10; out[5] = c11; out[6] = c12; out[7] = c13;
  out[8] = c20; out[9] = c21; out[10] = c22; out[11] = c23;
  out[12] = c30; out[13] = c31; out[14] = c32; out[15] = c33;
}
