/**
 * A fine-tuning run of a `Dbn`'s classifier: the validation split, the epochs (alone or as a
 * replica, see {@link Collective}), early stopping on the validation score (the best weights are
 * restored) and checkpoints.
 */
import { InvalidOptionError } from '../errors.js';
import { Random } from '../random.js';
import type { Collective } from '../rbm/collective.js';
import type { HostMatrix } from '../validate.js';
import { type Classifier, judgeEpoch } from './classifier.js';
import {
  type FineTuneEpoch,
  type FineTuneEpochSums,
  type ValidationSums,
  collectiveFineTuneEpoch,
  localFineTuneEpoch,
} from './fine-tune-epoch.js';
import { gatherLabelled, scoreProbabilities } from './labels.js';
import type { FineTuneMetrics, FineTuneOptions, FineTuneResult, ResolvedFineTune } from './options.js';

/** Labelled rows: training rows and, when there are any, validation rows. */
export interface LabelledSplit {
  readonly train: HostMatrix;
  readonly trainY: Int32Array;
  readonly valid?: HostMatrix | undefined;
  readonly validY?: Int32Array | undefined;
}

/**
 * The training and validation rows: `validation` as given, else a `validationFraction` of `x`
 * chosen by a permutation from `splitSeed` (the same split on every call), else all rows to train.
 */
export function splitValidation(
  x: HostMatrix,
  y: Int32Array,
  settings: ResolvedFineTune,
  given: { x: HostMatrix; y: Int32Array } | undefined,
  splitSeed: number,
): LabelledSplit {
  if (given !== undefined) return { train: x, trainY: y, valid: given.x, validY: given.y };
  if (settings.validationFraction <= 0) return { train: x, trainY: y };
  const validRows = Math.round(settings.validationFraction * x.rows);
  if (validRows < 1 || validRows >= x.rows) {
    throw new InvalidOptionError(
      `The 'validationFraction' option of Dbn.fineTune leaves ${validRows} of ${x.rows} rows for validation; it needs at least 1 and at most ${x.rows - 1}.`,
    );
  }
  const order = new Random(splitSeed).permutation(x.rows);
  const [valid, validY] = gatherLabelled(x, y, order.subarray(0, validRows));
  const [train, trainY] = gatherLabelled(x, y, order.subarray(validRows));
  return { train, trainY, valid, validY };
}

/** What a run needs besides the classifier and the rows. */
export interface FineTuneRun {
  readonly settings: ResolvedFineTune;
  readonly opts: FineTuneOptions;
  readonly classes: number;
  /** The collective of the fine-tuning stage, if training as a replica. */
  readonly collective: Collective | undefined;
  /** Saves a checkpoint to `opts.checkpoint.path`. */
  readonly checkpoint: () => void;
}

/** Runs (or continues) the epochs of `classifier`'s run until it finishes, stops early or is aborted. */
export async function runFineTune(classifier: Classifier, rows: LabelledSplit, run: FineTuneRun): Promise<FineTuneResult> {
  const { settings, opts } = run;
  const hasValid = rows.valid !== undefined || (run.collective !== undefined && settings.validationFraction > 0);
  const history: FineTuneMetrics[] = [];
  const everyEpochs = opts.checkpoint?.everyEpochs;
  let aborted = false;
  try {
    while (classifier.epochsDone < settings.epochs && !(hasValid && classifier.sinceBest >= settings.patience)) {
      if (opts.signal?.aborted) {
        aborted = true;
        break;
      }
      const epoch = classifier.epochsDone;
      const started = performance.now();
      const learningRate = settings.learningRate * settings.learningRateDecay ** epoch;
      const sums = await runEpoch(classifier, rows, run, epoch, learningRate);
      if (sums.aborted) {
        aborted = true;
        break;
      }
      const best = judgeEpoch(classifier, epoch, sums.validation, settings.monitor);
      classifier.epochsDone++;
      const metrics = epochMetrics(epoch, sums, best, learningRate, performance.now() - started);
      history.push(metrics);
      if (everyEpochs !== undefined && classifier.epochsDone % everyEpochs === 0) run.checkpoint();
      if (opts.onEpoch) await opts.onEpoch(metrics);
    }
    if (!aborted) finish(classifier, hasValid && classifier.sinceBest >= settings.patience, hasValid, run);
  } finally {
    classifier.net.releaseWorkspaces();
  }
  const bestEpoch = hasValid ? classifier.bestEpoch : -1;
  return { history, epochs: classifier.epochsDone, bestEpoch, finished: classifier.finished, stoppedEarly: classifier.stoppedEarly };
}

function runEpoch(
  classifier: Classifier,
  rows: LabelledSplit,
  run: FineTuneRun,
  epoch: number,
  learningRate: number,
): Promise<FineTuneEpochSums> {
  const { settings, opts } = run;
  const { valid, validY } = rows;
  const validate =
    valid === undefined || validY === undefined
      ? undefined
      : (): ValidationSums => {
          const score = scoreProbabilities(classifier.net.predictProba(valid), validY, run.classes);
          return { logLossSum: score.logLoss * valid.rows, correct: score.accuracy * valid.rows, rows: valid.rows };
        };
  const spec: FineTuneEpoch = {
    net: classifier.net,
    rng: classifier.rng,
    epoch,
    x: rows.train,
    y: rows.trainY,
    batchSize: settings.batchSize,
    update: { learningRate, momentum: settings.momentum, weightDecay: settings.weightDecay },
    rates: { hidden: settings.dropout, input: settings.inputDropout },
    onBatch: opts.onBatch,
    signal: opts.signal,
    validate,
  };
  return run.collective === undefined ? localFineTuneEpoch(spec) : collectiveFineTuneEpoch(spec, run.collective);
}

function epochMetrics(epoch: number, sums: FineTuneEpochSums, best: boolean, learningRate: number, elapsedMs: number): FineTuneMetrics {
  const validation = sums.validation;
  return {
    epoch,
    loss: sums.lossSum / sums.rows,
    trainAccuracy: sums.correct / sums.rows,
    ...(validation !== undefined
      ? { validationLoss: validation.logLossSum / validation.rows, validationAccuracy: validation.correct / validation.rows }
      : {}),
    best,
    learningRate,
    elapsedMs,
  };
}

/** Ends a run that was not aborted: the best weights back (with validation), training state dropped, a last checkpoint. */
function finish(classifier: Classifier, stoppedEarly: boolean, hasValid: boolean, run: FineTuneRun): void {
  classifier.stoppedEarly = stoppedEarly;
  if (hasValid) classifier.net.restoreBest();
  classifier.finished = true;
  classifier.net.clearTrainingState();
  if (run.opts.checkpoint !== undefined) run.checkpoint();
}
