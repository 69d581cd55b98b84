/**
 * L2-regularized logistic regression, the baseline of the fraud pipeline, in float64 on the objective
 *
 *   J(w, b) = (1/T) Σ_i c_i · logloss(y_i, σ(x_i·w + b)) + (λ/2)·‖w‖²,   T = Σ_i c_i,
 *
 * where `c_i = positiveWeight` for positive rows and 1 otherwise; the intercept `b` is not
 * penalized. With the `c` option, λ = 1/(c·T): the same minimizer as scikit-learn's
 * `LogisticRegression(C=c)` (whose objective is `C·Σ c_i·logloss + ½‖w‖²`); its default, C = 1,
 * is this class's default. The objective is strictly convex (λ > 0), so the minimizer is unique.
 *
 * Solvers: `'newton'` (default) — Newton's method with the exact Hessian (a Cholesky solve per
 * step, `features + 1` unknowns) and a backtracking (Armijo) line search: a handful of steps to
 * a gradient below `tolerance`, whatever the conditioning. `'agd'` — full-batch accelerated
 * gradient descent (Nesterov / FISTA with backtracking and adaptive restart, Beck & Teboulle
 * 2009; O'Donoghue & Candès 2015), the earlier solver: on badly conditioned data it can stop at
 * `maxIterations` far from the minimizer.
 */
import { InvalidDataError, InvalidOptionError, NotFittedError } from '../../src/errors.js';
import { type HostMatrix, type MatrixInput, toHostMatrix, validateOptions } from '../../src/validate.js';

/** Options of {@link LogisticRegression}. */
export interface LogisticOptions {
  /** λ of the L2 penalty on the weights (instead of `c`). */
  readonly l2?: number;
  /** Inverse regularization strength as scikit-learn's `C`: λ = 1/(c·Σ c_i). Default 1 (when `l2` is not given). */
  readonly c?: number;
  /** `'newton'` (default) or `'agd'` (accelerated gradient descent). */
  readonly solver?: 'newton' | 'agd';
  /** Weight of each positive row in the loss (class weighting). Default 1. */
  readonly positiveWeight?: number;
  /** Iterations at most. Default 100 (newton) or 3000 (agd). */
  readonly maxIterations?: number;
  /** Stop when every component of the gradient is below this in absolute value. Default 1e-6. */
  readonly tolerance?: number;
}

const CONSTRAINTS = {
  l2: { kind: 'number', min: 0, minOpen: true },
  c: { kind: 'number', min: 0, minOpen: true },
  solver: { kind: 'enum', values: ['newton', 'agd'] },
  positiveWeight: { kind: 'number', min: 0, minOpen: true },
  maxIterations: { kind: 'integer', min: 1 },
  tolerance: { kind: 'number', min: 0, minOpen: true },
} as const;

/** A binary logistic-regression classifier; see the module notes for the objective. */
export class LogisticRegression {
  /** λ when given; otherwise derived from {@link c} at fit time. */
  readonly l2: number | undefined;
  readonly c: number;
  readonly solver: 'newton' | 'agd';
  readonly positiveWeight: number;
  readonly maxIterations: number;
  readonly tolerance: number;
  /** Learned weights, length `features` (after {@link fit}). */
  weights: Float64Array | undefined;
  /** Learned intercept. */
  bias = 0;
  /** Iterations the last {@link fit} ran. */
  iterations = 0;
  /** Whether the last {@link fit} reached the gradient tolerance. */
  converged = false;

  constructor(options: LogisticOptions = {}) {
    validateOptions('LogisticRegression', CONSTRAINTS, options);
    if (options.l2 !== undefined && options.c !== undefined)
      throw new InvalidOptionError("LogisticRegression takes 'l2' or 'c', not both.");
    this.l2 = options.l2;
    this.c = options.c ?? 1;
    this.solver = options.solver ?? 'newton';
    this.positiveWeight = options.positiveWeight ?? 1;
    this.maxIterations = options.maxIterations ?? (this.solver === 'newton' ? 100 : 3000);
    this.tolerance = options.tolerance ?? 1e-6;
  }

