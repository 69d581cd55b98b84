// The prebuilt native addon (prebuilds/<platform>-<arch>/node.napi.node, scripts/prebuild.mjs):
// portable (no AVX outside the run-time-dispatched clones), current (the functions and results of
// the source build), and found by the loader when there is no source build.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prebuilt = join(repo, 'prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node');
const sourceBuilt = join(repo, 'src', 'kernels', 'native', 'build', 'Release', 'dbn_native.node');
const hasObjdump = spawnSync('objdump', ['--version']).status === 0;
const isLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

/**
 * Functions of an x86-64 ELF file that contain a VEX/EVEX-encoded (AVX or later) instruction.
 * Baseline x86-64 has only SSE/SSE2, whose mnemonics never start with `v` (but `verr`/`verw`).
 */
function functionsWithAvx(file: string): Set<string> {
  const dump = spawnSync('objdump', ['-d', '--no-show-raw-insn', '-C', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const found = new Set<string>();
  let current = '';
  for (const line of dump.stdout.split('\n')) {
    const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
    if (head !== null) {
      current = head[1]!;
      continue;
    }
    const mnemonic = line.split('\t')[1]?.trim().split(/\s+/)[0] ?? '';
    if (mnemonic.startsWith('v') && !/^ver[rw]$/.test(mnemonic)) found.add(current);
  }
  return found;
}

/** A clone chosen at load time by the CPU (target_clones), or a helper called only after a CPU check. */
const guarded = (name: string): boolean =>
  /\[clone \.arch_x86_64_v[34]\]$/.test(name) ||
  /^dbn::\(anonymous namespace\)::((To|From)HalvesF16c|ScanRowAvx2|NibbleRowAvx2)\(/.test(name);

for (const [label, file] of [
  ['prebuilt', prebuilt],
  ['source-built', sourceBuilt],
] as const) {
  const run = isLinuxX64 && hasObjdump && existsSync(file) ? test : test.skip;
  run(`the ${label} addon has no AVX instruction outside its run-time-dispatched clones (runs on any x86-64)`, (t) => {
    const avx = functionsWithAvx(file);
    const unguarded = [...avx].filter((f) => !guarded(f));
    t.deepEqual(unguarded, []);
    // The dispatch is there: AVX-512 and AVX2 clones of the sigmoid loop.
    t.true([...avx].some((f) => f.startsWith('dbn::SigmoidBiasInPlace') && f.endsWith('[clone .arch_x86_64_v4]')));
    t.true([...avx].some((f) => f.startsWith('dbn::SigmoidBiasInPlace') && f.endsWith('[clone .arch_x86_64_v3]')));
  });
}

type Addon = Record<string, (...args: unknown[]) => unknown>;

const both = isLinuxX64 && existsSync(prebuilt) && existsSync(sourceBuilt) && process.env.DBN_NODE_SKIP_NATIVE !== '1' ? test : test.skip;
both("the prebuilt addon is current: the source build's functions, and the same bits on this CPU", (t) => {
  const require = createRequire(import.meta.url);
  const pre = require(prebuilt) as Addon;
  const src = require(sourceBuilt) as Addon;
  t.deepEqual(Object.keys(pre).sort(), Object.keys(src).sort(), 'rebuild it with `npm run build:prebuild`');
  const m = 37,
    k = 61,
    n = 45;
  const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i) * 0.7);
  const w = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i * 1.3) * 0.5);
  const bias = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3);
  const outs = [pre, src].map((addon) => {
    const out = new Float32Array(m * n);
    addon['linearSigmoid']!(out, x, w, bias, m, n, k, true);
    return out;
  });
  t.deepEqual(outs[0], outs[1]);
  t.true(outs[0]!.every((v) => v > 0 && v < 1));
});

