import test from 'ava';
import * as fs from 'node:fs';
import { Dbn, type DbnOptions, type FineTuneOptions } from '../../src/dbn/index.js';
import { ModelFileError } from '../../src/errors.js';
import { Rbm, readModelFile } from '../../src/rbm/index.js';
import type { Backend } from '../../src/kernels/backend.js';
import { cpuBackends, unavailable } from '../helpers/backends.js';
import { maxAbsDiff, prototypes, sameBits, tmpFile } from './fixtures.js';
import { writeRawModel } from '../helpers/model-bytes.js';
import { allParameters } from '../helpers/peer-context.js';

for (const u of unavailable) {
  test.skip(`dbn file tests on ${u.name}: unavailable — ${u.reason}`, () => {});
}

const quiet = { monitorSize: 0 } as const;

function spec(backend: Backend): DbnOptions {
  return {
    nVisible: 14,
    layers: [
      { nHidden: 9, epochs: 3, batchSize: 8, momentumSwitchEpoch: 1, sparsityCost: 0.1, ...quiet },
      { nHidden: 7, epochs: 3, batchSize: 8, persistent: true, ...quiet },
    ],
    seed: 21,
    backend,
  };
}

const ftOptions: FineTuneOptions = { epochs: 6, batchSize: 8, dropout: 0.2, inputDropout: 0.1, validationFraction: 0.25, patience: 50 };

function sameModel(t: { true: (c: boolean, m?: string) => void; is: (a: unknown, b: unknown) => void }, a: Dbn, b: Dbn): void {
  const pa = allParameters(a);
  const pb = allParameters(b);
  t.is(pa.length, pb.length);
  pa.forEach((x, i) => t.true(sameBits(x, pb[i]!), `tensor ${i} differs`));
}

