import test from 'ava';
import { Dbn, type ClassifierParameters } from '../../src/dbn/index.js';
import { Random } from '../../src/random.js';
import { cpuBackends, unavailable } from '../helpers/backends.js';
import { maxAbsDiff, prototypes, sameBits } from './fixtures.js';

for (const u of unavailable) {
  test.skip(`dbn fine-tune tests on ${u.name}: unavailable — ${u.reason}`, () => {});
}

const quiet = { monitorSize: 0 } as const;

/** Mean cross-entropy of the network in float64 on the host (an independent forward pass). */
function hostLoss(
  p: ClassifierParameters,
  x: Float32Array,
  rows: number,
  y: Int32Array,
  override?: { layer: number; bias: boolean; index: number; value: number },
): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let a: number[] = Array.from(x.subarray(r * p.layers[0]!.weights.rows, (r + 1) * p.layers[0]!.weights.rows));
    p.layers.forEach((l, li) => {
      const { rows: nIn, cols: nOut, data: w } = l.weights;
      const z = new Array<number>(nOut).fill(0);
      for (let j = 0; j < nOut; j++) {
        let s = override?.layer === li && override.bias && override.index === j ? override.value : l.bias[j]!;
        for (let i = 0; i < nIn; i++) {
          const wij = override?.layer === li && !override.bias && override.index === i * nOut + j ? override.value : w[i * nOut + j]!;
          s += a[i]! * wij;
        }
        z[j] = s;
      }
      if (li < p.layers.length - 1) {
        a = z.map((v) => (p.activations[li] === 'relu' ? Math.max(0, v) : 1 / (1 + Math.exp(-v))));
      } else {
        const m = Math.max(...z);
        const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
        total += lse - z[y[r]!]!;
      }
    });
  }
  return total / rows;
}

