/**
 * Real `dbn-node train` peers on loopback, as a user runs them: the default model (784-500-500),
 * the default backend and every peer default (heartbeat, timeouts); only the data (`--limit`)
 * and the epochs are cut so a run takes seconds. Peers are killed with SIGKILL and restarted
 * with the same command. Every wait is bounded; every process is killed in `afterEach`.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { curveKeys, killAll, modelDiff, spawnTrain } from './harness.js';
import type { Proc } from './harness.js';

const EXIT_MS = 240_000;
const RUN = ['--limit', '3000', '--epochs', '2', '--no-pictures'];
let nextPort = 7400 + (process.pid % 200) * 8;

test.afterEach.always(() => killAll());

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-rounds-'));
}

/** Free-looking loopback ports for `n` peers (distinct per test file run). */
function ports(n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => nextPort + i);
  nextPort += n;
  return p;
}

/** The argv of peer `i` (0-based) of `all`: bind, the others, shard i+1/n, plaintext. */
function peerArgs(all: readonly number[], i: number, extra: readonly string[] = ['--finetune', '3']): string[] {
  const others = all.filter((_, j) => j !== i).map((p) => `tcp://127.0.0.1:${p}`);
  return [
    '--bind',
    `tcp://127.0.0.1:${all[i]}`,
    '--peers',
    others.join(','),
    '--plaintext',
    '--shard',
    `${i + 1}/${all.length}`,
    ...RUN,
    ...extra,
  ];
}

function accuracyOf(p: Proc): number {
  const line = p.lines.find((l) => l.startsWith('test accuracy'));
  return line === undefined ? Number.NaN : Number(/test accuracy ([\d.]+)%/.exec(line)![1]) / 100;
}

test.serial(
  'three CURVE peers started one after another end with the same model, bit for bit, within 3 points of one process',
  async (t) => {
    const dir = tmp();
    const all = ports(3);
    const procs: Proc[] = [];
    const keys = await curveKeys(dir, 3);
    for (const i of [2, 0, 1]) {
      const others = all.flatMap((p, j) => (j === i ? [] : [`tcp://127.0.0.1:${p}#${keys.pubs[j]}`]));
      procs[i] = spawnTrain(dir, `p${i}`, [
        '--bind',
        `tcp://127.0.0.1:${all[i]}`,
        '--keys',
        keys.dirs[i]!,
        '--peers',
        others.join(','),
        '--shard',
        `${i + 1}/3`,
        ...RUN,
        '--finetune',
        '3',
      ]);
      await new Promise((r) => setTimeout(r, 1500));
    }
    for (const p of procs) t.is(await p.exited(EXIT_MS), 0, p.lines.join('\n'));
    for (const p of procs)
      t.truthy(
        p.lines.find((l) => l.includes('all 3 peers present')),
        p.lines.join('\n'),
      );
    const files = procs.map((p) => path.join(dir, p.name, 'model.dbn'));
    t.is(modelDiff(files[0]!, files[1]!), 0);
    t.is(modelDiff(files[0]!, files[2]!), 0);
    const accs = procs.map(accuracyOf);
    t.is(new Set(accs).size, 1, `accuracies ${accs.join(', ')}`);
    // Parity on this small slice: one process on all the rows, same options (full-size figures: bench/peer-parity.ts).
    const one = spawnTrain(dir, 'one', [...RUN, '--finetune', '3', '--associative', '0']);
    t.is(await one.exited(EXIT_MS), 0, one.lines.join('\n'));
    t.true(Math.abs(accs[0]! - accuracyOf(one)) <= 0.03, `peers ${accs[0]}, one process ${accuracyOf(one)}`);
  },
);

