/**
 * The fine-tuning recipe shared by the pooled run (`pipeline.ts`) and every bank of the
 * distributed run (`distributed.ts`): minibatch SGD with momentum on the oversampled training rows,
 * an exponential moving average (EMA, Polyak-style) of the classifier's weights over the last
 * steps, and early stopping on the class-weighted validation log loss **of the averaged weights**,
 * which are also the weights kept. Averaging over a fraction of an epoch makes the result depend
 * far less on the order of the last minibatches than the weights after the last step do.
 *
 * `Dbn.fineTune` has no sample or class weights, so the fraud class is weighted by repeating its
 * rows (`oversample` in `pipeline.ts`); the validation loss weights frauds by the same kind of
 * factor instead of repeating them. The weights are averaged on the host from
 * `Dbn.getClassifierParameters` after every minibatch (the classifier is small: 31·32 + 32·16 +
 * 16·2 weights), and the averaged model is evaluated by {@link fraudProbability}, a host forward
 * pass, so the network being trained is never touched.
 */
import {
  type ClassifierParameters,
  type Dbn,
  type FineTuneOptions,
  type FineTuneResult,
  type HostMatrix,
  InvalidOptionError,
} from '../../src/index.js';

/** The fine-tuning hyper-parameters (the same for the pooled run and the banks). */
export interface FineTuneRecipe {
  /** Learning rate of every minibatch step. */
  readonly learningRate: number;
  readonly momentum: number;
  readonly batchSize: number;
  /** Epochs at most. */
  readonly epochs: number;
  /** Validation checks (one per epoch) without improvement before stopping. */
  readonly patience: number;
  /** Time constant of the weight average, in epochs (0: no averaging, the weights after the last step). */
  readonly averageEpochs: number;
}

/**
 * The default recipe, chosen on validation data only (README.md, "Fine-tuning recipe"): a learning
 * rate of 0.01 (with 0.05 the model was best after its first epoch and then memorized the repeated
 * frauds), the weights averaged with a time constant of 2 epochs.
 */
export const DEFAULT_RECIPE: FineTuneRecipe = {
  learningRate: 0.01,
  momentum: 0.9,
  batchSize: 100,
  epochs: 20,
  patience: 4,
  averageEpochs: 2,
};

/** The classifier's parameters as one float64 vector (layer by layer: weights, then bias), into `out` when given. */
export function flattenClassifier(p: ClassifierParameters, out?: Float64Array): Float64Array {
  let n = 0;
  for (const l of p.layers) n += l.weights.data.length + l.bias.length;
  if (out !== undefined && out.length !== n)
    throw new InvalidOptionError(`flattenClassifier: 'out' must hold ${n} numbers, got ${out.length}.`);
  const v = out ?? new Float64Array(n);
  let k = 0;
  for (const l of p.layers) {
    v.set(l.weights.data, k);
    k += l.weights.data.length;
    v.set(l.bias, k);
    k += l.bias.length;
  }
  return v;
}

/** {@link flattenClassifier}'s inverse: shapes and activations taken from `like`, values multiplied by `scale`. */
export function unflattenClassifier(v: Float64Array, like: ClassifierParameters, scale = 1): ClassifierParameters {
  let n = 0;
  for (const l of like.layers) n += l.weights.data.length + l.bias.length;
  if (v.length !== n) throw new InvalidOptionError(`unflattenClassifier: expected ${n} numbers for this classifier, got ${v.length}.`);
  let k = 0;
  const next = (m: number): Float32Array => Float32Array.from(v.subarray(k, (k += m)), (x) => x * scale);
  const layers = like.layers.map((l) => ({
    weights: { rows: l.weights.rows, cols: l.weights.cols, data: next(l.weights.data.length) },
    bias: next(l.bias.length),
  }));
  return { activations: like.activations, layers };
}