for (const { name, make } of cpuBackends) {
  test(`${name}: save → load gives identical transforms and predictions`, async (t) => {
    const backend = make();
    const { x, y } = prototypes(48, 14, 3, 31, 0.1);
    const dbn = new Dbn(spec(backend));
    await dbn.pretrain(x);
    await dbn.fineTune(x, y, ftOptions);
    dbn.metadata = { source: 'prototypes', scaler: { min: [0, 0.5] } };
    const file = tmpFile('model.dbn');
    dbn.save(file);
    t.throws(() => dbn.save(file), { instanceOf: ModelFileError, code: 'EEXIST' });
    const back = Dbn.load(file, { backend });
    t.deepEqual(back.metadata, { source: 'prototypes', scaler: { min: [0, 0.5] } });
    t.deepEqual(
      back.options.layers.map((l) => l.nHidden),
      [9, 7],
    );
    t.is(back.seed, 21);
    t.is(back.classes, 3);
    t.true(back.isPretrained);
    sameModel(t, dbn, back);
    t.true(sameBits(back.predictProba(x).data, dbn.predictProba(x).data));
    t.deepEqual(back.predict(x), dbn.predict(x));
    t.true(sameBits(back.transform(x).data, dbn.transform(x).data));
    t.throws(() => Dbn.resume(file, { backend }), { instanceOf: ModelFileError, code: 'EHEADER', message: /not a checkpoint/ });
    // a model without a classifier round-trips too
    const plain = new Dbn(spec(backend));
    const file2 = tmpFile('plain.dbn');
    plain.save(file2);
    const plainBack = Dbn.load(file2, { backend });
    t.is(plainBack.classes, undefined);
    t.false(plainBack.isPretrained);
    sameModel(t, plain, plainBack);
    for (const d of [dbn, back, plain, plainBack]) d.dispose();
    backend.dispose();
  });

  test(`${name}: pretraining interrupted by an AbortSignal and resumed from its checkpoint ends with the same weights`, async (t) => {
    const backend = make();
    const { x } = prototypes(44, 14, 3, 32, 0.1);
    const straight = new Dbn(spec(backend));
    await straight.pretrain(x);

    const file = tmpFile('pre.ckpt');
    const first = new Dbn(spec(backend));
    const ctl = new AbortController();
    await first.pretrain(x, {
      checkpoint: { path: file, everyEpochs: 1 },
      onBatch: (layer, b) => {
        if (layer === 1 && b.epoch === 1 && b.batch === 2) ctl.abort();
      },
      signal: ctl.signal,
    });
    t.is(first.layers[1]!.epochsTrained, 2, 'the aborted epoch is counted in memory');
    const resumed = Dbn.resume(file, { backend });
    t.deepEqual(
      resumed.layers.map((l) => l.epochsTrained),
      [3, 1],
    );
    const h = await resumed.pretrain(x);
    t.deepEqual(
      h.map((e) => e.map((m) => m.epoch)),
      [[], [1, 2]],
    );
    sameModel(t, straight, resumed);
    t.deepEqual(await resumed.pretrain(x), [[], []], 'a finished stack trains no further');
    for (const d of [straight, first, resumed]) d.dispose();
    backend.dispose();
  });

  test(`${name}: fine-tuning interrupted and resumed from its checkpoint ends with the same weights`, async (t) => {
    const backend = make();
    const { x, y } = prototypes(44, 14, 3, 33, 0.15);
    const straight = new Dbn(spec(backend));
    await straight.pretrain(x);
    const r0 = await straight.fineTune(x, y, ftOptions);

    const file = tmpFile('ft.ckpt');
    const first = new Dbn(spec(backend));
    await first.pretrain(x);
    const ctl = new AbortController();
    const r1 = await first.fineTune(x, y, {
      ...ftOptions,
      checkpoint: { path: file, everyEpochs: 2 },
      onBatch: (b) => {
        if (b.epoch === 3 && b.batch === 1) ctl.abort();
      },
      signal: ctl.signal,
    });
    t.false(r1.finished);
    t.is(r1.epochs, 3);
    const resumed = Dbn.resume(file, { backend });
    const r2 = await resumed.fineTune(x, y, { ...ftOptions, checkpoint: { path: file, everyEpochs: 2 } });
    t.true(r2.finished);
    t.is(r2.history.length, 4, 'epochs 2..5 run after the checkpoint of epoch 2');
    t.is(r2.history[0]!.epoch, 2);
    t.is(r2.bestEpoch, r0.bestEpoch);
    t.deepEqual(
      r2.history.map((m) => m.validationLoss),
      r0.history.slice(2).map((m) => m.validationLoss),
    );
    sameModel(t, straight, resumed);
    // the final checkpoint holds the finished model
    const done = Dbn.load(file, { backend });
    sameModel(t, straight, done);
    for (const d of [straight, first, resumed, done]) d.dispose();
    backend.dispose();
  });
}

if (cpuBackends.length >= 2) {
  test('a DBN saved on one backend loads on another with the same predictions (1e-5)', async (t) => {
    const [a, b] = [cpuBackends[0]!.make(), cpuBackends[1]!.make()];
    const { x, y } = prototypes(40, 14, 3, 34, 0.1);
    const dbn = new Dbn(spec(a));
    await dbn.pretrain(x);
    await dbn.fineTune(x, y, ftOptions);
    const file = tmpFile('cross.dbn');
    dbn.save(file);
    const other = Dbn.load(file, { backend: b });
    t.is(other.backend, b);
    t.true(other.layers.every((l) => l.backend === b));
    t.true(maxAbsDiff(other.predictProba(x).data, dbn.predictProba(x).data) < 1e-5);
    t.true(maxAbsDiff(other.transform(x).data, dbn.transform(x).data) < 1e-5);
    dbn.dispose();
    other.dispose();
    a.dispose();
    b.dispose();
  });
}

