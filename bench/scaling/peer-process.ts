/**
 * Running `dbn-node train` for bench/scaling.ts as a user runs it: the built CLI (`dist/`, or the
 * TypeScript sources through tsx with `dev`), pinned to one core with `taskset`, one BLAS thread,
 * optionally inside a network namespace; and CURVE keys made with `dbn-node keygen`.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

const bin = path.resolve('bin/dbn-node.js');

/** How to start the CLI: the built `dist/` (what users run) or the sources through tsx. */
export interface CliMode {
  readonly dev: boolean;
}

function nodeArgs(mode: CliMode, args: readonly string[]): { argv: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
  if (mode.dev) env['DBN_NODE_DEV'] = '1';
  else delete env['DBN_NODE_DEV'];
  return { argv: [process.execPath, ...(mode.dev ? ['--import', 'tsx'] : []), bin, ...args], env };
}

/** What one finished `train` process left: its output lines and its `--metrics` records. */
export interface TrainResult {
  readonly name: string;
  readonly lines: readonly string[];
  readonly records: readonly Record<string, unknown>[];
  /** `Date.now()` when the process was spawned. */
  readonly launchedAt: number;
  readonly exitedAt: number;
  readonly out: string;
}

/** Where and how one peer process runs. */
export interface Placement {
  /** The core it is pinned to (`taskset -c`). */
  readonly core: number;
  /** A network namespace to run in (`ip netns exec`). */
  readonly netns?: string | undefined;
}

/**
 * Runs `dbn-node train <args> --metrics <dir>/<name>.jsonl --out <dir>/<name>` to its end.
 * Rejects with the output's tail when it exits non-zero; `register` receives the child so the
 * caller can kill it on an interrupt.
 */
export function runTrain(
  mode: CliMode,
  dir: string,
  name: string,
  args: readonly string[],
  where: Placement,
  register: (kill: () => void) => void,
): Promise<TrainResult> {
  const metrics = path.join(dir, `${name}.jsonl`);
  const out = path.join(dir, name);
  const { argv, env } = nodeArgs(mode, ['train', ...args, '--metrics', metrics, '--out', out, '--no-pictures']);
  const pinned = ['taskset', '-c', String(where.core), ...argv];
  const full = where.netns === undefined ? pinned : ['ip', 'netns', 'exec', where.netns, ...pinned];
  const launchedAt = Date.now();
  const child = spawn(full[0]!, full.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  register(() => child.kill('SIGKILL'));
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (text += b.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const exitedAt = Date.now();
      fs.writeFileSync(path.join(dir, `${name}.log`), text);
      if (code !== 0) {
        reject(new Error(`${name} exited with ${code ?? signal}:\n${text.slice(-3000)}`));
        return;
      }
      resolve({ name, lines: text.split('\n'), records: readRecords(metrics), launchedAt, exitedAt, out });
    });
  });
}

function readRecords(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Makes `count` key pairs with `dbn-node keygen` under `dir/p<i>`, each allowing every other's public key. Returns the public keys. */
export function makeKeys(mode: CliMode, dir: string, count: number): string[] {
  const publicKeys: string[] = [];
  for (let i = 0; i < count; i++) {
    const keyDir = path.join(dir, `p${i}`);
    const { argv, env } = nodeArgs(mode, ['keygen', '--dir', keyDir, '--quiet']);
    execFileSync(argv[0]!, argv.slice(1), { env, stdio: 'ignore' });
    publicKeys.push(fs.readFileSync(path.join(keyDir, 'curve.pub'), 'utf8').trim());
  }
  for (let i = 0; i < count; i++) {
    fs.mkdirSync(path.join(dir, `p${i}`, 'peers'), { recursive: true });
    for (let j = 0; j < count; j++) if (j !== i) fs.writeFileSync(path.join(dir, `p${i}`, 'peers', `p${j}.pub`), `${publicKeys[j]}\n`);
  }
  return publicKeys;
}

/** `count` TCP ports free on 127.0.0.1 right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