for (const { name, make } of cpuBackends) {
  test(`${name}: backprop gradients match float64 finite differences (sigmoid and ReLU layers)`, async (t) => {
    const backend = make();
    const { x, y } = prototypes(12, 6, 3, 11, 0.2);
    for (const hidden of ['bernoulli', 'noisy-relu'] as const) {
      const dbn = new Dbn({
        nVisible: 6,
        layers: [
          { nHidden: 5, hidden, learningRate: 0.01, epochs: 2, batchSize: 4, ...quiet },
          { nHidden: 4, epochs: 2, batchSize: 4, ...quiet },
        ],
        seed: 3,
        backend,
      });
      await dbn.pretrain(x);
      // a few epochs so that the head is not near zero, then the gradient at that point
      await dbn.fineTune(x, y, { epochs: 3, validationFraction: 0, batchSize: 4, learningRate: 0.5 });
      const p = dbn.getClassifierParameters();
      t.deepEqual(p.activations, [hidden === 'noisy-relu' ? 'relu' : 'sigmoid', 'sigmoid']);
      const g = dbn.gradients(x, y);
      t.true(Math.abs(g.loss - hostLoss(p, x.data, 12, y)) < 1e-5, `loss ${g.loss} vs host ${hostLoss(p, x.data, 12, y)}`);
      const rng = new Random(5);
      let checked = 0;
      for (const [li, layer] of p.layers.entries()) {
        for (const bias of [false, true]) {
          const n = bias ? layer.bias.length : layer.weights.data.length;
          for (let s = 0; s < 4; s++) {
            const index = rng.int(n);
            const v0 = bias ? layer.bias[index]! : layer.weights.data[index]!;
            const h = 1e-4;
            const num =
              (hostLoss(p, x.data, 12, y, { layer: li, bias, index, value: v0 + h }) -
                hostLoss(p, x.data, 12, y, { layer: li, bias, index, value: v0 - h })) /
              (2 * h);
            const ana = bias ? g.layers[li]!.bias[index]! : g.layers[li]!.weights.data[index]!;
            t.true(
              Math.abs(num - ana) <= 2e-4 + 2e-3 * Math.abs(num),
              `${hidden} layer ${li} ${bias ? 'bias' : 'weight'} ${index}: numerical ${num}, backprop ${ana}`,
            );
            checked++;
          }
        }
      }
      t.is(checked, 3 * 2 * 4);

      // a finished run followed by fineTune starts a new run from the same init: same result
      const before = dbn.getClassifierParameters();
      await dbn.fineTune(x, y, { epochs: 3, validationFraction: 0, batchSize: 4, learningRate: 0.5 });
      t.true(
        sameBits(dbn.getClassifierParameters().layers[0]!.weights.data, before.layers[0]!.weights.data),
        'a new run reproduces the first',
      );
      dbn.dispose();

      // one full-batch step without momentum or decay moves every parameter by −ε·∇ (random init, no pretraining)
      const eps = 0.3;
      const probe = new Dbn({
        nVisible: 6,
        layers: [
          { nHidden: 5, hidden, epochs: 2, ...quiet },
          { nHidden: 4, epochs: 2, ...quiet },
        ],
        seed: 8,
        backend,
      });
      await probe.fineTune(x, y, { epochs: 0, validationFraction: 0 });
      const p0 = probe.getClassifierParameters();
      const g0 = probe.gradients(x, y);
      await probe.fineTune(x, y, { epochs: 1, validationFraction: 0, batchSize: 12, learningRate: eps, momentum: 0, weightDecay: 0 });
      const p1 = probe.getClassifierParameters();
      for (const [li, l] of p1.layers.entries()) {
        const expectW = p0.layers[li]!.weights.data.map((w, k) => w - eps * g0.layers[li]!.weights.data[k]!);
        const expectB = p0.layers[li]!.bias.map((b, k) => b - eps * g0.layers[li]!.bias[k]!);
        t.true(maxAbsDiff(l.weights.data, expectW) < 1e-5, `${hidden} layer ${li} weights after one step`);
        t.true(maxAbsDiff(l.bias, expectB) < 1e-5, `${hidden} layer ${li} bias after one step`);
      }
      t.true(maxAbsDiff(p1.layers[0]!.weights.data, p0.layers[0]!.weights.data) > 1e-4, 'the step moved the first layer');
      probe.dispose();
    }
    backend.dispose();
  });

  test(`${name}: fine-tuning lowers the loss and fits the training data; evaluate and predictProba are consistent`, async (t) => {
    const backend = make();
    const { x, y } = prototypes(150, 24, 3, 12, 0.15);
    const dbn = new Dbn({
      nVisible: 24,
      layers: [
        { nHidden: 16, epochs: 20, batchSize: 10, learningRate: 0.3, ...quiet },
        { nHidden: 12, epochs: 20, batchSize: 10, learningRate: 0.3, ...quiet },
      ],
      seed: 4,
      backend,
    });
    await dbn.pretrain(x);
    const losses: number[] = [];
    const res = await dbn.fineTune(x, y, {
      epochs: 20,
      batchSize: 10,
      dropout: 0.1,
      patience: 25,
      onEpoch: (m) => void losses.push(m.loss),
    });
    t.true(res.finished);
    t.is(res.epochs, 20);
    t.is(res.history.length, 20);
    t.true(res.bestEpoch >= 0 && res.bestEpoch < 20);
    t.true(losses[losses.length - 1]! < losses[0]! / 2, `loss ${losses[0]} → ${losses[losses.length - 1]}`);
    const ev = dbn.evaluate(x, y);
    t.true(ev.accuracy >= 0.95, `training accuracy ${ev.accuracy}`);
    t.is(ev.confusionMatrix.length, 3);
    t.is(
      ev.confusionMatrix.flat().reduce((s, v) => s + v, 0),
      150,
    );
    t.is(ev.confusionMatrix.reduce((s, row, i) => s + row[i]!, 0) / 150, ev.accuracy);
    t.deepEqual(
      ev.confusionMatrix.map((row) => row.reduce((s, v) => s + v, 0)),
      [50, 50, 50],
    );
    const proba = dbn.predictProba(x);
    t.deepEqual([proba.rows, proba.cols], [150, 3]);
    const pred = dbn.predict(x);
    let logLoss = 0;
    for (let r = 0; r < 150; r++) {
      const row = Array.from(proba.data.subarray(r * 3, r * 3 + 3));
      t.true(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-5);
      t.is(pred[r], row.indexOf(Math.max(...row)));
      logLoss -= Math.log(row[y[r]!]!);
    }
    t.true(Math.abs(logLoss / 150 - ev.logLoss) < 1e-6);
    // the RBMs are untouched by fine-tuning
    const rbmW = dbn.layers[0]!.getParameters().weights.data;
    t.false(sameBits(rbmW, dbn.getClassifierParameters().layers[0]!.weights.data));
    dbn.dispose();
    backend.dispose();
  });

  test(`${name}: early stopping restores the best epoch's weights`, async (t) => {
    const backend = make();
    const { x, y } = prototypes(60, 12, 2, 13, 0.3);
    const { x: vx, y: vy } = prototypes(40, 12, 2, 13, 0.45);
    const dbn = new Dbn({ nVisible: 12, layers: [{ nHidden: 30, epochs: 1, ...quiet }], seed: 5, backend });
    const snapshots: Float32Array[] = [];
    const val: number[] = [];
    const res = await dbn.fineTune(x, y, {
      epochs: 40,
      learningRate: 1,
      batchSize: 5,
      weightDecay: 0,
      patience: 3,
      validation: { x: vx, y: vy },
      onEpoch: (m) => {
        val.push(m.validationLoss!);
        snapshots.push(dbn.getClassifierParameters().layers[1]!.weights.data);
      },
    });
    t.true(res.stoppedEarly, `ran ${res.epochs} epochs`);
    t.is(res.epochs, res.bestEpoch + 4);
    t.is(val.indexOf(Math.min(...val)), res.bestEpoch);
    t.true(sameBits(dbn.getClassifierParameters().layers[1]!.weights.data, snapshots[res.bestEpoch]!));
    t.true(Math.abs(dbn.evaluate(vx, vy).logLoss - val[res.bestEpoch]!) < 1e-9);
    dbn.dispose();
    backend.dispose();
  });
}