test.serial(
  'peers killed with SIGKILL in pretraining, at a layer boundary and in fine-tuning rejoin and the run ends with identical replicas',
  async (t) => {
    const dir = tmp();
    const all = ports(3);
    const args = (i: number): string[] => peerArgs(all, i, ['--finetune', '8']);
    const procs = all.map((_, i) => spawnTrain(dir, `p${i}`, args(i)));
    const restart = async (i: number, victim: Proc): Promise<Proc> => {
      victim.child.kill('SIGKILL');
      await victim.exited(10_000);
      await new Promise((r) => setTimeout(r, 300));
      return spawnTrain(dir, `p${i}`, args(i));
    };
    // Peer 0's progress sets the moments: peer 1 dies in layer 0's second epoch, peer 2 as layer 0
    // ends (the next stage starts), and peer 0 itself in fine-tuning once a restarted peer is back.
    await procs[0]!.waitLine(/^layer 0 epoch 0:/, EXIT_MS);
    const p1 = await restart(1, procs[1]!);
    await procs[0]!.waitLine(/^layer 0 epoch 1:/, EXIT_MS);
    const p2 = await restart(2, procs[2]!);
    await Promise.race([p1.waitLine(/^joined the running run/, EXIT_MS), p2.waitLine(/^joined the running run/, EXIT_MS)]);
    const from = procs[0]!.lines.length;
    await procs[0]!.waitLine(/^fine-tune epoch \d+:/, EXIT_MS, from);
    const p0 = await restart(0, procs[0]!);
    const finals = [p0, p1, p2];
    for (const p of finals) t.is(await p.exited(EXIT_MS), 0, p.lines.join('\n'));
    for (const p of finals)
      t.truthy(
        p.lines.find((l) => /^joined the running run at round|^the run had already finished/.test(l)),
        p.lines.join('\n'),
      );
    t.truthy(finals.find((p) => p.lines.some((l) => l.startsWith('joined the running run at round'))));
    const files = finals.map((p) => path.join(dir, p.name, 'model.dbn'));
    t.is(modelDiff(files[0]!, files[1]!), 0);
    t.is(modelDiff(files[0]!, files[2]!), 0);
    const acc = finals.map(accuracyOf).find((a) => !Number.isNaN(a));
    t.true(acc !== undefined && acc > 0.5, `accuracy ${acc}`);
  },
);

// Quarantined at 5196118 (it failed about 1 run in 3): the resumed peer was told it was dropped while its next round started,
// and waited in that round forever. Fixed in src/distributed/ (group.ts allReduce, views.ts); unit tests in
// test/distributed/views-exclusion.test.ts.
test.serial(
  'a peer stopped (SIGSTOP) longer than the peer timeout is told it was dropped when it resumes, restarted it rejoins, and the replicas end identical',
  async (t) => {
    // A stopped process is what a starved one looks like to the others: they drop it after the peer
    // timeout (default 5 s) and go on. Resumed, it must not go on alone (it used to drop them in turn
    // and finish with another model, exit 0): the others tell it, it stops with EEXCLUDED.
    const dir = tmp();
    const all = ports(3);
    // 20 fine-tuning epochs: the two others must still be training when the stopped peer has exited
    // and is restarted (on a loaded machine that took long enough for 8 epochs to end the run first)
    const args = (i: number): string[] => peerArgs(all, i, ['--finetune', '20']);
    const procs = all.map((_, i) => spawnTrain(dir, `p${i}`, args(i)));
    await procs[0]!.waitLine(/^layer 0 epoch 0:/, EXIT_MS);
    procs[2]!.child.kill('SIGSTOP');
    await procs[0]!.waitLine(/^peer view: view 2: 2 member\(s\)/, 30_000);
    procs[2]!.child.kill('SIGCONT');
    t.not(await procs[2]!.exited(30_000), 0, procs[2]!.lines.join('\n'));
    t.truthy(
      procs[2]!.lines.find((l) => /dropped from the run's rounds/.test(l)),
      procs[2]!.lines.join('\n'),
    );
    const again = spawnTrain(dir, 'p2', args(2));
    const finals = [procs[0]!, procs[1]!, again];
    for (const p of finals) t.is(await p.exited(EXIT_MS), 0, p.lines.join('\n'));
    const files = finals.map((p) => path.join(dir, p.name, 'model.dbn'));
    t.is(modelDiff(files[0]!, files[1]!), 0);
    t.is(modelDiff(files[0]!, files[2]!), 0);
  },
);

test.serial('a peer waits for the others at the start and names the missing one when it gives up', async (t) => {
  const dir = tmp();
  const all = ports(2);
  const p = spawnTrain(dir, 'alone', [...peerArgs(all, 0), '--start-timeout-ms', '3000']);
  t.is(await p.exited(60_000), 1);
  const err = p.lines.find((l) => l.includes('ESTART') || l.includes('Peer start'));
  t.truthy(err, p.lines.join('\n'));
  t.true(err!.includes(`tcp://127.0.0.1:${all[1]}`), err);
});

test.serial('a peer started with other training options is refused with a clear error', async (t) => {
  const dir = tmp();
  const all = ports(2);
  const a = spawnTrain(dir, 'a', [...peerArgs(all, 0), '--start-timeout-ms', '20000']);
  const b = spawnTrain(dir, 'b', [...peerArgs(all, 1), '--batch-size', '50', '--start-timeout-ms', '20000']);
  t.is(await b.exited(60_000), 1);
  t.is(await a.exited(60_000), 1);
  const line = b.lines.find((l) => l.includes('another model or schedule'));
  t.truthy(line, b.lines.join('\n'));
});