  /** Fits to `x` (`rows × features`) and labels `y` (length `rows`, 0 or 1). */
  fit(x: MatrixInput, y: ArrayLike<number>): this {
    const m = toHostMatrix(x, 'LogisticRegression.fit', 'x');
    if (y.length !== m.rows)
      throw new InvalidDataError(`Argument 'y' passed to 'LogisticRegression.fit' must hold ${m.rows} labels, got ${y.length}.`);
    const c = new Float64Array(m.rows);
    for (let i = 0; i < m.rows; i++) {
      if (y[i] !== 0 && y[i] !== 1)
        throw new InvalidDataError(`Argument 'y' passed to 'LogisticRegression.fit' must hold 0 or 1; element ${i} is ${String(y[i])}.`);
      c[i] = y[i] === 1 ? this.positiveWeight : 1;
    }
    let total = 0;
    for (let i = 0; i < m.rows; i++) total += c[i]!;
    const p = new Problem(m, y, c, this.l2 ?? 1 / (this.c * total));
    const theta = this.solver === 'newton' ? this.newton(p, m.cols + 1) : this.agd(p, m.cols + 1);
    this.weights = theta.slice(0, m.cols);
    this.bias = theta[m.cols]!;
    return this;
  }

  /** Newton's method with an Armijo backtracking line search; sets `iterations` and `converged`. */
  private newton(p: Problem, d: number): Float64Array {
    const theta = new Float64Array(d);
    const g = new Float64Array(d);
    const h = new Float64Array(d * d);
    const step = new Float64Array(d);
    const trial = new Float64Array(d);
    this.converged = false;
    let it = 0;
    let f = p.valueGradientHessian(theta, g, h);
    for (; it < this.maxIterations; it++) {
      let gmax = 0;
      for (let j = 0; j < d; j++) gmax = Math.max(gmax, Math.abs(g[j]!));
      if (gmax < this.tolerance) {
        this.converged = true;
        break;
      }
      choleskySolve(h, g, step, d);
      let slope = 0;
      for (let j = 0; j < d; j++) slope += g[j]! * step[j]!;
      let t = 1;
      for (let k = 0; k < 60; k++, t /= 2) {
        for (let j = 0; j < d; j++) trial[j] = theta[j]! - t * step[j]!;
        if (p.valueAndGradient(trial, undefined) <= f - 1e-4 * t * slope) break;
      }
      theta.set(trial);
      f = p.valueGradientHessian(theta, g, h);
    }
    this.iterations = it;
    return theta;
  }

  /** Accelerated gradient descent (the earlier solver); sets `iterations` and `converged`. */
  private agd(p: Problem, d: number): Float64Array {
    let theta = new Float64Array(d);
    let xPrev = new Float64Array(d);
    let t = 1;
    let lip = 1;
    const yk = new Float64Array(d);
    const g = new Float64Array(d);
    const next = new Float64Array(d);
    this.converged = false;
    let it = 0;
    for (; it < this.maxIterations; it++) {
      const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
      const momentum = (t - 1) / tNext;
      for (let j = 0; j < d; j++) yk[j] = theta[j]! + momentum * (theta[j]! - xPrev[j]!);
      const fy = p.valueAndGradient(yk, g);
      let gmax = 0;
      let g2 = 0;
      for (let j = 0; j < d; j++) {
        gmax = Math.max(gmax, Math.abs(g[j]!));
        g2 += g[j]! * g[j]!;
      }
      if (gmax < this.tolerance) {
        theta = yk.slice();
        this.converged = true;
        break;
      }
      // Backtracking: double L until the step 1/L decreases J enough (Armijo), then let L shrink again.
      for (;;) {
        for (let j = 0; j < d; j++) next[j] = yk[j]! - g[j]! / lip;
        const fn = p.valueAndGradient(next, undefined);
        if (fn <= fy - g2 / (2 * lip) + 1e-15 * Math.abs(fy)) break;
        lip *= 2;
      }
      // Adaptive restart (gradient scheme): when the gradient at y points along the step just
      // taken (gᵀ(x⁺ − x) > 0), the momentum has overshot; drop it.
      let dot = 0;
      for (let j = 0; j < d; j++) dot += g[j]! * (next[j]! - theta[j]!);
      xPrev = dot > 0 ? next.slice() : theta;
      theta = next.slice();
      t = dot > 0 ? 1 : tNext;
      lip *= 0.9;
    }
    this.iterations = it;
    return theta;
  }

  /** `x·w + b` for every row (length `rows`). */
  decisionFunction(x: MatrixInput): Float64Array {
    const w = this.weights;
    if (w === undefined) throw new NotFittedError('This LogisticRegression is not fitted yet; call fit(x, y) first.');
    const m = toHostMatrix(x, 'LogisticRegression.decisionFunction', 'x', { cols: w.length, minRows: 0 });
    const out = new Float64Array(m.rows);
    for (let i = 0; i < m.rows; i++) {
      let z = this.bias;
      const o = i * m.cols;
      for (let j = 0; j < m.cols; j++) z += m.data[o + j]! * w[j]!;
      out[i] = z;
    }
    return out;
  }

