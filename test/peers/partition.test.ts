/**
 * Network partitions, as users meet them: three `dbn-node train` peers with CURVE keys and the
 * defaults (only the data and the epochs cut), each in its own network namespace on a bridge; one peer's link is
 * moved to a second bridge (a partition: it and the two others each lose the other side), and
 * back (the partition heals). Without `--min-peers` both sides go on in views of the same number:
 * once healed, the lone peer's group, the smaller, must stop with `EEXCLUDED` naming the split,
 * the two others must say so and go on, and the lone peer restarted with the same command must
 * rejoin, the three replicas ending identical. With `--min-peers 2` the lone peer must stop at
 * once with `EQUORUM`, the two others finishing together. Needs root (`ip netns`); where
 * namespaces cannot be made each test says why and passes.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRateLimitedNet, removeAllNamespaces } from '../../bench/scaling/netns.js';
import { type Proc, curveKeys, killAll, modelDiff, spawnTrain } from './harness.js';

const EXIT_MS = 240_000;
const PORT = 7000;

test.afterEach.always(() => {
  killAll();
  removeAllNamespaces();
});

interface Partitionable {
  /** Starts peer `i` (0–2) with the shared flags and `extra`. */
  spawn(i: number): Proc;
  /** Moves peer 2's link to the second bridge (`true`) or back (`false`). */
  cut(apart: boolean): void;
  readonly dir: string;
}

/** Three peer namespaces and a second bridge, or `undefined` (the test passes, saying why) where they cannot be made. */
async function network(t: ExecutionContext, tag: string, extra: readonly string[]): Promise<Partitionable | undefined> {
  let hub = '';
  const ip = (...args: string[]): void => void execFileSync('ip', ['-n', hub, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let net: ReturnType<typeof createRateLimitedNet>;
  try {
    if (process.getuid?.() !== 0) throw new Error('not root');
    net = createRateLimitedNet(`${tag}${process.pid % 10_000}`, 3, 1000);
    hub = net.hub;
    // a second bridge in the hub: a peer whose link is moved there hears none of the others
    ip('link', 'add', 'br1', 'type', 'bridge');
    ip('link', 'set', 'br1', 'up');
  } catch (err) {
    removeAllNamespaces();
    t.log(`skipped: network namespaces cannot be made here (${(err as Error).message.split('\n')[0]})`);
    t.pass();
    return undefined;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-partition-'));
  const endpoints = net.peers.map((p) => `tcp://${p.address}:${PORT}`);
  // CURVE keys, as peers between organisations run: each peer's pair and the others' public keys
  const keys = await curveKeys(dir, 3);
  const flags = (i: number): string[] => [
    '--bind',
    endpoints[i]!,
    '--keys',
    keys.dirs[i]!,
    '--peers',
    endpoints.flatMap((e, j) => (j === i ? [] : [`${e}#${keys.pubs[j]}`])).join(','),
    '--shard',
    `${i + 1}/3`,
    '--limit',
    '3000',
    '--epochs',
    '2',
    '--no-pictures',
    ...extra,
  ];
  return {
    dir,
    spawn: (i) => spawnTrain(dir, `p${i}`, flags(i), { netns: net.peers[i]!.netns }),
    cut: (apart) => ip('link', 'set', 'vh2', 'master', apart ? 'br1' : 'br0'),
  };
}

test.serial(
  'a partition that heals: the smaller group stops with EEXCLUDED naming the split, restarted it rejoins, the replicas end identical',
  async (t) => {
    // 40 fine-tuning epochs: the two others must still be training when the lone peer has stopped and is restarted
    const net = await network(t, 'dsplit', ['--finetune', '40']);
    if (net === undefined) return;
    const procs = [0, 1, 2].map((i) => net.spawn(i));
    await procs[0]!.waitLine(/^layer 0 epoch 0:/, EXIT_MS);
    net.cut(true);
    await procs[0]!.waitLine(/^peer view: view 2: 2 member\(s\)/, 60_000);
    await procs[2]!.waitLine(/^peer view: view 2: 1 member\(s\)/, 60_000);
    net.cut(false);
    t.not(await procs[2]!.exited(90_000), 0, procs[2]!.lines.join('\n'));
    t.truthy(
      procs[2]!.lines.find((l) => /split into two groups that trained apart.*this peer's group \(view 2, 1 member\(s\)/.test(l)),
      procs[2]!.lines.join('\n'),
    );
    t.regex(
      procs[2]!.lines.join('\n'),
      /peer training failed \(EEXCLUDED\): checkpoint saved to .* \(restart the same command to rejoin the run/,
    );
    const said = await Promise.any([0, 1].map((i) => procs[i]!.waitLine(/^WARN: peer warning: the run split into two groups/, 30_000)));
    t.regex(said.input ?? '', /this group \(view 2, 2 member\(s\)/);
    const again = net.spawn(2);
    const finals = [procs[0]!, procs[1]!, again];
    for (const p of finals) t.is(await p.exited(EXIT_MS), 0, p.lines.join('\n'));
    t.truthy(
      again.lines.find((l) => /^joined the running run at round|^the run had already finished/.test(l)),
      again.lines.join('\n'),
    );
    const files = finals.map((p) => path.join(net.dir, p.name, 'model.dbn'));
    t.is(modelDiff(files[0]!, files[1]!), 0);
    t.is(modelDiff(files[0]!, files[2]!), 0);
  },
);

test.serial('with --min-peers 2 the peer cut off alone stops with EQUORUM and the two others finish with one model', async (t) => {
  const net = await network(t, 'dquorum', ['--finetune', '3', '--min-peers', '2']);
  if (net === undefined) return;
  const procs = [0, 1, 2].map((i) => net.spawn(i));
  await procs[0]!.waitLine(/^layer 0 epoch 0:/, EXIT_MS);
  net.cut(true);
  t.not(await procs[2]!.exited(60_000), 0, procs[2]!.lines.join('\n'));
  const said = procs[2]!.lines.join('\n');
  t.regex(said, /peer training failed \(EQUORUM\): checkpoint saved to .* \(restart the same command to rejoin the run/);
  t.regex(said, /View 2 keeps 1 member\(s\) \([0-9a-f]{8}\) after round \d+, fewer than --min-peers 2: this peer stops/);
  t.falsy(
    procs[2]!.lines.find((l) => /^peer view: view 2: 1 member/.test(l)),
    'it never trained alone',
  );
  for (const p of procs.slice(0, 2)) t.is(await p.exited(EXIT_MS), 0, p.lines.join('\n'));
  t.truthy(procs[0]!.lines.find((l) => /^peer view: view 2: 2 member\(s\)/.test(l)));
  t.is(modelDiff(path.join(net.dir, 'p0', 'model.dbn'), path.join(net.dir, 'p1', 'model.dbn')), 0);
});
