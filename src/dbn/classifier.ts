/**
 * The fine-tuned classifier of a `Dbn`: the stack unrolled into a {@link FeedForwardNet} with a
 * softmax head, its early-stopping progress, and its place in a model file (tensors
 * `net.layer<i>.weights|bias` and `head.weights|bias`, velocities and best weights for checkpoints).
 */
import { InvalidDataError, ModelFileError, ShapeMismatchError } from '../errors.js';
import type { Backend } from '../kernels/backend.js';
import { Random } from '../random.js';
import type { ModelFile, NamedTensor, Rbm } from '../rbm/index.js';
import { requireTensor } from '../rbm/model-file.js';
import { toHostMatrix } from '../validate.js';
import type { ValidationSums } from './fine-tune-epoch.js';
import { type DenseParameters, type DenseShape, FeedForwardNet, type HiddenActivation } from './network.js';

/** The fine-tuned classifier and the progress of its training run. */
export interface Classifier {
  readonly net: FeedForwardNet;
  /** Drives shuffles and dropout masks; checkpointed. */
  readonly rng: Random;
  epochsDone: number;
  /** Best validation score so far (lower is better: log loss or −accuracy). */
  bestScore: number;
  bestEpoch: number;
  sinceBest: number;
  finished: boolean;
  stoppedEarly: boolean;
}

/** Host copies of the fine-tuned classifier's parameters. */
export interface ClassifierParameters {
  /** Activation of each hidden layer, bottom first. */
  readonly activations: readonly HiddenActivation[];
  /** Dense layers, bottom first, the softmax head last: weights `nIn × nOut`, bias `nOut`. */
  readonly layers: readonly DenseParameters[];
}

/** The pretrained stack a classifier is unrolled from. */
export interface Stack {
  readonly backend: Backend;
  /** The RBMs, bottom first. */
  readonly layers: readonly Rbm[];
  /** Seeds the classifier's generator. */
  readonly fineTuneSeed: number;
}

/** The dense layers' shapes (one per RBM, then the head `nOutput × classes`) and hidden activations. */
export function netShape(stack: Stack, classes: number): { shapes: DenseShape[]; activations: HiddenActivation[] } {
  const shapes: DenseShape[] = stack.layers.map((rbm) => ({ nIn: rbm.nVisible, nOut: rbm.nHidden }));
  shapes.push({ nIn: stack.layers[stack.layers.length - 1]!.nHidden, nOut: classes });
  const activations = stack.layers.map((rbm): HiddenActivation => (rbm.options.hidden === 'noisy-relu' ? 'relu' : 'sigmoid'));
  return { shapes, activations };
}

/**
 * A new classifier: the hidden layers from the RBMs' weights and hidden biases (`init` 'auto',
 * for fitted layers) or random, the head random.
 */
export function freshClassifier(stack: Stack, classes: number, init: 'auto' | 'random'): Classifier {
  const { shapes, activations } = netShape(stack, classes);
  const net = new FeedForwardNet(stack.backend, activations, shapes);
  const rng = new Random(stack.fineTuneSeed);
  const depth = stack.layers.length;
  const top = shapes[depth]!;
  net.setLayer(depth, rng.fillNormal(new Float32Array(top.nIn * top.nOut), 0.01), new Float32Array(top.nOut));
  for (const [i, rbm] of stack.layers.entries()) {
    const shape = shapes[i]!;
    if (init === 'auto' && rbm.isFitted) {
      const params = rbm.getParameters();
      net.setLayer(i, params.weights.data, params.hiddenBias);
    } else {
      // Glorot & Bengio (2010) uniform init; ×4 for the logistic sigmoid, He et al. (2015) for ReLU.
      const limit = activations[i] === 'relu' ? Math.sqrt(6 / shape.nIn) : 4 * Math.sqrt(6 / (shape.nIn + shape.nOut));
      const weights = rng.fillUniform(new Float32Array(shape.nIn * shape.nOut));
      for (let k = 0; k < weights.length; k++) weights[k] = (2 * weights[k]! - 1) * limit;
      net.setLayer(i, weights, new Float32Array(shape.nOut));
    }
  }
  return {
    net,
    rng,
    epochsDone: 0,
    bestScore: Number.POSITIVE_INFINITY,
    bestEpoch: -1,
    sinceBest: 0,
    finished: false,
    stoppedEarly: false,
  };
}

