/**
 * Annealed importance sampling of the partition function of a Bernoulli–Bernoulli RBM
 * (Neal 2001; Salakhutdinov & Murray 2008, "On the quantitative analysis of deep belief
 * networks"). The chains anneal from a base-rate model `p_A(v) ∝ exp(v·b_A)` (no couplings) to
 * the RBM through the intermediate distributions
 * `p*_β(v) = exp((1−β)·v·b_A + β·v·b_v) · Π_j (1 + exp(β·(vW + b_h)_j))`.
 *
 * The matrix products run on the RBM's backend; the importance weights are accumulated in
 * float64 on the host, from float64 differences `softplus(β_k x) − softplus(β_{k−1} x)`, so the
 * ten thousand tiny increments do not drown in float32 rounding.
 */
import { DbnError, InvalidOptionError, ShapeMismatchError } from '../errors.js';
import { Random } from '../random.js';
import type { Rbm } from '../rbm/index.js';
import { rbmConstraints } from '../rbm/options.js';
import { type Constraints, type MatrixInput, toHostMatrix, validateOptions } from '../validate.js';

/** Options of {@link estimateLogPartition}. */
export interface AisOptions {
  /** Number of independent annealing runs (chains). Default 100. */
  readonly runs?: number;
  /**
   * The inverse temperatures: a count `K` (≥ 3) of annealing steps, spread as Salakhutdinov &
   * Murray's schedule (1/29 of them on [0, 0.5], 8/29 on [0.5, 0.9], 20/29 on [0.9, 1]), or an
   * explicit increasing schedule starting at 0 and ending at 1. Default 10,000.
   */
  readonly betas?: number | readonly number[];
  /** Seed of the sampling generator. Default: the RBM's seed. */
  readonly seed?: number;
  /**
   * Visible biases `b_A` of the base-rate model (length `nVisible`), e.g. {@link baseRateBias}
   * of the training data. Default: zeros (the uniform distribution).
   */
  readonly baseRateVisibleBias?: ArrayLike<number>;
}

/** The result of {@link estimateLogPartition}. */
export interface AisResult {
  /** The estimate of `log Z` (of `log` of the mean importance weight times `Z_A`). */
  readonly logZ: number;
  /** Standard error of `logZ` (delta method: `sd(w) / (mean(w)·√runs)`). */
  readonly logZStd: number;
  /** `log(Ẑ − 3σ̂)`: `−Infinity` when the three-sigma band reaches zero. */
  readonly logZLow: number;
  /** `log(Ẑ + 3σ̂)`. */
  readonly logZHigh: number;
  /** `log Z_A` of the base-rate model. */
  readonly logZBase: number;
  readonly runs: number;
  /** Number of annealing steps `K` (intermediate distributions minus one). */
  readonly steps: number;
}

const aisConstraints: Constraints = {
  runs: { kind: 'integer', min: 1 },
  betas: {
    kind: 'custom',
    expected: 'an integer >= 3 or an increasing array of numbers from 0 to 1',
    check: (v) => (typeof v === 'number' ? Number.isSafeInteger(v) && v >= 3 : isSchedule(v)),
  },
  seed: rbmConstraints['seed']!,
  baseRateVisibleBias: {
    kind: 'custom',
    expected: 'an array of finite numbers (one per visible unit)',
    check: (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as ArrayLike<number>).length === 'number' &&
      Array.from(v as ArrayLike<number>).every((x) => typeof x === 'number' && Number.isFinite(x)),
  },
};

function isSchedule(v: unknown): v is readonly number[] {
  if (!Array.isArray(v) || v.length < 2 || v[0] !== 0 || v[v.length - 1] !== 1) return false;
  for (let i = 1; i < v.length; i++) if (!(typeof v[i] === 'number' && v[i] > v[i - 1])) return false;
  return true;
}

/** Salakhutdinov & Murray's schedule shape with `k` steps: `k + 1` values from 0 to 1. */
export function betaSchedule(k: number): Float64Array {
  if (!Number.isSafeInteger(k) || k < 3)
    throw new InvalidOptionError(`Argument 'k' passed to 'betaSchedule' must be an integer >= 3. Got ${String(k)}.`);
  const n1 = Math.max(1, Math.round((k * 1) / 29));
  const n2 = Math.max(1, Math.round((k * 8) / 29));
  const n3 = k - n1 - n2;
  const out = new Float64Array(k + 1);
  let i = 0;
  const segment = (from: number, to: number, n: number): void => {
    for (let s = 0; s < n; s++) out[i++] = from + ((to - from) * s) / n;
  };
  segment(0, 0.5, n1);
  segment(0.5, 0.9, n2);
  segment(0.9, 1, n3);
  out[k] = 1;
  return out;
}

