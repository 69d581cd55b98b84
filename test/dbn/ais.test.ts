import test from 'ava';
import { averageLogLikelihood, baseRateBias, betaSchedule, estimateLogPartition } from '../../src/dbn/index.js';
import { DbnError, InvalidOptionError, ShapeMismatchError } from '../../src/errors.js';
import { Random } from '../../src/random.js';
import { Rbm } from '../../src/rbm/index.js';
import { cpuBackends, unavailable } from '../helpers/backends.js';
import { prototypes } from './fixtures.js';

for (const u of unavailable) {
  test.skip(`ais tests on ${u.name}: unavailable — ${u.reason}`, () => {});
}

const NV = 10;
const NH = 6;

/** log Z by summing exp(−E(v, h)) over all 2^(NV+NH) joint states, E(v, h) = −v·b − h·c − vWh, in float64. */
function exactLogZ(rbm: Rbm): number {
  const { weights, visibleBias: b, hiddenBias: c } = rbm.getParameters();
  const terms: number[] = [];
  for (let vs = 0; vs < 1 << NV; vs++) {
    for (let hs = 0; hs < 1 << NH; hs++) {
      let e = 0;
      for (let i = 0; i < NV; i++) if (vs & (1 << i)) e += b[i]!;
      for (let j = 0; j < NH; j++) {
        if (!(hs & (1 << j))) continue;
        e += c[j]!;
        for (let i = 0; i < NV; i++) if (vs & (1 << i)) e += weights.data[i * NH + j]!;
      }
      terms.push(e);
    }
  }
  const m = terms.reduce((a, e) => Math.max(a, e), Number.NEGATIVE_INFINITY);
  return m + Math.log(terms.reduce((s, e) => s + Math.exp(e - m), 0));
}

function randomRbm(backend: ReturnType<(typeof cpuBackends)[number]['make']>, seed: number): Rbm {
  const r = new Random(seed);
  const rbm = new Rbm({ nVisible: NV, nHidden: NH, backend, seed });
  rbm.setParameters({
    weights: { rows: NV, cols: NH, data: r.fillNormal(new Float32Array(NV * NH), 1) },
    visibleBias: r.fillNormal(new Float32Array(NV), 0.5),
    hiddenBias: r.fillNormal(new Float32Array(NH), 0.5),
  });
  return rbm;
}

for (const { name, make } of cpuBackends) {
  test(`${name}: AIS log Z of a 10x6 RBM is within 0.1 nats of exact enumeration`, (t) => {
    const backend = make();
    const rbm = randomRbm(backend, 3);
    const exact = exactLogZ(rbm);
    const est = estimateLogPartition(rbm, { runs: 100, betas: 10000, seed: 1 });
    t.true(Math.abs(est.logZ - exact) < 0.1, `AIS ${est.logZ} vs exact ${exact}`);
    t.true(est.logZStd >= 0 && est.logZStd < 0.1, `std ${est.logZStd}`);
    t.true(est.logZLow <= est.logZ && est.logZ <= est.logZHigh);
    t.is(est.logZBase, NV * Math.log(2) + NH * Math.log(2));
    t.deepEqual([est.runs, est.steps], [100, 10000]);

    // a trained RBM, with a base-rate model from its data, and the average log-likelihood
    const { x } = prototypes(60, NV, 3, 4, 0.1);
    const trained = new Rbm({ nVisible: NV, nHidden: NH, backend, seed: 5, learningRate: 0.2, epochs: 30, batchSize: 10, monitorSize: 0 });
    return trained.fit(x).then(() => {
      const exactT = exactLogZ(trained);
      const bA = baseRateBias(x);
      const estT = estimateLogPartition(trained, { runs: 100, betas: 10000, seed: 2, baseRateVisibleBias: bA });
      t.true(Math.abs(estT.logZ - exactT) < 0.1, `AIS ${estT.logZ} vs exact ${exactT} (base rate)`);
      // mean(−F(v)) − log Z, with F computed independently in float64
      const { weights: W, visibleBias: b, hiddenBias: c } = trained.getParameters();
      let sum = 0;
      for (let r = 0; r < x.rows; r++) {
        let negF = 0;
        for (let i = 0; i < NV; i++) negF += x.data[r * NV + i]! * b[i]!;
        for (let j = 0; j < NH; j++) {
          let z = c[j]!;
          for (let i = 0; i < NV; i++) z += x.data[r * NV + i]! * W.data[i * NH + j]!;
          negF += Math.log1p(Math.exp(z));
        }
        sum += negF;
      }
      const expected = sum / x.rows - exactT;
      t.true(Math.abs(averageLogLikelihood(trained, x, exactT) - expected) < 1e-4);
      t.true(expected < 0);
      rbm.dispose();
      trained.dispose();
      backend.dispose();
    });
  });
}

test('betaSchedule, baseRateBias and the option checks', (t) => {
  const s = betaSchedule(29);
  t.is(s.length, 30);
  t.is(s[0], 0);
  t.is(s[29], 1);
  t.is(s[1], 0.5);
  t.true(Math.abs(s[9]! - 0.9) < 1e-12);
  for (let i = 1; i < s.length; i++) t.true(s[i]! > s[i - 1]!);
  const bA = baseRateBias([
    [1, 0],
    [1, 0],
    [1, 1],
    [0, 0],
  ]);
  const p0 = (0.75 + 0.05) / 1.05;
  const p1 = (0.25 + 0.05) / 1.05;
  t.true(Math.abs(bA[0]! - Math.log(p0 / (1 - p0))) < 1e-12);
  t.true(Math.abs(bA[1]! - Math.log(p1 / (1 - p1))) < 1e-12);
  t.throws(() => baseRateBias([[0.5, 2]]), { instanceOf: Error, message: /\[0, 1\]/ });

  const backend = cpuBackends[0]!.make();
  const rbm = new Rbm({ nVisible: 3, nHidden: 2, backend, seed: 1 });
  t.throws(() => estimateLogPartition(rbm, { betas: 2 }), {
    instanceOf: InvalidOptionError,
    message: /The 'betas' option of estimateLogPartition must be an integer >= 3 or an increasing array/,
  });
  t.throws(() => estimateLogPartition(rbm, { betas: [0, 0.7, 0.5, 1] }), { instanceOf: InvalidOptionError });
  t.throws(() => estimateLogPartition(rbm, { runs: 0 }), { instanceOf: InvalidOptionError, message: /'runs'/ });
  t.throws(() => estimateLogPartition(rbm, { baseRateVisibleBias: [0, 1] }), { instanceOf: ShapeMismatchError, message: /3 values/ });
  const est = estimateLogPartition(rbm, { betas: [0, 0.25, 0.5, 0.75, 1], runs: 4 });
  t.true(Number.isFinite(est.logZ));
  const g = new Rbm({ nVisible: 3, nHidden: 2, visible: 'gaussian', backend });
  t.throws(() => estimateLogPartition(g), { instanceOf: DbnError, message: /Bernoulli–Bernoulli RBMs only/ });
  t.throws(() => averageLogLikelihood(rbm, [[0, 1, 0]], Number.NaN), { instanceOf: InvalidOptionError });
  rbm.dispose();
  g.dispose();
  backend.dispose();
});
