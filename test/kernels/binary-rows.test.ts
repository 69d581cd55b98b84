/**
 * The native backend's products with a sparse 0/1 left factor (binary data, sampled states), which it
 * computes as sums of rows (src/kernels/native/binary_rows.cc): exact against hand-checkable sums on
 * shapes that cover the 64-, 8- and last-columns loops and both layouts of the factor; each element
 * summed in increasing order of its terms (the float32 running sum, bit for bit); entries that are
 * not 0 or 1 (NaN, 0.5, 2, 1 + 2⁻²³) sent to the dense product wherever they sit; the fused
 * `linearSigmoid` the bits of `gemm` then `addRowSigmoid`.
 */
import { Random } from '../../src/random.js';
import {
  assertFusedSigmoid,
  assertOddRow,
  binary,
  exactProduct,
  integers,
  nativeFixture,
  nativeTest,
  ODD_ENTRIES,
} from '../helpers/binary-products.js';

const fx = nativeFixture();
const { be, tensor, read } = fx;

// [m, n, k, transA]: CD-1's v·W and vᵀ·h, a 2000-wide layer, columns that are not a multiple of 8,
// fewer than 8 columns, one row, and a product too small to cut over the threads.
const SHAPES = [
  [100, 500, 784, false],
  [784, 500, 100, true],
  [100, 2000, 500, false],
  [50, 129, 33, false],
  [13, 70, 9, true],
  [7, 5, 13, false],
  [1, 300, 200, false],
  [40, 8, 300, true],
] as const;

for (const [m, n, k, transA] of SHAPES) {
  for (const [alpha, beta] of [
    [1, 0],
    [0.5, 2],
    [-0.25, 1],
  ] as const) {
    nativeTest(`gemm ${m}x${k}${transA ? 'ᵀ' : ''}·${k}x${n}, 10 % ones, alpha ${alpha}, beta ${beta}: the exact sums`, (t) => {
      const rng = new Random(m * 7 + n * 3 + k + (transA ? 1 : 0));
      const a = binary(transA ? k : m, transA ? m : k, 0.1, rng);
      const b = integers(k, n, rng);
      const c0 = beta === 0 ? new Float32Array(m * n).fill(Number.NaN) : integers(m, n, rng);
      const c = tensor(m, n, c0);
      be().gemm(c, tensor(transA ? k : m, transA ? m : k, a), tensor(k, n, b), { transA, alpha, beta });
      t.deepEqual(read(c), exactProduct(a, transA, b, false, c0, m, n, k, alpha, beta));
    });
  }
}

nativeTest('gemm with a sparse 0/1 factor: each element is the float32 running sum of its terms, in order', (t) => {
  const rng = new Random(11);
  for (const [m, n, k, transA] of [
    [100, 500, 784, false],
    [784, 500, 100, true],
    [9, 21, 64, false],
  ] as const) {
    const a = binary(transA ? k : m, transA ? m : k, 0.2, rng);
    const b = rng.fillUniform(new Float32Array(k * n));
    const c = be().alloc(m, n);
    be().gemm(c, tensor(transA ? k : m, transA ? m : k, a), tensor(k, n, b), { transA, alpha: 0.75 });
    const want = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let r = 0; r < k; r++) if ((transA ? a[r * m + i] : a[i * k + r]) === 1) sum = Math.fround(sum + b[r * n + j]!);
        want[i * n + j] = Math.fround(sum * 0.75);
      }
    }
    t.deepEqual(read(c), want, `${m}x${k}${transA ? 'ᵀ' : ''}·${k}x${n}`);
  }
});

// Entries the scan must not read as 0 or 1, at an index inside its groups of eight and among a row's
// last entries past them (rows of 203 or 30 entries: 25 or 3 groups and 3 or 6 more).
for (const [label, value] of ODD_ENTRIES) {
  for (const transA of [false, true]) {
    nativeTest(`gemm: one ${label} among 0/1 entries (transA ${transA}) is multiplied, not taken for 0 or 1`, (t) => {
      const [m, n, k] = [30, 70, 203];
      const rng = new Random(5);
      for (const at of [
        [3, 17],
        [29, 202],
        [0, 200],
      ] as const) {
        const a = binary(transA ? k : m, transA ? m : k, 0.1, rng);
        // op(a)'s row at[0] holds only the odd value (at column at[1]): its products are exact
        for (let r = 0; r < k; r++) a[transA ? r * m + at[0] : at[0] * k + r] = r === at[1] ? value : 0;
        const b = integers(k, n, rng);
        const c = be().alloc(m, n);
        be().gemm(c, tensor(transA ? k : m, transA ? m : k, a), tensor(k, n, b), { transA });
        const got = read(c);
        const want = exactProduct(a, transA, b, false, new Float32Array(m * n), m, n, k, 1, 0);
        assertOddRow(t, got, want, at[0], n, value, `entry ${at.join(',')}`);
      }
    });
  }
}

nativeTest('gemm with −0 among 0/1 entries: the same values as with +0', (t) => {
  const [m, n, k] = [20, 40, 90];
  const rng = new Random(8);
  const a = binary(m, k, 0.1, rng);
  const negative = a.map((x, i) => (x === 0 && i % 3 === 0 ? -0 : x));
  const b = integers(k, n, rng);
  const c = be().alloc(m, n);
  be().gemm(c, tensor(m, k, negative), tensor(k, n, b));
  t.deepEqual(read(c), exactProduct(a, false, b, false, new Float32Array(m * n), m, n, k, 1, 0));
});

nativeTest('linearSigmoid with 0/1 rows: the bits of gemm then addRowSigmoid', (t) => {
  assertFusedSigmoid(
    t,
    fx,
    [
      [100, 500, 784],
      [100, 2000, 500],
      [17, 45, 61],
    ],
    0.13,
    false,
    new Random(3),
  );
});
