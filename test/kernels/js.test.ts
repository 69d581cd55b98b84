import test from 'ava';
import { DbnError, ShapeMismatchError } from '../../src/errors.js';
import { JsTensor, createJsBackend } from '../../src/kernels/js/index.js';
import { runConformance } from './conformance.js';

runConformance('js', createJsBackend);
// the unfused WebAssembly kernel (fma: false) meets the same bounds
runConformance('js (fma: false)', () => createJsBackend({ fma: false }));

test('js: info and ready', async (t) => {
  const b = createJsBackend({ threads: 1 });
  t.deepEqual(b.info, { name: 'js', description: 'js (portable TypeScript, WebAssembly SIMD FMA gemm)' });
  await t.notThrowsAsync(b.ready());
  b.dispose();
  t.notThrows(() => b.dispose());
});

test('js: shape mismatches throw ShapeMismatchError naming the kernel and argument', (t) => {
  const b = createJsBackend();
  const x = b.alloc(2, 3);
  const y = b.alloc(3, 2);
  t.throws(() => b.add(x, x, y), { instanceOf: ShapeMismatchError, message: "js.add: 'b' is 3x2, expected 2x3 like 'out'." });
  t.throws(() => b.addRow(x, x, b.alloc(1, 2)), { instanceOf: ShapeMismatchError, message: "js.addRow: 'bias' is 1x2, expected 1x3." });
  t.throws(() => b.gemm(b.alloc(2, 2), x, x), {
    instanceOf: ShapeMismatchError,
    message: "js.gemm: cannot compute a (2x3) · b (2x3) into a 2x2 'out'.",
  });
  t.notThrows(() => b.gemm(b.alloc(2, 2), x, x, { transB: true }));
  const sq = b.alloc(2, 2);
  t.throws(() => b.gemm(sq, sq, b.alloc(2, 2)), { instanceOf: ShapeMismatchError, message: /must not be the same tensor/ });
  t.throws(() => b.softplusRowSum(b.alloc(1, 2), x), {
    instanceOf: ShapeMismatchError,
    message: "js.softplusRowSum: 'out' is 1x2, expected 2x1.",
  });
  t.throws(() => b.write(x, new Float32Array(5)), { instanceOf: ShapeMismatchError, message: /holds 5 values, expected 6/ });
  t.throws(() => b.read(x, new Float32Array(7)), { instanceOf: ShapeMismatchError, message: /holds 7 values, expected 6/ });
  t.throws(() => b.alloc(-1, 2), { instanceOf: ShapeMismatchError });
  t.throws(() => b.alloc(1.5, 2), { instanceOf: ShapeMismatchError });
});

test('js: foreign and freed tensors are rejected', (t) => {
  const b = createJsBackend();
  const x = b.alloc(2, 2);
  t.throws(() => b.relu(x, { rows: 2, cols: 2 }), {
    instanceOf: DbnError,
    message: "js.relu: tensor 'x' was not allocated by the js backend.",
  });
  b.free(x);
  t.throws(() => b.fill(x, 1), { instanceOf: DbnError, message: /used after free/ });
});

test('js: gemm with k = 0 or alpha = 0 only scales out by beta, and never reads a or b', (t) => {
  const b = createJsBackend();
  const out = b.alloc(2, 3);
  b.write(out, Float32Array.from([1, 2, 3, 4, 5, 6]));
  b.gemm(out, b.alloc(2, 0), b.alloc(0, 3), { beta: 0.5 });
  const got = new Float32Array(6);
  b.read(out, got);
  t.deepEqual(Array.from(got), [0.5, 1, 1.5, 2, 2.5, 3]);
  const nan = b.alloc(2, 4);
  b.fill(nan, Number.NaN);
  b.gemm(out, nan, b.alloc(4, 3), { alpha: 0, beta: 2 });
  b.read(out, got);
  t.deepEqual(Array.from(got), [1, 2, 3, 4, 5, 6]);
  b.gemm(out, nan, b.alloc(4, 3), { alpha: 0 });
  b.read(out, got);
  t.deepEqual(Array.from(got), [0, 0, 0, 0, 0, 0]);
});

test('js: a tensor is viewable as a [rows, cols] ndarray without a copy', (t) => {
  const b = createJsBackend();
  const x = b.alloc(2, 3);
  b.write(x, Float32Array.from([1, 2, 3, 4, 5, 6]));
  t.true(x instanceof JsTensor);
  const view = (x as JsTensor).toNdarray();
  t.deepEqual(view.shape, [2, 3]);
  t.is(view.get(1, 0), 4);
  view.set(0, 2, 9);
  const back = new Float32Array(6);
  b.read(x, back);
  t.is(back[2], 9);
});
