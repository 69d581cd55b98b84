/**
 * An in-memory {@link Collective} for N replicas in one process: each round waits for all N
 * contributions and sums them in member order. For tests of the synchronous training loops.
 */
import type { Collective, RoundPosition } from '../../src/rbm/collective.js';

interface Pending {
  readonly key: string;
  readonly parts: { tensors: readonly Float32Array[]; scalars: Float64Array; resolve: () => void; member: number }[];
}

/** N collectives that sum over each other. `rounds` records every round's position key. */
export function memoryGroup(n: number): { members: Collective[]; rounds: string[] } {
  let pending: Pending | undefined;
  const rounds: string[] = [];
  const finish = (p: Pending): void => {
    const parts = [...p.parts].sort((a, b) => a.member - b.member);
    const first = parts[0]!;
    const tensors = first.tensors.map((t) => new Float32Array(t.length));
    const scalars = new Float64Array(first.scalars.length);
    for (const part of parts) {
      part.tensors.forEach((t, i) => {
        const out = tensors[i]!;
        for (let k = 0; k < t.length; k++) out[k] = out[k]! + t[k]!;
      });
      for (let k = 0; k < scalars.length; k++) scalars[k] = scalars[k]! + part.scalars[k]!;
    }
    for (const part of parts) {
      part.tensors.forEach((t, i) => t.set(tensors[i]!));
      part.scalars.set(scalars);
    }
    rounds.push(p.key);
    for (const part of parts) part.resolve();
  };
  const members = Array.from({ length: n }, (_, member) => ({
    allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
      const key = `${position.stage}/${position.epoch}/${position.step}`;
      pending ??= { key, parts: [] };
      if (pending.key !== key) throw new Error(`member ${member} is at round ${key}, the group at ${pending.key}`);
      const p = pending;
      return new Promise<void>((resolve) => {
        p.parts.push({ tensors, scalars, resolve, member });
        if (p.parts.length === n) {
          pending = undefined;
          finish(p);
        }
      });
    },
  }));
  return { members, rounds };
}
