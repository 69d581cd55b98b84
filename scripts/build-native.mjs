#!/usr/bin/env node
// Builds the native backend's addon (src/kernels/native → build/Release/dbn_native.node) with
// node-gyp, offline — unless the package was installed (not a git checkout) with a prebuilt
// binary for this platform (prebuilds/<platform>-<arch>/node.napi.node, see scripts/prebuild.mjs)
// that loads here, in which case nothing is compiled. A prebuilt binary that does not load (no
// libopenblas.so.0, say) falls back to the build from source, and a failure names both reasons.
// This is the package's `install` script, so it never fails the install:
// on any failure it prints one warning, records the reason in build/BUILD_FAILED.txt (the
// native backend quotes it when it cannot load) and exits 0; dbn-node then runs on the `js` backend.
//
// Environment:
//   DBN_NODE_SKIP_NATIVE=1     do not build; record "skipped" as the reason (forces the soft-failure path).
//   DBN_NODE_BUILD_FROM_SOURCE=1  build from source even where a prebuilt binary loads.
//   DBN_NODE_SIMD_MAX=avx2     (with a build from source) no AVX-512 clones of the hot loops: an AVX-512 CPU then runs
//                              the AVX2 ones, to measure those paths there (bench/RESULTS.md, with OPENBLAS_CORETYPE=Haswell).
//   DBN_NODE_BLAS_INCLUDE=dir  the folder of cblas.h, when not a standard include folder (only it is
//                              searched, so pointing it at a missing folder simulates a machine without OpenBLAS).
//   npm_config_node_gyp        node-gyp to run (npm sets it during scripts); else node-gyp on PATH,
//                              else the node-gyp bundled with npm.
//   npm_config_nodedir         node headers; else the running node's prefix when it has include/node.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'src', 'kernels', 'native');
const buildDir = join(addonDir, 'build');
const failureFile = join(buildDir, 'BUILD_FAILED.txt');
const logFile = join(buildDir, 'build.log');

/** Why the prebuilt binary was not used, when it was there and did not load (prefixed to a build failure). */
let prebuiltProblem = '';

function softFail(why, log) {
  const reason = `${prebuiltProblem}${why}`;
  try {
    rmSync(buildDir, { recursive: true, force: true });
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(failureFile, `${reason}\n`);
    if (log) writeFileSync(logFile, log);
  } catch {
    // Nothing more to record; the warning below still says why.
  }
  console.warn(
    `dbn-node: warning: the native backend was not built (${reason}). dbn-node will use the 'js' backend. ` +
      'To build it, install libopenblas-dev and a C++ toolchain, then run `npm rebuild dbn-node`' +
      (log ? ` (full log: ${logFile}).` : '.'),
  );
  process.exit(0);
}

function findCblasHeader() {
  // An explicit DBN_NODE_BLAS_INCLUDE is the only place looked at (it also lets one simulate a missing header).
  const dirs =
    process.env.DBN_NODE_BLAS_INCLUDE !== undefined
      ? [process.env.DBN_NODE_BLAS_INCLUDE]
      : [
          ...(process.env.CPATH ?? '').split(delimiter),
          ...(process.env.CPLUS_INCLUDE_PATH ?? '').split(delimiter),
          '/usr/include',
          '/usr/include/x86_64-linux-gnu',
          '/usr/include/aarch64-linux-gnu',
          '/usr/include/openblas',
          '/usr/local/include',
          '/usr/local/include/openblas',
          '/opt/homebrew/opt/openblas/include',
          '/usr/local/opt/openblas/include',
        ];
  return dirs.filter((d) => d !== '').find((d) => existsSync(join(d, 'cblas.h')));
}

function nodeGypCommand() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'node-gyp');
    if (dir !== '' && existsSync(candidate)) return [candidate];
  }
  const bundled = [
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].find((p) => existsSync(p));
  if (bundled) return [process.execPath, bundled];
  return ['npm', 'exec', '--offline', '--no', '--', 'node-gyp'];
}

function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

/**
 * Whether to use the prebuilt binary instead of compiling: an installed package (a git checkout
 * always builds its sources) whose binary for this platform loads. Returns why not, or true.
 */
function prebuiltLoads() {
  const file = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node');
  if (!existsSync(file)) return `no prebuilt binary for ${process.platform}-${process.arch}`;
  if (existsSync(join(root, '.git'))) return 'a git checkout builds from source';
  if (process.env.DBN_NODE_BUILD_FROM_SOURCE === '1') return 'DBN_NODE_BUILD_FROM_SOURCE=1';
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  const why = (probe.stderr ?? '').split('\n').find((l) => /Error/.test(l)) ?? `exit code ${probe.status}`;
  return `the prebuilt binary did not load (${why.trim().slice(0, 300)})`;
}

function main() {
  if (process.env.DBN_NODE_SKIP_NATIVE === '1') softFail('skipped because DBN_NODE_SKIP_NATIVE=1');

  const prebuilt = prebuiltLoads();
  if (prebuilt === true) {
    rmSync(buildDir, { recursive: true, force: true });
    console.log(`dbn-node: using the prebuilt native backend (prebuilds/${process.platform}-${process.arch}/node.napi.node)`);
    return;
  }
  if (prebuilt.startsWith('the prebuilt binary did not load')) prebuiltProblem = `${prebuilt}; `;

  const include = findCblasHeader();
  if (include === undefined) {
    const where = process.env.DBN_NODE_BLAS_INCLUDE ?? 'the standard include folders';
    softFail(
      `the OpenBLAS header cblas.h was not found in ${where} (set DBN_NODE_BLAS_INCLUDE to its folder if it is installed elsewhere)`,
    );
  }

  const [cmd, ...pre] = nodeGypCommand();
  const nodedir = nodeDir();
  const args = [...pre, 'rebuild', '--directory', addonDir, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const env = { ...process.env };
  if (process.env.DBN_NODE_BLAS_INCLUDE) env.CXXFLAGS = `${env.CXXFLAGS ?? ''} -I${process.env.DBN_NODE_BLAS_INCLUDE}`;
  console.log(`dbn-node: building the native backend (${[cmd, ...args].join(' ')})`);
  const result = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;

  if (result.error !== undefined || result.status !== 0 || !existsSync(join(buildDir, 'Release', 'dbn_native.node'))) {
    const why = result.error !== undefined ? `${cmd} could not run: ${result.error.message}` : firstError(output);
    softFail(`node-gyp failed: ${why}`, output);
  }
  rmSync(failureFile, { force: true });
  console.log('dbn-node: native backend built (src/kernels/native/build/Release/dbn_native.node)');
}

try {
  main();
} catch (err) {
  softFail(`the build script failed: ${err instanceof Error ? err.message : String(err)}`);
}

/** The most telling line of a failed build: a compiler/linker error, else node-gyp's own error. */
function firstError(text) {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const compiler = lines.find((l) => /fatal error|error:|cannot find -l|undefined reference/.test(l));
  const gyp = lines
    .find((l) => l.startsWith('gyp ERR! stack Error:'))
    ?.slice('gyp ERR! stack Error:'.length)
    .trim();
  const found = compiler ?? gyp ?? lines.at(-1);
  return found === undefined ? 'no output' : found.replace(/\s+/g, ' ').slice(0, 400);
}
