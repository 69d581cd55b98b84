import test from 'ava';
import type { Dataset } from '../../src/data/index.js';
import { classCounts, oneHot, shard, subset, take, timeOrderedSplit, trainTestSplit } from '../../src/data/index.js';
import { DatasetError, InvalidOptionError } from '../../src/errors.js';

/** `n` rows; row i is [i, -i] (so each row identifies itself), label labelOf(i). */
function rowsDataset(n: number, labelOf: (i: number) => number = (i) => i % 2): Dataset {
  const data = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    data[2 * i] = i;
    data[2 * i + 1] = -i;
    y[i] = labelOf(i);
  }
  return { x: { rows: n, cols: 2, data }, y, classes: 2, source: 'test' };
}

/** The row ids of `ds`, checking that each row and its label still belong together. */
function ids(t: import('ava').ExecutionContext, ds: Dataset, labelOf: (i: number) => number = (i) => i % 2): number[] {
  const out: number[] = [];
  for (let r = 0; r < ds.x.rows; r++) {
    const id = ds.x.data[2 * r]!;
    t.true(ds.x.data[2 * r + 1] === -id, `row ${r} is intact`);
    t.is(ds.y![r], labelOf(id));
    out.push(id);
  }
  return out;
}

function sorted(a: number[]): number[] {
  return [...a].sort((p, q) => p - q);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

test('trainTestSplit: sizes, an exact partition, reproducible per seed', (t) => {
  const ds = rowsDataset(10);
  const a = trainTestSplit(ds, { testFraction: 0.25, seed: 3 });
  t.is(a.test.x.rows, 3); // ceil(2.5)
  t.is(a.train.x.rows, 7);
  const trainIds = ids(t, a.train);
  const testIds = ids(t, a.test);
  t.deepEqual(sorted([...trainIds, ...testIds]), range(10));
  const again = trainTestSplit(ds, { testFraction: 0.25, seed: 3 });
  t.deepEqual(again, a);
  const other = trainTestSplit(ds, { testFraction: 0.25, seed: 4 });
  t.notDeepEqual(ids(t, other.train), trainIds);
  t.is(trainTestSplit(ds, { testSize: 4 }).test.x.rows, 4);
  t.is(trainTestSplit(ds).test.x.rows, 2);
  t.is(trainTestSplit(rowsDataset(30), { testFraction: 0.1 }).test.x.rows, 3); // 0.1 · 30 is 3.0000000000000004 in floating point
});

test('trainTestSplit without shuffling keeps the order: the last rows are the test set', (t) => {
  const { train, test: testPart } = trainTestSplit(rowsDataset(10), { testSize: 3, shuffle: false });
  t.deepEqual(ids(t, train), range(7));
  t.deepEqual(ids(t, testPart), [7, 8, 9]);
});

test('trainTestSplit: stratification keeps class proportions', (t) => {
  const labelOf = (i: number): number => (i < 80 ? 0 : 1);
  const ds = rowsDataset(100, labelOf);
  const { train, test: testPart } = trainTestSplit(ds, { testFraction: 0.25, stratify: true, seed: 1 });
  t.deepEqual(classCounts(testPart.y as Int32Array, 2), [20, 5]);
  t.deepEqual(classCounts(train.y as Int32Array, 2), [60, 15]);
  t.deepEqual(sorted([...ids(t, train, labelOf), ...ids(t, testPart, labelOf)]), range(100));
  // classes of 5, 3 and 2 rows, 3 test rows: quotas 1.5, 0.9, 0.6 → floors 1, 0, 0, then the two largest remainders
  const three = rowsDataset(10, (i) => (i < 5 ? 0 : i < 8 ? 1 : 2));
  const s = trainTestSplit(three, { testSize: 3, stratify: true, seed: 9 });
  t.deepEqual(classCounts(s.test.y as Int32Array, 3), [1, 1, 1]);
});

test('trainTestSplit rejects bad options', (t) => {
  const ds = rowsDataset(10);
  t.throws(() => trainTestSplit(ds, { testFraction: 0.2, testSize: 2 }), { instanceOf: InvalidOptionError });
  t.throws(() => trainTestSplit(ds, { testSize: 10 }), { instanceOf: InvalidOptionError });
  t.throws(() => trainTestSplit(ds, { testFraction: 1 }), { instanceOf: InvalidOptionError });
  t.throws(() => trainTestSplit(ds, { stratify: true, shuffle: false }), { instanceOf: InvalidOptionError });
  const unlabelled: Dataset = { x: ds.x, source: ds.source };
  t.throws(() => trainTestSplit(unlabelled, { stratify: true }), { instanceOf: InvalidOptionError });
});

test('timeOrderedSplit keeps the row order', (t) => {
  const { train, val, test: testPart } = timeOrderedSplit(rowsDataset(10), [0.6, 0.2, 0.2]);
  t.deepEqual(ids(t, train), range(6));
  t.deepEqual(ids(t, val), [6, 7]);
  t.deepEqual(ids(t, testPart), [8, 9]);
  const noVal = timeOrderedSplit(rowsDataset(10), [0.7, 0, 0.3]);
  t.is(noVal.val.x.rows, 0);
  t.is(noVal.test.x.rows, 3);
  t.throws(() => timeOrderedSplit(rowsDataset(10), [0.6, 0.2, 0.3]), { instanceOf: InvalidOptionError });
});

test('shard: every row in exactly one shard, sizes differ by at most 1, for every n and count', (t) => {
  for (const mode of ['contiguous', 'strided'] as const) {
    for (let n = 1; n <= 12; n++) {
      const ds = rowsDataset(n);
      for (let count = 1; count <= n; count++) {
        const parts = range(count).map((k) => ids(t, shard(ds, k, count, mode)));
        t.deepEqual(sorted(parts.flat()), range(n), `${mode} n=${n} count=${count}`);
        const sizes = parts.map((p) => p.length);
        t.true(Math.max(...sizes) - Math.min(...sizes) <= 1);
      }
    }
  }
  const ds = rowsDataset(10);
  t.deepEqual(ids(t, shard(ds, 0, 3)), [0, 1, 2, 3]);
  t.deepEqual(ids(t, shard(ds, 2, 3)), [7, 8, 9]);
  t.deepEqual(ids(t, shard(ds, 1, 3, 'strided')), [1, 4, 7]);
});

test('shard validates index and count', (t) => {
  const ds = rowsDataset(5);
  for (const [i, c] of [
    [3, 3],
    [-1, 3],
    [0, 0],
    [0, 6],
    [0.5, 2],
  ] as const) {
    t.throws(() => shard(ds, i, c), { instanceOf: InvalidOptionError }, `${i}/${c}`);
  }
});

test('subset and take copy rows with their labels', (t) => {
  const ds = rowsDataset(6);
  const s = subset(ds, [4, 1, 4]);
  t.deepEqual(ids(t, s), [4, 1, 4]);
  s.x.data[0] = 99;
  t.is(ds.x.data[8], 4, 'the source is not aliased');
  t.deepEqual(ids(t, take(ds, 2)), [0, 1]);
  t.is(take(ds, 100).x.rows, 6);
  t.throws(() => subset(ds, [6]), { instanceOf: InvalidOptionError });
});

test('oneHot', (t) => {
  const m = oneHot(Int32Array.from([2, 0, 1]), 3);
  t.deepEqual({ rows: m.rows, cols: m.cols }, { rows: 3, cols: 3 });
  t.deepEqual(Array.from(m.data), [0, 0, 1, 1, 0, 0, 0, 1, 0]);
  const err = t.throws(() => oneHot([0, 3], 3), { instanceOf: DatasetError });
  t.is(err?.code, 'ELABEL');
});
