import test from 'ava';
import { InvalidDataError, InvalidOptionError, ShapeMismatchError } from '../../src/errors.js';
import {
  averagePrecision,
  bestThreshold,
  confusionAtThreshold,
  prCurve,
  precisionAtK,
  recallAtK,
  rocAuc,
  rocCurve,
} from '../../src/metrics/index.js';
import { Random } from '../../src/random.js';

const close = (a: number, b: number, tol = 1e-12): boolean => Math.abs(a - b) <= tol;

test('average precision and ROC AUC of the scikit-learn documentation example', (t) => {
  const s = [0.1, 0.4, 0.35, 0.8];
  const y = [0, 0, 1, 1];
  // Ranked: 0.8 (+) P=1 R=½; 0.4 (−); 0.35 (+) P=⅔ R=1; 0.1 (−). AP = ½·1 + ½·⅔.
  t.true(close(averagePrecision(s, y), 0.5 + 1 / 3));
  // Pairs (pos, neg): (0.35, 0.1) won, (0.35, 0.4) lost, (0.8, ·) both won → 3/4.
  t.true(close(rocAuc(s, y), 0.75));
});

test('tied scores form one step: AP is step-interpolated, a tied pair counts ½ in ROC AUC', (t) => {
  t.true(close(averagePrecision([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 1]), 0.5));
  t.true(close(rocAuc([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 1]), 0.5));
  // Thresholds 0.9: P=0 R=0; 0.6 (one + and one − tied): P=⅓ R=½; 0.1: P=½ R=1. AP = ½·⅓ + ½·½.
  const s = [0.9, 0.6, 0.6, 0.1];
  const y = [0, 1, 0, 1];
  t.true(close(averagePrecision(s, y), 1 / 6 + 1 / 4));
  // Pairs: (0.6, 0.9) 0, (0.6, 0.6) ½, (0.1, 0.9) 0, (0.1, 0.6) 0 → ½ / 4.
  t.true(close(rocAuc(s, y), 0.125));
});

test('perfect and reversed rankings', (t) => {
  t.is(averagePrecision([3, 2, 1], [1, 1, 0]), 1);
  t.is(rocAuc([3, 2, 1], [1, 1, 0]), 1);
  t.true(close(averagePrecision([1, 2, 3], [1, 0, 0]), 1 / 3));
  t.is(rocAuc([1, 2, 3], [1, 0, 0]), 0);
  t.is(rocAuc([-Infinity, 0, Infinity], [0, 1, 1]), 1);
});

/** AP and AUC straight from their definitions, O(n²), for comparison. */
function bruteForce(s: number[], y: number[]): { ap: number; auc: number } {
  const thresholds = [...new Set(s)].sort((a, b) => b - a);
  const positives = y.filter((v) => v === 1).length;
  let ap = 0;
  let prev = 0;
  for (const th of thresholds) {
    let tp = 0;
    let flagged = 0;
    s.forEach((v, i) => {
      if (v >= th) {
        flagged++;
        tp += y[i]!;
      }
    });
    ap += (tp / positives - prev) * (tp / flagged);
    prev = tp / positives;
  }
  let wins = 0;
  let pairs = 0;
  s.forEach((sp, i) => {
    if (y[i] !== 1) return;
    s.forEach((sn, j) => {
      if (y[j] !== 0) return;
      pairs++;
      wins += sp > sn ? 1 : sp === sn ? 0.5 : 0;
    });
  });
  return { ap, auc: wins / pairs };
}

test('random scores with many ties agree with the definitions, whatever the row order', (t) => {
  const rng = new Random(7);
  for (let trial = 0; trial < 20; trial++) {
    const n = 5 + rng.int(60);
    const s = Array.from({ length: n }, () => rng.int(8) / 4);
    const y = Array.from({ length: n }, (_, i) => (i === 0 ? 1 : i === 1 ? 0 : rng.int(3) === 0 ? 1 : 0));
    const want = bruteForce(s, y);
    t.true(close(averagePrecision(s, y), want.ap), `trial ${trial}`);
    t.true(close(rocAuc(Float32Array.from(s), Int32Array.from(y)), want.auc), `trial ${trial}`);
    const perm = rng.permutation(n);
    const ps = Array.from(perm, (i) => s[i]!);
    const py = Array.from(perm, (i) => y[i]!);
    t.true(close(averagePrecision(ps, py), want.ap));
    t.true(close(rocAuc(ps, py), want.auc));
  }
});

