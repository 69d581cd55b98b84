import test from 'ava';
import {
  type RoundPart,
  allReduceTopology,
  gossipTopology,
  hypercube,
  inMemoryGroup,
  ring,
  sparseTopology,
} from '../../bench/topologies/collectives.js';
import { Dbn, TypeScriptHostKernels } from '../../src/index.js';
import type { RoundPosition } from '../../src/rbm/collective.js';

/** Every member enters `position` with its own arrays; resolves when the round is over. */
async function round(
  group: ReturnType<typeof inMemoryGroup>,
  position: RoundPosition,
  tensors: Float32Array[][],
  scalars: Float64Array[],
): Promise<void> {
  await Promise.all(group.map((c, k) => c.allReduce(position, tensors[k]!, scalars[k]!)));
}

test('allreduce: every member gets the member-order sum; bytes are the sharded all-reduce chunks', async (t) => {
  const sent = new Float64Array(3);
  const group = inMemoryGroup(3, allReduceTopology(), sent);
  const tensors = [0, 1, 2].map((k) => [Float32Array.from({ length: 5 }, (_, i) => k * 10 + i), Float32Array.of(k, -k, 1)]);
  const scalars = [0, 1, 2].map((k) => Float64Array.of(k + 1));
  await round(group, { stage: 0, epoch: 0, step: 0 }, tensors, scalars);
  for (const k of [0, 1, 2]) {
    t.deepEqual([...tensors[k]![0]!], [30, 33, 36, 39, 42]);
    t.deepEqual([...tensors[k]![1]!], [3, -3, 3]);
    t.deepEqual([...scalars[k]!], [6]);
  }
  // 8 floats cut at 0, 2, 5, 8: member k sends the 8 − c_k others' floats and its chunk c_k to 2 members,
  // plus its 1 scalar (8 bytes) to 2 members.
  t.deepEqual([...sent], [4 * (6 + 2 * 2) + 16, 4 * (5 + 2 * 3) + 16, 4 * (5 + 2 * 3) + 16]);
});

test('sparse: the top entries go now, the rest later (error feedback); a stage ends with the residual whole', async (t) => {
  const sent = new Float64Array(2);
  const stages = { epochsOf: () => 1, batchSize: 100 };
  const group = inMemoryGroup(2, sparseTopology(0.2, new TypeScriptHostKernels(), stages, true), sent);
  // Plan round: 300 rows over both → 3 minibatch rounds; the last one flushes.
  await round(group, { stage: 0, epoch: 0, step: -1 }, [[], []], [Float64Array.of(150), Float64Array.of(150)]);
  const gradient = (k: number): Float32Array => Float32Array.from({ length: 10 }, (_, i) => (k === 0 ? i + 1 : -(i + 1) / 4));
  const applied = new Float64Array(10);
  for (const step of [0, 1, 2]) {
    const tensors = [0, 1].map((k) => [step === 0 ? gradient(k) : new Float32Array(10)]);
    await round(group, { stage: 0, epoch: 0, step }, tensors, [Float64Array.of(50), Float64Array.of(50)]);
    t.deepEqual([...tensors[0]![0]!], [...tensors[1]![0]!], 'every member applies the same sum');
    if (step === 0) {
      // Each member's two largest of 10 entries: member 0's 10, 9; member 1's −2.5, −2.25.
      t.deepEqual([...tensors[0]![0]!], [0, 0, 0, 0, 0, 0, 0, 0, 9 - 2.25, 10 - 2.5]);
    }
    tensors[0]![0]!.forEach((v, i) => (applied[i] = applied[i]! + v));
  }
  // Nothing is lost: over the stage, the sum of the gradients is applied.
  t.deepEqual(
    [...applied],
    Array.from({ length: 10 }, (_, i) => (i + 1) * 0.75),
  );
  // Plan round: 8 bytes to 1 member; two sparse rounds of 2 entries (8 bytes each) and a DELTA header
  // (104 + 8 per tensor + 16); the flush: 10 float32 and the header. Both members alike.
  const header = 104 + 8 + 16;
  const expected = 8 + 2 * (8 + header + 2 * 8) + (8 + header + 4 * 10);
  t.deepEqual([...sent], [expected, expected]);
});

