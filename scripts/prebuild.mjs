#!/usr/bin/env node
// Makes the prebuilt native addon shipped in the package: builds src/kernels/native from source
// (binding.gyp: baseline x86-64 with AVX2/AVX-512 clones of the hot loops, so the binary runs on
// any CPU of the architecture) and copies it (not stripped: test/kernels/native-prebuild.test.ts reads its function names) to prebuilds/<platform>-<arch>/node.napi.node
// — prebuildify's layout, which node-gyp-build (the native backend's loader) looks in. The binary
// is N-API (one file for every Node version) and links the system's libopenblas.so.0.
//
// Build on the oldest glibc the binary should run on (its symbol versions are the floor), e.g.
// Debian 12 / Ubuntu 22.04. Usage: npm run build:prebuild
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'src', 'kernels', 'native', 'build', 'Release', 'dbn_native.node');
const outDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const out = join(outDir, 'node.napi.node');

const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], {
  stdio: 'inherit',
  env: { ...process.env, DBN_NODE_BUILD_FROM_SOURCE: '1' },
});
if (build.status !== 0 || !existsSync(built)) {
  console.error('prebuild: the build from source failed; see src/kernels/native/build/build.log');
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
copyFileSync(built, out);
const probe = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(out)}); console.log(JSON.stringify(a.blasInfo()))`], {
  encoding: 'utf8',
});
if (probe.status !== 0) {
  console.error(`prebuild: ${out} does not load: ${probe.stderr.trim()}`);
  process.exit(1);
}
console.log(`prebuild: ${out} (${statSync(out).size} bytes) ${probe.stdout.trim()}`);
