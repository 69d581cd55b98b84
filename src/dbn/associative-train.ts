/** Training of the associative top layer by `Rbm.fit`, with the progress hooks, checkpoints and collective of `Dbn.pretrain`. */
import { forStage } from '../rbm/collective.js';
import type { BatchInfo, EpochMetrics } from '../rbm/index.js';
import { type Constraints, type HostMatrix, validateOptions } from '../validate.js';
import type { AssociativeMemory } from './associative.js';
import { type PretrainOptions, pretrainConstraints } from './options.js';

/** Options of {@link Dbn.pretrainAssociative}: those of `Dbn.pretrain` but `validation`, with one-layer hooks. */
export interface AssociativeTrainOptions extends Omit<PretrainOptions, 'validation' | 'onEpoch' | 'onBatch'> {
  /** Called after every epoch. */
  readonly onEpoch?: (metrics: EpochMetrics) => void | Promise<void>;
  /** Called after every minibatch update. */
  readonly onBatch?: (info: BatchInfo) => void | Promise<void>;
}

const trainConstraints: Constraints = Object.fromEntries(Object.entries(pretrainConstraints).filter(([k]) => k !== 'validation'));

/**
 * Trains `mem` on `[features(), one-hot(labels)]` until it has run its `epochs`. `features` is
 * only computed when there is training left; `stage` names the collective stage (after the
 * stack's layers and the classifier); `save` writes a checkpoint.
 */
export async function trainAssociative(
  mem: AssociativeMemory,
  features: () => HostMatrix,
  labels: Int32Array,
  stage: number,
  opts: AssociativeTrainOptions,
  save: (path: string) => void,
): Promise<EpochMetrics[]> {
  validateOptions('Dbn.pretrainAssociative', trainConstraints, opts);
  const rbm = mem.rbm;
  const target = rbm.options.epochs;
  if (rbm.epochsTrained >= target || opts.signal?.aborted) return [];
  const ckpt = opts.checkpoint;
  const x = mem.join(features(), labels, 'Dbn.pretrainAssociative');
  return rbm.fit(x, {
    epochs: target - rbm.epochsTrained,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(opts.collective !== undefined ? { collective: forStage(opts.collective, stage) } : {}),
    ...(opts.onBatch !== undefined ? { onBatch: opts.onBatch } : {}),
    onEpoch: async (m) => {
      if (
        ckpt !== undefined &&
        opts.signal?.aborted !== true &&
        (rbm.epochsTrained % ckpt.everyEpochs === 0 || rbm.epochsTrained >= target)
      )
        save(ckpt.path);
      if (opts.onEpoch) await opts.onEpoch(m);
    },
  });
}
