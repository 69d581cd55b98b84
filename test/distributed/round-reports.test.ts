/** Rounds a model refuses reach the group's events (the CLI logs and counts them). */
import test from 'ava';
import { type PeerGroup, reportingRounds } from '../../src/distributed/index.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import type { RoundPosition } from '../../src/rbm/collective.js';
import { Rbm } from '../../src/rbm/rbm.js';
import { prototypes } from '../dbn/fixtures.js';

test('a round the model skips becomes one refused event of the group, naming the stage and the step', async (t) => {
  const events: string[] = [];
  // A group of one whose round 0/1/2 comes back 100 per element per row: far above the step cap.
  const group = {
    allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
      if (position.epoch === 1 && position.step === 2) for (const tensor of tensors) tensor.fill(100 * scalars[0]!);
      return Promise.resolve();
    },
    emit(event: string, detail: string): void {
      events.push(`${event}: ${detail}`);
    },
  } as unknown as PeerGroup;
  const rbm = new Rbm({ nVisible: 20, nHidden: 8, batchSize: 25, seed: 4, backend: createJsBackend() });
  await rbm.fit(prototypes(200, 20, 4, 3).x, { epochs: 2, collective: reportingRounds(group) });
  t.is(events.length, 1);
  t.regex(events[0]!, /^refused: stage 0: the combined round at epoch 1 step 2 would change weight matrix 0 by .* times its norm/);
  rbm.dispose();
});
