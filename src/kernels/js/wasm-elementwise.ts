/**
 * The js backend's WebAssembly elementwise functions (their bytes, for the module that
 * `wasm-gemm.ts` assembles): the sigmoid applied after a product and the Bernoulli sample, in float32 lanes; the momentum
 * step and the column sums in float64 lanes, with the operations of the TypeScript loops in
 * `elementwise.ts` in the same order, so their bits are those loops' bits.
 */
import { I32, V128, VOID, f32x4, get, i32, i32x4, load, op, set, simd, store, tee, uleb } from './wasm-encoder.js';

/** Two float32 at the address on the stack, widened to an f64x2 (`v128.load64_zero`, `f64x2.promote_low_f32x4`). */
export const loadPair = (offset = 0): number[] => [...simd(op.v128Load64Zero, 3, ...uleb(offset)), ...simd(op.f64x2PromoteLowF32x4)];
/** The f64x2 on the stack rounded to two float32, stored at the address below it (`f32x4.demote_f64x2_zero`, `v128.store64_lane`). */
export const storePair = (offset = 0): number[] => [...simd(op.f32x4DemoteF64x2Zero), ...simd(op.v128Store64Lane, 3, ...uleb(offset), 0)];

/**
 * The locals and body of `momentum(pp, pv, pg, pairs, lr, mu, wd, gs)`: for `2 · pairs` float32
 * elements of the parameter at `pp`, the velocity at `pv` and the gradient at `pg`, two at a time
 * in float64: v = mu·v + lr·(gs·g − wd·p); p = p + v (v and p rounded to float32 when stored,
 * p + v summed with the unrounded v) — `momentumStepImpl`'s expression and order.
 */
export function momentumCode(): number[] {
  const [pp, pv, pg, pairs, lr, mu, wd, gs] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [p, v, lrs, mus, wds, gss] = [8, 9, 10, 11, 12, 13];
  const f = (code: number): number[] => simd(code);
  const splat = (local: number): number[] => [...get(local), ...f(op.f64x2Splat)];
  // prettier-ignore
  const body: number[] = [
    ...get(pairs), op.i32Eqz, op.brIf, 0,
    ...splat(lr), ...set(lrs), ...splat(mu), ...set(mus), ...splat(wd), ...set(wds), ...splat(gs), ...set(gss),
    op.loop, VOID, // pairs times
    ...get(pp), ...loadPair(), ...set(p),
    // v = mu·v + lr·(gs·g − wd·p)
    ...get(mus), ...get(pv), ...loadPair(), ...f(op.f64x2Mul),
    ...get(lrs), ...get(gss), ...get(pg), ...loadPair(), ...f(op.f64x2Mul), ...get(wds), ...get(p), ...f(op.f64x2Mul), ...f(op.f64x2Sub), ...f(op.f64x2Mul),
    ...f(op.f64x2Add), ...set(v),
    ...get(pv), ...get(v), ...storePair(),
    ...get(pp), ...get(p), ...get(v), ...f(op.f64x2Add), ...storePair(),
    ...get(pp), ...i32(8), op.i32Add, ...set(pp),
    ...get(pv), ...i32(8), op.i32Add, ...set(pv),
    ...get(pg), ...i32(8), op.i32Add, ...set(pg),
    ...get(pairs), ...i32(1), op.i32Sub, ...tee(pairs), op.brIf, 0,
    op.end,
    op.end,
  ];
  return [1, ...uleb(6), V128, ...body];
}

/**
 * The locals and body of `colSum(px, rows, pairs, pacc)`: adds each of `rows` rows of `2 · pairs`
 * float32 at `px` (rows packed one after another) to the float64 sums at `pacc`, row by row in
 * order, two columns at a time — `colSumImpl`'s sums and order.
 */
export function colSumCode(): number[] {
  const [px, rows, pairs, pacc] = [0, 1, 2, 3];
  const [a, j] = [4, 5];
  // prettier-ignore
  const body: number[] = [
    ...get(rows), op.i32Eqz, op.brIf, 0,
    ...get(pairs), op.i32Eqz, op.brIf, 0,
    op.loop, VOID, // rows times
    ...get(pacc), ...set(a),
    ...get(pairs), ...set(j),
    op.loop, VOID, // pairs times: acc[a] += x[px]
    ...get(a), ...get(a), ...load(0), ...get(px), ...loadPair(), ...simd(op.f64x2Add), ...store(0),
    ...get(a), ...i32(16), op.i32Add, ...set(a),
    ...get(px), ...i32(8), op.i32Add, ...set(px),
    ...get(j), ...i32(1), op.i32Sub, ...tee(j), op.brIf, 0,
    op.end,
    ...get(rows), ...i32(1), op.i32Sub, ...tee(rows), op.brIf, 0,
    op.end,
    op.end,
  ];
  return [1, ...uleb(2), I32, ...body];
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
export function sigmoidCode(): number[] {
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

/**
 * The locals and body of `bernoulli(pp, pu, po, groups)`: `out = u < p ? 1 : 0` on `4 · groups`
 * float32 (`f32x4.lt`, then the mask and 1.0) — `bernoulliImpl`'s comparison, so its bits (NaN
 * in either operand gives 0).
 */
export function bernoulliCode(): number[] {
  const [pp, pu, po, groups] = [0, 1, 2, 3];
  // prettier-ignore
  const body: number[] = [
    ...get(groups), op.i32Eqz, op.brIf, 0,
    op.loop, VOID, // groups times
    ...get(po), ...get(pu), ...load(0), ...get(pp), ...load(0), ...simd(op.f32x4Lt), ...f32x4(1), ...simd(op.v128And), ...store(0),
    ...get(pp), ...i32(16), op.i32Add, ...set(pp),
    ...get(pu), ...i32(16), op.i32Add, ...set(pu),
    ...get(po), ...i32(16), op.i32Add, ...set(po),
    ...get(groups), ...i32(1), op.i32Sub, ...tee(groups), op.brIf, 0,
    op.end,
    op.end,
  ];
  return [0, ...body];
}
