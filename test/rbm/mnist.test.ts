import test from 'ava';
import { loadBundledDigits, take } from '../../src/data/index.js';
import { Rbm } from '../../src/rbm/index.js';
import { cpuBackends } from '../helpers/backends.js';

// 500 real MNIST digits of the bundled `mnist` package; a 784→64 Bernoulli RBM.
const digits = take(loadBundledDigits(), 500);

for (const { name, make } of cpuBackends) {
  test(`${name}: on real MNIST digits the reconstruction error falls every epoch and reaches the recorded score`, async (t) => {
    const backend = make();
    const rbm = new Rbm({ nVisible: 784, nHidden: 64, backend, seed: 1, batchSize: 50, learningRate: 0.05, monitorSize: 200 });
    rbm.setParameters(rbm.getParameters()); // score the initial weights
    const start = rbm.reconstructionError(digits.x);
    const h = await rbm.fit(digits.x, { epochs: 5 });
    const errs = h.map((m) => m.reconstructionError);
    t.true(errs[0]! < start, `epoch 0 ${errs[0]} vs untrained ${start}`);
    for (let e = 1; e < errs.length; e++) t.true(errs[e]! < errs[e - 1]!, `epoch ${e}: ${errs[e]} !< ${errs[e - 1]}`);
    // recorded with seed 1 (identical to 4 decimals on the js and native backends)
    t.true(Math.abs(errs[4]! - 0.06307) < 5e-4, `final training reconstruction error ${errs[4]}`);
    t.true(Math.abs(rbm.reconstructionError(digits.x) - 0.06012) < 5e-4);
    const score = rbm.scoreSamples(digits.x).reduce((a, b) => a + b, 0) / digits.x.rows;
    t.true(Math.abs(score - -181.55) < 0.5, `mean pseudo-log-likelihood ${score}`);
    rbm.dispose();
    backend.dispose();
  });
}
