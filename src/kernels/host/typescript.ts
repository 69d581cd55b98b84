/**
 * The TypeScript implementation of {@link HostKernels}: plain loops over host arrays, runs
 * anywhere. The native backend overrides `deltaStep` and `sparseSelect` with C++ loops giving
 * the same bits (test/kernels/host-kernels.test.ts runs both on the same inputs).
 */
import type { DeltaStepArgs, DeltaStepResult, SparseSelectArgs } from '../backend.js';
import { float16FromFloat32, float16Table } from '../../float16.js';
import { checkDeltaStepArgs, checkFrameBytes, checkSparseSelectArgs } from './checks.js';
import type { HostKernels } from './host-kernels.js';

/** An uninitialized buffer whose start is 4-byte aligned (typed-array views need it). */
export function alignedBuffer(bytes: number): Buffer {
  const buffer = Buffer.allocUnsafe(bytes);
  return (buffer.byteOffset & 3) === 0 ? buffer : Buffer.from(new ArrayBuffer(bytes));
}

/** The `q`-th smallest of `a[0, m)` (0-based), reordering `a` (Hoare's selection, median-of-three pivots). */
export function quickSelect(a: Float64Array, m: number, q: number): number {
  let lo = 0;
  let hi = m - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three as the pivot: sorted data (common: many equal magnitudes) stays linear.
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const tmp = a[i]!;
        a[i++] = a[j]!;
        a[j--] = tmp;
      }
    }
    if (q <= j) hi = j;
    else if (q >= i) lo = i;
    else return a[q]!;
  }
  return a[q]!;
}

/**
 * The magnitude threshold of a sparse delta: the `(1 − fraction)` quantile of `sample.length`
 * evenly spaced `|share · (cur − base)|` (all of them for a smaller tensor), so that about
 * `fraction · n` entries reach it, whatever the scale of the change.
 */
export function sparseThreshold(cur: Float32Array, base: Float32Array, share: number, fraction: number, sample: Float64Array): number {
  const n = cur.length;
  const m = Math.min(n, sample.length);
  if (m === 0) return 0;
  for (let i = 0; i < m; i++) {
    const k = Math.floor((i * n) / m);
    sample[i] = Math.abs((cur[k]! - base[k]!) * share);
  }
  return quickSelect(sample, m, Math.min(m - 1, Math.floor((1 - fraction) * m)));
}

/**
 * Writes the index and float32 value of every entry of `d = share · (cur − base)` with
 * `|d| ≥ threshold` and `d ≠ 0` to `indices`, `values`; returns how many. A NaN is taken too
 * (and ±Infinity is ≥ the threshold): a change that is not finite is sent, and its Σ d² shows it.
 */
export function selectChange(
  cur: Float32Array,
  base: Float32Array,
  share: number,
  threshold: number,
  indices: Uint32Array,
  values: Float32Array,
): number {
  let count = 0;
  for (let k = 0; k < cur.length; k++) {
    const x = (cur[k]! - base[k]!) * share;
    if (!(Math.abs(x) < threshold) && x !== 0) {
      indices[count] = k;
      values[count++] = x;
    }
  }
  return count;
}

/** `r = Σ remote` in order, each partial sum rounded to float32, into `into` (or `remote[0]` itself when alone). */
function remoteSum(remote: readonly Float32Array[], into: () => Float32Array): Float32Array | undefined {
  if (remote.length <= 1) return remote[0];
  const acc = into();
  acc.set(remote[0]!);
  for (let j = 1; j < remote.length; j++) {
    const src = remote[j]!;
    for (let k = 0; k < acc.length; k++) acc[k] = acc[k]! + src[k]!;
  }
  return acc;
}

/** The host kernels as TypeScript loops; holds growable scratch, so one instance per caller. */
export class TypeScriptHostKernels implements HostKernels {
  readonly name = 'typescript';
  private scratch = new Float32Array(0);
  private scratchBits = new Uint32Array(0);
  private sum = new Float32Array(0);

  deltaStep(args: DeltaStepArgs): DeltaStepResult {
    checkDeltaStepArgs('typescript.deltaStep', args);
    const n = args.cur.length;
    const remote = remoteSum(args.remote ?? [], () => (this.sum.length >= n ? this.sum : (this.sum = new Float32Array(n))).subarray(0, n));
    return args.half === undefined ? this.float32Step(args, args.delta!, remote) : this.float16Step(args, args.half, remote);
  }

  sparseSelect(args: SparseSelectArgs): number {
    checkSparseSelectArgs('typescript.sparseSelect', args);
    const threshold = sparseThreshold(args.cur, args.base, args.share, args.fraction, args.sample);
    return selectChange(args.cur, args.base, args.share, threshold, args.indices, args.values);
  }

  frame(bytes: number): Buffer {
    checkFrameBytes('typescript.frame', bytes);
    return alignedBuffer(bytes);
  }

  private float32Step(args: DeltaStepArgs, delta: Float32Array, remote: Float32Array | undefined): DeltaStepResult {
    const { cur, base, baseNext, curNext, share, keep } = args;
    let sumSquares = 0;
    for (let k = 0; k < cur.length; k++) {
      const c = cur[k]!;
      const b = base[k]!;
      delta[k] = (c - b) * share;
      const x = delta[k]!;
      sumSquares += x * x;
      const r = remote === undefined ? 0 : remote[k]!;
      baseNext[k] = b + x + r;
      curNext[k] = (keep ? b + x : c) + r;
    }
    return { sumSquares, overflow: false };
  }

  private float16Step(args: DeltaStepArgs, half: Uint16Array, remote: Float32Array | undefined): DeltaStepResult {
    const { cur, base, baseNext, curNext, share, keep } = args;
    const n = cur.length;
    if (this.scratch.length < n) {
      this.scratch = new Float32Array(n);
      this.scratchBits = new Uint32Array(this.scratch.buffer);
    }
    const delta = this.scratch;
    const bits = this.scratchBits;
    const values = float16Table();
    let sumSquares = 0;
    let infinity = 0;
    for (let k = 0; k < n; k++) {
      const c = cur[k]!;
      const b = base[k]!;
      delta[k] = (c - b) * share;
      const x = delta[k]!;
      const h = float16FromFloat32(bits[k]!, x);
      half[k] = h;
      // An all-ones exponent (infinity or NaN) carries into bit 15.
      infinity |= (h & 0x7c00) + 0x400;
      sumSquares += x * x;
      const r = remote === undefined ? 0 : remote[k]!;
      baseNext[k] = b + values[h]! + r;
      curNext[k] = (keep ? b + x : c) + r;
    }
    return { sumSquares, overflow: (infinity & 0x8000) !== 0 };
  }
}