test('bad model files raise ModelFileError with the matching code', async (t) => {
  const backend = cpuBackends[0]!.make();
  const { x, y } = prototypes(30, 14, 3, 35, 0.1);
  const dbn = new Dbn(spec(backend));
  await dbn.pretrain(x);
  await dbn.fineTune(x, y, { epochs: 2, validationFraction: 0 });
  const good = tmpFile('good.dbn');
  dbn.save(good);
  const mf = readModelFile(good);
  const tamper = (
    label: string,
    edit: (h: Record<string, unknown>, ts: Map<string, { name: string; rows: number; cols: number; data: Float32Array }>) => void,
  ): string => {
    const h = JSON.parse(JSON.stringify(mf.header)) as Record<string, unknown>;
    delete h['tensors'];
    const ts = new Map(mf.tensors);
    edit(h, ts);
    const file = tmpFile(`${label}.dbn`);
    writeRawModel(file, h as { kind: string }, [...ts.values()]);
    return file;
  };
  const fails = (file: string, code: string, pattern: RegExp): void => {
    const err = t.throws(() => Dbn.load(file, { backend }), { instanceOf: ModelFileError });
    t.is(err?.code, code, err?.message);
    t.regex(err?.message ?? '', pattern);
  };
  fails(tmpFile('missing.dbn'), 'ENOENT', /no such model file/);
  const truncated = tmpFile('truncated.dbn');
  fs.writeFileSync(truncated, fs.readFileSync(good).subarray(0, 200));
  fails(truncated, 'ETRUNCATED', /./);
  const rbmFile = tmpFile('single.rbm');
  new Rbm({ nVisible: 4, nHidden: 2, backend }).save(rbmFile);
  fails(rbmFile, 'EKIND', /holds a 'rbm' model, expected 'dbn'/);
  fails(
    tamper('no-options', (h) => delete h['options']),
    'EHEADER',
    /"options"/,
  );
  fails(
    tamper('layer-count', (h) => (h['layers'] as unknown[]).pop()),
    'EHEADER',
    /one "layers" entry per layer/,
  );
  fails(
    tamper('shape', (h) => {
      (h['options'] as { layers: { nHidden: number }[] }).layers[1]!.nHidden = 8;
    }),
    'EHEADER',
    /layer 1 is a 9x7 'bernoulli'-visible RBM, but the DBN options call for 9x8/,
  );
  fails(
    tamper('bad-option', (h) => {
      (h['options'] as { layers: { batchSize: number }[] }).layers[0]!.batchSize = -3;
    }),
    'EHEADER',
    /invalid options in header: The 'batchSize' option of Dbn layer 0/,
  );
  fails(
    tamper('no-head-bias', (_h, ts) => ts.delete('head.bias')),
    'EHEADER',
    /missing tensor 'head.bias'/,
  );
  fails(
    tamper('head-shape', (_h, ts) => ts.set('head.bias', { name: 'head.bias', rows: 1, cols: 4, data: new Float32Array(4) })),
    'ESIZE',
    /'head.bias' is 1x4, expected 1x3/,
  );
  fails(
    tamper('no-layer-weights', (_h, ts) => ts.delete('layer0.weights')),
    'EHEADER',
    /layer 0: missing tensor 'weights'/,
  );
  fails(
    tamper('classes', (h) => ((h['classifier'] as { classes: number }).classes = 1)),
    'EHEADER',
    /classifier: 'classes' must be an integer >= 2/,
  );
  fails(
    tamper('metadata', (h) => (h['metadata'] = [1, 2])),
    'EHEADER',
    /"metadata" must be a JSON object/,
  );
  fails(
    tamper('activations', (h) => ((h['classifier'] as { activations: string[] }).activations = ['relu', 'sigmoid'])),
    'EHEADER',
    /'activations' must be/,
  );
  const nan = tamper('nan', (_h, ts) => {
    const w = ts.get('net.layer1.weights')!;
    const data = w.data.slice();
    data[3] = Number.NaN;
    ts.set('net.layer1.weights', { ...w, data });
  });
  fails(nan, 'ENONFINITE', /net.layer1.weights/);
  dbn.dispose();
  backend.dispose();
});