/** Early-stopping bookkeeping after an epoch: keeps the best weights. Returns whether this epoch is the best so far. */
export function judgeEpoch(
  classifier: Classifier,
  epoch: number,
  validation: ValidationSums | undefined,
  monitor: 'logLoss' | 'accuracy',
): boolean {
  if (validation === undefined) return false;
  const score = monitor === 'accuracy' ? -(validation.correct / validation.rows) : validation.logLossSum / validation.rows;
  if (score < classifier.bestScore) {
    classifier.bestScore = score;
    classifier.bestEpoch = epoch;
    classifier.sinceBest = 0;
    classifier.net.keepBest();
    return true;
  }
  classifier.sinceBest++;
  return false;
}

/**
 * Checks parameters for {@link Dbn.setClassifierParameters} against the stack: one dense layer per
 * RBM with its shape, then a head of `classes` (≥ 2; the current classifier's when there is one);
 * finite biases. Returns the checked layers and the class count.
 */
export function checkClassifierParameters(
  stack: Stack,
  params: ClassifierParameters,
  currentClasses: number | undefined,
): { classes: number; layers: { weights: Float32Array; bias: Float32Array }[] } {
  const where = 'Dbn.setClassifierParameters';
  const layers = params?.layers;
  const depth = stack.layers.length;
  if (!Array.isArray(layers) || layers.length !== depth + 1) {
    throw new ShapeMismatchError(
      `Argument 'p.layers' passed to '${where}' must hold ${depth + 1} dense layers (one per RBM, then the head).`,
    );
  }
  const head = layers[depth]!;
  const classes = head?.bias instanceof Float32Array ? head.bias.length : 0;
  if (currentClasses !== undefined && classes !== currentClasses) {
    throw new ShapeMismatchError(
      `Argument 'p.layers' passed to '${where}' has a head of ${classes} classes; the classifier has ${currentClasses}.`,
    );
  }
  if (classes < 2)
    throw new ShapeMismatchError(`Argument 'p.layers[${depth}].bias' passed to '${where}' must be a Float32Array of at least 2 classes.`);
  const { shapes, activations } = netShape(stack, classes);
  if (
    params.activations !== undefined &&
    (params.activations.length !== activations.length || params.activations.some((a, i) => a !== activations[i]))
  ) {
    throw new ShapeMismatchError(`Argument 'p.activations' passed to '${where}' must be [${activations.join(', ')}].`);
  }
  const checked = layers.map((layer, i) => {
    const shape = shapes[i]!;
    const weights = toHostMatrix(layer.weights, where, `p.layers[${i}].weights`, { cols: shape.nOut });
    if (weights.rows !== shape.nIn)
      throw new ShapeMismatchError(
        `Argument 'p.layers[${i}].weights' passed to '${where}' must have ${shape.nIn} rows, got ${weights.rows}.`,
      );
    if (!(layer.bias instanceof Float32Array) || layer.bias.length !== shape.nOut) {
      throw new ShapeMismatchError(`Argument 'p.layers[${i}].bias' passed to '${where}' must be a Float32Array of length ${shape.nOut}.`);
    }
    for (let k = 0; k < layer.bias.length; k++) {
      if (!Number.isFinite(layer.bias[k]!))
        throw new InvalidDataError(
          `Argument 'p.layers[${i}].bias' passed to '${where}' must hold finite values; element ${k} is ${layer.bias[k]}.`,
        );
    }
    return { weights: weights.data, bias: layer.bias };
  });
  return { classes, layers: checked };
}

/** The name of dense layer `i`'s tensor `what` in a model file (`depth` RBMs, then the head). */
function tensorName(depth: number, i: number, what: string): string {
  return i < depth ? `net.layer${i}.${what}` : `head.${what}`;
}

/** The classifier's header entry and tensors; with `trainingState` and an unfinished run, its velocities, best weights and generator. */
export function classifierTensors(
  classifier: Classifier,
  depth: number,
  trainingState: boolean,
): { header: Record<string, unknown>; tensors: NamedTensor[] } {
  const tensors: NamedTensor[] = [];
  const push = (layers: DenseParameters[], weightsName: string, biasName: string): void => {
    layers.forEach((layer, i) => {
      tensors.push({
        name: tensorName(depth, i, weightsName),
        rows: layer.weights.rows,
        cols: layer.weights.cols,
        data: layer.weights.data,
      });
      tensors.push({ name: tensorName(depth, i, biasName), rows: 1, cols: layer.bias.length, data: layer.bias });
    });
  };
  const { net } = classifier;
  push(net.getLayers(), 'weights', 'bias');
  const header: Record<string, unknown> = {
    classes: net.classes,
    activations: net.activations,
    epochsDone: classifier.epochsDone,
    finished: classifier.finished,
    stoppedEarly: classifier.stoppedEarly,
    bestEpoch: classifier.bestEpoch,
    bestScore: Number.isFinite(classifier.bestScore) ? classifier.bestScore : null,
    sinceBest: classifier.sinceBest,
  };
  if (trainingState && !classifier.finished) {
    header['rng'] = classifier.rng.getState();
    push(net.getVelocities(), 'velocityWeights', 'velocityBias');
    const best = net.getBest();
    if (best !== undefined) {
      push(best, 'bestWeights', 'bestBias');
      header['hasBest'] = true;
    }
  }
  return { header, tensors };
}