test('the classifier starts from the RBMs (weights and hidden biases), or from Glorot-uniform weights with init: random', async (t) => {
  const backend = cpuBackends[0]!.make();
  const { x, y } = prototypes(30, 8, 2, 14, 0.1);
  const dbn = new Dbn({
    nVisible: 8,
    layers: [
      { nHidden: 6, epochs: 3, batchSize: 10, ...quiet },
      { nHidden: 4, hidden: 'noisy-relu', learningRate: 0.01, epochs: 3, batchSize: 10, ...quiet },
    ],
    seed: 6,
    backend,
  });
  await dbn.pretrain(x);
  await dbn.fineTune(x, y, { epochs: 0, validationFraction: 0 });
  const auto = dbn.getClassifierParameters();
  t.deepEqual(auto.activations, ['sigmoid', 'relu']);
  t.deepEqual(
    auto.layers.map((l) => [l.weights.rows, l.weights.cols]),
    [
      [8, 6],
      [6, 4],
      [4, 2],
    ],
  );
  for (const [i, rbm] of dbn.layers.entries()) {
    const p = rbm.getParameters();
    t.true(sameBits(auto.layers[i]!.weights.data, p.weights.data), `layer ${i} weights`);
    t.true(sameBits(auto.layers[i]!.bias, p.hiddenBias), `layer ${i} bias`);
  }
  const head = auto.layers[2]!;
  t.true(head.bias.every((b) => b === 0));
  t.true(head.weights.data.every((w) => Math.abs(w) < 0.06) && head.weights.data.some((w) => w !== 0), 'small random head');

  await dbn.fineTune(x, y, { epochs: 0, validationFraction: 0, init: 'random' });
  const rand = dbn.getClassifierParameters();
  const limits = [4 * Math.sqrt(6 / (8 + 6)), Math.sqrt(6 / 6)];
  for (const i of [0, 1]) {
    const w = rand.layers[i]!.weights.data;
    t.false(sameBits(w, auto.layers[i]!.weights.data));
    t.true(
      w.every((v) => Math.abs(v) <= limits[i]!),
      `layer ${i} within ±${limits[i]}`,
    );
    t.true(Math.max(...w.map(Math.abs)) > limits[i]! / 2, `layer ${i} spreads over its range`);
    t.true(rand.layers[i]!.bias.every((b) => b === 0));
  }
  t.true(sameBits(rand.layers[2]!.weights.data, head.weights.data), 'the head init does not depend on init');
  dbn.dispose();
  backend.dispose();
});