/**
 * An exponential moving average of the classifier's weights, updated after every minibatch with
 * decay `exp(−1 / (averageEpochs · batchesPerEpoch))`: the weights of the last `averageEpochs`
 * epochs count the most, whatever the minibatch size or the number of banks sharing an epoch.
 * It starts at the weights fine-tuning starts from.
 */
export class WeightAverage {
  private readonly avg: Float64Array;
  private readonly scratch: Float64Array;
  private readonly decay: number;
  private readonly like: ClassifierParameters;

  constructor(start: ClassifierParameters, averageEpochs: number, batchesPerEpoch: number) {
    if (!(averageEpochs >= 0) || !Number.isFinite(averageEpochs))
      throw new InvalidOptionError(`WeightAverage: averageEpochs must be a finite number >= 0, got ${averageEpochs}.`);
    if (!Number.isSafeInteger(batchesPerEpoch) || batchesPerEpoch < 1)
      throw new InvalidOptionError(`WeightAverage: batchesPerEpoch must be an integer >= 1, got ${batchesPerEpoch}.`);
    this.like = start;
    this.avg = flattenClassifier(start);
    this.scratch = new Float64Array(this.avg.length);
    this.decay = averageEpochs === 0 ? 0 : Math.exp(-1 / (averageEpochs * batchesPerEpoch));
  }

  /** Folds in the weights after one more minibatch. */
  update(p: ClassifierParameters): void {
    const c = flattenClassifier(p, this.scratch);
    const d = this.decay;
    for (let k = 0; k < c.length; k++) this.avg[k] = d * this.avg[k]! + (1 - d) * c[k]!;
  }

  /** The averaged weights, as a vector (a copy). */
  vector(): Float64Array {
    return Float64Array.from(this.avg);
  }

  /** The averaged weights, shaped as the classifier's (a copy). */
  parameters(): ClassifierParameters {
    return unflattenClassifier(this.avg, this.like);
  }
}

/**
 * P(class 1) of every row of `x` under a two-class classifier with parameters `p` (as
 * `Dbn.getClassifierParameters` returns them: sigmoid or ReLU hidden layers, a softmax head),
 * computed on the host in float64. Equal to `Dbn.predictProba(x)[:, 1]` for the same weights up to
 * float32 rounding (tested).
 */
export function fraudProbability(p: ClassifierParameters, x: HostMatrix): Float64Array {
  const L = p.layers.length;
  const head = p.layers[L - 1];
  if (head === undefined || head.bias.length !== 2)
    throw new InvalidOptionError(
      `fraudProbability: expected a two-class classifier, got ${head === undefined ? 'no layers' : `${head.bias.length} classes`}.`,
    );
  if (p.layers[0]!.weights.rows !== x.cols)
    throw new InvalidOptionError(
      `fraudProbability: the classifier takes ${p.layers[0]!.weights.rows} inputs, the rows have ${x.cols} columns.`,
    );
  // Weights transposed (output-major) so the inner loop reads both operands in order.
  const wt = p.layers.map((l) => {
    const { rows, cols, data } = l.weights;
    const t = new Float64Array(rows * cols);
    for (let k = 0; k < rows; k++) for (let j = 0; j < cols; j++) t[j * rows + k] = data[k * cols + j]!;
    return t;
  });
  const width = Math.max(x.cols, ...p.layers.map((l) => l.bias.length));
  let cur = new Float64Array(width);
  let nxt = new Float64Array(width);
  const out = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let cols = x.cols;
    for (let k = 0; k < cols; k++) cur[k] = x.data[i * cols + k]!;
    for (let l = 0; l < L; l++) {
      const w = wt[l]!;
      const b = p.layers[l]!.bias;
      const n = b.length;
      const relu = l < L - 1 && p.activations[l] === 'relu';
      for (let j = 0; j < n; j++) {
        let s = b[j]!;
        const o = j * cols;
        for (let k = 0; k < cols; k++) s += cur[k]! * w[o + k]!;
        nxt[j] = l === L - 1 ? s : relu ? Math.max(0, s) : 1 / (1 + Math.exp(-s));
      }
      [cur, nxt] = [nxt, cur];
      cols = n;
    }
    // Softmax over two logits: P(1) = σ(z₁ − z₀).
    out[i] = 1 / (1 + Math.exp(cur[0]! - cur[1]!));
  }
  return out;
}

