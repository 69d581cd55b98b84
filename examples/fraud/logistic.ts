/**
 * L2-regularized logistic regression, the baseline of the fraud pipeline: full-batch accelerated
 * gradient descent (Nesterov / FISTA with backtracking and adaptive restart, Beck & Teboulle
 * 2009; O'Donoghue & Candès 2015) in float64 on the objective
 *
 *   J(w, b) = (1/C) Σ_i c_i · logloss(y_i, σ(x_i·w + b)) + (λ/2)·‖w‖²,   C = Σ_i c_i,
 *
 * where `c_i = positiveWeight` for positive rows and 1 otherwise; the intercept `b` is not
 * penalized. The objective is strictly convex (λ > 0), so the minimizer is unique and the result
 * does not depend on the starting point.
 */
import { InvalidDataError, NotFittedError } from '../../src/errors.js';
import { type HostMatrix, type MatrixInput, toHostMatrix, validateOptions } from '../../src/validate.js';

/** Options of {@link LogisticRegression}. */
export interface LogisticOptions {
  /** λ of the L2 penalty on the weights. Default 1e-4. */
  readonly l2?: number;
  /** Weight of each positive row in the loss (class weighting). Default 1. */
  readonly positiveWeight?: number;
  /** Iterations at most. Default 3000. */
  readonly maxIterations?: number;
  /** Stop when every component of the gradient is below this in absolute value. Default 1e-6. */
  readonly tolerance?: number;
}

const CONSTRAINTS = {
  l2: { kind: 'number', min: 0, minOpen: true },
  positiveWeight: { kind: 'number', min: 0, minOpen: true },
  maxIterations: { kind: 'integer', min: 1 },
  tolerance: { kind: 'number', min: 0, minOpen: true },
} as const;

/** A binary logistic-regression classifier; see the module notes for the objective. */
export class LogisticRegression {
  readonly l2: number;
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
    this.l2 = options.l2 ?? 1e-4;
    this.positiveWeight = options.positiveWeight ?? 1;
    this.maxIterations = options.maxIterations ?? 3000;
    this.tolerance = options.tolerance ?? 1e-6;
  }

  /** Fits to `x` (`rows × features`) and labels `y` (length `rows`, 0 or 1). */
  fit(x: MatrixInput, y: ArrayLike<number>): this {
    const m = toHostMatrix(x, 'LogisticRegression.fit', 'x');
    if (y.length !== m.rows) throw new InvalidDataError(`Argument 'y' passed to 'LogisticRegression.fit' must hold ${m.rows} labels, got ${y.length}.`);
    const c = new Float64Array(m.rows);
    for (let i = 0; i < m.rows; i++) {
      if (y[i] !== 0 && y[i] !== 1) throw new InvalidDataError(`Argument 'y' passed to 'LogisticRegression.fit' must hold 0 or 1; element ${i} is ${String(y[i])}.`);
      c[i] = y[i] === 1 ? this.positiveWeight : 1;
    }
    const d = m.cols + 1;
    const p = new Problem(m, y, c, this.l2);
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
    this.weights = theta.slice(0, m.cols);
    this.bias = theta[m.cols]!;
    return this;
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
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}
