/** Replica divergence covers fine-tuning too: each fine-tuning epoch fingerprints the whole classifier. */
import test from 'ava';
import { createHash } from 'node:crypto';
import { createProgress } from '../../src/cli/progress.js';
import { Observer } from '../../src/cli/observe/session.js';
import { Dbn } from '../../src/dbn/dbn.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { prototypes } from '../dbn/fixtures.js';

test('a fine-tuning epoch fingerprints every classifier tensor (stage = number of layers), hashed in layer order', async (t) => {
  const { x, y } = prototypes(60, 12, 3, 2);
  const dbn = new Dbn({ nVisible: 12, layers: [{ nHidden: 8, epochs: 1, batchSize: 20 }], seed: 3, backend: createJsBackend() });
  await dbn.pretrain(x);
  await dbn.fineTune(x, y, { epochs: 2, classes: 3 });
  const observer = Observer.create({ name: 'solo' }, createProgress({ quiet: true }), {});
  observer.setModel(dbn);
  observer.fineTuneEpoch(1, 0.4, 0.9, 60);
  const fp = observer.state.stats.fingerprint!;
  t.is(fp.stage, 1);
  t.is(fp.epoch, 1);
  // Independent: SHA-256 over weights then bias of each dense layer, bottom first.
  const hash = createHash('sha256');
  let sumSquares = 0;
  for (const l of dbn.getClassifierParameters().layers) {
    for (const a of [l.weights.data, l.bias]) {
      hash.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      for (const v of a) sumSquares += v * v;
    }
  }
  t.is(fp.hash, hash.digest('hex').slice(0, 16));
  t.true(Math.abs(fp.norm - Math.sqrt(sumSquares)) < 1e-9 * Math.sqrt(sumSquares));
  dbn.dispose();
});
