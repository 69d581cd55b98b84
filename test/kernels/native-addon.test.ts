// Native-specific checks of the OpenBLAS addon; the shared kernel suite covers the math of every backend.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';
import { BackendUnavailableError, DbnError, ShapeMismatchError } from '../../src/errors.js';
import type { Backend, GemmOptions, Tensor } from '../../src/kernels/backend.js';
import { createNativeBackend, NativeTensor } from '../../src/kernels/native/index.js';
import { Random } from '../../src/random.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// DBN_NODE_SKIP_NATIVE=1 (no OpenBLAS here) skips the tests that need the addon, visibly; otherwise it must load.
const skipNative = process.env.DBN_NODE_SKIP_NATIVE === '1';
const nativeTest = skipNative ? test.skip : test;

function tensor(be: Backend, rows: number, cols: number, values: number[]): Tensor {
  const t = be.alloc(rows, cols);
  be.write(t, Float32Array.from(values));
  return t;
}

function values(be: Backend, t: Tensor): number[] {
  const out = new Float32Array(t.rows * t.cols);
  be.read(t, out);
  return [...out];
}

// A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12]; A·B = [58 64; 139 154] by hand.
const A = [1, 2, 3, 4, 5, 6];
const At = [1, 4, 2, 5, 3, 6];
const B = [7, 8, 9, 10, 11, 12];
const Bt = [7, 9, 11, 8, 10, 12];
const AB = [58, 64, 139, 154];

nativeTest('the backend loads and reports the OpenBLAS it runs', (t) => {
  const be = createNativeBackend();
  t.is(be.info.name, 'native');
  t.regex(be.info.description, /^native \(OpenBLAS \d+\.\d+\.\d+.*, \d+ threads?, (avx512|avx2|baseline|compiler target) loops\)$/);
  be.dispose();
});

for (const [transA, transB] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const) {
  nativeTest(`gemm transA=${transA} transB=${transB} gives the hand-computed 2×3·3×2 product`, (t) => {
    const be = createNativeBackend();
    const a = transA ? tensor(be, 3, 2, At) : tensor(be, 2, 3, A);
    const b = transB ? tensor(be, 2, 3, Bt) : tensor(be, 3, 2, B);
    const out = tensor(be, 2, 2, [Number.NaN, Number.NaN, Number.NaN, Number.NaN]);
    const opts: GemmOptions = { transA, transB };
    be.gemm(out, a, b, opts);
    t.deepEqual(values(be, out), AB, 'beta = 0 ignores the NaN already in out');
    be.gemm(out, a, b, { ...opts, alpha: 2, beta: 0.5 });
    t.deepEqual(values(be, out), [2 * 58 + 29, 2 * 64 + 32, 2 * 139 + 69.5, 2 * 154 + 77]);
    be.gemm(out, a, b, { ...opts, alpha: -1, beta: 1 });
    t.deepEqual(values(be, out), [145 - 58, 160 - 64, 347.5 - 139, 385 - 154]);
    be.dispose();
  });
}

nativeTest('gemm rejects operands whose shapes do not chain, and out aliasing an input', (t) => {
  const be = createNativeBackend();
  const a = be.alloc(2, 3);
  const out = be.alloc(2, 2);
  t.throws(() => be.gemm(out, a, be.alloc(2, 2)), { instanceOf: ShapeMismatchError });
  t.throws(() => be.gemm(out, a, be.alloc(3, 3)), { instanceOf: ShapeMismatchError });
  const sq = be.alloc(2, 2);
  t.throws(() => be.gemm(sq, sq, be.alloc(2, 2)), { instanceOf: DbnError, message: /must not alias/ });
  be.dispose();
});