/**
 * Visible biases of a base-rate model fitted to `data` (`rows × nVisible`, values in [0, 1]):
 * `log(p / (1 − p))` with `p = (mean + s) / (1 + s)` per column, `s` a smoothing pseudo-count
 * fraction (default 0.05, as in Salakhutdinov's code: 5 pseudo-counts per 100 rows).
 */
export function baseRateBias(data: MatrixInput, smoothing = 0.05): Float64Array {
  const x = toHostMatrix(data, 'baseRateBias', 'data', { unitInterval: true });
  if (!(Number.isFinite(smoothing) && smoothing > 0)) {
    throw new InvalidOptionError(`Argument 'smoothing' passed to 'baseRateBias' must be a number in (0, inf). Got ${smoothing}.`);
  }
  const sums = new Float64Array(x.cols);
  for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) sums[c]! += x.data[r * x.cols + c]!;
  const out = new Float64Array(x.cols);
  for (let c = 0; c < x.cols; c++) {
    const p = (sums[c]! / x.rows + smoothing) / (1 + smoothing);
    out[c] = Math.log(p) - Math.log1p(-p);
  }
  return out;
}

/**
 * Estimates `log Z` of a Bernoulli–Bernoulli `rbm` by annealed importance sampling
 * (Salakhutdinov & Murray 2008). Deterministic for a given seed and backend.
 */
export function estimateLogPartition(rbm: Rbm, opts: AisOptions = {}): AisResult {
  validateOptions('estimateLogPartition', aisConstraints, opts);
  requireBernoulli(rbm, 'estimateLogPartition');
  if (rbm.options.softmaxUnits > 0) {
    throw new DbnError(
      'estimateLogPartition anneals independent binary visible units; an RBM with a softmax group needs estimateAssociativeLogPartition.',
      'EUNSUPPORTED',
    );
  }
  const nv = rbm.nVisible;
  const runs = opts.runs ?? 100;
  const betas = typeof opts.betas === 'object' ? Float64Array.from(opts.betas) : betaSchedule(opts.betas ?? 10000);
  const baseBias = new Float64Array(nv);
  if (opts.baseRateVisibleBias !== undefined) {
    if (opts.baseRateVisibleBias.length !== nv) {
      throw new ShapeMismatchError(
        `The 'baseRateVisibleBias' option of estimateLogPartition must have ${nv} values (one per visible unit), got ${opts.baseRateVisibleBias.length}.`,
      );
    }
    baseBias.set(Array.from(opts.baseRateVisibleBias));
  }
  const logWeights = annealedLogWeights(rbm, baseBias, betas, runs, new Random(opts.seed ?? rbm.seed));
  let logZBase = rbm.nHidden * Math.LN2;
  for (let i = 0; i < nv; i++) logZBase += softplus(baseBias[i]!);
  return summarize(logWeights, logZBase, betas.length - 1);
}

/**
 * The log importance weights of `runs` annealing runs from the base-rate model `p_A` (visible
 * biases `baseBias`, no weights) to `rbm` through the inverse temperatures `betas`: the hidden
 * units summed out analytically, one Gibbs transition leaving `p_β` invariant between steps.
 */
