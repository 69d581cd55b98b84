/**
 * The package's entry points as package.json declares them: every export condition points at
 * the build of an entry module that exists, the root serves what applications use, and the wire
 * format internals are in `dbn-node/sync` only. (The packed package itself, ESM and CommonJS, is
 * checked by scripts/consumer-check.sh in CI.)
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as root from '../src/index.js';
import * as sync from '../src/sync-entry.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
  exports: Record<string, string | Record<string, string>>;
  files: string[];
  license: string;
  repository?: { url?: string };
};

test('every export condition points at dist/<entry>.js (or .d.ts) of a source entry that exists', (t) => {
  t.deepEqual(Object.keys(pkg.exports).sort(), ['.', './package.json', './sync']);
  t.is(pkg.exports['./package.json'], './package.json');
  for (const [subpath, entry] of [
    ['.', 'index'],
    ['./sync', 'sync-entry'],
  ] as const) {
    const conditions = pkg.exports[subpath] as Record<string, string>;
    t.deepEqual(
      Object.keys(conditions),
      ['types', 'import', 'require', 'default'],
      `${subpath}: types first, then import, require, default`,
    );
    t.is(conditions['types'], `./dist/${entry}.d.ts`);
    for (const c of ['import', 'require', 'default']) t.is(conditions[c], `./dist/${entry}.js`, `${subpath} ${c}`);
    t.true(fs.existsSync(path.join(dir, 'src', `${entry}.ts`)), `src/${entry}.ts`);
  }
  t.true(pkg.files.includes('LICENSE') && fs.existsSync(path.join(dir, 'LICENSE')));
  t.is(pkg.license, 'MIT');
  t.regex(fs.readFileSync(path.join(dir, 'LICENSE'), 'utf8'), /^MIT License/);
  t.truthy(pkg.repository?.url);
});

test('the root serves models, backends, data and peers; the wire format is only in dbn-node/sync', (t) => {
  const rootNames = new Set(Object.keys(root));
  for (const name of [
    'Rbm',
    'Dbn',
    'createJsBackend',
    'defaultBackend',
    'loadBundledDigits',
    'MissingPackageError',
    'Peer',
    'PeerTrainer',
    'generateKeyPair',
    'readKeyPair',
    'modelFingerprint',
  ]) {
    t.true(rootNames.has(name), `root exports ${name}`);
  }
  for (const name of [
    'decode',
    'encodeDelta',
    'encodeDeltaFrames',
    'WIRE_VERSION',
    'crc32',
    'encodeFloat16',
    'DeltaGuard',
    'encodeFingerprint',
    'sameSequences',
  ]) {
    t.false(rootNames.has(name), `root does not export ${name}`);
    t.true(name in sync, `dbn-node/sync exports ${name}`);
  }
  t.is(sync.Peer, root.Peer, 'one Peer class for both entry points');
});