test('precision and recall at k, ties at the cut counted in proportion', (t) => {
  const s = [0.9, 0.8, 0.7, 0.6];
  const y = [1, 0, 1, 0];
  t.deepEqual(
    [1, 2, 3, 4].map((k) => precisionAtK(s, y, k)),
    [1, 0.5, 2 / 3, 0.5],
  );
  t.deepEqual(
    [1, 2, 3, 4].map((k) => recallAtK(s, y, k)),
    [0.5, 0.5, 1, 1],
  );
  // Top row is negative; then three tied rows holding two positives. With one place left,
  // the expected number of positives taken from the group is 2 · 1/3.
  const st = [0.9, 0.5, 0.5, 0.5, 0.1];
  const yt = [0, 1, 1, 0, 0];
  t.true(close(precisionAtK(st, yt, 2), 1 / 3));
  t.true(close(recallAtK(st, yt, 2), 1 / 3));
  t.true(close(precisionAtK(st, yt, 3), (2 * 2) / 3 / 3));
  t.is(precisionAtK(st, yt, 4), 0.5);
  t.is(recallAtK(st, yt, 5), 1);
});

test('precision–recall and ROC curves list one point per distinct score', (t) => {
  const s = [0.1, 0.4, 0.35, 0.8, 0.4];
  const y = [0, 0, 1, 1, 1];
  const pr = prCurve(s, y);
  t.deepEqual(Array.from(pr.thresholds), [0.8, 0.4, 0.35, 0.1]);
  t.deepEqual(Array.from(pr.precision), [1, 2 / 3, 3 / 4, 3 / 5]);
  t.deepEqual(Array.from(pr.recall), [1 / 3, 2 / 3, 1, 1]);
  const roc = rocCurve(s, y);
  t.deepEqual(Array.from(roc.thresholds), [Infinity, 0.8, 0.4, 0.35, 0.1]);
  t.deepEqual(Array.from(roc.fpr), [0, 0, 0.5, 0.5, 1]);
  t.deepEqual(Array.from(roc.tpr), [0, 1 / 3, 2 / 3, 1, 1]);
});

test('bestThreshold maximizes F1 over the distinct scores, preferring the higher threshold on a tie', (t) => {
  // F1 = 2TP / (2TP + FP + FN): 0.9 → ½, 0.8 → ⅘, 0.7 → ⅔, 0.6 → 6/7, 0.5 → ¾.
  const b = bestThreshold([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0]);
  t.deepEqual(b, { threshold: 0.6, tp: 3, fp: 1, fn: 0, tn: 1, precision: 0.75, recall: 1, f1: 6 / 7 });
  // 4 → ⅔, 3 → ½, 2 → ⅖, 1 → ⅔: the tie goes to 4.
  t.is(bestThreshold([4, 3, 2, 1], [1, 0, 0, 1]).threshold, 4);
});

test('confusionAtThreshold flags scores >= threshold', (t) => {
  const s = [0.9, 0.5, 0.5, 0.2];
  const y = [1, 0, 1, 1];
  t.deepEqual(confusionAtThreshold(s, y, 0.5), { tp: 2, fp: 1, tn: 0, fn: 1 });
  t.deepEqual(confusionAtThreshold(s, y, 0.51), { tp: 1, fp: 0, tn: 1, fn: 2 });
  t.deepEqual(confusionAtThreshold(s, y, Infinity), { tp: 0, fp: 0, tn: 1, fn: 3 });
});

test('bad input: one typed error naming the argument', (t) => {
  t.throws(() => averagePrecision([1, 2], [1]), { instanceOf: ShapeMismatchError, message: /equal lengths, got 2 and 1/ });
  t.throws(() => averagePrecision([], []), { instanceOf: ShapeMismatchError, message: /empty/ });
  t.throws(() => rocAuc([1, 2], [1, 2]), { instanceOf: InvalidDataError, message: /only 0 and 1; element 1 is 2/ });
  t.throws(() => rocAuc([1, Number.NaN], [1, 0]), { instanceOf: InvalidDataError, message: /element 1 is NaN/ });
  t.throws(() => averagePrecision([1, 2], [0, 0]), { instanceOf: InvalidDataError, message: /without positive rows/ });
  t.throws(() => rocAuc([1, 2], [1, 1]), { instanceOf: InvalidDataError, message: /without negative rows/ });
  t.throws(() => precisionAtK([1, 2], [1, 0], 3), { instanceOf: InvalidOptionError, message: /'k' .* \[1, 2\]/ });
  t.throws(() => precisionAtK([1, 2], [1, 0], 0), { instanceOf: InvalidOptionError });
  t.is(precisionAtK([1, 2], [0, 0], 1), 0);
  t.throws(() => recallAtK([1, 2], [0, 0], 1), { instanceOf: InvalidDataError });
  t.throws(() => confusionAtThreshold([1], [1], Number.NaN), { instanceOf: InvalidOptionError });
});