/**
 * The class-weighted log loss's two sums over labelled rows: `Σ w·(−log p(y))` and `Σ w`, with
 * `w = positiveWeight` for label 1 and 1 for label 0 (`p` = P(1) per row, clamped at 1e-15). The
 * loss is their ratio; banks add their sums up.
 */
export function weightedLogLoss(p: Float64Array, y: Int32Array, positiveWeight: number): { lossSum: number; weight: number } {
  if (p.length !== y.length) throw new InvalidOptionError(`weightedLogLoss: ${p.length} probabilities for ${y.length} labels.`);
  let lossSum = 0;
  let weight = 0;
  for (let i = 0; i < y.length; i++) {
    const w = y[i] === 1 ? positiveWeight : 1;
    const q = y[i] === 1 ? p[i]! : 1 - p[i]!;
    lossSum -= w * Math.log(Math.max(q, 1e-15));
    weight += w;
  }
  return { lossSum, weight };
}

/** Whatever runs `Dbn.fineTune`'s loop: the `Dbn` itself (pooled) or a `PeerTrainer` (a bank). */
export interface FineTuner {
  fineTune(x: HostMatrix, y: Int32Array, opts: FineTuneOptions): Promise<FineTuneResult>;
}

/** Options of {@link fineTuneAveraged}. */
export interface AveragedFineTuneOptions {
  readonly recipe: FineTuneRecipe;
  /**
   * The loss of the averaged weights after check `check` (one per pooled-run epoch): the pooled
   * run's validation loss, or a bank's share summed with the other banks'. Lower is better.
   */
  readonly validationLoss: (averaged: ClassifierParameters, check: number) => Promise<number> | number;
  /** This trainer's epochs per pooled-run epoch (banks with `merge: 'average'`; default 1). */
  readonly epochScale?: number;
  readonly log?: (line: string) => void;
}

/** What {@link fineTuneAveraged} returns. */
export interface AveragedFineTuneResult {
  /** Epochs this trainer ran. */
  readonly epochs: number;
  /** The validation loss after every check, the best check (0-based) and its averaged weights. */
  readonly validationLoss: number[];
  readonly bestCheck: number;
  readonly best: ClassifierParameters;
}

/**
 * Fine-tunes `dbn`'s classifier through `tuner` with `recipe`, averaging the weights after every
 * minibatch ({@link WeightAverage}); after every pooled-run epoch the averaged weights are
 * checked with `validationLoss`, and `patience` checks without improvement stop the run (by
 * aborting `fineTune`). Returns the best check's averaged weights; the caller installs them
 * (`Dbn.setClassifierParameters`), after `PeerTrainer.finish()` for a bank.
 */
