/** `--log-format`: text keeps the summary lines and marks what needs an operator with WARN; JSON is one object per line; peers are named next to their ids. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunLog, loggedProgress } from '../../src/cli/observe/log.js';
import type { Progress } from '../../src/cli/progress.js';

function capture(): { progress: Progress; lines: string[] } {
  const lines: string[] = [];
  return { lines, progress: { start: () => undefined, update: () => undefined, stop: () => undefined, line: (l) => lines.push(l) } };
}

const who = { name: 'p0', id: 'c41bae05'.padEnd(32, '0'), nameOf: (short: string) => (short === '73118c22' ? 'p1' : undefined) };

test('text: summary lines unchanged, events as "peer <event>: …" with WARN for lost peers and refusals, peers named', (t) => {
  const { progress, lines } = capture();
  const log = new RunLog(progress, 'text', who);
  loggedProgress(progress, log).line('layer 0 epoch 1: recon 0.0559');
  log.groupEvent({ event: 'peer-lost', detail: '73118c22 (tcp://127.0.0.1:7791): not heard for 5012 ms' });
  log.groupEvent({ event: 'view', detail: 'view 2: 2 member(s) after round 40; dropped 73118c22' });
  log.groupEvent({ event: 'refused', detail: 'hello from tcp://x:1: its id 0badc0de does not derive from its key' });
  log.event('barrier-wait', 'waited 12.0 s for the peers at one round barrier', 'warn');
  t.deepEqual(lines, [
    'layer 0 epoch 1: recon 0.0559',
    'WARN: peer peer-lost: p1 (73118c22) (tcp://127.0.0.1:7791): not heard for 5012 ms',
    'peer view: view 2: 2 member(s) after round 40; dropped p1 (73118c22)',
    'WARN: peer refused: hello from tcp://x:1: its id 0badc0de does not derive from its key',
    'WARN: peer barrier-wait: waited 12.0 s for the peers at one round barrier',
  ]);
});

test('json: one object per line with time, level, name and id', (t) => {
  const { progress, lines } = capture();
  const log = new RunLog(progress, 'json', who);
  loggedProgress(progress, log).line('model saved to run/model.dbn');
  log.groupEvent({ event: 'peer-lost', detail: '73118c22: left the run' });
  const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(a, { level: 'info', name: 'p0', id: who.id, msg: 'model saved to run/model.dbn' });
  t.like(b, { level: 'warn', name: 'p0', event: 'peer-lost', detail: 'p1 (73118c22): left the run' });
  t.false(Number.isNaN(Date.parse(a!['time'] as string)));
});

function cli(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('bin/dbn-node.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, DBN_NODE_DEV: '1' },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('train in one process with --metrics-port 0 --log-format json: every line is JSON, the server is announced, the run ends', (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-log-'));
  const r = cli([
    'train',
    '--limit',
    '300',
    '--layers',
    '16',
    '--epochs',
    '1',
    '--finetune',
    '1',
    '--associative',
    '0',
    '--no-pictures',
    '--metrics-port',
    '0',
    '--name',
    'solo',
    '--log-format',
    'json',
    '--out',
    out,
  ]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(lines.every((l) => l['name'] === 'solo' && l['level'] === 'info' && typeof l['msg'] === 'string'));
  t.regex(lines.map((l) => l['msg']).join('\n'), /metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
  t.regex(lines.map((l) => l['msg']).join('\n'), /fine-tune epoch 0: loss [\d.]+ {2}train acc [\d.]+ {2}val acc [\d.]+/);
});

test('bad observation flags are one clear error each', (t) => {
  const bad = cli(['train', '--limit', '300', '--name', 'two words', '--out', path.join(os.tmpdir(), 'dbn-never')]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /InvalidOptionError: --name must be 1-64 characters of \[A-Za-z0-9._:-\], got 'two words'/);
  const host = cli(['train', '--limit', '300', '--metrics-host', '0.0.0.0', '--out', path.join(os.tmpdir(), 'dbn-never')]);
  t.regex(host.stderr, /--metrics-host needs --metrics-port/);
  const status = cli(['status', '--url', 'http://127.0.0.1:9/']);
  t.is(status.code, 1);
  t.regex(status.stderr, /StatusError: Cannot reach http:\/\/127\.0\.0\.1:9\/status/);
});