/** Rebuilds the classifier saved in a model file (every header field and tensor shape checked). */
export function classifierFromFile(stack: Stack, modelFile: ModelFile, file: string): Classifier {
  const saved = modelFile.header['classifier'] as Record<string, unknown>;
  const fail = (msg: string): never => {
    throw new ModelFileError(file, 'EHEADER', `classifier: ${msg}`);
  };
  if (typeof saved !== 'object' || saved === null) fail('not an object.');
  const classes = saved['classes'];
  if (typeof classes !== 'number' || !Number.isSafeInteger(classes) || classes < 2)
    fail(`'classes' must be an integer >= 2, got ${String(classes)}.`);
  const { shapes, activations } = netShape(stack, classes as number);
  const savedActivations = saved['activations'];
  if (
    !Array.isArray(savedActivations) ||
    savedActivations.length !== activations.length ||
    savedActivations.some((a, i) => a !== activations[i])
  ) {
    fail(`'activations' must be ${JSON.stringify(activations)} for these layers.`);
  }
  const hasState = modelFile.header['trainingState'] === true && saved['finished'] === false;
  const net = new FeedForwardNet(stack.backend, activations, shapes);
  const classifier: Classifier = {
    net,
    rng: new Random(stack.fineTuneSeed),
    epochsDone: 0,
    bestScore: Number.POSITIVE_INFINITY,
    bestEpoch: -1,
    sinceBest: 0,
    finished: !hasState,
    stoppedEarly: saved['stoppedEarly'] === true,
  };
  try {
    const depth = stack.layers.length;
    const read = (weightsName: string, biasName: string, set: (i: number, weights: Float32Array, bias: Float32Array) => void): void => {
      shapes.forEach((shape, i) =>
        set(
          i,
          requireTensor(modelFile, file, tensorName(depth, i, weightsName), shape.nIn, shape.nOut),
          requireTensor(modelFile, file, tensorName(depth, i, biasName), 1, shape.nOut),
        ),
      );
    };
    read('weights', 'bias', (i, weights, bias) => net.setLayer(i, weights, bias));
    classifier.epochsDone = headerCount(saved, 'epochsDone', 0, fail);
    classifier.bestEpoch = headerCount(saved, 'bestEpoch', -1, fail);
    if (hasState) {
      restoreRunState(classifier, saved, fail);
      read('velocityWeights', 'velocityBias', (i, weights, bias) => net.setVelocities(i, weights, bias));
      if (saved['hasBest'] === true) read('bestWeights', 'bestBias', (i, weights, bias) => net.setBest(i, weights, bias));
    }
  } catch (err) {
    net.dispose();
    throw err;
  }
  return classifier;
}

function headerCount(saved: Record<string, unknown>, key: string, min: number, fail: (msg: string) => never): number {
  const value = saved[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    fail(`'${key}' must be an integer >= ${min}, got ${String(value)}.`);
  return value as number;
}

/** The early-stopping state and generator of an unfinished run, from its checkpoint header. */
function restoreRunState(classifier: Classifier, saved: Record<string, unknown>, fail: (msg: string) => never): void {
  const score = saved['bestScore'];
  if (score !== null && typeof score !== 'number') fail(`'bestScore' must be a number or null.`);
  classifier.bestScore = score === null ? Number.POSITIVE_INFINITY : (score as number);
  classifier.sinceBest = headerCount(saved, 'sinceBest', 0, fail);
  const rng = saved['rng'];
  if (
    !Array.isArray(rng) ||
    rng.length !== 4 ||
    !rng.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < 2 ** 32)
  ) {
    fail("'rng' must be 4 unsigned 32-bit integers.");
  }
  classifier.rng.setState(rng as [number, number, number, number]);
}