export async function fineTuneAveraged(
  tuner: FineTuner,
  dbn: Dbn,
  x: HostMatrix,
  y: Int32Array,
  o: AveragedFineTuneOptions,
): Promise<AveragedFineTuneResult> {
  const r = o.recipe;
  const scale = o.epochScale ?? 1;
  const stop = new AbortController();
  const batchesPerEpoch = Math.ceil(x.rows / Math.min(r.batchSize, x.rows));
  let average: WeightAverage | undefined;
  const validationLoss: number[] = [];
  let bestCheck = -1;
  let best: ClassifierParameters | undefined;
  let epochs = 0;
  await tuner.fineTune(x, y, {
    epochs: r.epochs * scale,
    learningRate: r.learningRate,
    momentum: r.momentum,
    batchSize: r.batchSize,
    validationFraction: 0,
    signal: stop.signal,
    onStart: () => {
      average = new WeightAverage(dbn.getClassifierParameters(), r.averageEpochs * scale, batchesPerEpoch);
    },
    onBatch: () => average!.update(dbn.getClassifierParameters()),
    onEpoch: async (m) => {
      epochs = m.epoch + 1;
      if (epochs % scale !== 0) return;
      const check = validationLoss.length;
      const averaged = average!.parameters();
      const loss = await o.validationLoss(averaged, check);
      validationLoss.push(loss);
      const improved = bestCheck < 0 || loss < validationLoss[bestCheck]!;
      if (improved) {
        bestCheck = check;
        best = averaged;
      }
      o.log?.(
        `  fine-tune epoch ${epochs}: loss ${m.loss.toFixed(4)}, validation loss of the averaged weights ${loss.toFixed(4)}${improved ? ' (best)' : ''} (${(m.elapsedMs / 1000).toFixed(1)} s)`,
      );
      if (check - bestCheck >= r.patience) stop.abort();
    },
  });
  if (best === undefined) throw new InvalidOptionError(`fineTuneAveraged: no validation check ran (${r.epochs} epochs × ${scale}).`);
  return { epochs, validationLoss, bestCheck, best };
}

/** {@link DEFAULT_RECIPE} with the command line's overrides. */
export function fineTuneRecipe(o: {
  readonly fineTuneEpochs?: number;
  readonly fineTuneLearningRate?: number;
  readonly fineTuneAverageEpochs?: number;
}): FineTuneRecipe {
  return {
    ...DEFAULT_RECIPE,
    ...(o.fineTuneEpochs !== undefined ? { epochs: o.fineTuneEpochs } : {}),
    ...(o.fineTuneLearningRate !== undefined ? { learningRate: o.fineTuneLearningRate } : {}),
    ...(o.fineTuneAverageEpochs !== undefined ? { averageEpochs: o.fineTuneAverageEpochs } : {}),
  };
}

/**
 * DBNs in the supervised score's ensemble: each is pretrained and fine-tuned on its own from its
 * own seed ({@link modelSeed}), and the score is the mean of their P(fraud). Chosen on validation
 * data only (README.md, "Three DBNs"): the fine-tuned DBN's validation AUPRC moves with the
 * *pretraining* seed (changes to fine-tuning alone moved it by ≤ 0.003 and left its spread as it
 * was); three independently pretrained DBNs scored higher on each of 12 model seeds (mean
 * 0.656 → 0.671) with a lower validation loss, and moved a little less when the same seeds took
 * another trajectory (mean |Δ| 0.0093 → 0.0084, max 0.022 → 0.014; the distributed run's
 * validation gap, seeds 1–5: mean |gap| 0.0095 → 0.0069) — a modest narrowing, not the halving
 * the first six seeds suggested.
 */
export const DEFAULT_MODELS = 3;

/**
 * The seed of the `k`-th DBN of the ensemble of a run with seed `seed`: `seed` itself for the
 * first (so model 0 is the single-DBN run's model), then steps of 1000, so that the ensembles of
 * nearby run seeds share no DBN.
 */
export function modelSeed(seed: number, k: number): number {
  if (!Number.isSafeInteger(k) || k < 0) throw new InvalidOptionError(`modelSeed: k must be an integer >= 0, got ${k}.`);
  return seed + 1000 * k;
}

/** The element-wise mean of equally long score vectors (the ensemble's P(fraud) from its models'). */
export function meanScores(scores: readonly Float64Array[]): Float64Array {
  const first = scores[0];
  if (first === undefined) throw new InvalidOptionError('meanScores: no score vector given.');
  const out = new Float64Array(first.length);
  for (const s of scores) {
    if (s.length !== out.length) throw new InvalidOptionError(`meanScores: vectors of ${out.length} and ${s.length} scores.`);
    for (let i = 0; i < out.length; i++) out[i]! += s[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= scores.length;
  return out;
}
