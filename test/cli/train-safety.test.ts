import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Dbn } from '../../src/dbn/index.js';
import { createBackend } from '../../src/kernels/index.js';
import { describeFatalCheckpoint, rejoinAdvice, saveCheckpointOnFatal } from '../../src/cli/fatal-checkpoint.js';

const bin = path.resolve('bin/dbn-node.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-train-safety-'));
const SMALL = ['--limit', '120', '--layers', '12', '--finetune', '0', '--no-pictures', '--backend', 'js', '--seed', '5'];

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', bin, 'train', ...SMALL, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DBN_NODE_DEV: '1' },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function resumable(file: string): number {
  const backend = createBackend('js');
  try {
    const dbn = Dbn.resume(file, { backend });
    const epochs = dbn.layers[0]!.epochsTrained;
    dbn.dispose();
    return epochs;
  } finally {
    backend.dispose();
  }
}

test('--resume and a fresh run follow the --force rule: model.dbn and an earlier checkpoint are never replaced silently', (t) => {
  const out = path.join(dir, 'run');
  const first = cli(['--epochs', '2', '--checkpoint-every', '1', '--out', out]);
  t.is(first.code, 0, first.stderr);
  const model = path.join(out, 'model.dbn');
  const checkpoint = path.join(out, 'checkpoint.dbn');
  const before = fs.readFileSync(model);
  const resumed = cli(['--epochs', '3', '--resume', checkpoint, '--out', out]);
  t.is(resumed.code, 1);
  t.regex(resumed.stderr, /--out: '.*model\.dbn' exists; pass --force to overwrite it/);
  t.deepEqual(fs.readFileSync(model), before, 'model.dbn untouched');

  fs.rmSync(model);
  const fresh = cli(['--epochs', '1', '--out', out]);
  t.is(fresh.code, 1);
  t.regex(fresh.stderr, /--out: '.*checkpoint\.dbn' exists; pass --force/, 'a fresh run does not replace the checkpoint of an earlier one');

  const again = cli(['--epochs', '3', '--resume', checkpoint, '--out', out]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /resumed from/);
  t.true(fs.existsSync(model));
});

test('a crash in a single-process run saves a checkpoint first and says where', (t) => {
  if (!fs.existsSync('/dev/full')) {
    t.pass('no /dev/full on this system to make a write fail');
    return;
  }
  const out = path.join(dir, 'crash');
  // --metrics /dev/full: the first epoch's metrics write fails with ENOSPC, in the middle of pretraining.
  const r = cli(['--epochs', '50', '--out', out, '--metrics', '/dev/full']);
  t.is(r.code, 1);
  t.regex(r.stderr, /ENOSPC/);
  const checkpoint = path.join(out, 'checkpoint.dbn');
  t.true(r.stdout.includes(`training failed: checkpoint saved to ${checkpoint} (continue with --resume ${checkpoint})`), r.stdout);
  t.is(resumable(checkpoint), 1, 'the checkpoint holds the finished epoch');
  t.false(fs.existsSync(path.join(out, 'model.dbn')));
});

test('SIGTERM in a single-process run saves a checkpoint and says where', async (t) => {
  const out = path.join(dir, 'term');
  const child = spawn(process.execPath, ['--import', 'tsx', bin, 'train', ...SMALL, '--epochs', '100000', '--out', out], {
    env: { ...process.env, DBN_NODE_DEV: '1' },
  });
  let stdout = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (/layer 0 epoch 0:/.test(stdout)) resolve();
    });
  });
  child.kill('SIGTERM');
  t.is(await exited, 130);
  const checkpoint = path.join(out, 'checkpoint.dbn');
  t.regex(stdout, /checkpoint saved to .*checkpoint\.dbn \(continue with --resume/);
  t.true(resumable(checkpoint) >= 1);
});

test('saveCheckpointOnFatal never throws: a failed save is returned', (t) => {
  const failing = {
    save: (): void => {
      throw new Error('disk on fire');
    },
  };
  const r = saveCheckpointOnFatal(failing, path.join(dir, 'x.dbn'));
  t.false(r.saved);
  t.is(r.saved ? '' : r.error.message, 'disk on fire');
  const calls: unknown[] = [];
  const ok = saveCheckpointOnFatal({ save: (f, o): void => void calls.push([f, o]) }, 'c.dbn');
  t.true(ok.saved);
  t.deepEqual(calls, [['c.dbn', { overwrite: true, trainingState: true }]]);
});

test('a peer dropped from a run that goes on, or cut off from it, is told to rejoin with the same command, not to --resume', (t) => {
  const saved = { saved: true as const, path: '/r/p2/checkpoint.dbn' };
  for (const code of ['EEXCLUDED', 'EQUORUM'])
    t.is(
      describeFatalCheckpoint(saved, `peer training failed (${code})`, rejoinAdvice(code)),
      `peer training failed (${code}): checkpoint saved to /r/p2/checkpoint.dbn (restart the same command to rejoin the run: it takes the running peers' model from a snapshot; --resume this checkpoint only if the whole run is gone)`,
    );
  t.is(
    describeFatalCheckpoint(saved, 'peer training failed (EPROTOCOL)', rejoinAdvice('EPROTOCOL')),
    'peer training failed (EPROTOCOL): checkpoint saved to /r/p2/checkpoint.dbn (continue with --resume /r/p2/checkpoint.dbn)',
  );
});
