// Deltas cannot break a replica: a trainer fed hostile deltas (huge, summing to infinity, for
// another class count) ends with finite weights, and where the deltas were refused, with exactly
// the weights of a run that never received them.
import { loadBundledDigits, take } from '../../src/data/index.js';
import { Dbn } from '../../src/dbn/dbn.js';
import type { LayerOptions } from '../../src/dbn/options.js';
import { PeerTrainer, type PeerTrainingOptions, type PeerTrainingStats } from '../../src/distributed/async/peer-training.js';
import type { TensorShape } from '../../src/distributed/async/delta-guard.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import type { DeltaMessage } from '../../src/sync/wire.js';
import { allParameters, memoryLink, type PeerContext, peerTest } from '../helpers/peer-context.js';

const test = peerTest();
const digits = take(loadBundledDigits(), 200);
const LAYERS: LayerOptions[] = [{ nHidden: 12, epochs: 2, batchSize: 20 }];
const RBM: TensorShape[] = [
  [784, 12],
  [1, 784],
  [1, 12],
];

/** A delta of 'bb…' (`sequence`) for `layer`: zeros but `values` at the first entries of the first tensor. */
function deltaOf(layer: number, shapes: TensorShape[], sequence: number, values: number[]): DeltaMessage {
  const tensors = shapes.map(([rows, cols]) => new Float32Array(rows * cols));
  tensors[0]!.set(values);
  let sumSquares = 0;
  for (const v of values) sumSquares += Math.fround(v) * Math.fround(v);
  return {
    kind: 'delta',
    senderId: 'bb'.repeat(16),
    layer,
    sequence,
    baseSequence: sequence - 1,
    float16: false,
    tensors,
    shapes,
    sumSquares,
  } as unknown as DeltaMessage;
}

/**
 * Pretrains (and with `classes`, fine-tunes 1 epoch) a fresh model with a memory link; `feed(batch)`
 * returns the deltas to deliver after that minibatch of pretraining.
 */
async function run(
  t: { context: PeerContext },
  feed: (batch: number) => DeltaMessage[],
  options: PeerTrainingOptions = {},
  classes?: number,
): Promise<{ params: Float32Array[]; stats: PeerTrainingStats }> {
  const dbn = new Dbn({ nVisible: 784, layers: LAYERS, seed: 7, backend: createJsBackend() });
  t.context.dbns.push(dbn);
  const { link, deliver } = memoryLink();
  const trainer = new PeerTrainer(dbn, link, {
    publishEvery: 2,
    barrierTimeoutMs: 0,
    mode: { kind: 'async', antiEntropyMs: 0, merge: 'sum' },
    ...options,
  });
  t.context.trainers.push(trainer);
  let batch = 0;
  await trainer.pretrain(digits.x, { onBatch: () => feed(batch++).forEach(deliver) });
  if (classes !== undefined) await trainer.fineTune(digits.x, digits.y as Int32Array, { epochs: 1, batchSize: 20, classes });
  await trainer.finish();
  return { params: allParameters(dbn), stats: trainer.stats() };
}

function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) =>
      Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(b[i]!.buffer, b[i]!.byteOffset, b[i]!.byteLength)),
    )
  );
}

function allFinite(params: Float32Array[]): boolean {
  return params.every((p) => p.every((v) => Number.isFinite(v)));
}

test('a 1e30 delta is refused by the hard cap; the replica ends exactly as without it', async (t) => {
  const clean = await run(t, () => []);
  const attacked = await run(t, (batch) => (batch === 3 ? [deltaOf(0, RBM, 1, [1e30])] : []));
  t.is(attacked.stats.rejected.cap, 1);
  t.is(attacked.stats.applied, 0);
  t.true(sameBits(attacked.params, clean.params));
});

test('two 2e38 deltas (summing to infinity): refused by the cap; with the cap lifted, the merge is rolled back', async (t) => {
  const clean = await run(t, () => []);
  const pair = (batch: number): DeltaMessage[] => (batch === 4 ? [deltaOf(0, RBM, 1, [2e38]), deltaOf(0, RBM, 2, [2e38])] : []);
  const capped = await run(t, pair);
  t.is(capped.stats.rejected.cap, 2);
  t.true(sameBits(capped.params, clean.params));
  // Each delta alone passes a guard with no cap and no rate limit; their sum would make a weight infinite.
  const open = await run(t, pair, { guard: { weightFactor: 1e300, rateFactor: 1e300 } });
  t.deepEqual(open.stats.rejected, { layer: 0, shape: 0, nonfinite: 0, cap: 0, norm: 0, rate: 0 });
  t.is(open.stats.rolledBack, 1);
  t.is(open.stats.applied, 0);
  t.true(allFinite(open.params));
  t.true(sameBits(open.params, clean.params), 'the last good state, then training as without the deltas');
});

test('a classifier delta for another class count, queued during pretraining, is refused once the count is known', async (t) => {
  const head = (classes: number): TensorShape[] => [
    ...RBM.slice(0, 1).map(([, cols]): TensorShape => [784, cols]),
    [1, 12],
    [12, classes],
    [1, classes],
  ];
  const wrong = deltaOf(1, head(3), 1, [0.01, -0.01]);
  const right = deltaOf(1, head(10), 2, [0.01, -0.01]);
  const out = await run(t, (batch) => (batch === 1 ? [wrong, right] : []), {}, 10);
  t.is(out.stats.rejected.shape, 1, 'the 3-class delta');
  t.is(out.stats.applied, 1, 'the 10-class delta');
  t.true(allFinite(out.params));
});
