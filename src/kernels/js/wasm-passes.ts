/**
 * The js backend's elementwise passes that run in its WebAssembly module (`wasm-elementwise.ts`)
 * where the workspace has that module: the operands are copied into the workspace's memory a
 * chunk at a time, the module's function runs on the chunk, the results are copied back. Without
 * the module (the asm.js and TypeScript gemm kernels) the TypeScript loops of `elementwise.ts`
 * run instead. The momentum step and the column sums give those loops' bits either way; the
 * sigmoid is the module's float32 one (within 2 ulps of the float64 expression), so that every
 * sigmoid of a backend — fused into a product or not — gives the same bits.
 */
import { addRowSigmoidImpl, bernoulliImpl, colSumImpl, momentumStepImpl } from './elementwise.js';
import type { GemmWorkspace } from './gemm.js';

/** The most float32 of operands a pass copies into the workspace memory at a time (4 MiB): bounded, and cache-sized chunks. */
const CHUNK_FLOATS = 1 << 20;
/** Elements per chunk of the momentum step (three operands): 3 × 128 KiB, within L2. */
const MOMENTUM_CHUNK = 1 << 15;

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/**
 * `x = σ(x + bias)` in place on a `rows × cols` matrix: through the workspace's WebAssembly
 * `sigmoid` where it has one, else {@link addRowSigmoidImpl}.
 */
export function addRowSigmoid(ws: GemmWorkspace, x: Float32Array, bias: Float32Array, rows: number, cols: number): void {
  if (ws.kernel !== 'wasm-simd') {
    addRowSigmoidImpl(x, x, bias, cols);
    return;
  }
  // The bias first (padded with zeros to whole f32x4), then up to CHUNK_FLOATS floats of rows at a time.
  const ld = roundUp(cols, 4);
  const chunk = Math.max(1, Math.min(rows, Math.floor(CHUNK_FLOATS / ld)));
  const heap = ws.memory.get((chunk + 1) * ld * 4);
  const f32 = heap.f32;
  f32.set(bias.subarray(0, cols), 0);
  f32.fill(0, cols, ld);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const count = Math.min(chunk, rows - r0);
    for (let i = 0; i < count; i++) {
      f32.set(x.subarray((r0 + i) * cols, (r0 + i + 1) * cols), (i + 1) * ld);
      f32.fill(0, (i + 1) * ld + cols, (i + 2) * ld);
    }
    heap.sigmoid!(ld * 4, ld * 4, count, ld / 4, 0);
    for (let i = 0; i < count; i++) x.set(f32.subarray((i + 1) * ld, (i + 1) * ld + cols), (r0 + i) * cols);
  }
}

/** `velocity = μ·velocity + ε·(gradScale·grad − λ·param)`, then `param += velocity`: {@link momentumStepImpl}'s bits. */
export function momentumStep(
  ws: GemmWorkspace,
  param: Float32Array,
  velocity: Float32Array,
  grad: Float32Array,
  learningRate: number,
  momentum: number,
  weightDecay: number,
  gradScale: number,
): void {
  const n = param.length;
  if (ws.kernel !== 'wasm-simd' || n < 64) {
    momentumStepImpl(param, velocity, grad, learningRate, momentum, weightDecay, gradScale);
    return;
  }
  const chunk = Math.min(MOMENTUM_CHUNK, roundUp(n, 2));
  const heap = ws.memory.get(3 * chunk * 4);
  const f32 = heap.f32;
  const [p, v, g] = [0, chunk, 2 * chunk];
  for (let i0 = 0; i0 < n; i0 += chunk) {
    const count = Math.min(chunk, n - i0);
    f32.set(param.subarray(i0, i0 + count), p);
    f32.set(velocity.subarray(i0, i0 + count), v);
    f32.set(grad.subarray(i0, i0 + count), g);
    if (count % 2 === 1) {
      // The odd element's partner lane: zeros, computed and never copied back.
      f32[p + count] = 0;
      f32[v + count] = 0;
      f32[g + count] = 0;
    }
    heap.momentum!(p * 4, v * 4, g * 4, (count + 1) >> 1, learningRate, momentum, weightDecay, gradScale);
    // The loop's order of stores (velocity, then param), so that aliased operands end alike.
    velocity.set(f32.subarray(v, v + count), i0);
    param.set(f32.subarray(p, p + count), i0);
  }
}

/**
 * `out[j] = alpha·Σ_i x[i, j]` (`+ beta·out[j]` unless `beta` is 0), the sums in float64 row by
 * row: {@link colSumImpl}'s bits. `acc` is its scratch, for the TypeScript path.
 */
export function colSum(
  ws: GemmWorkspace,
  out: Float32Array,
  x: Float32Array,
  cols: number,
  alpha: number,
  beta: number,
  acc: Float64Array,
): void {
  const rows = cols === 0 ? 0 : x.length / cols;
  if (ws.kernel !== 'wasm-simd' || rows * cols < 256) {
    colSumImpl(out, x, cols, alpha, beta, acc);
    return;
  }
  // float64 sums first (ld of them), then up to CHUNK_FLOATS floats of rows, each padded to ld.
  const ld = roundUp(cols, 2);
  const chunk = Math.max(1, Math.min(rows, Math.floor(CHUNK_FLOATS / ld)));
  const xAt = ld * 2; // in floats, after the ld float64 sums
  const heap = ws.memory.get((xAt + chunk * ld) * 4);
  const f32 = heap.f32;
  const sums = new Float64Array(f32.buffer, 0, ld);
  sums.fill(0);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const count = Math.min(chunk, rows - r0);
    if (ld === cols) f32.set(x.subarray(r0 * cols, (r0 + count) * cols), xAt);
    else {
      for (let i = 0; i < count; i++) {
        f32.set(x.subarray((r0 + i) * cols, (r0 + i + 1) * cols), xAt + i * ld);
        f32[xAt + i * ld + cols] = 0;
      }
    }
    heap.colSum!(xAt * 4, count, ld / 2, 0);
  }
  if (beta === 0) for (let j = 0; j < cols; j++) out[j] = alpha * sums[j]!;
  else for (let j = 0; j < cols; j++) out[j] = alpha * sums[j]! + beta * out[j]!;
}

/** `out = u < p ? 1 : 0`: {@link bernoulliImpl}'s bits; `out` may be `p` or `u`. */
export function bernoulli(ws: GemmWorkspace, out: Float32Array, p: Float32Array, u: Float32Array): void {
  const n = out.length;
  if (ws.kernel !== 'wasm-simd' || n < 64) {
    bernoulliImpl(out, p, u);
    return;
  }
  const chunk = Math.min(CHUNK_FLOATS / 4, roundUp(n, 4));
  const heap = ws.memory.get(3 * chunk * 4);
  const f32 = heap.f32;
  const [pAt, uAt, oAt] = [0, chunk, 2 * chunk];
  for (let i0 = 0; i0 < n; i0 += chunk) {
    const count = Math.min(chunk, n - i0);
    f32.set(p.subarray(i0, i0 + count), pAt);
    f32.set(u.subarray(i0, i0 + count), uAt);
    // The lanes past the last element (up to 3) compare zeros and are never copied back.
    const whole = roundUp(count, 4);
    f32.fill(0, pAt + count, pAt + whole);
    f32.fill(0, uAt + count, uAt + whole);
    heap.bernoulli!(pAt * 4, uAt * 4, oAt * 4, whole / 4);
    out.set(f32.subarray(oAt, oAt + count), i0);
  }
}
