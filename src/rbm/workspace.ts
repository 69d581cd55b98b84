/** Per-minibatch-size buffers of an RBM and the host helpers its training loop uses. */
import type { Backend, Tensor } from '../kernels/backend.js';
import { Random, type RandomSource } from '../random.js';
import { type HostMatrix, sliceRows } from '../validate.js';

/** Buffers for one row count; allocated once and reused for every minibatch of that size. */
export class Workspace {
  readonly v0: Tensor;
  readonly pre: Tensor;
  readonly h: Tensor;
  readonly hs: Tensor;
  readonly noiseH: Tensor;
  readonly vn: Tensor;
  readonly vs: Tensor;
  readonly noiseV: Tensor;
  readonly preN: Tensor;
  readonly hn: Tensor;
  readonly hsn: Tensor;
  readonly col1: Tensor;
  readonly col2: Tensor;
  readonly hostH: Float32Array;
  readonly hostV: Float32Array;

  constructor(
    private readonly b: Backend,
    readonly n: number,
    nv: number,
    nh: number,
  ) {
    this.v0 = b.alloc(n, nv);
    this.pre = b.alloc(n, nh);
    this.h = b.alloc(n, nh);
    this.hs = b.alloc(n, nh);
    this.noiseH = b.alloc(n, nh);
    this.vn = b.alloc(n, nv);
    this.vs = b.alloc(n, nv);
    this.noiseV = b.alloc(n, nv);
    this.preN = b.alloc(n, nh);
    this.hn = b.alloc(n, nh);
    this.hsn = b.alloc(n, nh);
    this.col1 = b.alloc(n, 1);
    this.col2 = b.alloc(n, 1);
    this.hostH = new Float32Array(n * nh);
    this.hostV = new Float32Array(n * nv);
  }

  free(): void {
    for (const t of [
      this.v0,
      this.pre,
      this.h,
      this.hs,
      this.noiseH,
      this.vn,
      this.vs,
      this.noiseV,
      this.preN,
      this.hn,
      this.hsn,
      this.col1,
      this.col2,
    ]) {
      this.b.free(t);
    }
  }
}

/**
 * Uniforms for sampling into the tensor `t`: drawn by the backend from the generator's state
 * when it can (`Backend.fillUniform`, the same numbers), else on the host into `host` and written.
 */
export function uniformsInto(b: Backend, t: Tensor, host: Float32Array, rng: RandomSource): void {
  if (b.fillUniform !== undefined && rng instanceof Random) {
    const fill = b.fillUniform.bind(b);
    rng.drawWith((state) => fill(t, state));
    return;
  }
  b.write(t, rng.fillUniform(host));
}

/** Rows `order[start..start+n)` of `x` (or contiguous rows when `order` is undefined), copied into `host`. */
export function gatherRows(x: HostMatrix, order: Uint32Array | undefined, start: number, n: number, host: Float32Array): HostMatrix {
  const cols = x.cols;
  if (order === undefined) return sliceRows(x, start, start + n);
  for (let i = 0; i < n; i++) {
    const r = order[start + i]!;
    host.set(x.data.subarray(r * cols, (r + 1) * cols), i * cols);
  }
  return { rows: n, cols: cols, data: host.subarray(0, n * cols) };
}
