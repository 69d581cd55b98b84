import test from 'ava';
import { MinMaxScaler, Standardizer } from '../../src/data/index.js';
import { DatasetError, NotFittedError, ShapeMismatchError } from '../../src/errors.js';
import type { HostMatrix } from '../../src/validate.js';

function matrix(rows: number[][]): HostMatrix {
  return { rows: rows.length, cols: rows[0]!.length, data: Float32Array.from(rows.flat()) };
}

function close(t: import('ava').ExecutionContext, actual: Float32Array, expected: number[]): void {
  t.is(actual.length, expected.length);
  expected.forEach((e, i) => t.true(Math.abs(actual[i]! - e) < 1e-6, `index ${i}: ${actual[i]} vs ${e}`));
}

// Columns: [1, 3, 5] → mean 3, population std sqrt(8/3); [10, 10, 40] → mean 20, std sqrt(200); constant 7 → std 1.
const train = matrix([
  [1, 10, 7],
  [3, 10, 7],
  [5, 40, 7],
]);

test('Standardizer is fitted on the training rows only and applied unchanged to others', (t) => {
  const before = Float32Array.from(train.data);
  const s = new Standardizer().fit(train);
  t.deepEqual(Array.from(s.parameters.mean), [3, 20, 7]);
  close(t, Float32Array.from(s.parameters.std), [Math.sqrt(8 / 3), Math.sqrt(200), 1]);
  close(t, s.transform(train).data, [
    -2 / Math.sqrt(8 / 3),
    -10 / Math.sqrt(200),
    0,
    0,
    -10 / Math.sqrt(200),
    0,
    2 / Math.sqrt(8 / 3),
    20 / Math.sqrt(200),
    0,
  ]);
  const test2 = matrix([
    [3, 20, 9],
    [7, 50, 7],
  ]);
  close(t, s.transform(test2).data, [0, 0, 2, 4 / Math.sqrt(8 / 3), 30 / Math.sqrt(200), 0]);
  t.deepEqual(train.data, before, 'input not mutated');
  t.deepEqual(Array.from(test2.data), [3, 20, 9, 7, 50, 7]);
});

test('Standardizer JSON round trip, not fitted, wrong width', (t) => {
  const s = new Standardizer().fit(train);
  const r = Standardizer.fromJSON(JSON.parse(JSON.stringify(s.toJSON())));
  t.deepEqual(r.transform(train), s.transform(train));
  t.throws(() => new Standardizer().transform(train), { instanceOf: NotFittedError });
  t.throws(() => s.transform(matrix([[1, 2]])), { instanceOf: ShapeMismatchError });
  t.throws(() => Standardizer.fromJSON({ kind: 'standardizer', mean: [1], std: [0] }), { instanceOf: DatasetError });
  t.throws(() => Standardizer.fromJSON({ kind: 'minmax' }), { instanceOf: DatasetError });
});

test('MinMaxScaler maps the training range to [0, 1] and clips unseen data by default', (t) => {
  const x = matrix([
    [0, 5, -2],
    [10, 5, 2],
    [5, 5, 0],
  ]);
  const m = new MinMaxScaler().fit(x);
  t.deepEqual(Array.from(m.transform(x).data), [0, 0, 0, 1, 0, 1, 0.5, 0, 0.5]);
  const unseen = matrix([
    [15, 5, 1],
    [-5, 7, -4],
  ]);
  t.deepEqual(Array.from(m.transform(unseen).data), [1, 0, 0.75, 0, 0, 0]);
  const raw = new MinMaxScaler({ clip: false }).fit(x);
  t.deepEqual(Array.from(raw.transform(unseen).data), [1.5, 0, 0.75, -0.5, 0, -0.5]);
  t.deepEqual(Array.from(unseen.data), [15, 5, 1, -5, 7, -4], 'input not mutated');
  const r = MinMaxScaler.fromJSON(JSON.parse(JSON.stringify(raw.toJSON())));
  t.false(r.clip);
  t.deepEqual(r.transform(unseen), raw.transform(unseen));
  t.throws(() => new MinMaxScaler().transform(x), { instanceOf: NotFittedError });
});