nativeTest('kernels honour the byteOffset of a tensor viewing part of a larger array', (t) => {
  const be = createNativeBackend();
  const backing = new Float32Array([-1, -1, ...A, -1]);
  const a = new NativeTensor(2, 3, backing.subarray(2, 8));
  const outBacking = new Float32Array([9, 0, 0, 0, 0, 9]);
  const out = new NativeTensor(2, 2, outBacking.subarray(1, 5));
  be.gemm(out, a, tensor(be, 3, 2, B));
  t.deepEqual([...outBacking], [9, ...AB, 9]);
  be.add(out, out, out);
  t.deepEqual([...outBacking], [9, ...AB.map((v) => 2 * v), 9]);
  t.is(be.sumSquares(a), 1 + 4 + 9 + 16 + 25 + 36);
  be.dispose();
});

nativeTest('write and read reject arrays of the wrong length or type', (t) => {
  const be = createNativeBackend();
  const x = be.alloc(2, 3);
  t.throws(() => be.write(x, new Float32Array(5)), { instanceOf: ShapeMismatchError, message: /6 elements \(2 × 3\), got 5/ });
  t.throws(() => be.write(x, new Float32Array(7)), { instanceOf: ShapeMismatchError });
  t.throws(() => be.read(x, new Float32Array(5)), { instanceOf: ShapeMismatchError });
  t.throws(() => be.write(x, new Float64Array(6) as unknown as Float32Array), { instanceOf: ShapeMismatchError, message: /Float64Array/ });
  t.deepEqual(values(be, x), [0, 0, 0, 0, 0, 0], 'a rejected write leaves the tensor untouched');
  be.dispose();
});

nativeTest('the addon checks lengths itself instead of reading out of range', (t) => {
  const be = createNativeBackend();
  const small = be.alloc(1, 2);
  const big = be.alloc(4, 4);
  t.throws(() => be.add(big, big, small), { instanceOf: RangeError, message: /add: 'b' has 2 elements, expected 16/ });
  t.throws(() => be.addRowSigmoid(big, big, be.alloc(1, 3)), { instanceOf: RangeError });
  t.throws(() => be.sumSquaredDiff(big, small), { instanceOf: RangeError });
  const freed = be.alloc(4, 4);
  be.free(freed);
  t.throws(() => be.mul(big, big, freed), { instanceOf: RangeError });
  t.throws(() => be.read(freed, new Float32Array(16)), { instanceOf: DbnError, message: /was freed/ });
  be.dispose();
});

nativeTest('every method throws after dispose, and dispose is idempotent', (t) => {
  const be = createNativeBackend();
  const x = be.alloc(1, 1);
  be.dispose();
  t.notThrows(() => be.dispose());
  const disposed = { instanceOf: DbnError, message: /disposed/ };
  t.throws(() => be.alloc(1, 1), disposed);
  t.throws(() => be.write(x, new Float32Array(1)), disposed);
  t.throws(() => be.read(x, new Float32Array(1)), disposed);
  t.throws(() => be.gemm(x, x, x), disposed);
  t.throws(() => be.addRowSigmoid(x, x, x), disposed);
  t.throws(() => be.sumSquares(x), disposed);
  t.is((t.throws(() => be.fill(x, 1)) as DbnError).code, 'EDISPOSED');
});

