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
import type { GemmWorkspace, KernelHeap } from './gemm.js';

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
  // Slots: param, velocity, gradient. The loop's order of stores (velocity, then param), so that aliased operands end alike.
  chunked(
    ws,
    n,
    2,
    MOMENTUM_CHUNK,
    [param, velocity, grad],
    [
      [velocity, 1],
      [param, 0],
    ],
    (heap, [p, v, g], pairs) => heap.momentum!(p!, v!, g!, pairs, learningRate, momentum, weightDecay, gradScale),
  );
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
  // Slots: p, u, out.
  chunked(ws, n, 4, CHUNK_FLOATS / 4, [p, u, undefined], [[out, 2]], (heap, [pAt, uAt, oAt], groups) =>
    heap.bernoulli!(pAt!, uAt!, oAt!, groups),
  );
}

/**
 * A pass of the module over `n` elements, a chunk of at most `chunkMax` at a time: each array of
 * `inputs` is copied into its slot of the workspace memory (an `undefined` input: a slot the pass
 * only writes), the lanes past the last element (up to `lanes − 1`) zeroed — computed, never
 * copied back; then `run(heap, byte offsets of the slots, groups of lanes)`; then each
 * `[array, slot]` of `outputs` is copied back, in that order.
 */
function chunked(
  ws: GemmWorkspace,
  n: number,
  lanes: number,
  chunkMax: number,
  inputs: readonly (Float32Array | undefined)[],
  outputs: readonly (readonly [Float32Array, number])[],
  run: (heap: KernelHeap, at: readonly number[], groups: number) => void,
): void {
  const chunk = Math.min(chunkMax, roundUp(n, lanes));
  const heap = ws.memory.get(inputs.length * chunk * 4);
  const f32 = heap.f32;
  const slots = inputs.map((_, i) => i * chunk);
  const bytes = slots.map((slot) => slot * 4);
  for (let i0 = 0; i0 < n; i0 += chunk) {
    const count = Math.min(chunk, n - i0);
    const whole = roundUp(count, lanes);
    inputs.forEach((input, i) => {
      if (input === undefined) return;
      f32.set(input.subarray(i0, i0 + count), slots[i]!);
      f32.fill(0, slots[i]! + count, slots[i]! + whole);
    });
    run(heap, bytes, whole / lanes);
    for (const [output, slot] of outputs) output.set(f32.subarray(slots[slot]!, slots[slot]! + count), i0);
  }
}
