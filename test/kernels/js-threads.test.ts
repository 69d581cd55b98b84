// The js backend's threaded WebAssembly gemm (gemm-threads.ts): the same bits for 1, 2 and 3
// threads, on the products and on whole CD-1 steps; the conformance suite on 3 threads; the
// thread option; workers that never keep a process alive and stop with dispose().
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { InvalidOptionError } from '../../src/errors.js';
import type { Backend, Tensor } from '../../src/kernels/backend.js';
import { createGemmThreads } from '../../src/kernels/js/gemm-threads.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { resolveThreads } from '../../src/kernels/js/threads-option.js';
import { Random } from '../../src/random.js';
import { Rbm } from '../../src/rbm/index.js';
import { runConformance } from './conformance.js';
import { gemmRef } from './reference.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

runConformance('js (3 threads)', () => createJsBackend({ threads: 3 }));

function filled(b: Backend, rng: Random, rows: number, cols: number): Tensor {
  const t = b.alloc(rows, cols);
  const d = new Float32Array(rows * cols);
  for (let i = 0; i < d.length; i++) d[i] = rng.uniform() * 2 - 1;
  b.write(t, d);
  return t;
}

function bits(x: Float32Array): number[] {
  return Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
}

/**
 * Where two lists of outputs first differ ("same" when they do not): a failure names the product and
 * the element at once, where ava's diff of hundreds of thousands of numbers takes minutes.
 */
