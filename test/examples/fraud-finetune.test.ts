import test from 'ava';
import { type ClassifierParameters, Dbn, InvalidOptionError } from '../../src/index.js';
import { defaultBackend } from '../../src/kernels/index.js';
import {
  DEFAULT_RECIPE,
  fineTuneAveraged,
  flattenClassifier,
  fraudProbability,
  meanScores,
  modelSeed,
  unflattenClassifier,
  WeightAverage,
  weightedLogLoss,
} from '../../examples/fraud/finetune.js';

/** A 2→2→2 classifier whose outputs are worked out by hand below. */
const tiny: ClassifierParameters = {
  activations: ['sigmoid'],
  layers: [
    { weights: { rows: 2, cols: 2, data: Float32Array.of(1, 0, 0, -1) }, bias: Float32Array.of(0, 0) },
    { weights: { rows: 2, cols: 2, data: Float32Array.of(0, 2, 0, 0) }, bias: Float32Array.of(0, 0.5) },
  ],
};

test('fraudProbability: a hand-computed two-layer forward pass', (t) => {
  // Row (0, 0): hidden σ(0), σ(0) = 0.5, 0.5; logits z0 = 0, z1 = 2·0.5 + 0.5 = 1.5; P(1) = σ(1.5).
  // Row (ln 3, 0): hidden σ(ln 3) = 0.75; z1 = 1.5 + 0.5 = 2; P(1) = σ(2).
  const p = fraudProbability(tiny, { rows: 2, cols: 2, data: Float32Array.of(0, 0, Math.log(3), 0) });
  const s = (z: number): number => 1 / (1 + Math.exp(-z));
  t.true(Math.abs(p[0]! - s(1.5)) < 1e-12, `${p[0]}`);
  t.true(Math.abs(p[1]! - s(2)) < 1e-7, `${p[1]}`);
});

test('fraudProbability equals Dbn.predictProba for a fine-tuned DBN', async (t) => {
  const { backend } = defaultBackend();
  const dbn = new Dbn({
    nVisible: 5,
    layers: [
      { nHidden: 4, visible: 'gaussian', epochs: 1 },
      { nHidden: 3, epochs: 1 },
    ],
    backend,
    seed: 3,
  });
  try {
    const rows = 200;
    const x = { rows, cols: 5, data: Float32Array.from({ length: rows * 5 }, (_, k) => Math.sin(k * 0.37) * 2) };
    const y = Int32Array.from({ length: rows }, (_, i) => (x.data[i * 5]! > 0.5 ? 1 : 0));
    await dbn.pretrain(x);
    await dbn.fineTune(x, y, { epochs: 3, validationFraction: 0 });
    const mine = fraudProbability(dbn.getClassifierParameters(), x);
    const theirs = dbn.predictProba(x);
    let worst = 0;
    for (let i = 0; i < rows; i++) worst = Math.max(worst, Math.abs(mine[i]! - theirs.data[i * 2 + 1]!));
    t.true(worst < 1e-5, `largest difference ${worst}`);
  } finally {
    dbn.dispose();
    backend.dispose();
  }
});

test('fraudProbability refuses a classifier of another shape', (t) => {
  t.throws(() => fraudProbability(tiny, { rows: 1, cols: 3, data: new Float32Array(3) }), {
    instanceOf: InvalidOptionError,
    message: /takes 2 inputs, the rows have 3 columns/,
  });
});

test('weightedLogLoss: hand-computed sums', (t) => {
  const r = weightedLogLoss(Float64Array.of(0.5, 0.9, 0.2), Int32Array.of(1, 0, 0), 10);
  t.true(Math.abs(r.lossSum - (10 * Math.log(2) - Math.log(0.1) - Math.log(0.8))) < 1e-12);
  t.is(r.weight, 12);
});

test('WeightAverage: an exponential average with the decay of its time constant, starting at the start weights', (t) => {
  const at = (v: number): ClassifierParameters => unflattenClassifier(new Float64Array(flattenClassifier(tiny).length).fill(v), tiny);
  // 0.5 epochs of 4 minibatches: decay exp(−1/2) per minibatch.
  const avg = new WeightAverage(at(0), 0.5, 4);
  avg.update(at(1));
  avg.update(at(1));
  const d = Math.exp(-0.5);
  const expected = 1 - d * d; // two steps towards 1 from 0
  for (const v of avg.vector()) t.true(Math.abs(v - expected) < 1e-12, `${v} vs ${expected}`);
  // No averaging: the last weights.
  const none = new WeightAverage(at(0), 0, 4);
  none.update(at(3));
  t.deepEqual(Array.from(new Set(none.vector())), [3]);
  t.deepEqual(
    avg.parameters().layers.map((l) => [l.weights.rows, l.weights.cols, l.bias.length]),
    [
      [2, 2, 2],
      [2, 2, 2],
    ],
  );
  t.throws(() => new WeightAverage(tiny, -1, 4), { instanceOf: InvalidOptionError });
});

test('fineTuneAveraged stops after `patience` checks without improvement and returns the best check’s averaged weights', async (t) => {
  const { backend } = defaultBackend();
  const dbn = new Dbn({ nVisible: 5, layers: [{ nHidden: 4, visible: 'gaussian', epochs: 1 }], backend, seed: 5 });
  try {
    const rows = 100;
    const x = { rows, cols: 5, data: Float32Array.from({ length: rows * 5 }, (_, k) => Math.cos(k * 0.91)) };
    const y = Int32Array.from({ length: rows }, (_, i) => i % 2);
    await dbn.pretrain(x);
    // A scripted validation loss: best at the third check, then worse; patience 2 stops after check 5.
    const losses = [3, 2, 1, 1.5, 1.2, 0.5, 0.1];
    const seen: ClassifierParameters[] = [];
    const r = await fineTuneAveraged(dbn, dbn, x, y, {
      recipe: { ...DEFAULT_RECIPE, batchSize: 10, epochs: 7, patience: 2 },
      validationLoss: (p, check) => {
        seen.push(p);
        return losses[check]!;
      },
    });
    t.is(r.epochs, 5);
    t.deepEqual(r.validationLoss, [3, 2, 1, 1.5, 1.2]);
    t.is(r.bestCheck, 2);
    t.deepEqual(flattenClassifier(r.best), flattenClassifier(seen[2]!));
    t.notDeepEqual(flattenClassifier(seen[2]!), flattenClassifier(seen[4]!));
  } finally {
    dbn.dispose();
    backend.dispose();
  }
});

test('modelSeed: the run seed for the first model, steps of 1000 after it; meanScores: the element-wise mean', (t) => {
  t.deepEqual(
    [0, 1, 2].map((k) => modelSeed(5, k)),
    [5, 1005, 2005],
  );
  // Ensembles of nearby run seeds share no model.
  const a = new Set([0, 1, 2].map((k) => modelSeed(1, k)));
  t.false([0, 1, 2].some((k) => a.has(modelSeed(2, k))));
  t.throws(() => modelSeed(1, -1), { instanceOf: InvalidOptionError });
  t.deepEqual(Array.from(meanScores([Float64Array.of(0.1, 0.5), Float64Array.of(0.3, 0.5), Float64Array.of(0.8, 0.2)])), [
    (0.1 + 0.3 + 0.8) / 3,
    (0.5 + 0.5 + 0.2) / 3,
  ]);
  t.throws(() => meanScores([Float64Array.of(1), Float64Array.of(1, 2)]), { instanceOf: InvalidOptionError });
  t.throws(() => meanScores([]), { instanceOf: InvalidOptionError });
});
