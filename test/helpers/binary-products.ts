/**
 * What the tests of the native backend's 0/1-factor products share (binary-rows, binary-tables):
 * the backend for the file, tensors from host arrays and back, and inputs whose sums are checkable.
 */
import test from 'ava';
import type { Backend, Tensor } from '../../src/kernels/backend.js';
import { createNativeBackend } from '../../src/kernels/native/index.js';
import type { Random } from '../../src/random.js';

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