function firstDifference(got: readonly (readonly number[])[], want: readonly (readonly number[])[]): string {
  if (got.length !== want.length) return `${got.length} outputs, not ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    if (g.length !== w.length) return `output ${i}: ${g.length} elements, not ${w.length}`;
    const at = g.findIndex((x, j) => x !== w[j]);
    if (at >= 0) return `output ${i}, element ${at}: bits ${g[at]!.toString(16)}, not ${w[at]!.toString(16)}`;
  }
  return 'same';
}

/** Every product of `cases` on a fresh backend with `threads` threads, outputs in order. */
function products(
  threads: number,
  cases: readonly (readonly [number, number, number, boolean, boolean, number, number, boolean])[],
): number[][] {
  const b = createJsBackend({ threads });
  const rng = new Random(21);
  const outs = cases.map(([m, n, k, transA, transB, alpha, beta, sigmoid]) => {
    const a = filled(b, rng, transA ? k : m, transA ? m : k);
    const w = filled(b, rng, transB ? n : k, transB ? k : n);
    const c = filled(b, rng, m, n);
    const bias = filled(b, rng, 1, n);
    if (sigmoid) b.linearSigmoid!(c, a, w, bias, transB);
    else b.gemm(c, a, w, { transA, transB, alpha, beta });
    const out = new Float32Array(m * n);
    b.read(c, out);
    return bits(out);
  });
  b.dispose();
  return outs;
}

test('threaded products give the bits of one thread for 2 and 3 threads (transposes, alpha, beta, edge tiles, k blocks, sigmoid)', (t) => {
  // m·n·k ≥ 2^20 goes to the threads: 130 × 37 rows/columns leave partial 4 × 8 tiles, k = 600 two k blocks, n = 1100 many blocks.
  const cases = [
    [100, 500, 784, false, false, 1, 0, false],
    [784, 500, 100, true, false, 0.01, 1, false],
    [100, 784, 500, false, true, 1, 0, false],
    [130, 37, 600, true, true, -0.5, -3, false],
    [67, 1100, 600, false, false, 2, 1, false],
    [100, 500, 784, false, false, 1, 0, true],
    [100, 784, 500, false, true, 1, 0, true],
  ] as const;
  const one = products(1, cases);
  t.is(firstDifference(products(2, cases), one), 'same');
  t.is(firstDifference(products(3, cases), one), 'same');
  // Independent check that the threads computed the product (not, say, left `c` alone).
  const b = createJsBackend({ threads: 3 });
  const rng = new Random(5);
  const [m, n, k] = [70, 300, 200];
  const a = filled(b, rng, m, k);
  const w = filled(b, rng, k, n);
  const c = b.alloc(m, n);
  b.gemm(c, a, w);
  const got = new Float32Array(m * n);
  b.read(c, got);
  const [ha, hw] = [new Float32Array(m * k), new Float32Array(k * n)];
  b.read(a, ha);
  b.read(w, hw);
  const want = gemmRef({ rows: m, cols: k, data: ha }, { rows: k, cols: n, data: hw }, undefined, false, false, 1, 0).value;
  const worst = Math.max(...Array.from(got, (g, i) => Math.abs(g - want[i]!)));
  t.true(worst < 1e-4, `max |got − want| = ${worst}`);
  b.dispose();
});

test('hundreds of back-to-back products of changing sizes keep the bits of one thread (no job sees another’s parameters)', (t) => {
  // Near the threading threshold, so that jobs are short and threads late from one job meet the
  // next: the counts of A tasks (1–6) and column blocks (12–20) go up and down from job to job.
  const sizes = [
    [64, 128, 128],
    [200, 160, 600],
    [65, 100, 300],
    [130, 96, 96],
    [16, 512, 300],
  ] as const;
  const cases = Array.from({ length: 300 }, (_, i) => {
    const [m, n, k] = sizes[(i * 7) % sizes.length]!;
    return [m, n, k, i % 3 === 0, i % 2 === 0, i % 4 === 1 ? 0.5 : 1, i % 5 === 2 ? 1 : 0, i % 11 === 4 && i % 3 !== 0] as const;
  });
  const one = products(1, cases);
  t.is(firstDifference(products(3, cases), one), 'same');
});

test('Rbm CD-1 steps on the js backend give the same weights for 1, 2 and 3 threads', (t) => {
  const rng = new Random(3);
  const data = new Float32Array(200 * 784);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform() < 0.2 ? 1 : 0;
  const weights = (threads: number): number[] => {
    const backend = createJsBackend({ threads });
    const rbm = new Rbm({ nVisible: 784, nHidden: 500, backend, seed: 9, batchSize: 100, learningRate: 0.05 });
    rbm.partialFit({ rows: 100, cols: 784, data: data.subarray(0, 100 * 784) });
    rbm.partialFit({ rows: 100, cols: 784, data: data.subarray(100 * 784) });
    const w = rbm.getParameters().weights;
    rbm.dispose();
    backend.dispose();
    return bits(w.data);
  };
  const one = weights(1);
  t.is(firstDifference([weights(2)], [one]), 'same');
  t.is(firstDifference([weights(3)], [one]), 'same');
});

test('every worker starts and runs the module (as source text, in the tsx-transformed code too)', async (t) => {
  const threads = createGemmThreads(3);
  if (!('gemm' in threads)) return t.fail(threads.reason);
  const [m, n, k] = [100, 500, 784];
  const c = new Float32Array(m * n);
  threads.gemm(m, n, k, 1, new Float32Array(m * k).fill(0.5), false, new Float32Array(k * n).fill(0.25), false, 0, c);
  t.is(c[0], 98);
  for (let waited = 0; threads.workersReady < 2 && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(threads.workersReady, 2);
  t.is(threads.workerError, undefined);
  threads.release();
});

test('the thread count: option, DBN_JS_THREADS, default, and one clear error for bad values', (t) => {
  t.is(resolveThreads(3, '5'), 3);
  t.is(resolveThreads(undefined, '5'), 5);
  t.is(resolveThreads(undefined, ' 2 '), 2);
  t.true(resolveThreads(undefined, undefined) >= 1);
  t.is(resolveThreads(undefined, ''), resolveThreads(undefined, undefined));
  for (const bad of [0, -1, 1.5, Number.NaN, 257]) {
    t.throws(() => createJsBackend({ threads: bad }), { instanceOf: InvalidOptionError, message: /'threads' option of createJsBackend/ });
  }
  for (const bad of ['0', 'two', '1.5', '-2', '999']) {
    t.throws(() => resolveThreads(undefined, bad), { instanceOf: InvalidOptionError, message: /DBN_JS_THREADS/ });
  }
  t.regex(createJsBackend({ threads: 2 }).info.description, /, 2 threads\)$/);
  // The scalar kernels stay on one thread, and say nothing of threads.
  t.is(createJsBackend({ gemmKernel: 'asm.js', threads: 4 }).info.description, 'js (portable TypeScript, asm.js gemm)');
  t.deepEqual(createGemmThreads(1), { reason: 'one thread was asked for' });
});

test('dispose() stops the workers; later products run on the calling thread with the same bits', (t) => {
  const cases = [[100, 500, 784, false, false, 1, 0, false]] as const;
  const want = products(1, cases);
  const b = createJsBackend({ threads: 2 });
  const rng = new Random(21);
  const a = filled(b, rng, 100, 784);
  const w = filled(b, rng, 784, 500);
  const c = filled(b, rng, 100, 500);
  b.dispose();
  b.gemm(c, a, w);
  const out = new Float32Array(100 * 500);
  b.read(c, out);
  t.is(firstDifference([bits(out)], want), 'same');
});

test('a process using the threads exits without dispose() (workers are unref’d)', (t) => {
  const lines = [
    "const { createJsBackend } = await import('./src/kernels/js/index.ts');",
    'const b = createJsBackend({ threads: 3 });',
    'const x = b.alloc(100, 784); const w = b.alloc(784, 500); const h = b.alloc(100, 500);',
    'b.fill(x, 0.5); b.fill(w, 0.25); b.gemm(h, x, w);',
    'const out = new Float32Array(100 * 500); b.read(h, out);',
    'console.log(JSON.stringify({ description: b.info.description, first: out[0], last: out[out.length - 1] }));',
  ];
  const run = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', lines.join('\n')], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 15_000,
  });
  t.is(run.status, 0, run.stderr);
  // 784 · 0.5 · 0.25 = 98, exactly.
  t.deepEqual(JSON.parse(run.stdout.trim()), {
    description: 'js (portable TypeScript, WebAssembly SIMD FMA gemm, 3 threads)',
    first: 98,
    last: 98,
  });
});
