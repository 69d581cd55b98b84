/**
 * Using dbn-node as a library: pretrain an RBM and a DBN on real digits, fine-tune, evaluate,
 * save, load on another backend, and compare. CI runs it (small sizes); pass `--full` for the
 * whole bundled set.
 *
 *   npx tsx examples/library-usage.ts [--full]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Dbn, Rbm, createJsBackend, defaultBackend, loadBundledDigits, take, trainTestSplit } from '../src/index.js';

const full = process.argv.includes('--full');
const digits = full ? loadBundledDigits() : take(loadBundledDigits(), 2000);
const { train, test } = trainTestSplit(digits, { testFraction: 0.2, seed: 1 });
const { backend, reason } = defaultBackend();
console.log(`backend: ${reason}`);

// One RBM: features for any downstream model.
const rbm = new Rbm({ nVisible: 784, nHidden: 128, backend, seed: 1, learningRate: 0.05 });
await rbm.fit(train.x, {
  epochs: 3,
  onEpoch: (m) => console.log(`rbm epoch ${m.epoch}: reconstruction error ${m.reconstructionError.toFixed(4)}`),
});
const features = rbm.transform(test.x);
console.log(`features: ${features.rows} x ${features.cols}`);

// A DBN: greedy pretraining, then supervised fine-tuning with early stopping.
const dbn = new Dbn({
  nVisible: 784,
  layers: [
    { nHidden: 256, epochs: 3 },
    { nHidden: 128, epochs: 3 },
  ],
  backend,
  seed: 1,
});
await dbn.pretrain(train.x);
const res = await dbn.fineTune(train.x, train.y as Int32Array, { epochs: full ? 30 : 10, patience: 5 });
const ev = dbn.evaluate(test.x, test.y as Int32Array);
console.log(`fine-tuned ${res.epochs} epochs; test accuracy ${(ev.accuracy * 100).toFixed(2)}% on ${test.x.rows} digits`);

// Save, load on the portable js backend, and check the predictions agree.
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-example-')), 'digits.dbn');
dbn.save(file);
const js = createJsBackend();
const again = Dbn.load(file, { backend: js });
const p1 = dbn.predict(test.x);
const p2 = again.predict(test.x);
const same = p1.every((v, i) => v === p2[i]);
console.log(`reloaded on ${js.info.description}: predictions ${same ? 'identical' : 'DIFFER'}`);
if (!same) process.exitCode = 1;
for (const m of [rbm, dbn, again]) m.dispose();
js.dispose();
backend.dispose();
