import test from 'ava';
import { InvalidDataError, InvalidOptionError, NotFittedError } from '../../src/errors.js';
import { Random } from '../../src/random.js';
import { LogisticRegression } from '../../examples/fraud/logistic.js';

test('two mirrored points: w = ln 3 and b = 0 when λ = 1/(4 ln 3)', (t) => {
  // Stationarity: ½[(σ(w) − 1)·1 + σ(−w)·(−1)] + λw = σ(w) − 1 + λw = 0; σ(ln 3) = ¾ gives λ = 1/(4 ln 3).
  // The intercept's gradient ½[σ(w + b) − 1 + σ(b − w)] vanishes at b = 0.
  const m = new LogisticRegression({ l2: 1 / (4 * Math.log(3)), tolerance: 1e-12 }).fit([[1], [-1]], [1, 0]);
  t.true(m.converged);
  t.true(Math.abs(m.weights![0]! - Math.log(3)) < 1e-9, String(m.weights![0]));
  t.true(Math.abs(m.bias) < 1e-9);
  const p = m.predictProba([[1], [-1], [0]]);
  t.true(Math.abs(p[0]! - 0.75) < 1e-9 && Math.abs(p[1]! - 0.25) < 1e-9 && Math.abs(p[2]! - 0.5) < 1e-9);
});

test('no informative feature: the intercept is the (weighted) log-odds of the positive rate', (t) => {
  const x = [[0], [0], [0], [0]];
  const y = [1, 0, 0, 0];
  const plain = new LogisticRegression({ tolerance: 1e-12 }).fit(x, y);
  t.true(Math.abs(plain.bias + Math.log(3)) < 1e-9, String(plain.bias)); // σ(b) = 1/4
  t.is(plain.weights![0], 0);
  const weighted = new LogisticRegression({ tolerance: 1e-12, positiveWeight: 3 }).fit(x, y);
  t.true(Math.abs(weighted.bias) < 1e-9); // σ(b) = 3/(3 + 3)
});

test('on random data the fitted parameters satisfy the optimality conditions (independent gradient)', (t) => {
  const rng = new Random(3);
  const n = 400;
  const d = 5;
  const x = Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
  const y = x.map((r) => (r[0]! - 0.5 * r[1]! + rng.normal() > 1.2 ? 1 : 0));
  const l2 = 0.01;
  const pw = 4;
  const m = new LogisticRegression({ l2, positiveWeight: pw, tolerance: 1e-10 }).fit(x, y);
  t.true(m.converged);
  const w = m.weights!;
  const grad = new Array<number>(d + 1).fill(0);
  let total = 0;
  x.forEach((r, i) => {
    const c = y[i] === 1 ? pw : 1;
    total += c;
    const z = m.bias + r.reduce((s, v, j) => s + v * w[j]!, 0);
    const resid = c * (1 / (1 + Math.exp(-z)) - y[i]!);
    r.forEach((v, j) => (grad[j]! += resid * v));
    grad[d]! += resid;
  });
  for (let j = 0; j < d; j++) t.true(Math.abs(grad[j]! / total + l2 * w[j]!) < 1e-8, `w${j}`);
  t.true(Math.abs(grad[d]! / total) < 1e-8, 'bias');
  t.true(w[0]! > 0 && w[1]! < 0, 'the signs of the generating model');
});

test('separable data stays finite under the L2 penalty', (t) => {
  const m = new LogisticRegression({ l2: 1e-3 }).fit([[2], [1], [-1], [-2]], [1, 1, 0, 0]);
  t.true(Number.isFinite(m.weights![0]!) && m.weights![0]! > 0);
});

test('bad labels and an unfitted model raise typed errors', (t) => {
  t.throws(() => new LogisticRegression().fit([[0], [1]], [0, 2]), { instanceOf: InvalidDataError, message: /element 1 is 2/ });
  t.throws(() => new LogisticRegression().fit([[0], [1]], [0]), { instanceOf: InvalidDataError });
  t.throws(() => new LogisticRegression().predictProba([[0]]), { instanceOf: NotFittedError });
  t.throws(() => new LogisticRegression({ l2: 0 }), { message: /'l2' option of LogisticRegression/ });
});

test("c = C gives scikit-learn's objective (λ = 1/(C·Σc_i)); newton and agd reach the same minimizer; 'l2' and 'c' exclude each other", (t) => {
  const rng = new Random(8);
  const n = 300;
  const x = Array.from({ length: n }, () => [rng.normal() * 3, rng.normal(), rng.normal() * 0.1]);
  const y = x.map((r) => (r[0]! * 0.5 + r[2]! * 8 + rng.normal() > 1 ? 1 : 0));
  const pw = 2;
  const total = y.reduce((s: number, v) => s + (v === 1 ? pw : 1), 0);
  const cc = 0.05;
  const m = new LogisticRegression({ c: cc, positiveWeight: pw, tolerance: 1e-11 }).fit(x, y);
  t.true(m.converged);
  t.true(m.iterations < 30, `${m.iterations} Newton steps`);
  // Stationarity of C·Σ c_i·logloss + ½‖w‖², computed here from scratch.
  const grad = [0, 0, 0, 0];
  x.forEach((r, i) => {
    const z = m.bias + r.reduce((s, v, j) => s + v * m.weights![j]!, 0);
    const resid = (y[i] === 1 ? pw : 1) * (1 / (1 + Math.exp(-z)) - y[i]!);
    r.forEach((v, j) => (grad[j]! += cc * resid * v));
    grad[3]! += cc * resid;
  });
  for (let j = 0; j < 3; j++) t.true(Math.abs(grad[j]! + m.weights![j]!) < 1e-7 * total, `w${j}: ${grad[j]! + m.weights![j]!}`);
  t.true(Math.abs(grad[3]!) < 1e-7 * total, 'bias');
  const agd = new LogisticRegression({
    l2: 1 / (cc * total),
    positiveWeight: pw,
    solver: 'agd',
    tolerance: 1e-9,
    maxIterations: 200_000,
  }).fit(x, y);
  t.true(agd.converged);
  for (let j = 0; j < 3; j++) t.true(Math.abs(agd.weights![j]! - m.weights![j]!) < 1e-5, `w${j}`);
  t.throws(() => new LogisticRegression({ l2: 1, c: 1 }), { instanceOf: InvalidOptionError, message: /'l2' or 'c', not both/ });
  t.throws(() => new LogisticRegression({ solver: 'lbfgs' as 'newton' }), { instanceOf: InvalidOptionError, message: /'solver' option/ });
});
