import test from 'ava';
import { Dbn } from '../../src/dbn/index.js';
import { Rbm } from '../../src/rbm/index.js';
import { InvalidDataError, InvalidOptionError, NotFittedError, ShapeMismatchError } from '../../src/errors.js';
import { cpuBackends, unavailable } from '../helpers/backends.js';
import { prototypes, sameBits } from './fixtures.js';

for (const u of unavailable) {
  test.skip(`dbn tests on ${u.name}: unavailable — ${u.reason}`, () => {});
}

const quiet = { monitorSize: 0 } as const;

for (const { name, make } of cpuBackends) {
  test(`${name}: layer i trains on layer i−1's transform (same seeds, bit for bit)`, async (t) => {
    const backend = make();
    const { x } = prototypes(60, 16, 3, 1);
    const layers = [
      { nHidden: 10, epochs: 3, batchSize: 16, ...quiet },
      { nHidden: 6, epochs: 4, batchSize: 16, k: 2, ...quiet },
    ];
    const dbn = new Dbn({ nVisible: 16, layers, seed: 42, backend });
    const seen: number[][] = [[], []];
    const history = await dbn.pretrain(x, { onEpoch: (l, m) => void seen[l]!.push(m.epoch) });
    t.deepEqual(seen, [
      [0, 1, 2],
      [0, 1, 2, 3],
    ]);
    t.deepEqual(
      history.map((h) => h.length),
      [3, 4],
    );
    t.true(dbn.isPretrained);
    t.not(dbn.layers[0]!.seed, dbn.layers[1]!.seed);

    const r0 = new Rbm({ ...layers[0]!, nVisible: 16, seed: dbn.layers[0]!.seed, backend });
    await r0.fit(x);
    const r1 = new Rbm({ ...layers[1]!, nVisible: 10, seed: dbn.layers[1]!.seed, backend });
    await r1.fit(r0.transform(x));
    for (const [i, r] of [r0, r1].entries()) {
      const a = dbn.layers[i]!.getParameters();
      const b = r.getParameters();
      t.true(sameBits(a.weights.data, b.weights.data), `layer ${i} weights`);
      t.true(sameBits(a.hiddenBias, b.hiddenBias), `layer ${i} hidden bias`);
      t.true(sameBits(a.visibleBias, b.visibleBias), `layer ${i} visible bias`);
    }
    // the seeds derive from the DBN seed alone
    const again = new Dbn({ nVisible: 16, layers, seed: 42, backend });
    t.deepEqual(
      again.layers.map((l) => l.seed),
      dbn.layers.map((l) => l.seed),
    );
    const other = new Dbn({ nVisible: 16, layers, seed: 43, backend });
    t.notDeepEqual(
      other.layers.map((l) => l.seed),
      dbn.layers.map((l) => l.seed),
    );
    for (const m of [dbn, again, other, r0, r1]) m.dispose();
    backend.dispose();
  });

  test(`${name}: transform shapes; reconstruction improves with pretraining; generate stays in [0, 1]`, async (t) => {
    const backend = make();
    const { x } = prototypes(90, 20, 3, 2);
    const dbn = new Dbn({
      nVisible: 20,
      layers: [
        { nHidden: 12, epochs: 15, batchSize: 10, ...quiet },
        { nHidden: 8, epochs: 15, batchSize: 10, ...quiet },
      ],
      seed: 7,
      backend,
    });
    const mse = (r: { data: Float32Array }): number => {
      let s = 0;
      for (let i = 0; i < r.data.length; i++) s += (r.data[i]! - x.data[i]!) ** 2;
      return s / r.data.length;
    };
    for (const l of dbn.layers) l.setParameters(l.getParameters()); // score the initial weights
    const before = mse(dbn.reconstruct(x));
    await dbn.pretrain(x);
    const f0 = dbn.transform(x, 0);
    const f1 = dbn.transform(x);
    t.deepEqual([f0.rows, f0.cols, f1.rows, f1.cols], [90, 12, 90, 8]);
    t.true(sameBits(f1.data, dbn.layers[1]!.transform(f0).data), 'transform(x) = layer 1 of layer 0');
    const rec = dbn.reconstruct(x);
    t.deepEqual([rec.rows, rec.cols], [90, 20]);
    const after = mse(rec);
    t.true(after < before / 2, `reconstruction MSE ${after} should be well below ${before}`);

    const paramsBefore = dbn.layers[1]!.getParameters().weights.data.slice();
    const g = dbn.generate(7, { gibbsSteps: 50, seed: 5 });
    t.deepEqual([g.rows, g.cols], [7, 20]);
    t.true(g.data.every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
    t.true(sameBits(g.data, dbn.generate(7, { gibbsSteps: 50, seed: 5 }).data), 'same seed, same samples');
    t.false(sameBits(g.data, dbn.generate(7, { gibbsSteps: 50, seed: 6 }).data), 'another seed, other samples');
    t.true(sameBits(paramsBefore, dbn.layers[1]!.getParameters().weights.data), 'generate leaves the weights alone');
    // samples of a model of three prototypes lie near one of them
    const protoRows = [0, 1, 2].map((p) => x.data.subarray(p * 20, p * 20 + 20));
    const near = Array.from({ length: 7 }, (_, r) =>
      Math.min(
        ...protoRows.map((p) => {
          let d = 0;
          for (let j = 0; j < 20; j++) d += Math.abs(g.data[r * 20 + j]! - p[j]!);
          return d;
        }),
      ),
    );
    t.true(near.filter((d) => d < 4).length >= 5, `distances to the nearest prototype: ${near.map((d) => d.toFixed(1)).join(', ')}`);
    dbn.dispose();
    backend.dispose();
  });

  test(`${name}: generating does not disturb the training streams`, async (t) => {
    const backend = make();
    const { x } = prototypes(40, 12, 2, 3);
    const spec = {
      nVisible: 12,
      layers: [
        { nHidden: 6, epochs: 2, batchSize: 10, ...quiet },
        { nHidden: 4, epochs: 2, batchSize: 10, ...quiet },
      ],
      seed: 9,
      backend,
    };
    const a = new Dbn(spec);
    const b = new Dbn(spec);
    await a.pretrain(x);
    await b.pretrain(x);
    a.generate(3, { gibbsSteps: 10 });
    a.generate(3, { gibbsSteps: 10, seed: 1 });
    const more = a.transform(x, 0);
    await a.layers[1]!.fit(more, { epochs: 1 });
    await b.layers[1]!.fit(more, { epochs: 1 });
    t.true(sameBits(a.layers[1]!.getParameters().weights.data, b.layers[1]!.getParameters().weights.data));
    a.dispose();
    b.dispose();
    backend.dispose();
  });
}

for (const { name, make } of cpuBackends) {
  test(`${name}: equal-width layers pass features up in place, with the bits of a fresh transform, the caller's data untouched`, async (t) => {
    const backend = make();
    // 2,500 rows: three chunks of the transform (1,000 rows each), so the in-place pass crosses chunk edges
    const { x } = prototypes(2500, 8, 3, 5);
    const { x: valid } = prototypes(1100, 8, 3, 6);
    const xCopy = x.data.slice();
    const validCopy = valid.data.slice();
    const layers = [
      // a monitor, so each layer's free-energy gap reads its validation features
      { nHidden: 8, epochs: 1, batchSize: 50, monitorSize: 200 },
      { nHidden: 8, epochs: 1, batchSize: 50, monitorSize: 200 },
      { nHidden: 8, epochs: 1, batchSize: 50, monitorSize: 200 },
      { nHidden: 5, epochs: 1, batchSize: 50, monitorSize: 200 },
    ];
    // every layer but the top as wide as its input: only the caller's arrays stop an in-place pass
    const dbn = new Dbn({ nVisible: 8, layers, seed: 9, backend });
    const history = await dbn.pretrain(x, { validation: valid });
    t.true(sameBits(x.data, xCopy), "the caller's data");
    t.true(sameBits(valid.data, validCopy), "the caller's validation data");

    // the same stack trained by hand, each layer on a new array from transform
    let h = x;
    let hv = valid;
    for (const [i, spec] of layers.entries()) {
      const r = new Rbm({ ...spec, nVisible: h.cols, seed: dbn.layers[i]!.seed, backend });
      const metrics = await r.fit(h, { validation: hv });
      const a = dbn.layers[i]!.getParameters();
      const b = r.getParameters();
      t.true(sameBits(a.weights.data, b.weights.data), `layer ${i} weights`);
      t.true(sameBits(a.hiddenBias, b.hiddenBias), `layer ${i} hidden bias`);
      t.is(history[i]![0]!.freeEnergyGap, metrics[0]!.freeEnergyGap, `layer ${i} free-energy gap`);
      t.is(typeof metrics[0]!.freeEnergyGap, 'number');
      h = r.transform(h);
      hv = r.transform(hv);
      r.dispose();
    }
    // and the DBN's own transform (new arrays all the way up) gives the hand-made stack's features
    t.true(sameBits(dbn.transform(x).data, h.data), 'top features');
    dbn.dispose();
    backend.dispose();
  });
}

test('noisy-ReLU layers put Gaussian visible units above them and train', async (t) => {
  const { make } = cpuBackends[0]!;
  const backend = make();
  const { x } = prototypes(40, 10, 2, 4);
  const dbn = new Dbn({
    nVisible: 10,
    layers: [
      { nHidden: 8, hidden: 'noisy-relu', learningRate: 0.01, epochs: 2, ...quiet },
      { nHidden: 4, epochs: 2, ...quiet },
    ],
    seed: 1,
    backend,
  });
  t.is(dbn.layers[1]!.options.visible, 'gaussian');
  await dbn.pretrain(x);
  t.true(dbn.transform(x).data.every(Number.isFinite));
  t.true(dbn.generate(2, { gibbsSteps: 5 }).data.every((v) => v >= 0 && v <= 1));
  dbn.dispose();
  backend.dispose();
});

test('bad options raise InvalidOptionError naming the layer, the option and the expectation', (t) => {
  const { make } = cpuBackends[0]!;
  const backend = make();
  const bad = (opts: unknown, pattern: RegExp): void => {
    const err = t.throws(() => new Dbn(opts as never), { instanceOf: InvalidOptionError });
    t.regex(err?.message ?? '', pattern);
  };
  bad(
    { nVisible: 4, layers: [{ nHidden: 3 }, { nHidden: 0 }], backend },
    /^The 'nHidden' option of Dbn layer 1 must be an integer in \[1, inf\]\. Got 0\.$/,
  );
  bad({ nVisible: 4, layers: [{ nHidden: 3 }, {}], backend }, /The 'nHidden' option of Dbn layer 1 is required/);
  bad(
    { nVisible: 4, layers: [{ nHidden: 3, learningRate: -1 }], backend },
    /The 'learningRate' option of Dbn layer 0 must be a number in \(0, inf\)\. Got -1\./,
  );
  bad({ nVisible: 4, layers: [{ nHidden: 3, nVisible: 4 }], backend }, /Dbn layer 0 has no option 'nVisible'/);
  bad({ nVisible: 4, layers: [{ nHidden: 3, seed: 1 }], backend }, /Dbn layer 0 has no option 'seed'/);
  bad(
    { nVisible: 4, layers: [{ nHidden: 3 }, { nHidden: 2, visible: 'gaussian' }], backend },
    /The 'visible' option of Dbn layer 1 must be 'bernoulli'/,
  );
  bad(
    { nVisible: 4, layers: [{ nHidden: 3, learningRateSchedule: 'exponential', learningRateDecay: 2 }], backend },
    /'learningRateDecay' option of Dbn layer 0 must be a number in \(0, 1\]/,
  );
  bad({ nVisible: 4, layers: [], backend }, /The 'layers' option of Dbn must be a non-empty array/);
  bad({ nVisible: 0, layers: [{ nHidden: 3 }], backend }, /The 'nVisible' option of Dbn must be an integer/);
  bad({ layers: [{ nHidden: 3 }], backend }, /The 'nVisible' option of Dbn is required/);
  bad({ nVisible: 4, layers: [{ nHidden: 3 }], seed: -1, backend }, /The 'seed' option of Dbn/);
  bad({ nVisible: 4, layers: [{ nHidden: 3 }], colour: 'red', backend }, /Dbn has no option 'colour'/);

  const dbn = new Dbn({ nVisible: 4, layers: [{ nHidden: 3 }, { nHidden: 2 }], seed: 1, backend });
  const x = [[0, 1, 0, 1]];
  t.throws(() => dbn.transform(x, 2), {
    instanceOf: InvalidOptionError,
    message: /'layer' passed to 'Dbn.transform' must be an integer in \[0, 1\]/,
  });
  t.throws(() => dbn.transform([[0, 1, 0]]), { instanceOf: ShapeMismatchError, message: /must have 4 columns, got 3/ });
  t.throws(() => dbn.transform([[0, 2, 0, 1]]), { instanceOf: InvalidDataError, message: /\[0, 1\]/ });
  t.throws(() => dbn.generate(0), { instanceOf: InvalidOptionError });
  t.throws(() => dbn.generate(2, { gibbsSteps: 0 }), { instanceOf: InvalidOptionError, message: /'gibbsSteps' option of Dbn.generate/ });
  t.throws(() => dbn.predict(x), { instanceOf: NotFittedError, message: /call Dbn.fineTune first/ });
  t.throws(() => dbn.evaluate(x, new Int32Array([0])), { instanceOf: NotFittedError });
  const y = new Int32Array([0]);
  const rejects = async (
    opts: object,
    ctor: typeof InvalidOptionError | typeof InvalidDataError | typeof ShapeMismatchError,
    pattern: RegExp,
    data = x,
    labels: unknown = y,
  ): Promise<void> => {
    const err = await t.throwsAsync(dbn.fineTune(data, labels as Int32Array, opts), { instanceOf: ctor });
    t.regex(err?.message ?? '', pattern);
  };
  return (async () => {
    await rejects({ dropout: 1 }, InvalidOptionError, /The 'dropout' option of Dbn.fineTune must be a number in \[0, 1\)\. Got 1\./);
    await rejects({ patience: 0 }, InvalidOptionError, /'patience'/);
    await rejects(
      { checkpoint: { path: 'x' } },
      InvalidOptionError,
      /'checkpoint' option of Dbn.fineTune must be \{ path: string, everyEpochs: integer >= 1 \}/,
    );
    await rejects({ classes: 2 }, ShapeMismatchError, /must be an array of integer class indices >= 0 .*; got a string/, x, 'a');
    await rejects({ classes: 2 }, InvalidDataError, /must hold integer class indices >= 0; element 0 is 0.5/, x, [0.5]);
    await rejects({ classes: 2 }, ShapeMismatchError, /must hold 1 labels/, x, new Int32Array([0, 1]));
    await rejects({ classes: 2, validationFraction: 0 }, InvalidDataError, /classes in \[0, 1\]; element 0 is 3/, x, new Int32Array([3]));
    await rejects({ validationFraction: 0 }, InvalidDataError, /single class/);
    await rejects({ classes: 2, validationFraction: 0.5 }, InvalidOptionError, /'validationFraction' option of Dbn.fineTune leaves/);
    await t.throwsAsync(dbn.pretrain(x, { checkpoint: { path: '', everyEpochs: 1 } }), { instanceOf: InvalidOptionError });
    dbn.dispose();
    t.throws(() => dbn.transform(x), { instanceOf: NotFittedError, message: /disposed/ });
    backend.dispose();
  })();
});