test('gossip: each member averages with its neighbours (Metropolis weights) and keeps its own gradient and row count', async (t) => {
  const models = [0, 1, 2, 3].map(() => new Dbn({ nVisible: 3, layers: [{ nHidden: 2 }], seed: 1 }));
  try {
    models.forEach((m, k) =>
      m.layers[0]!.setParameters({
        weights: { rows: 3, cols: 2, data: new Float32Array(6).fill(k * 4) },
        visibleBias: new Float32Array(3).fill(-k),
        hiddenBias: new Float32Array(2).fill(k * k),
      }),
    );
    const sent = new Float64Array(4);
    const observed: RoundPart[][] = [];
    const group = inMemoryGroup(4, gossipTopology(ring, models), sent, (_p, parts) => observed.push([...parts]));
    const tensors = [0, 1, 2, 3].map((k) => [Float32Array.of(k, 1)]);
    const scalars = [0, 1, 2, 3].map((k) => Float64Array.of(10 + k));
    await round(group, { stage: 0, epoch: 0, step: 0 }, tensors, scalars);
    // Ring of 4: member k mixes k − 1, k, k + 1 with weights 1/3 each.
    const expectWeights = [(12 + 0 + 4) / 3, (0 + 4 + 8) / 3, (4 + 8 + 12) / 3, (8 + 12 + 0) / 3];
    const expectHidden = [(9 + 0 + 1) / 3, (0 + 1 + 4) / 3, (1 + 4 + 9) / 3, (4 + 9 + 0) / 3];
    models.forEach((m, k) => {
      const p = m.layers[0]!.getParameters();
      t.true(
        p.weights.data.every((v) => Math.abs(v - expectWeights[k]!) < 1e-5),
        `member ${k} weights ${p.weights.data[0]}`,
      );
      t.true(p.hiddenBias.every((v) => Math.abs(v - expectHidden[k]!) < 1e-5));
      // Its own gradient and own row count are left for its own step.
      t.deepEqual([...tensors[k]![0]!], [k, 1]);
      t.deepEqual([...scalars[k]!], [10 + k]);
    });
    // 2 neighbours × (header for 3 tensors + 11 float32), plus 1 scalar to 3 members.
    t.deepEqual([...sent], new Array<number>(4).fill(2 * (104 + 8 * 3 + 16 + 4 * 11) + 3 * 8));
    // A summary round (no tensors) still sums its scalars: the early-stopping decision stays global.
    const sums = [0, 1, 2, 3].map((k) => Float64Array.of(k, 1));
    await round(group, { stage: 0, epoch: 0, step: 1 }, [[], [], [], []], sums);
    for (const s of sums) t.deepEqual([...s], [6, 4]);
    t.is(observed.length, 2);
  } finally {
    for (const m of models) m.dispose();
  }
});

test('gossip graphs: the ring has one neighbour at N = 2, the hypercube log2 N', (t) => {
  t.deepEqual(ring.neighbours(0, 2), [1]);
  t.deepEqual(ring.neighbours(0, 8), [1, 7]);
  t.deepEqual(hypercube.neighbours(5, 8), [4, 7, 1]);
});

test('a member entering another round than the group is refused', async (t) => {
  const group = inMemoryGroup(2, allReduceTopology(), new Float64Array(2));
  const first = group[0]!.allReduce({ stage: 0, epoch: 0, step: 0 }, [], Float64Array.of(1));
  await t.throwsAsync(group[1]!.allReduce({ stage: 0, epoch: 0, step: 1 }, [], Float64Array.of(1)), { message: /member 1 at 0\/0\/1/ });
  void first;
});