nativeTest(
  'products run on the threads OPENBLAS_NUM_THREADS asks for (cut by columns or rows), with the same bits on every call, within float32 rounding of one thread',
  (t) => {
    // Each child computes products that are cut by columns (n ≥ m), by rows (m > n), with edge
    // panels and all transposes, twice, and prints the thread count and the first run's values.
    const script = `
    const { createNativeBackend } = await import('./src/kernels/native/index.ts');
    const be = createNativeBackend();
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5;
    const out = [];
    let repeatable = true;
    for (const [m, n, k] of [[100, 500, 784], [1000, 50, 100], [37, 1001, 300]]) for (const transA of [false, true]) for (const transB of [false, true]) {
      const a = be.alloc(transA ? k : m, transA ? m : k), b = be.alloc(transB ? n : k, transB ? k : n);
      be.write(a, Float32Array.from({ length: m * k }, rnd));
      be.write(b, Float32Array.from({ length: k * n }, rnd));
      const c0 = Float32Array.from({ length: m * n }, rnd);
      const runs = [0, 1].map(() => {
        const c = be.alloc(m, n);
        be.write(c, c0);
        be.gemm(c, a, b, { transA, transB, alpha: 0.7, beta: 0.3 });
        const v = new Float32Array(m * n);
        be.read(c, v);
        return v;
      });
      repeatable &&= Buffer.from(runs[0].buffer).equals(Buffer.from(runs[1].buffer));
      out.push(Array.from(runs[0]));
    }
    console.log(JSON.stringify({ description: be.info.description, repeatable, out }));
  `;
    const run = (threads: string): { description: string; repeatable: boolean; out: number[][] } => {
      const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
        cwd: repo,
        encoding: 'utf8',
        env: { ...process.env, OPENBLAS_NUM_THREADS: threads },
        maxBuffer: 1 << 28,
      });
      t.is(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { description: string; repeatable: boolean; out: number[][] };
    };
    const one = run('1');
    const two = run('2');
    t.regex(one.description, /, 1 thread, \w+ loops\)$/);
    // OpenBLAS caps its thread count at the CPUs it sees.
    t.regex(two.description, availableParallelism() >= 2 ? /, 2 threads, \w+ loops\)$/ : /, 1 thread, \w+ loops\)$/);
    t.true(one.repeatable && two.repeatable, 'the same bits on every call');
    // Cut into blocks, each element is still one dot product of k terms: float32 rounding apart.
    let worst = 0;
    one.out.forEach((o, i) => o.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - two.out[i]![j]!) / (1 + Math.abs(v))))));
    t.true(worst < 1e-5, `largest relative difference ${worst}`);
  },
);

nativeTest('colSum over the pool (wide matrices) gives each column its float64 sum in row order, as one thread would', (t) => {
  const be = createNativeBackend();
  const rng = new Random(7);
  // 100×2000 and 3×40000: cut into column blocks on the pool; 100×300: one block
  for (const [rows, cols] of [
    [100, 2000],
    [3, 40000],
    [100, 300],
  ] as const) {
    const host = new Float32Array(rows * cols);
    for (let i = 0; i < host.length; i++) host[i] = rng.uniform() - 0.25;
    const x = be.alloc(rows, cols);
    be.write(x, host);
    const start = new Float32Array(cols);
    for (let j = 0; j < cols; j++) start[j] = rng.uniform();
    for (const [alpha, beta] of [
      [0.01, 0],
      [-0.37, 1],
    ] as const) {
      const out = be.alloc(1, cols);
      be.write(out, start);
      be.colSum(out, x, alpha, beta);
      const got = values(be, out);
      let bad = -1;
      for (let j = 0; j < cols && bad < 0; j++) {
        let acc = 0;
        for (let i = 0; i < rows; i++) acc += host[i * cols + j]!;
        const want = Math.fround(beta === 0 ? alpha * acc : alpha * acc + beta * start[j]!);
        if (got[j] !== want) bad = j;
      }
      t.is(bad, -1, `${rows}x${cols}, alpha ${alpha}, beta ${beta}: column ${bad} differs`);
    }
  }
  be.dispose();
});