  /** P(y = 1 | x) for every row (length `rows`). */
  predictProba(x: MatrixInput): Float64Array {
    const z = this.decisionFunction(x);
    for (let i = 0; i < z.length; i++) z[i] = sigmoid(z[i]!);
    return z;
  }
}

/** The objective and its gradient; parameters are `[w_0 … w_{d−2}, b]`. */
class Problem {
  private readonly total: number;
  private readonly y: Float64Array;

  constructor(
    private readonly x: HostMatrix,
    y: ArrayLike<number>,
    private readonly c: Float64Array,
    private readonly l2: number,
  ) {
    this.y = Float64Array.from(y);
    let s = 0;
    for (let i = 0; i < c.length; i++) s += c[i]!;
    this.total = s;
  }

  /** J(θ); with `grad`, also writes ∇J(θ) into it. */
  valueAndGradient(theta: Float64Array, grad: Float64Array | undefined): number {
    const { rows, cols, data } = this.x;
    const { y, c } = this;
    const b = theta[cols]!;
    if (grad !== undefined) grad.fill(0);
    let loss = 0;
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      let z = b;
      for (let j = 0; j < cols; j++) z += data[o + j]! * theta[j]!;
      // logloss = softplus(z) − y·z and σ(z) from one exp(−|z|), without overflow.
      const e = Math.exp(-Math.abs(z));
      loss += c[i]! * ((z > 0 ? z : 0) + Math.log1p(e) - y[i]! * z);
      if (grad !== undefined) {
        const r = c[i]! * ((z >= 0 ? 1 / (1 + e) : e / (1 + e)) - y[i]!);
        for (let j = 0; j < cols; j++) grad[j]! += r * data[o + j]!;
        grad[cols]! += r;
      }
    }
    let pen = 0;
    for (let j = 0; j < cols; j++) pen += theta[j]! * theta[j]!;
    if (grad !== undefined) {
      for (let j = 0; j < cols; j++) grad[j] = grad[j]! / this.total + this.l2 * theta[j]!;
      grad[cols] = grad[cols]! / this.total;
    }
    return loss / this.total + 0.5 * this.l2 * pen;
  }

  /** J(θ), writing ∇J(θ) into `grad` and the Hessian (row-major, `d × d`) into `hess`. */
  valueGradientHessian(theta: Float64Array, grad: Float64Array, hess: Float64Array): number {
    const { rows, cols, data } = this.x;
    const d = cols + 1;
    const f = this.valueAndGradient(theta, grad);
    const b = theta[cols]!;
    const { c } = this;
    hess.fill(0);
    const xi = new Float64Array(d);
    xi[cols] = 1;
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      let z = b;
      for (let j = 0; j < cols; j++) {
        xi[j] = data[o + j]!;
        z += xi[j]! * theta[j]!;
      }
      const e = Math.exp(-Math.abs(z));
      const w = (c[i]! * e) / ((1 + e) * (1 + e)); // c_i·σ(z)·(1 − σ(z))
      for (let j = 0; j < d; j++) {
        const wj = w * xi[j]!;
        const row = j * d;
        for (let k = j; k < d; k++) hess[row + k]! += wj * xi[k]!;
      }
    }
    for (let j = 0; j < d; j++) {
      for (let k = j; k < d; k++) {
        const v = hess[j * d + k]! / this.total + (j === k && j < cols ? this.l2 : 0);
        hess[j * d + k] = v;
        hess[k * d + j] = v;
      }
    }
    return f;
  }
}

/** Solves `a·x = b` for a symmetric positive-definite `a` (`n × n`, row-major; left untouched) by Cholesky. */
function choleskySolve(a: Float64Array, b: Float64Array, x: Float64Array, n: number): void {
  const l = new Float64Array(n * n);
  let scale = 0;
  for (let j = 0; j < n; j++) scale = Math.max(scale, a[j * n + j]!);
  const jitter = 1e-14 * scale;
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j]! + jitter;
    for (let k = 0; k < j; k++) s -= l[j * n + k]! * l[j * n + k]!;
    const dj = Math.sqrt(Math.max(s, jitter));
    l[j * n + j] = dj;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j]!;
      for (let k = 0; k < j; k++) t -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = t / dj;
    }
  }
  for (let i = 0; i < n; i++) {
    let t = b[i]!;
    for (let k = 0; k < i; k++) t -= l[i * n + k]! * x[k]!;
    x[i] = t / l[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let t = x[i]!;
    for (let k = i + 1; k < n; k++) t -= l[k * n + i]! * x[k]!;
    x[i] = t / l[i * n + i]!;
  }
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}
