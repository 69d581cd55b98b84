/**
 * What the tests of the native backend's 0/1-factor products share (binary-rows, binary-tables):
 * the backend for the file, tensors from host arrays and back, and inputs whose sums are checkable.
 */
import test, { type ExecutionContext } from 'ava';
import type { Backend, Tensor } from '../../src/kernels/backend.js';
import { createNativeBackend } from '../../src/kernels/native/index.js';
import type { Random } from '../../src/random.js';
import { gemmRef } from '../kernels/reference.js';

/** `test`, or `test.skip` when DBN_NODE_SKIP_NATIVE=1 (a machine without the native backend). */
export const nativeTest = process.env.DBN_NODE_SKIP_NATIVE === '1' ? test.skip : test;

/** The calling test file's native backend (`be()`), made before its tests and disposed after them, and host ↔ tensor copies on it. */
export function nativeFixture(): {
  be(): Backend;
  tensor(rows: number, cols: number, host: Float32Array): Tensor;
  read(t: Tensor): Float32Array;
} {
  let backend: Backend | undefined;
  test.before(() => {
    if (process.env.DBN_NODE_SKIP_NATIVE !== '1') backend = createNativeBackend();
  });
  test.after.always(() => backend?.dispose());
  const be = (): Backend => {
    if (backend === undefined) throw new Error('the native backend is not made (DBN_NODE_SKIP_NATIVE=1, or outside a test)');
    return backend;
  };
  return {
    be,
    tensor(rows, cols, host) {
      const t = be().alloc(rows, cols);
      be().write(t, host);
      return t;
    },
    read(t) {
      const out = new Float32Array(t.rows * t.cols);
      be().read(t, out);
      return out;
    },
  };
}

/** rows×cols of 1 with probability `density`, else 0. */
export function binary(rows: number, cols: number, density: number, rng: Random): Float32Array {
  const a = new Float32Array(rows * cols);
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform() < density ? 1 : 0;
  return a;
}

/** Whole numbers in [-8, 8]: every sum of them is exact in float32, whatever the order. */
export function integers(rows: number, cols: number, rng: Random): Float32Array {
  const b = new Float32Array(rows * cols);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rng.uniform() * 17) - 8;
  return b;
}

/** Entries a scan must not read as 0 or 1. */
export const ODD_ENTRIES: ReadonlyArray<readonly [string, number]> = [
  ['NaN', Number.NaN],
  ['0.5', 0.5],
  ['2', 2],
  ['1 + 2⁻²³', 1 + 2 ** -23],
  ['−1', -1],
];

/**
 * A product whose op(a) row `row` holds one odd `value` (its other entries 0) against the float64
 * expectation `want` (m×n, n columns): NaN·b fills that row with NaN and leaves the others equal;
 * any other value gives every element equal.
 */
export function assertOddRow(
  t: ExecutionContext,
  got: Float32Array,
  want: Float32Array,
  row: number,
  n: number,
  value: number,
  label: string,
): void {
  if (Number.isNaN(value)) {
    for (let j = 0; j < n; j++) t.true(Number.isNaN(got[row * n + j]!), `row ${row}, column ${j}`);
    const others = (x: Float32Array): Float32Array => x.filter((_, i) => Math.floor(i / n) !== row);
    t.deepEqual(others(got), others(want));
  } else {
    t.deepEqual(got, want, label);
  }
}

/**
 * The fused `linearSigmoid` on 0/1 rows (m×k, `density` of ones) and weights in [−0.5, 0.5) (k×n, or
 * n×k with `transW`): the bits of `gemm` then `addRowSigmoid`, for each [m, n, k] of `shapes`.
 */
export function assertFusedSigmoid(
  t: ExecutionContext,
  fx: ReturnType<typeof nativeFixture>,
  shapes: ReadonlyArray<readonly [number, number, number]>,
  density: number,
  transW: boolean,
  rng: Random,
): void {
  const be = fx.be();
  for (const [m, n, k] of shapes) {
    const x = fx.tensor(m, k, binary(m, k, density, rng));
    const w = fx.tensor(
      transW ? n : k,
      transW ? k : n,
      rng.fillUniform(new Float32Array(k * n)).map((v) => v - 0.5),
    );
    const bias = fx.tensor(1, n, rng.fillUniform(new Float32Array(n)));
    const fused = be.alloc(m, n);
    be.linearSigmoid!(fused, x, w, bias, transW);
    const plain = be.alloc(m, n);
    be.gemm(plain, x, w, { transB: transW });
    be.addRowSigmoid(plain, plain, bias);
    t.deepEqual(fx.read(fused), fx.read(plain), transW ? `${m}x${k}·(${n}x${k})ᵀ` : `${m}x${k}·${k}x${n}`);
  }
}

/**
 * `alpha·op(a)·op(b) + beta·c` (op(a) m×k, op(b) k×n, row-major) in float64 by the conformance
 * suite's reference ({@link gemmRef}), rounded once to float32: exact for the whole numbers these
 * tests multiply.
 */
export function exactProduct(
  a: Float32Array,
  transA: boolean,
  b: Float32Array,
  transB: boolean,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  alpha: number,
  beta: number,
): Float32Array {
  const am = transA ? { rows: k, cols: m, data: a } : { rows: m, cols: k, data: a };
  const bm = transB ? { rows: n, cols: k, data: b } : { rows: k, cols: n, data: b };
  return Float32Array.from(gemmRef(am, bm, { rows: m, cols: n, data: c }, transA, transB, alpha, beta).value);
}
