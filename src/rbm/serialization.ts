/**
 * An RBM as the header fields and named tensors of a model file (`model-file.ts`), and back:
 * the parameters, and with `trainingState` the velocities, the sparsity estimate, the persistent
 * chains and the generators' states, so that loading and fitting continues where training stopped.
 */
import { InvalidOptionError, ModelFileError } from '../errors.js';
import type { Backend, Tensor } from '../kernels/backend.js';
import type { RandomSource } from '../random.js';
import type { HostMatrix } from '../validate.js';
import type { CdTrainer } from './cd-trainer.js';
import { type NamedTensor, requireTensor } from './model-file.js';
import { type RbmOptions, type ResolvedRbmOptions, rbmConstraints } from './options.js';

/** Host copies of an RBM's learned parameters. */
export interface RbmParameters {
  /** `nVisible × nHidden`. */
  readonly weights: HostMatrix;
  /** Length `nVisible`. */
  readonly visibleBias: Float32Array;
  /** Length `nHidden`. */
  readonly hiddenBias: Float32Array;
}

/** What is saved of a model besides its options and parameters. */
export interface ModelProgress {
  readonly epochsTrained: number;
  readonly updates: number;
  readonly fitted: boolean;
}

/** The parts of a model its training state lives in. */
export interface TrainingParts {
  readonly backend: Backend;
  readonly trainer: CdTrainer;
  readonly rng: RandomSource;
  readonly monitorRng: RandomSource;
}

/** The header fields and tensors of a model with these options, parameters and progress. */
export function modelTensors(
  options: ResolvedRbmOptions,
  parameters: RbmParameters,
  progress: ModelProgress,
  state: TrainingParts | undefined,
): { header: Record<string, unknown>; tensors: NamedTensor[] } {
  const { nVisible: nv, nHidden: nh } = options;
  const tensors: NamedTensor[] = [
    { name: 'weights', rows: nv, cols: nh, data: parameters.weights.data },
    { name: 'visibleBias', rows: 1, cols: nv, data: parameters.visibleBias },
    { name: 'hiddenBias', rows: 1, cols: nh, data: parameters.hiddenBias },
  ];
  if (state !== undefined) tensors.push(...trainingStateTensors(state));
  const { learningRateSchedule, ...rest } = options;
  const header: Record<string, unknown> = {
    options: { ...rest, learningRateSchedule: typeof learningRateSchedule === 'function' ? 'constant' : learningRateSchedule },
    ...progress,
  };
  if (state !== undefined) {
    header['state'] = {
      rng: state.rng.getState(),
      monitorRng: state.monitorRng.getState(),
      qInitialized: state.trainer.sparsityInitialized,
    };
  }
  return { header, tensors };
}

function trainingStateTensors({ backend, trainer }: TrainingParts): NamedTensor[] {
  const read = (name: string, t: Tensor): NamedTensor => {
    const data = new Float32Array(t.rows * t.cols);
    backend.read(t, data);
    return { name, rows: t.rows, cols: t.cols, data };
  };
  const { velocity } = trainer;
  const tensors = [
    read('velocityWeights', velocity.weights),
    read('velocityVisibleBias', velocity.visibleBias),
    read('velocityHiddenBias', velocity.hiddenBias),
    read('sparsityEstimate', trainer.sparsityEstimate),
  ];
  if (trainer.chain !== undefined) tensors.push(read('persistentChain', trainer.chain));
  return tensors;
}

/**
 * Builds a model from the options in a model file's header with `create`; invalid options are a
 * {@link ModelFileError} naming `file`.
 */
export function createFromHeader<T>(header: Record<string, unknown>, file: string, create: (options: RbmOptions) => T): T {
  const saved = header['options'];
  if (typeof saved !== 'object' || saved === null) throw new ModelFileError(file, 'EHEADER', 'header has no "options" object.');
  try {
    const known = Object.fromEntries(Object.entries(saved).filter(([name]) => name in rbmConstraints)) as unknown as RbmOptions;
    return create(known);
  } catch (err) {
    if (err instanceof InvalidOptionError)
      throw new ModelFileError(file, 'EHEADER', `invalid options in header: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The parameters stored in a model file (shapes checked against `options`). */
export function readParameters(tensors: ReadonlyMap<string, NamedTensor>, file: string, options: ResolvedRbmOptions): RbmParameters {
  const { nVisible: nv, nHidden: nh } = options;
  const model = { tensors };
  return {
    weights: { rows: nv, cols: nh, data: requireTensor(model, file, 'weights', nv, nh) },
    visibleBias: requireTensor(model, file, 'visibleBias', 1, nv),
    hiddenBias: requireTensor(model, file, 'hiddenBias', 1, nh),
  };
}

/** The progress counters of a model file's header. */
export function readProgress(header: Record<string, unknown>): ModelProgress {
  return {
    fitted: header['fitted'] !== false,
    epochsTrained: typeof header['epochsTrained'] === 'number' ? header['epochsTrained'] : 0,
    updates: typeof header['updates'] === 'number' ? header['updates'] : 0,
  };
}

/** Restores the training state saved with a model, if it was. */
export function restoreTrainingState(
  parts: TrainingParts,
  options: ResolvedRbmOptions,
  header: Record<string, unknown>,
  tensors: ReadonlyMap<string, NamedTensor>,
  file: string,
): void {
  const state = header['state'] as { rng?: unknown; monitorRng?: unknown; qInitialized?: unknown } | undefined;
  if (state === undefined || !tensors.has('velocityWeights')) return;
  const { backend, trainer } = parts;
  const { nVisible: nv, nHidden: nh } = options;
  const model = { tensors };
  backend.write(trainer.velocity.weights, requireTensor(model, file, 'velocityWeights', nv, nh));
  backend.write(trainer.velocity.visibleBias, requireTensor(model, file, 'velocityVisibleBias', 1, nv));
  backend.write(trainer.velocity.hiddenBias, requireTensor(model, file, 'velocityHiddenBias', 1, nh));
  backend.write(trainer.sparsityEstimate, requireTensor(model, file, 'sparsityEstimate', 1, nh));
  trainer.sparsityInitialized = state.qInitialized === true;
  const chain = tensors.get('persistentChain');
  if (chain !== undefined) {
    trainer.chain = backend.alloc(chain.rows, nh);
    backend.write(trainer.chain, requireTensor(model, file, 'persistentChain', chain.rows, nh));
  }
  if (isState(state.rng)) parts.rng.setState(state.rng);
  if (isState(state.monitorRng)) parts.monitorRng.setState(state.monitorRng);
}

function isState(x: unknown): x is [number, number, number, number] {
  return Array.isArray(x) && x.length === 4 && x.every((v) => typeof v === 'number');
}
