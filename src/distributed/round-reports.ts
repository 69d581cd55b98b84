/**
 * A {@link PeerGroup} as the collective of a model's training, with the combined rounds the model
 * skips (a step too large next to its weights) or rolls back (non-finite parameters after it)
 * reported as the group's `refused` events: logged like the other refusals and counted in its
 * {@link RunStats} (see `src/rbm/round-safety.ts`).
 */
import type { Collective } from '../rbm/collective.js';
import type { PeerGroup } from './group.js';

/** `group`, reporting the rounds the model refuses. */
export function reportingRounds(group: PeerGroup): Collective {
  return {
    allReduce: (position, tensors, scalars) => group.allReduce(position, tensors, scalars),
    roundRefused: (position, why) => group.emit('refused', `stage ${position.stage}: ${why}`),
  };
}
