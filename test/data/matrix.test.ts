import test from 'ava';
import ndarray from 'ndarray';
import { toLabels, toMatrix } from '../../src/data/matrix.js';
import { Dbn } from '../../src/dbn/index.js';
import { InvalidDataError, ShapeMismatchError } from '../../src/errors.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Rbm } from '../../src/rbm/index.js';

/** The 3×4 matrix m[i][j] = 10 i + j, as rows. */
const rows = [0, 1, 2].map((i) => [0, 1, 2, 3].map((j) => 10 * i + j));
const flat = Float32Array.from(rows.flat());

test('toMatrix: every accepted shape gives the same row-major float32 matrix', (t) => {
  const f64 = Float64Array.from(rows.flat());
  const cases: [string, unknown][] = [
    ['number[][]', rows],
    ['{rows, cols, data: Float32Array}', { rows: 3, cols: 4, data: flat }],
    ['{rows, cols, data: Float64Array}', { rows: 3, cols: 4, data: f64 }],
    ['{rows, cols, data: number[]}', { rows: 3, cols: 4, data: rows.flat() }],
    ['{data: Float64Array, shape}', { data: f64, shape: [3, 4] }],
    ['{data: Int16Array, shape}', { data: Int16Array.from(rows.flat()), shape: [3, 4] }],
    ['ndarray float64', ndarray(f64, [3, 4])],
    ['ndarray float32', ndarray(Float32Array.from(rows.flat()), [3, 4])],
    // column-major storage: element (i, j) at j*3 + i
    ['ndarray transposed', ndarray(Float64Array.from([0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23]), [4, 3]).transpose(1, 0)],
    // a 3×4 window (offset, step) of a bigger 5×8 array holding 10 i + j at (i + 1, 2 j)
    [
      'ndarray strided view',
      (() => {
        const big = ndarray(new Float64Array(40), [5, 8]);
        for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) big.set(i + 1, 2 * j, 10 * i + j);
        return big.lo(1, 0).hi(3, 8).step(1, 2);
      })(),
    ],
    ['ndarray reversed rows', ndarray(Float32Array.from([...rows[2]!, ...rows[1]!, ...rows[0]!]), [3, 4]).step(-1, 1)],
  ];
  for (const [name, input] of cases) {
    const m = toMatrix(input, 'data', 'Test.m');
    t.deepEqual([m.rows, m.cols], [3, 4], name);
    t.deepEqual(Array.from(m.data), Array.from(flat), name);
    t.true(m.data instanceof Float32Array, name);
  }
  const same = { rows: 3, cols: 4, data: flat };
  t.is(toMatrix(same, 'data', 'Test.m').data, flat, 'a HostMatrix is not copied');
});

