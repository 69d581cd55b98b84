/**
 * The dependency rules of ARCHITECTURE.md, read from the import statements of src/: cli → distributed →
 * {dbn, sync}; dbn → rbm → kernels; sync never imports kernels; kernels, rbm and dbn never import sync,
 * distributed or cli.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const src = path.resolve('src');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'build' ? [] : files(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The top-level src folder each relative import of `file` resolves to ('' for files directly under src/). */
function importedAreas(file: string, root = src): { area: string; spec: string }[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((spec) => {
    const rel = path.relative(root, path.resolve(path.dirname(file), spec));
    return { area: rel.includes(path.sep) ? rel.split(path.sep)[0]! : '', spec };
  });
}

const forbidden: Record<string, readonly string[]> = {
  kernels: ['rbm', 'dbn', 'sync', 'distributed', 'cli', 'data'],
  rbm: ['dbn', 'sync', 'distributed', 'cli'],
  dbn: ['sync', 'distributed', 'cli'],
  sync: ['kernels', 'rbm', 'dbn', 'distributed', 'cli'],
  distributed: ['cli'],
  data: ['sync', 'distributed', 'cli'],
};

test('imports under src/ follow the dependency rules', (t) => {
  const violations: string[] = [];
  for (const file of files(src)) {
    const area = path.relative(src, file).split(path.sep)[0]!;
    for (const { area: to, spec } of importedAreas(file)) {
      if (forbidden[area]?.includes(to)) violations.push(`${path.relative(src, file)} imports ${spec} (${area} → ${to})`);
    }
  }
  t.deepEqual(violations, []);
});

test('the import reader sees a forbidden import (the check can fail)', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-arch-'));
  try {
    const probe = path.join(root, 'kernels', 'host', 'probe.ts');
    fs.mkdirSync(path.dirname(probe), { recursive: true });
    fs.writeFileSync(probe, "import { x } from '../../sync/wire.js';\nexport { y } from '../../errors.js';\n");
    t.deepEqual(importedAreas(probe, root), [
      { area: 'sync', spec: '../../sync/wire.js' },
      { area: '', spec: '../../errors.js' },
    ]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
