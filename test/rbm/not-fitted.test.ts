import test from 'ava';
import { Dbn } from '../../src/dbn/index.js';
import { NotFittedError } from '../../src/errors.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Rbm } from '../../src/rbm/index.js';

const x = { rows: 4, cols: 6, data: Float32Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? 1 : 0)) };
const h = { rows: 4, cols: 3, data: new Float32Array(12).fill(0.5) };

test('every Rbm inference method refuses an unfitted model with NotFittedError, and works after fit', async (t) => {
  const backend = createJsBackend();
  const rbm = new Rbm({ nVisible: 6, nHidden: 3, backend, seed: 1, epochs: 1, batchSize: 2 });
  const calls: [string, () => unknown][] = [
    ['Rbm.transform', () => rbm.transform(x)],
    ['Rbm.meanHiddens', () => rbm.meanHiddens(x)],
    ['Rbm.sampleHiddens', () => rbm.sampleHiddens(x)],
    ['Rbm.meanVisibles', () => rbm.meanVisibles(h)],
    ['Rbm.sampleVisibles', () => rbm.sampleVisibles(h)],
    ['Rbm.gibbs', () => rbm.gibbs(x)],
    ['Rbm.freeEnergy', () => rbm.freeEnergy(x)],
    ['Rbm.scoreSamples', () => rbm.scoreSamples(x)],
    ['Rbm.reconstructionError', () => rbm.reconstructionError(x)],
  ];
  for (const [name, call] of calls) {
    const e = t.throws(call, { instanceOf: NotFittedError }, name);
    t.is(e?.code, 'ENOTFITTED');
    t.true(e?.message.startsWith(`${name} needs learned weights`), e?.message);
  }
  await rbm.fit(x);
  for (const [name, call] of calls) t.notThrows(call, name);
  rbm.dispose();
  backend.dispose();
});

test('Dbn.transform, reconstruct and generate refuse layers that were never pretrained', async (t) => {
  const backend = createJsBackend();
  const dbn = new Dbn({
    nVisible: 6,
    layers: [
      { nHidden: 4, epochs: 1, batchSize: 2 },
      { nHidden: 2, epochs: 1, batchSize: 2 },
    ],
    backend,
    seed: 1,
  });
  for (const [name, call] of [
    ['Dbn.transform', () => dbn.transform(x)],
    ['Dbn.reconstruct', () => dbn.reconstruct(x)],
    ['Dbn.generate', () => dbn.generate(2, { gibbsSteps: 2 })],
  ] as const) {
    const e = t.throws(call, { instanceOf: NotFittedError }, name);
    t.regex(e?.message ?? '', new RegExp(`^${name.replace('.', '\\.')} needs pretrained layers, and layer 0`));
  }
  await dbn.pretrain(x);
  t.is(dbn.transform(x).cols, 2);
  t.is(dbn.generate(2, { gibbsSteps: 2 }).rows, 2);
  dbn.dispose();
  backend.dispose();
});

test('Symbol.dispose releases models and backends (for `using`)', async (t) => {
  const backend = createJsBackend();
  t.is(typeof backend[Symbol.dispose], 'function');
  const rbm = new Rbm({ nVisible: 6, nHidden: 3, backend, seed: 1, epochs: 1, batchSize: 2 });
  await rbm.fit(x);
  rbm[Symbol.dispose]();
  t.throws(() => rbm.getParameters(), { instanceOf: NotFittedError, message: /disposed/ });
  const dbn = new Dbn({ nVisible: 6, layers: [{ nHidden: 2 }], backend, seed: 1 });
  dbn[Symbol.dispose]();
  t.throws(() => dbn.transform(x), { instanceOf: NotFittedError, message: /disposed/ });
  let disposed = 0;
  const real = backend.dispose.bind(backend);
  backend.dispose = () => {
    disposed++;
    real();
  };
  backend[Symbol.dispose]();
  t.is(disposed, 1, 'Symbol.dispose calls dispose');
});