test('toMatrix: errors name the argument, the method, what was given and what is accepted', (t) => {
  const bad: [unknown, RegExp][] = [
    [flat, /a Float32Array of length 12 \(a flat typed array needs its shape: pass \{data, shape: \[rows, cols\]\}\)/],
    [[1, 2, 3], /an array of 3 numbers \(a flat array of numbers needs its shape/],
    [ndarray(new Float64Array(8), [2, 2, 2]), /a 3-D ndarray of shape \[2, 2, 2\].*must have 2 dimensions/],
    [{ data: new Float64Array(5), shape: [2, 3] }, /claims shape \[2, 3\] but holds 5 values/],
    [{ data: 'abc', shape: [1, 3] }, /'data' is not a numeric array/],
    [{ x: 1 }, /got an object with keys \{x\}/],
    [42, /got a number/],
    [[[1, 2], [3]], /row 1 has 1 columns, expected 2/],
    [[[1, 'a']], /row 0, column 1 is a string, not a number/],
    [{ data: new Float64Array(4), shape: [2, 2], stride: [4, 1], offset: 0 }, /offset and strides reach outside its 4 values/],
  ];
  for (const [input, re] of bad) {
    const e = t.throws(() => toMatrix(input, 'data', 'Rbm.fit'), { instanceOf: ShapeMismatchError });
    t.regex(e?.message ?? '', /^Argument 'data' passed to 'Rbm\.fit'/);
    t.regex(e?.message ?? '', re);
    if (!/claims shape|row 1 has/.test(e?.message ?? ''))
      t.regex(e?.message ?? '', /an ndarray \(2-D, float32 or float64\), \{data, shape: \[rows, cols\]\}.*number\[\]\[\]/);
  }
});

test('toLabels: any integer array; non-integers and negatives named', (t) => {
  const want = [0, 2, 1, 1];
  for (const y of [
    want,
    Int32Array.from(want),
    Float64Array.from(want),
    Uint8Array.from(want),
    ndarray(Float64Array.from([9, 0, 9, 2, 9, 1, 9, 1]), [4], [2], 1),
  ]) {
    t.deepEqual(Array.from(toLabels(y, 'labels', 'Dbn.fineTune')), want);
  }
  const i32 = Int32Array.from(want);
  t.is(toLabels(i32, 'labels', 'X'), i32);
  t.throws(() => toLabels([0, 1.5], 'labels', 'Dbn.fineTune'), {
    instanceOf: InvalidDataError,
    message: /'labels' passed to 'Dbn.fineTune' must hold integer class indices >= 0; element 1 is 1.5/,
  });
  t.throws(() => toLabels(Int32Array.from([0, -1]), 'labels', 'X'), { instanceOf: InvalidDataError, message: /element 1 is -1/ });
  t.throws(() => toLabels(['a'], 'labels', 'X'), { instanceOf: InvalidDataError, message: /element 0 is a string/ });
  t.throws(() => toLabels({ length: 2 }, 'labels', 'X'), {
    instanceOf: ShapeMismatchError,
    message: /must be an array of integer class indices/,
  });
});

test('Rbm and Dbn take ndarrays, Float64 shaped arrays and number[] labels, with the same results as HostMatrix input', async (t) => {
  const backend = createJsBackend();
  const n = 40;
  const x64 = new Float64Array(n * 6);
  for (let i = 0; i < n; i++) for (let j = 0; j < 6; j++) x64[i * 6 + j] = (i + j) % 3 === 0 ? 1 : 0;
  const host = { rows: n, cols: 6, data: Float32Array.from(x64) };
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  const make = (): Dbn => new Dbn({ nVisible: 6, layers: [{ nHidden: 4, epochs: 2, batchSize: 10 }], backend, seed: 3 });
  const a = make();
  await a.pretrain(host);
  await a.fineTune(host, Int32Array.from(labels), { epochs: 2, validationFraction: 0 });
  const b = make();
  await b.pretrain(ndarray(x64, [n, 6]));
  await b.fineTune({ data: x64, shape: [n, 6] }, labels, { epochs: 2, validationFraction: 0 });
  t.deepEqual(Array.from(b.predictProba(host).data), Array.from(a.predictProba(host).data), 'same bits from float64 inputs');
  const colMajor = ndarray(new Float64Array(n * 6), [6, n]);
  for (let i = 0; i < n; i++) for (let j = 0; j < 6; j++) colMajor.set(j, i, x64[i * 6 + j]!);
  t.deepEqual(Array.from(a.transform(colMajor.transpose(1, 0)).data), Array.from(a.transform(host).data));
  t.deepEqual(a.evaluate(ndarray(x64, [n, 6]), labels), a.evaluate(host, Int32Array.from(labels)));
  const rbm = new Rbm({ nVisible: 6, nHidden: 3, backend, seed: 1 });
  await rbm.fit({ data: x64, shape: [n, 6] }, { epochs: 1 });
  t.deepEqual(Array.from(rbm.transform(ndarray(x64, [n, 6])).data), Array.from(rbm.transform(host).data));
  t.throws(() => rbm.transform(ndarray(x64, [n * 6])), {
    instanceOf: ShapeMismatchError,
    message: /'Rbm.transform'.*a 1-D ndarray of shape \[240\]/,
  });
  rbm.dispose();
  a.dispose();
  b.dispose();
  backend.dispose();
});
