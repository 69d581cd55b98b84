// PeerTrainer's options: the mode and its encoding are a discriminated union, so combinations
// that would make the result depend on timing cannot be written (checked by the compiler: each
// `@ts-expect-error` below fails the type check if the line becomes valid), and JavaScript
// callers who write them anyway get one InvalidOptionError naming the option.
import test from 'ava';
import { Dbn } from '../../src/dbn/dbn.js';
import { PeerTrainer, type PeerTrainingOptions } from '../../src/distributed/async/peer-training.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { memoryLink } from '../helpers/peer-context.js';

const forbidden: PeerTrainingOptions[] = [
  // @ts-expect-error binary16 error feedback keeps a residual per peer: lockstep peers would differ.
  { mode: { kind: 'lockstep', encoding: { kind: 'float16' } } },
  // @ts-expect-error sparse error feedback keeps unsent entries per peer: lockstep peers would differ.
  { mode: { kind: 'lockstep', encoding: { kind: 'sparse', fraction: 0.01 } } },
  // @ts-expect-error rounds must fall at the same minibatches on every run.
  { mode: { kind: 'lockstep', publishMs: 100 } },
  // @ts-expect-error a lockstep peer must not start the next layer while others make rounds of this one.
  { mode: { kind: 'lockstep', layerBarrier: false } },
  // @ts-expect-error lockstep peers hold the same weights after every round: nothing to repair.
  { mode: { kind: 'lockstep', antiEntropyMs: 1000 } },
  // @ts-expect-error a sparse encoding needs its fraction.
  { mode: { kind: 'async', encoding: { kind: 'sparse' } } },
  // @ts-expect-error a binary16 delta has no fraction: a sparse delta's values go as float32.
  { mode: { kind: 'async', encoding: { kind: 'float16', fraction: 0.01 } } },
  // @ts-expect-error the flat options of earlier versions are gone.
  { lockstep: true },
];

test('the combinations the types forbid are refused at run time too, one InvalidOptionError each', (t) => {
  const dbn = new Dbn({ nVisible: 16, layers: [{ nHidden: 4, epochs: 1 }], seed: 1, backend: createJsBackend() });
  t.teardown(() => dbn.dispose());
  const { link } = memoryLink();
  for (const options of forbidden)
    t.throws(() => new PeerTrainer(dbn, link, options), { instanceOf: InvalidOptionError }, JSON.stringify(options));
  const bad: unknown[] = [
    { mode: { kind: 'rounds' } },
    { mode: { kind: 'async', merge: 'median' } },
    { guard: { weightFactor: 0 } },
    { mode: 'async' },
  ];
  for (const options of bad)
    t.throws(() => new PeerTrainer(dbn, link, options as PeerTrainingOptions), { instanceOf: InvalidOptionError }, JSON.stringify(options));
});

test('the modes that may be written start, and say which mode runs', (t) => {
  const dbn = new Dbn({ nVisible: 16, layers: [{ nHidden: 4, epochs: 1 }], seed: 1, backend: createJsBackend() });
  t.teardown(() => dbn.dispose());
  const { link } = memoryLink();
  const ok: [PeerTrainingOptions, 'async' | 'lockstep'][] = [
    [{}, 'async'],
    [{ mode: { kind: 'lockstep', merge: 'sum' } }, 'lockstep'],
    [{ mode: { kind: 'async', encoding: { kind: 'sparse', fraction: 0.01 }, publishMs: 50, antiEntropyMs: 0 } }, 'async'],
    [{ mode: { kind: 'async', encoding: { kind: 'float16' }, layerBarrier: false } }, 'async'],
  ];
  for (const [options, mode] of ok) {
    const trainer = new PeerTrainer(dbn, link, options);
    t.is(trainer.stats().mode, mode);
    trainer.close();
  }
});