nativeTest('fillUniform draws the numbers of Random.fillUniform from the same state, and leaves the same state', (t) => {
  const be = createNativeBackend();
  const host = new Random(42);
  const dev = new Random(42);
  // A pending normal deviate must survive a draw through the kernel.
  t.is(host.normal(), dev.normal());
  // from 8192 on the kernel runs eight streams started by jump-ahead, the rest serially, and from
  // 32768 on eight per thread of the pool: sizes on both sides of each, with a remainder, and one
  // twice (its jump is remembered)
  for (const n of [1, 7, 5000, 8191, 8192, 8199, 32767, 32768, 32785, 65543, 200000, 200000]) {
    const want = host.fillUniform(new Float32Array(n));
    const out = be.alloc(1, n);
    dev.drawWith((state) => be.fillUniform!(out, state));
    const got = values(be, out);
    const first = got.findIndex((v, i) => v !== want[i]);
    t.is(first, -1, `${n} uniforms: the first that differs is #${first}`);
    t.deepEqual(dev.getState(), host.getState(), `the state after ${n} uniforms`);
  }
  t.deepEqual(dev.getState(), host.getState());
  t.is(dev.normal(), host.normal(), 'the kept normal deviate is still there');
  t.throws(() => be.fillUniform!(be.alloc(1, 2), new Uint32Array(3)), {
    instanceOf: RangeError,
    message: /'state' has 3 words, expected 4/,
  });
  be.dispose();
});

nativeTest('hostFrame: aligned, writable buffers whose memory is reused only once they are collected', (t) => {
  // In a child with --expose-gc: frames still referenced keep their bytes through collections
  // and through later frames of the same size, which may reuse the blocks of collected ones.
  const script = `
    const { createNativeBackend } = await import('./src/kernels/native/index.ts');
    const be = createNativeBackend();
    const n = 1 << 20;
    const fill = (b, v) => { b.fill(v); return b; };
    const held = [];
    let ok = true;
    for (let round = 0; round < 6; round++) {
      held.push(fill(be.hostFrame(n), 10 + round));
      for (let i = 0; i < 20; i++) fill(be.hostFrame(n), 200);
      globalThis.gc();
      await new Promise((r) => setImmediate(r));
      globalThis.gc();
      held.forEach((b, i) => { if (b.length !== n || b[0] !== 10 + i || b[n - 1] !== 10 + i || b.byteOffset % 4 !== 0) ok = false; });
    }
    const empty = be.hostFrame(0);
    console.log(JSON.stringify({ ok, empty: empty.length, isBuffer: Buffer.isBuffer(held[0]) }));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import=tsx', '--input-type=module', '-e', script], {
    cwd: repo,
    encoding: 'utf8',
  });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { ok: true, empty: 0, isBuffer: true });
});

test('importing the module does not load the addon', (t) => {
  t.plan(1);
  if (process.platform !== 'linux') {
    t.pass('needs /proc/self/maps');
    return;
  }
  const script =
    "await import('./src/kernels/native/index.ts');" +
    "const fs = await import('node:fs');" +
    "console.log(fs.readFileSync('/proc/self/maps', 'utf8').includes('dbn_native.node') ? 'loaded' : 'not loaded');";
  const run = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8' });
  t.is(run.stdout.trim(), 'not loaded', run.stderr);
});

test('without a built addon, createNativeBackend throws BackendUnavailableError quoting the install script', async (t) => {
  // A copy of the backend module beside an empty build folder, as the install script leaves it after a failure.
  const dir = mkdtempSync(join(tmpdir(), 'dbn-native-'));
  try {
    for (const f of ['src/errors.ts', 'src/kernels/backend.ts', 'src/kernels/host/checks.ts', 'src/kernels/native/index.ts']) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      copyFileSync(join(repo, f), join(dir, f));
    }
    mkdirSync(join(dir, 'src/kernels/native/build'));
    writeFileSync(join(dir, 'src/kernels/native/build/BUILD_FAILED.txt'), 'the OpenBLAS header cblas.h was not found\n');
    const copy = (await import(pathToFileURL(join(dir, 'src/kernels/native/index.ts')).href)) as { createNativeBackend: () => Backend };
    const err = t.throws(() => copy.createNativeBackend());
    t.is(err?.name, BackendUnavailableError.name);
    t.is((err as BackendUnavailableError).code, 'EBACKEND');
    t.regex(
      err?.message ?? '',
      /no prebuilt binary for \w+-\w+ and the addon was not built: the OpenBLAS header cblas\.h was not found\. .*libopenblas0.*libopenblas-dev.*npm rebuild dbn-node/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