const loader = isLinuxX64 && existsSync(prebuilt) && process.env.DBN_NODE_SKIP_NATIVE !== '1' ? test : test.skip;
loader('without a source build, createNativeBackend loads the prebuilt binary (node-gyp-build layout)', (t) => {
  // A copy of the package without src/kernels/native/build: only prebuilds/ to load from.
  const dir = mkdtempSync(join(tmpdir(), 'dbn-prebuilt-'));
  try {
    for (const f of [
      'package.json',
      'src/errors.ts',
      'src/kernels/backend.ts',
      'src/kernels/host/checks.ts',
      'src/kernels/native/index.ts',
      `prebuilds/${process.platform}-${process.arch}/node.napi.node`,
    ]) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      copyFileSync(join(repo, f), join(dir, f));
    }
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
    const script =
      "const { createNativeBackend } = await import('./src/kernels/native/index.ts');" +
      'const b = createNativeBackend();' +
      "const fs = await import('node:fs');" +
      "const maps = fs.readFileSync('/proc/self/maps', 'utf8');" +
      'const a = b.alloc(2, 3); b.write(a, Float32Array.of(1, 2, 3, 4, 5, 6));' +
      'const c = b.alloc(3, 2); b.write(c, Float32Array.of(7, 8, 9, 10, 11, 12));' +
      'const o = b.alloc(2, 2); b.gemm(o, a, c); const r = new Float32Array(4); b.read(o, r);' +
      "console.log(JSON.stringify({ prebuilt: maps.includes('node.napi.node'), out: [...r], description: b.info.description }));";
    const run = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' });
    t.is(run.status, 0, run.stderr);
    const got = JSON.parse(run.stdout.trim()) as { prebuilt: boolean; out: number[]; description: string };
    t.true(got.prebuilt);
    t.deepEqual(got.out, [58, 64, 139, 154]);
    t.regex(got.description, /^native \(OpenBLAS .*, (avx512|avx2|baseline) loops\)$/);
    // DBN_NODE_NO_PREBUILT=1 turns it off, and the reason says how to get native.
    const off = spawnSync(
      process.execPath,
      [
        '--import=tsx',
        '--input-type=module',
        '-e',
        "const m = await import('./src/kernels/native/index.ts'); try { m.createNativeBackend(); } catch (e) { console.log(e.message); }",
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, DBN_NODE_NO_PREBUILT: '1' } },
    );
    t.regex(
      off.stdout,
      /no prebuilt binary for linux-x64 and the addon was not built: no build output was found\. .*libopenblas0.*npm rebuild dbn-node/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const installTest = isLinuxX64 && existsSync(prebuilt) && process.env.DBN_NODE_SKIP_NATIVE !== '1' ? test : test.skip;
installTest(
  'the install script of an installed package uses a prebuilt binary that loads, and falls back to the source build with both reasons',
  (t) => {
    // An installed package: no .git, the install script and prebuilds/ (and no sources to build).
    const dir = mkdtempSync(join(tmpdir(), 'dbn-install-'));
    const binary = join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node');
    try {
      mkdirSync(join(dir, 'scripts'));
      mkdirSync(dirname(binary), { recursive: true });
      copyFileSync(join(repo, 'scripts', 'build-native.mjs'), join(dir, 'scripts', 'build-native.mjs'));
      copyFileSync(prebuilt, binary);
      const install = (env: Record<string, string> = {}) =>
        spawnSync(process.execPath, [join(dir, 'scripts', 'build-native.mjs')], {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, ...env },
        });
      const ok = install();
      t.is(ok.status, 0);
      t.regex(ok.stdout, /using the prebuilt native backend \(prebuilds\/linux-x64\/node\.napi\.node\)/);
      t.false(existsSync(join(dir, 'src', 'kernels', 'native', 'build')), 'nothing compiled');
      // A binary that does not load (here: not a shared object) and no OpenBLAS headers: the js backend, both reasons recorded.
      writeFileSync(binary, 'not an ELF file');
      const failed = install({ DBN_NODE_BLAS_INCLUDE: join(dir, 'no-such-dir') });
      t.is(failed.status, 0, 'an install never fails on the addon');
      const recorded = readFileSync(join(dir, 'src', 'kernels', 'native', 'build', 'BUILD_FAILED.txt'), 'utf8');
      t.regex(recorded, /^the prebuilt binary did not load \(.*\); the OpenBLAS header cblas\.h was not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// CPUs without AVX-512 (and without AVX), emulated by qemu-user when it is installed (Debian: qemu-user).
const hasQemu = isLinuxX64 && spawnSync('qemu-x86_64', ['--version']).status === 0;
const emulated = hasQemu && existsSync(prebuilt) && process.env.DBN_NODE_SKIP_NATIVE !== '1' ? test : test.skip;
emulated('on emulated older CPUs the prebuilt addon runs the clone each supports: baseline on Nehalem (SSE4.2), avx2 on Haswell', (t) => {
  const script =
    'const a = require(process.argv[1]);' +
    'const m = 37, k = 61, n = 45;' +
    'const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i) * 0.7);' +
    'const w = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i * 1.3) * 0.5);' +
    'const bias = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3);' +
    'const out = new Float32Array(m * n);' +
    'a.linearSigmoid(out, x, w, bias, m, n, k, true);' +
    'let maxErr = 0;' +
    'for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {' +
    '  let z = bias[j]; for (let p = 0; p < k; p++) z += x[i * k + p] * w[j * k + p];' +
    '  maxErr = Math.max(maxErr, Math.abs(out[i * n + j] - 1 / (1 + Math.exp(-z))));' +
    '}' +
    // a 0/1 factor with few ones (sums of rows: the scan's AVX2 or serial path), against exact whole-number sums
    'const xb = Float32Array.from({ length: m * k }, (_, i) => ((i * 7) % 11 === 0 ? 1 : 0));' +
    'const wb = Float32Array.from({ length: k * n }, (_, i) => (i % 13) - 6);' +
    'let binaryErr = 0;' +
    'for (const transA of [false, true]) {' +
    '  const ob = new Float32Array(m * n); a.gemm(ob, xb, wb, m, n, k, transA, false, 1, 0);' +
    '  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {' +
    '    let z = 0; for (let p = 0; p < k; p++) z += (transA ? xb[p * m + i] : xb[i * k + p]) * wb[p * n + j];' +
    '    binaryErr = Math.max(binaryErr, Math.abs(ob[i * n + j] - z));' +
    '  }' +
    '}' +
    // a 0/1 factor at half density times wᵀ (the tables: the scan's AVX2 or serial path, each clone's sums)
    'const xt = Float32Array.from({ length: m * k }, (_, i) => ((i * 5) % 7 < 3 ? 1 : 0));' +
    'const wt = Float32Array.from({ length: n * k }, (_, i) => (i % 13) - 6);' +
    'const ot = new Float32Array(m * n); a.gemm(ot, xt, wt, m, n, k, false, true, 1, 0);' +
    'let tableErr = 0;' +
    'for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {' +
    '  let z = 0; for (let p = 0; p < k; p++) z += xt[i * k + p] * wt[j * k + p];' +
    '  tableErr = Math.max(tableErr, Math.abs(ot[i * n + j] - z));' +
    '}' +
    'console.log(JSON.stringify({ simd: a.blasInfo().simd, maxErr, binaryErr, tableErr }));';
  for (const [cpu, level] of [
    ['Nehalem', 'baseline'],
    ['Haswell', 'avx2'],
  ] as const) {
    const run = spawnSync('qemu-x86_64', ['-cpu', cpu, process.execPath, '-e', script, prebuilt], { encoding: 'utf8', timeout: 120_000 });
    t.is(
      run.status,
      0,
      `${cpu}: ${run.stderr
        .split('\n')
        .filter((l) => !l.includes("TCG doesn't support"))
        .join('\n')}`,
    );
    const got = JSON.parse(run.stdout.trim()) as { simd: string; maxErr: number; binaryErr: number; tableErr: number };
    t.is(got.simd, level, cpu);
    t.true(got.maxErr < 1e-6, `${cpu}: max error ${got.maxErr}`);
    t.is(got.binaryErr, 0, `${cpu}: 0/1 factor`);
    t.is(got.tableErr, 0, `${cpu}: 0/1 factor times wᵀ`);
  }
});
