/**
 * The last check of combined rounds: a round whose step is too large next to the weights is
 * skipped, and a round that leaves non-finite parameters is rolled back — on every replica alike,
 * since the decision depends only on the combined round and the weights they all hold.
 */
import test from 'ava';
import { Dbn } from '../../src/dbn/dbn.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import type { Collective, RoundPosition } from '../../src/rbm/collective.js';
import { Rbm } from '../../src/rbm/rbm.js';
import { prototypes, sameBits } from '../dbn/fixtures.js';

/**
 * A group of one that replaces the combined round at `target` (stage/epoch/step) with `poison`,
 * records the weights just before that round's step (`before`) and the refusals it is told of.
 */
function poisoning(
  target: string,
  poison: (tensors: readonly Float32Array[], scalars: Float64Array) => void,
  weightsNow: () => Float32Array,
  maxStepRatio?: number,
): Collective & { before: Float32Array | undefined; refused: string[] } {
  const group = {
    before: undefined as Float32Array | undefined,
    refused: [] as string[],
    ...(maxStepRatio === undefined ? {} : { maxStepRatio }),
    allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
      if (`${position.stage}/${position.epoch}/${position.step}` === target) {
        group.before = Float32Array.from(weightsNow());
        poison(tensors, scalars);
      }
      return Promise.resolve();
    },
    roundRefused(position: RoundPosition, why: string): void {
      group.refused.push(`${position.stage}/${position.epoch}/${position.step}: ${why}`);
    },
  };
  return group;
}

// 200 rows, minibatch 25: 8 rounds an epoch; the last round of the second epoch is poisoned, so the
// weights after fit are those just after it.
const LAST = '0/1/7';

test('a combined round whose step exceeds maxStepRatio x the weights norm is skipped on the replica, the weights stay as before it', async (t) => {
  const { x } = prototypes(200, 20, 4, 3);
  const backend = createJsBackend();
  const weightsOf = (rbm: Rbm) => () => rbm.getParameters().weights.data;
  // Finite, within any element bound a row count allows, but 50 per element per row: a step of
  // hundreds of times the weights' norm.
  const huge = (tensors: readonly Float32Array[], scalars: Float64Array): void => {
    for (const tensor of tensors) tensor.fill(50 * scalars[0]!);
  };
  const rbm = new Rbm({ nVisible: 20, nHidden: 8, batchSize: 25, seed: 4, backend });
  const guarded = poisoning(LAST, huge, weightsOf(rbm));
  await rbm.fit(x, { epochs: 2, collective: guarded });
  t.true(sameBits(rbm.getParameters().weights.data, guarded.before!));
  t.is(guarded.refused.length, 1);
  t.regex(guarded.refused[0]!, /^0\/1\/7: .*weight matrix 0 by .* times its norm \(at most 20\): skipped/);
  // The same round with the cap turned off moves every weight by a lot: what the cap prevents.
  const open = new Rbm({ nVisible: 20, nHidden: 8, batchSize: 25, seed: 4, backend });
  const unguarded = poisoning(LAST, huge, weightsOf(open), Number.POSITIVE_INFINITY);
  await open.fit(x, { epochs: 2, collective: unguarded });
  t.true(sameBits(unguarded.before!, guarded.before!), 'both runs are the same up to the poisoned round');
  t.true(open.getParameters().weights.data.every((w, i) => Math.abs(w - unguarded.before![i]!) > 1));
  t.deepEqual(unguarded.refused, []);
  rbm.dispose();
  open.dispose();
});

test('a combined round that leaves non-finite parameters is rolled back to the state before it, and training goes on finite', async (t) => {
  const { x, y } = prototypes(200, 20, 4, 3);
  const backend = createJsBackend();
  // Finite gradients over a combined row count of 0.001: the step overflows float32 to infinity.
  // With the cap turned off, only the rollback stands between this round and the weights.
  const overflow = (tensors: readonly Float32Array[], scalars: Float64Array): void => {
    for (const tensor of tensors) tensor.fill(3e38);
    scalars[0] = 1e-3;
  };
  const rbm = new Rbm({ nVisible: 20, nHidden: 8, batchSize: 25, seed: 4, backend });
  const group = poisoning(LAST, overflow, () => rbm.getParameters().weights.data, Number.POSITIVE_INFINITY);
  await rbm.fit(x, { epochs: 2, collective: group });
  const after = rbm.getParameters();
  t.true(sameBits(after.weights.data, group.before!));
  t.true([...after.visibleBias, ...after.hiddenBias].every(Number.isFinite));
  t.is(group.refused.length, 1);
  t.regex(group.refused[0]!, /non-finite parameters: rolled back/);
  // Fine-tuning (stage 1 of a one-layer DBN, minibatch 100: 2 rounds an epoch): the round is rolled back and training goes on.
  const dbn = new Dbn({ nVisible: 20, layers: [{ nHidden: 8, epochs: 1, batchSize: 25 }], seed: 4, backend });
  await dbn.pretrain(x);
  const head = (): Float32Array => dbn.getClassifierParameters().layers.at(-1)!.weights.data;
  const tuning = poisoning('1/1/1', overflow, head, Number.POSITIVE_INFINITY);
  const result = await dbn.fineTune(x, y, { epochs: 3, classes: 4, collective: tuning });
  t.not(tuning.before, undefined);
  t.is(tuning.refused.length, 1);
  t.regex(tuning.refused[0]!, /^1\/1\/1: .*rolled back/);
  t.true(dbn.getClassifierParameters().layers.every((l) => l.weights.data.every(Number.isFinite) && l.bias.every(Number.isFinite)));
  // The epochs after the rolled-back round still trained, on finite numbers.
  t.is(result.history.length, 3);
  t.true(result.history.every((epoch) => Number.isFinite(epoch.loss)));
  dbn.dispose();
});
