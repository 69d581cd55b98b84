/**
 * Straightforward float64 reference implementations of every kernel of the backend interface,
 * on plain row-major arrays, written from the formulas in `src/kernels/backend.ts` and sharing no
 * code with any backend. The conformance suite compares each backend against these.
 */

/** A row-major `rows × cols` matrix on the host. */
export interface Mat {
  readonly rows: number;
  readonly cols: number;
  readonly data: ArrayLike<number>;
}

/** Element `(i, j)` of `m`, or of `mᵀ` when `trans`. */
function at(m: Mat, i: number, j: number, trans: boolean): number {
  return trans ? m.data[j * m.cols + i]! : m.data[i * m.cols + j]!;
}

function map(n: number, f: (i: number) => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

/** `op(a) · op(b)` (`m × n`) and `Σₚ |op(a)ᵢₚ · op(b)ₚⱼ|` per element, the scale of its rounding error. */
export interface Product {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly sum: Float64Array;
  readonly abs: Float64Array;
}

export function productRef(a: Mat, b: Mat, transA: boolean, transB: boolean): Product {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  const sum = new Float64Array(m * n);
  const abs = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        const x = at(a, i, p, transA) * at(b, p, j, transB);
        s += x;
        t += Math.abs(x);
      }
      sum[i * n + j] = s;
      abs[i * n + j] = t;
    }
  }
  return { m, n, k, sum, abs };
}

/**
 * `alpha · op(a) · op(b) + beta · c` (`c` ignored when `beta = 0`) from a {@link productRef}, and
 * `|alpha| Σₚ |op(a)ᵢₚ op(b)ₚⱼ| + |beta · cᵢⱼ|` per element (`magnitude`), the scale that bounds
 * its rounding error.
 */
export function scaleProductRef(
  p: Product,
  c: ArrayLike<number> | undefined,
  alpha: number,
  beta: number,
): { value: Float64Array; magnitude: Float64Array } {
  const value = new Float64Array(p.sum.length);
  const magnitude = new Float64Array(p.sum.length);
  for (let i = 0; i < value.length; i++) {
    const old = beta === 0 || c === undefined ? 0 : beta * c[i]!;
    value[i] = alpha * p.sum[i]! + old;
    magnitude[i] = Math.abs(alpha) * p.abs[i]! + Math.abs(old);
  }
  return { value, magnitude };
}

/** `alpha · op(a) · op(b) + beta · c` with its `magnitude` (see {@link scaleProductRef}), an `m × n` result. */
export function gemmRef(
  a: Mat,
  b: Mat,
  c: Mat | undefined,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
): { value: Float64Array; magnitude: Float64Array; m: number; n: number; k: number } {
  const p = productRef(a, b, transA, transB);
  return { ...scaleProductRef(p, c?.data, alpha, beta), m: p.m, n: p.n, k: p.k };
}

/** σ(z) = 1 / (1 + e^(−z)). */
export function sigmoidRef(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** log(1 + e^z), exact in float64 for every float32 z. */
export function softplusRef(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

export function addRowSigmoidRef(x: Mat, bias: Mat): Float64Array {
  return map(x.rows * x.cols, (i) => sigmoidRef(x.data[i]! + bias.data[i % x.cols]!));
}

export function addRowRef(x: Mat, bias: Mat): Float64Array {
  return map(x.rows * x.cols, (i) => x.data[i]! + bias.data[i % x.cols]!);
}

export function bernoulliRef(p: ArrayLike<number>, u: ArrayLike<number>): Float64Array {
  return map(p.length, (i) => (u[i]! < p[i]! ? 1 : 0));
}

export function reluRef(x: ArrayLike<number>): Float64Array {
  return map(x.length, (i) => Math.max(0, x[i]!));
}

export function noisyReluRef(x: ArrayLike<number>, noise: ArrayLike<number>): Float64Array {
  return map(x.length, (i) => Math.max(0, x[i]! + Math.sqrt(sigmoidRef(x[i]!)) * noise[i]!));
}

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return map(a.length, (i) => a[i]! + b[i]!);
}

export function subRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return map(a.length, (i) => a[i]! - b[i]!);
}

export function mulRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return map(a.length, (i) => a[i]! * b[i]!);
}

export function scaleRef(x: ArrayLike<number>, alpha: number): Float64Array {
  return map(x.length, (i) => alpha * x[i]!);
}

export function axpyRef(out: ArrayLike<number>, alpha: number, x: ArrayLike<number>): Float64Array {
  return map(out.length, (i) => out[i]! + alpha * x[i]!);
}

/** `alpha · Σ_rows x + beta · out` (`out` ignored when `beta = 0`), `1 × x.cols`. */
export function colSumRef(x: Mat, out: ArrayLike<number>, alpha: number, beta: number): Float64Array {
  return map(x.cols, (j) => {
    let s = 0;
    for (let i = 0; i < x.rows; i++) s += x.data[i * x.cols + j]!;
    return alpha * s + (beta === 0 ? 0 : beta * out[j]!);
  });
}

/** The new `param` and `velocity` of one momentum step. */
export function momentumStepRef(
  param: ArrayLike<number>,
  velocity: ArrayLike<number>,
  grad: ArrayLike<number>,
  opts: { learningRate: number; momentum: number; weightDecay: number; gradScale: number },
): { param: Float64Array; velocity: Float64Array } {
  const v = map(
    param.length,
    (i) => opts.momentum * velocity[i]! + opts.learningRate * (opts.gradScale * grad[i]! - opts.weightDecay * param[i]!),
  );
  return { param: map(param.length, (i) => param[i]! + v[i]!), velocity: v };
}

export function softplusRowSumRef(x: Mat): Float64Array {
  return map(x.rows, (i) => {
    let s = 0;
    for (let j = 0; j < x.cols; j++) s += softplusRef(x.data[i * x.cols + j]!);
    return s;
  });
}

export function rowSquaredDistanceRef(x: Mat, bias: Mat): Float64Array {
  return map(x.rows, (i) => {
    let s = 0;
    for (let j = 0; j < x.cols; j++) s += (x.data[i * x.cols + j]! - bias.data[j]!) ** 2;
    return s;
  });
}

export function softmaxRowsRef(x: Mat): Float64Array {
  const out = new Float64Array(x.rows * x.cols);
  for (let i = 0; i < x.rows; i++) {
    const row = Array.from({ length: x.cols }, (_, j) => x.data[i * x.cols + j]!);
    const max = Math.max(...row);
    const e = row.map((v) => Math.exp(v - max));
    const s = e.reduce((acc, v) => acc + v, 0);
    e.forEach((v, j) => (out[i * x.cols + j] = v / s));
  }
  return out;
}

export function sigmoidBackwardRef(delta: ArrayLike<number>, act: ArrayLike<number>): Float64Array {
  return map(delta.length, (i) => delta[i]! * act[i]! * (1 - act[i]!));
}

export function reluBackwardRef(delta: ArrayLike<number>, act: ArrayLike<number>): Float64Array {
  return map(delta.length, (i) => (act[i]! > 0 ? delta[i]! : 0));
}

export function sumSquaredDiffRef(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

export function sumSquaresRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! ** 2;
  return s;
}
