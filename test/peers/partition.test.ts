/**
 * A network partition, as users meet one: three `dbn-node train` peers with the defaults (only the
 * data and the epochs cut), each in its own network namespace on a bridge; one peer's link is
 * moved to a second bridge (a partition: it and the two others each go on alone, in views of the
 * same number), then back (the partition heals). The lone peer's group is the smaller: it must
 * stop with `EEXCLUDED` naming the split, the two others must say so and go on; restarted with the
 * same command, the lone peer rejoins and the three replicas end identical. Needs root (`ip
 * netns`); where namespaces cannot be made the test says why and passes.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRateLimitedNet, removeAllNamespaces } from '../../bench/scaling/netns.js';
import { readModelFile } from '../../src/rbm/model-file.js';
import { killAll, spawnTrain } from './harness.js';

const EXIT_MS = 240_000;
const PORT = 7000;

test.afterEach.always(() => {
  killAll();
  removeAllNamespaces();
});

/** Largest absolute difference between the tensors of two model files. */
function modelDiff(a: string, b: string): number {
  const ma = readModelFile(a);
  const mb = readModelFile(b);
  let max = 0;
  for (const [name, x] of ma.tensors) {
    const y = mb.tensors.get(name);
    if (y === undefined || y.data.length !== x.data.length) return Number.POSITIVE_INFINITY;
    for (let i = 0; i < x.data.length; i++) max = Math.max(max, Math.abs(x.data[i]! - y.data[i]!));
  }
  return ma.tensors.size === mb.tensors.size ? max : Number.POSITIVE_INFINITY;
}

test.serial(
  'a partition that heals: the smaller group stops with EEXCLUDED naming the split, restarted it rejoins, the replicas end identical',
  async (t) => {
    let net: ReturnType<typeof createRateLimitedNet>;
    const ip = (...args: string[]): void => void execFileSync('ip', ['-n', net.hub, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      if (process.getuid?.() !== 0) throw new Error('not root');
      net = createRateLimitedNet(`dpart${process.pid % 10_000}`, 3, 1000);
      // a second bridge in the hub: a peer whose link is moved there hears none of the others
      ip('link', 'add', 'br1', 'type', 'bridge');
      ip('link', 'set', 'br1', 'up');
    } catch (err) {
      removeAllNamespaces();
      t.log(`skipped: network namespaces cannot be made here (${(err as Error).message.split('\n')[0]})`);
      t.pass();
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-partition-'));
    const endpoints = net.peers.map((p) => `tcp://${p.address}:${PORT}`);
    const args = (i: number): string[] => [
      '--bind',
      endpoints[i]!,
      '--peers',
      endpoints.filter((_, j) => j !== i).join(','),
      '--plaintext',
      '--shard',
      `${i + 1}/3`,
      '--limit',
      '3000',
      '--epochs',
      '2',
      '--no-pictures',
      // the two others must still be training when the lone peer has stopped and is restarted
      '--finetune',
      '40',
    ];
    const spawn = (i: number): ReturnType<typeof spawnTrain> => spawnTrain(dir, `p${i}`, args(i), { netns: net.peers[i]!.netns });
    const procs = [0, 1, 2].map(spawn);
    await procs[0]!.waitLine(/^layer 0 epoch 0:/, EXIT_MS);
    ip('link', 'set', 'vh2', 'master', 'br1'); // p2 alone on br1: the partition
    await procs[0]!.waitLine(/^peer view: view 2: 2 member\(s\)/, 60_000);
    await procs[2]!.waitLine(/^peer view: view 2: 1 member\(s\)/, 60_000);
    ip('link', 'set', 'vh2', 'master', 'br0'); // healed
    t.not(await procs[2]!.exited(90_000), 0, procs[2]!.lines.join('\n'));
    t.truthy(
      procs[2]!.lines.find((l) => /split into two groups that trained apart.*this peer's group \(1 member\(s\)/.test(l)),
      procs[2]!.lines.join('\n'),
    );
    const said = await Promise.any([0, 1].map((i) => procs[i]!.waitLine(/^WARN: peer warning: the run split into two groups/, 30_000)));
    t.regex(said.input ?? '', /this group \(2 member\(s\)/);
    const again = spawn(2);
    const finals = [procs[0]!, procs[1]!, again];
    for (const p of finals) t.is(await p.exited(EXIT_MS), 0, p.lines.join('\n'));
    t.truthy(
      again.lines.find((l) => /^joined the running run at round|^the run had already finished/.test(l)),
      again.lines.join('\n'),
    );
    const files = finals.map((p) => path.join(dir, p.name, 'model.dbn'));
    t.is(modelDiff(files[0]!, files[1]!), 0);
    t.is(modelDiff(files[0]!, files[2]!), 0);
  },
);
