/**
 * `dbn-node train` as a user types it, run to its end in a child process on 200 rows for one epoch
 * (no pictures, a fresh output folder removed afterwards): its exit status and stderr.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const bin = path.resolve('bin/dbn-node.js');

export function shortTrain(args: readonly string[]): { status: number | null; stderr: string } {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-short-train-'));
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', bin, 'train', ...args, '--limit', '200', '--epochs', '1', '--no-pictures', '--out', out],
    { env: { ...process.env, DBN_NODE_DEV: '1' }, encoding: 'utf8', timeout: 60_000 },
  );
  fs.rmSync(out, { recursive: true, force: true });
  return { status: r.status, stderr: r.stderr };
}

/** The arguments of a `--plaintext` peer on `port` whose one peer (`port + 1`) never comes: its start times out after 300 ms. */
export function lonePlaintextPeer(port: number): string[] {
  return ['--bind', `tcp://127.0.0.1:${port}`, '--peers', `tcp://127.0.0.1:${port + 1}`, '--plaintext', '--start-timeout-ms', '300'];
}
