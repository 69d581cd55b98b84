/**
 * With `--log-format json`, the `--plaintext` warning is a JSON line on stderr like the run's other
 * warnings (`level: 'warn'`, the process's `--name`), not a text line among JSON ones.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const bin = path.resolve('bin/dbn-node.js');
const port = 7700 + (process.pid % 100) * 2;

test('--log-format json: the --plaintext warning is one JSON object on stderr', (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-plainjson-'));
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      bin,
      'train',
      '--bind',
      `tcp://127.0.0.1:${port}`,
      '--peers',
      `tcp://127.0.0.1:${port + 1}`,
      '--plaintext',
      '--start-timeout-ms',
      '300',
      '--log-format',
      'json',
      '--name',
      'bank-a',
      '--limit',
      '200',
      '--epochs',
      '1',
      '--no-pictures',
      '--out',
      out,
    ],
    { env: { ...process.env, DBN_NODE_DEV: '1' }, encoding: 'utf8', timeout: 60_000 },
  );
  fs.rmSync(out, { recursive: true, force: true });
  const lines = r.stderr.split('\n').filter((l) => l.includes('--plaintext'));
  t.is(lines.length, 1, r.stderr);
  const warning = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.is(warning.level, 'warn');
  t.is(warning.name, 'bank-a');
  t.is(warning.event, '--plaintext');
  t.regex(String(warning.detail), /Anyone who can reach these ports can read the model and change it/);
  t.false(Number.isNaN(Date.parse(String(warning.time))));
  t.not(r.status, 0, 'no peer came: the start times out');
});
