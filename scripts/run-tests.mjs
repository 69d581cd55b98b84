#!/usr/bin/env node
// Runs the ava suite. Without a display, and where xvfb-run exists, under `xvfb-run -a` so the
// gpu backend's headlessgl and webgpu modes (Mesa llvmpipe) run for real instead of being skipped.
// Ends with one plain summary line: "tests: N passed, N failed, N skipped".
// Dawn's adapter warnings (the gpu backend's webgpu mode, from native code) are held back from
// stderr (src/kernels/gpu/dawn-log.ts) unless DBN_NODE_DAWN_LOGS=1; the summary counts them.
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ava = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const args = [ava, ...process.argv.slice(2)];
const hasXvfb = spawnSync('sh', ['-c', 'command -v xvfb-run'], { stdio: 'ignore' }).status === 0;
const wrap = !process.env.DISPLAY && hasXvfb && process.env.DBN_NODE_NO_XVFB !== '1';
const [cmd, argv] = wrap ? ['xvfb-run', ['-a', process.execPath, ...args]] : [process.execPath, args];
if (!wrap) console.log(`(no xvfb-run or a DISPLAY is set: gpu modes that need a display run only if one is present)`);

const { register } = await import('tsx/esm/api');
register();
const { DawnLogFilter } = await import('../src/kernels/gpu/dawn-log.ts');
const dawn = process.env.DBN_NODE_DAWN_LOGS === '1' ? undefined : new DawnLogFilter();

const child = spawn(cmd, argv, { stdio: ['inherit', 'pipe', 'pipe'] });
child.stderr.setEncoding('utf8');
const counts = { passed: 0, failed: 0, skipped: 0 };
const summary = { passed: 0, failed: 0, skipped: 0 };
let pending = '';
const scan = (chunk) => {
  const lines = (pending + chunk.toString()).split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    // per-test marks of ava's verbose reporter
    if (/^\s*✔ /.test(line)) counts.passed++;
    else if (/^\s*✘ /.test(line)) counts.failed++;
    else if (/^\s*- \[skip\]/.test(line)) counts.skipped++;
    // ava's own closing lines (present for passes only when nothing failed)
    const m = /^\s*(\d+) (?:tests?|known failures?) (passed|failed|skipped)/.exec(line);
    if (m) summary[m[2]] += Number(m[1]);
    const u = /^\s*(\d+) (uncaught exceptions?|unhandled rejections?)/.exec(line);
    if (u) counts.failed += Number(u[1]);
  }
};
child.stdout.on('data', (c) => {
  process.stdout.write(c);
  scan(c);
});
child.stderr.on('data', (c) => {
  process.stderr.write(dawn === undefined ? c : dawn.push(c));
  scan(c);
});
child.on('close', (code, signal) => {
  const passed = Math.max(counts.passed, summary.passed);
  const failed = Math.max(counts.failed, summary.failed);
  const skipped = Math.max(counts.skipped, summary.skipped);
  if (dawn !== undefined) process.stderr.write(dawn.end());
  console.log(
    `tests: ${passed} passed, ${failed} failed, ${skipped} skipped${dawn?.held ? ` (${dawn.held} lines of Dawn's adapter warnings held back; DBN_NODE_DAWN_LOGS=1 shows them)` : ''}`,
  );
  process.exitCode = code ?? (signal ? 1 : 0);
  if (process.exitCode === 0 && failed > 0) process.exitCode = 1;
});
