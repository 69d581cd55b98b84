/** Spawning real `dbn-node train` peers from source for the multi-process tests, and reading what they write. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readModelFile } from '../../src/rbm/model-file.js';
import { generateKeyPair, writeKeyPair } from '../../src/sync/keys.js';

const bin = path.resolve('bin/dbn-node.js');

/** One running CLI process. */
export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  /** stdout + stderr lines so far. */
  readonly lines: string[];
  readonly metrics: string;
  readonly started: number;
  /** Resolves with the first line from line `from` on (printed or to come) matching `re`; rejects after `ms` or at exit. */
  waitLine(re: RegExp, ms: number, from?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (null when killed by a signal); rejects after `ms`. */
  exited(ms: number): Promise<number | null>;
  readonly running: boolean;
}

/** Every process spawned, so a test's `finally` can kill what is left. */
export const spawned: Proc[] = [];

/**
 * Spawns `dbn-node train <args>` (TypeScript sources through tsx), optionally inside a network
 * namespace, with `--metrics <dir>/<name>.jsonl` added.
 */
export function spawnTrain(dir: string, name: string, args: readonly string[], opts: { readonly netns?: string } = {}): Proc {
  const metrics = path.join(dir, `${name}.jsonl`);
  const node = [process.execPath, '--import', 'tsx', bin, 'train', ...args, '--metrics', metrics, '--out', path.join(dir, name)];
  const [cmd, ...argv] = opts.netns === undefined ? node : ['ip', 'netns', 'exec', opts.netns, ...node];
  const child = spawn(cmd!, argv, { env: { ...process.env, DBN_NODE_DEV: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let exitCode: number | null | undefined;
  const onData = (buf: Buffer, carry: { s: string }): void => {
    carry.s += buf.toString('utf8');
    const parts = carry.s.split('\n');
    carry.s = parts.pop()!;
    lines.push(...parts);
    if (parts.length > 0) fs.appendFileSync(path.join(dir, `${name}.log`), parts.map((l) => `${l}\n`).join(''));
    for (const w of [...waiters]) w();
  };
  const out = { s: '' };
  const err = { s: '' };
  child.stdout!.on('data', (b: Buffer) => onData(b, out));
  child.stderr!.on('data', (b: Buffer) => onData(b, err));
  child.on('exit', (code) => {
    exitCode = code;
    for (const w of [...waiters]) w();
  });
  const proc: Proc = {
    name,
    child,
    lines,
    metrics,
    started: Date.now(),
    get running() {
      return exitCode === undefined;
    },
    waitLine(re, ms, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const l of lines.slice(from)) {
            const m = re.exec(l);
            if (m !== null) {
              done();
              resolve(m);
              return;
            }
          }
          if (exitCode !== undefined) {
            done();
            reject(new Error(`${name} exited (${exitCode}) before printing ${re}:\n${lines.join('\n')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no line matching ${re} within ${ms} ms:\n${lines.slice(-30).join('\n')}`));
        }, ms);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    exited(ms) {
      return new Promise((resolve, reject) => {
        if (exitCode !== undefined) {
          resolve(exitCode);
          return;
        }
        const timer = setTimeout(() => reject(new Error(`${name} still running after ${ms} ms:\n${lines.slice(-30).join('\n')}`)), ms);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
    },
  };
  spawned.push(proc);
  return proc;
}

/** SIGKILLs every spawned process still running (its whole process group is not ours to kill: only the child). */
export function killAll(): void {
  for (const p of spawned.splice(0)) if (p.running) p.child.kill('SIGKILL');
}

/** The `--metrics` records of a process (complete lines only). */
export function readMetrics(p: Proc): Record<string, unknown>[] {
  if (!fs.existsSync(p.metrics)) return [];
  return fs
    .readFileSync(p.metrics, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** The peer's seed address printed at start ("peer: tcp://…#key (sender …)"). */
export async function seedOf(p: Proc, ms = 60_000): Promise<{ seed: string; sender: string }> {
  const m = await p.waitLine(/^peer: (\S+) \(sender ([0-9a-f]{32})/, ms);
  return { seed: m[1]!, sender: m[2]! };
}

/** The last record of `--metrics` with `event`. */
export function lastEvent(p: Proc, event: string): Record<string, unknown> | undefined {
  return readMetrics(p)
    .filter((r) => r['phase'] === 'sync' && r['event'] === event)
    .pop();
}

/** CURVE keys for `n` peers under `dir`: keys<i>/curve.key, curve.pub and peers/*.pub of the others (as a user sets them up). */
export async function curveKeys(dir: string, n: number): Promise<{ dirs: string[]; pubs: string[] }> {
  const pairs = Array.from({ length: n }, () => generateKeyPair());
  const dirs = pairs.map((_, i) => path.join(dir, `keys${i}`));
  for (const [i, pair] of pairs.entries()) {
    await writeKeyPair(dirs[i]!, pair);
    fs.mkdirSync(path.join(dirs[i]!, 'peers'), { mode: 0o700 });
    for (const [j, other] of pairs.entries())
      if (j !== i) fs.writeFileSync(path.join(dirs[i]!, 'peers', `peer${j}.pub`), `${other.publicKey}\n`, { mode: 0o644 });
  }
  return { dirs, pubs: pairs.map((p) => p.publicKey) };
}

/** Largest absolute difference between the tensors of two model files (same names and sizes required). */
export function modelDiff(a: string, b: string): number {
  const ma = readModelFile(a);
  const mb = readModelFile(b);
  let max = 0;
  for (const [name, t] of ma.tensors) {
    const u = mb.tensors.get(name);
    if (u === undefined || u.data.length !== t.data.length) return Number.POSITIVE_INFINITY;
    for (let i = 0; i < t.data.length; i++) max = Math.max(max, Math.abs(t.data[i]! - u.data[i]!));
  }
  return ma.tensors.size === mb.tensors.size ? max : Number.POSITIVE_INFINITY;
}
