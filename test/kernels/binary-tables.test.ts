/**
 * The native backend's products a·wᵀ with a 0/1 left factor at any density — CD's reconstruction
 * from the sampled hidden states — which it computes from tables of sums of four of w's columns
 * (src/kernels/native/binary_tables.cc): exact against hand-checkable sums on shapes that cover the
 * 32-column blocks, their last partial vector, a last group of fewer than four columns, the
 * two-rows-at-once loop and its odd last row; each element the float32 sum, group by group, of its
 * group's entry (the entry itself summed from its highest column down); entries that are not 0 or 1
 * sent to the dense product; products with fewer rows than the tables pay for left dense; the
 * fused `linearSigmoid` the bits of `gemm` then `addRowSigmoid`.
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

// [m, n, k]: CD-1's reconstructions of a 784→500 and a 500→2000 layer, columns that are not a
// multiple of 8 and a last group of 1 or 3 columns, an odd number of rows, the fewest rows that use
// the tables, fewer than 8 columns, fewer than 4 entries per row.
const SHAPES = [
  [100, 784, 500],
  [100, 500, 2000],
  [33, 45, 61],
  [16, 70, 33],
  [25, 5, 13],
  [19, 40, 3],
] as const;

for (const [m, n, k] of SHAPES) {
  for (const density of [0.3, 0.9]) {
    for (const [alpha, beta] of [
      [1, 0],
      [0.5, 2],
      [-0.25, 1],
    ] as const) {
      nativeTest(`gemm ${m}x${k}·(${n}x${k})ᵀ, ${density * 100} % ones, alpha ${alpha}, beta ${beta}: the exact sums`, (t) => {
        const rng = new Random(m * 7 + n * 3 + k + density * 10);
        const a = binary(m, k, density, rng);
        const w = integers(n, k, rng);
        const c0 = beta === 0 ? new Float32Array(m * n).fill(Number.NaN) : integers(m, n, rng);
        const c = tensor(m, n, c0);
        be().gemm(c, tensor(m, k, a), tensor(n, k, w), { transB: true, alpha, beta });
        t.deepEqual(read(c), exactProduct(a, false, w, true, c0, m, n, k, alpha, beta));
      });
    }
  }
}

nativeTest('gemm a·wᵀ with a 0/1 factor: each element sums its groups in order, each group from its highest column down', (t) => {
  const rng = new Random(11);
  for (const [m, n, k] of [
    [100, 500, 2000],
    [40, 37, 21],
  ] as const) {
    const a = binary(m, k, 0.5, rng);
    const w = rng.fillUniform(new Float32Array(n * k));
    const c = be().alloc(m, n);
    be().gemm(c, tensor(m, k, a), tensor(n, k, w), { transB: true, alpha: 0.75 });
    const want = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let g = 0; g * 4 < k; g++) {
          // the table entry of the group's pattern: its ones' columns added from the highest down
          let entry = Number.NaN;
          for (let r = Math.min(k, g * 4 + 4) - 1; r >= g * 4; r--) {
            if (a[i * k + r] !== 1) continue;
            entry = Number.isNaN(entry) ? w[j * k + r]! : Math.fround(entry + w[j * k + r]!);
          }
          if (!Number.isNaN(entry)) sum = Math.fround(sum + entry);
        }
        want[i * n + j] = Math.fround(sum * 0.75);
      }
    }
    t.deepEqual(read(c), want, `${m}x${k}·(${n}x${k})ᵀ`);
  }
});

// Entries the scan must not read as 0 or 1, inside its groups of eight and among a row's last
// entries past them (rows of 203 entries: 25 groups of eight and 3 more).
for (const [label, value] of ODD_ENTRIES) {
  nativeTest(`gemm a·wᵀ: one ${label} among 0/1 entries is multiplied, not taken for 0 or 1`, (t) => {
    const [m, n, k] = [30, 70, 203];
    const rng = new Random(5);
    for (const at of [
      [3, 17],
      [29, 202],
      [0, 200],
    ] as const) {
      const a = binary(m, k, 0.5, rng);
      // row at[0] holds only the odd value (at column at[1]): its products are exact
      for (let r = 0; r < k; r++) a[at[0] * k + r] = r === at[1] ? value : 0;
      const w = integers(n, k, rng);
      const c = be().alloc(m, n);
      be().gemm(c, tensor(m, k, a), tensor(n, k, w), { transB: true });
      const got = read(c);
      const want = exactProduct(a, false, w, true, new Float32Array(m * n), m, n, k, 1, 0);
      assertOddRow(t, got, want, at[0], n, value, `entry ${at.join(',')}`);
    }
  });
}

nativeTest('gemm a·wᵀ with a 0/1 factor: an infinite entry of w reaches only the rows whose ones pick it', (t) => {
  // The dense product gives NaN for 0·∞; the tables never add an entry no 1 picks (binary_tables.h).
  const [m, n, k] = [20, 9, 12];
  const a = new Float32Array(m * k);
  for (let i = 0; i < m; i++) a[i * k + (i % k)] = 1; // row i picks column i mod 12 only
  const w = new Float32Array(n * k).fill(1);
  w[2 * k + 5] = Number.POSITIVE_INFINITY; // w's row 2 (c's column 2), entry 5
  const c = be().alloc(m, n);
  be().gemm(c, tensor(m, k, a), tensor(n, k, w), { transB: true });
  const got = read(c);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) t.is(got[i * n + j], j === 2 && i % k === 5 ? Number.POSITIVE_INFINITY : 1, `(${i}, ${j})`);
  }
});

nativeTest('gemm a·wᵀ with −0 among 0/1 entries: the same values as with +0', (t) => {
  const [m, n, k] = [20, 40, 90];
  const rng = new Random(8);
  const a = binary(m, k, 0.5, rng);
  const negative = a.map((x, i) => (x === 0 && i % 3 === 0 ? -0 : x));
  const w = integers(n, k, rng);
  const c = be().alloc(m, n);
  be().gemm(c, tensor(m, k, negative), tensor(n, k, w), { transB: true });
  t.deepEqual(read(c), exactProduct(a, false, w, true, new Float32Array(m * n), m, n, k, 1, 0));
});

nativeTest('gemm a·wᵀ with a 0/1 factor of 15 rows: the dense product (0·∞ is NaN there)', (t) => {
  // Below kTableMinRows the tables cost more than they save: sgemm runs, and its 0·∞ gives NaN.
  const [m, n, k] = [15, 9, 12];
  const a = new Float32Array(m * k);
  for (let i = 0; i < m; i++) a[i * k + (i % k)] = 1;
  const w = new Float32Array(n * k).fill(1);
  w[2 * k + 5] = Number.POSITIVE_INFINITY;
  const c = be().alloc(m, n);
  be().gemm(c, tensor(m, k, a), tensor(n, k, w), { transB: true });
  const got = read(c);
  for (let i = 0; i < m; i++) t.is(got[i * n + 2], i % k === 5 ? Number.POSITIVE_INFINITY : Number.NaN, `(${i}, 2)`);
});

nativeTest('linearSigmoid with 0/1 rows and transposed weights: the bits of gemm then addRowSigmoid', (t) => {
  assertFusedSigmoid(
    t,
    fx,
    [
      [100, 784, 500],
      [100, 500, 2000],
      [17, 45, 61],
    ],
    0.27,
    true,
    new Random(3),
  );
});
