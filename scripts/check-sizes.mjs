#!/usr/bin/env node
// Fails when a source file under src/ that eslint does not read (C++ sources and headers, binding.gyp,
// WGSL, JavaScript workers, …) has more than 600 lines, the limit eslint's `max-lines` sets for the
// TypeScript files (eslint.config.js). Lines are raw lines: blank lines and comments count.
// Build outputs (any `build/` folder) are skipped. Run by `npm run lint`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const maxLines = 600;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Extensions eslint checks itself (with the same limit and its temporary exemptions). */
const lintedByEslint = ['.ts'];

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'build' && entry.name !== 'node_modules') yield* sourceFiles(path);
    } else if (entry.isFile() && !lintedByEslint.some((ext) => entry.name.endsWith(ext))) {
      yield path;
    }
  }
}

function lineCount(text) {
  if (text === '') return 0;
  const newlines = text.split('\n').length - 1;
  return text.endsWith('\n') ? newlines : newlines + 1;
}

const tooLong = [];
for (const file of sourceFiles(join(root, 'src'))) {
  const lines = lineCount(readFileSync(file, 'utf8'));
  if (lines > maxLines) tooLong.push(`${relative(root, file)}: ${lines} lines (at most ${maxLines})`);
}
if (tooLong.length > 0) {
  console.error(`check-sizes: ${tooLong.length} source file(s) too long; split them:\n  ${tooLong.join('\n  ')}`);
  process.exit(1);
}