function annealedLogWeights(rbm: Rbm, baseBias: Float64Array, betas: Float64Array, runs: number, rng: Random): Float64Array {
  const nv = rbm.nVisible;
  const nh = rbm.nHidden;
  const steps = betas.length - 1;
  const params = rbm.getParameters();
  const visibleBias = params.visibleBias;
  const biasGap = new Float64Array(nv);
  for (let i = 0; i < nv; i++) biasGap[i] = visibleBias[i]! - baseBias[i]!;
  const backend = rbm.backend;
  const weights = backend.alloc(nv, nh);
  const hiddenBias = backend.alloc(1, nh);
  const visible = backend.alloc(runs, nv);
  const hiddenInput = backend.alloc(runs, nh);
  const hidden = backend.alloc(runs, nh);
  const visibleProb = backend.alloc(runs, nv);
  const mixedBias = backend.alloc(1, nv);
  const uniforms = backend.alloc(runs, nv);
  try {
    backend.write(weights, params.weights.data);
    backend.write(hiddenBias, params.hiddenBias);
    const hostVisible = new Float32Array(runs * nv);
    const hostInput = new Float32Array(runs * nh);
    const hostHidden = new Float32Array(runs * nh);
    const hostMixed = new Float32Array(nv);
    // v_1 ~ p_A
    rng.fillUniform(hostVisible);
    for (let k = 0; k < hostVisible.length; k++) hostVisible[k] = hostVisible[k]! < sigmoid(baseBias[k % nv]!) ? 1 : 0;
    backend.write(visible, hostVisible);
    const logWeights = new Float64Array(runs);
    for (let step = 1; step <= steps; step++) {
      const betaPrev = betas[step - 1]!;
      const beta = betas[step]!;
      backend.gemm(hiddenInput, visible, weights);
      backend.addRow(hiddenInput, hiddenInput, hiddenBias);
      backend.read(hiddenInput, hostInput);
      for (let run = 0; run < runs; run++) {
        let visibleTerm = 0;
        for (let i = 0; i < nv; i++) if (hostVisible[run * nv + i]! !== 0) visibleTerm += biasGap[i]!;
        let hiddenTerm = 0;
        for (let j = 0; j < nh; j++) {
          const input = hostInput[run * nh + j]!;
          hiddenTerm += softplus(beta * input) - softplus(betaPrev * input);
        }
        logWeights[run]! += (beta - betaPrev) * visibleTerm + hiddenTerm;
      }
      if (step === steps) break;
      // one Gibbs transition leaving p_{β_k} invariant
      rng.fillUniform(hostHidden);
      for (let t = 0; t < hostHidden.length; t++) hostHidden[t] = hostHidden[t]! < sigmoid(beta * hostInput[t]!) ? 1 : 0;
      backend.write(hidden, hostHidden);
      backend.gemm(visibleProb, hidden, weights, { transB: true, alpha: beta });
      for (let i = 0; i < nv; i++) hostMixed[i] = (1 - beta) * baseBias[i]! + beta * visibleBias[i]!;
      backend.write(mixedBias, hostMixed);
      backend.addRowSigmoid(visibleProb, visibleProb, mixedBias);
      backend.write(uniforms, rng.fillUniform(hostVisible));
      backend.bernoulli(visible, visibleProb, uniforms);
      backend.read(visible, hostVisible);
    }
    return logWeights;
  } finally {
    for (const t of [weights, hiddenBias, visible, hiddenInput, hidden, visibleProb, mixedBias, uniforms]) backend.free(t);
  }
}

/** `log Z` from the runs' log importance weights (shifted by their maximum for range), with ±3 standard errors. */
function summarize(logWeights: Float64Array, logZBase: number, steps: number): AisResult {
  const runs = logWeights.length;
  let shift = Number.NEGATIVE_INFINITY;
  for (let run = 0; run < runs; run++) shift = Math.max(shift, logWeights[run]!);
  let mean = 0;
  for (let run = 0; run < runs; run++) mean += Math.exp(logWeights[run]! - shift);
  mean /= runs;
  let squares = 0;
  for (let run = 0; run < runs; run++) squares += (Math.exp(logWeights[run]! - shift) - mean) ** 2;
  const sd = runs > 1 ? Math.sqrt(squares / (runs - 1)) : 0;
  const se = sd / Math.sqrt(runs);
  const base = logZBase + shift;
  return {
    logZ: base + Math.log(mean),
    logZStd: se / mean,
    logZLow: mean - 3 * se > 0 ? base + Math.log(mean - 3 * se) : Number.NEGATIVE_INFINITY,
    logZHigh: base + Math.log(mean + 3 * se),
    logZBase,
    runs,
    steps,
  };
}

/**
 * The average log-likelihood of the rows of `data` (`rows × nVisible`) under `rbm`, given its
 * `log Z`: `mean(−F(v)) − log Z`, with `F` the free energy.
 */
export function averageLogLikelihood(rbm: Rbm, data: MatrixInput, logZ: number): number {
  requireBernoulli(rbm, 'averageLogLikelihood');
  if (!Number.isFinite(logZ))
    throw new InvalidOptionError(`Argument 'logZ' passed to 'averageLogLikelihood' must be a finite number. Got ${logZ}.`);
  const f = rbm.freeEnergy(data);
  let s = 0;
  for (let i = 0; i < f.length; i++) s -= f[i]!;
  return s / f.length - logZ;
}

function requireBernoulli(rbm: Rbm, where: string): void {
  if (rbm.options.visible !== 'bernoulli' || rbm.options.hidden !== 'bernoulli') {
    throw new DbnError(
      `${where} is implemented for Bernoulli–Bernoulli RBMs only (this one has '${rbm.options.visible}' visible and '${rbm.options.hidden}' hidden units).`,
      'EUNSUPPORTED',
    );
  }
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}
