/** Class labels of a `Dbn`'s classifier: checks, a row subset, and the scores of predicted probabilities. */
import { InvalidDataError, ShapeMismatchError } from '../errors.js';
import { toLabels } from '../data/matrix.js';
import type { HostMatrix } from '../validate.js';
import { argmax, PROBABILITY_FLOOR } from './network.js';
import type { Evaluation } from './options.js';

/** `labels` as an Int32Array of one label per row, or a typed error naming `arg` and `where`. */
export function checkLabels(labels: unknown, rows: number, where: string, arg: string): Int32Array {
  const y = toLabels(labels, arg, where);
  if (y.length !== rows)
    throw new ShapeMismatchError(`Argument '${arg}' passed to '${where}' must hold ${rows} labels (one per row), got ${y.length}.`);
  return y;
}

/** Throws unless every label is a class in `[0, classes)`. */
export function checkLabelRange(labels: Int32Array, classes: number, where: string, arg: string): void {
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label < 0 || label >= classes) {
      throw new InvalidDataError(
        `Argument '${arg}' passed to '${where}' must hold classes in [0, ${classes - 1}]; element ${i} is ${label}.`,
      );
    }
  }
}

/** The largest label (0 for none). */
export function maxLabel(labels: Int32Array): number {
  let max = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > max) max = labels[i]!;
  return max;
}

/** Rows `indices` of `x` and their labels, copied. */
export function gatherLabelled(x: HostMatrix, y: Int32Array, indices: Uint32Array): [HostMatrix, Int32Array] {
  const cols = x.cols;
  const data = new Float32Array(indices.length * cols);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i]!;
    data.set(x.data.subarray(row * cols, (row + 1) * cols), i * cols);
    labels[i] = y[row]!;
  }
  return [{ rows: indices.length, cols, data }, labels];
}

/** Accuracy, confusion matrix and mean log loss of class probabilities `proba` (`rows × classes`). */
export function scoreProbabilities(proba: HostMatrix, y: Int32Array, classes: number): Evaluation {
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let correct = 0;
  let loss = 0;
  for (let row = 0; row < proba.rows; row++) {
    const predicted = argmax(proba.data, row * proba.cols, proba.cols);
    const truth = y[row]!;
    confusion[truth]![predicted]!++;
    if (predicted === truth) correct++;
    loss -= Math.log(Math.max(proba.data[row * proba.cols + truth]!, PROBABILITY_FLOOR));
  }
  return { accuracy: correct / proba.rows, confusionMatrix: confusion, logLoss: loss / proba.rows };
}
