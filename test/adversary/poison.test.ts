/**
 * Contributions that are finite but built to break the replicas, from a member that lies on its
 * wire (three PeerGroups over loopback, plaintext): enormous parts, parts that grow a little
 * every round, and an epoch plan that claims a billion rows. The liar is dropped; the other two
 * finish with the same, finite, sane weights.
 */
import test from 'ava';
import { PeerGroup } from '../../src/distributed/index.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Rbm } from '../../src/rbm/rbm.js';
import type { HostMatrix } from '../../src/validate.js';
import { prototypes, sameBits } from '../dbn/fixtures.js';
import { type Outgoing, lieOnWire } from './lying-wire.js';

let port = 7700 + (process.pid % 100) * 9;

async function openGroups(n: number): Promise<PeerGroup[]> {
  const endpoints = Array.from({ length: n }, () => `tcp://127.0.0.1:${port++}`);
  return Promise.all(
    endpoints.map((bind) =>
      PeerGroup.open({
        runId: 'poison',
        fingerprint: 'ef'.repeat(32),
        mesh: { bind, plaintext: true },
        maxFrameBytes: 1 << 20,
        peers: endpoints.filter((e) => e !== bind).map((endpoint) => ({ endpoint, publicKey: null })),
        expectedPeers: n,
        heartbeatMs: 100,
        peerTimeoutMs: 1000,
      }),
    ),
  );
}

function shard(x: HostMatrix, k: number, n: number): HostMatrix {
  const idx = Array.from({ length: x.rows }, (_, i) => i).filter((i) => i % n === k);
  const data = new Float32Array(idx.length * x.cols);
  idx.forEach((r, j) => data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), j * x.cols));
  return { rows: idx.length, cols: x.cols, data };
}

/** Three members train an RBM for 3 epochs; member 2 lies with `lie`. Returns the honest members' weights and what they saw. */
async function attacked(
  t: { timeout(ms: number): void },
  lie: (out: Outgoing) => { scalars?: Float64Array; chunk?: Float32Array } | undefined,
): Promise<{ weights: Float32Array[]; events: string[]; members: string[][]; liar: string }> {
  t.timeout(30_000);
  const { x } = prototypes(240, 16, 4, 11);
  const groups = await openGroups(3);
  const events: string[] = [];
  for (const g of groups.slice(0, 2))
    (g.options as { onEvent?: (e: { event: string; detail: string }) => void }).onEvent = (e) => events.push(`${e.event}: ${e.detail}`);
  lieOnWire(groups[2]!, lie);
  const backend = createJsBackend();
  const rbms = groups.map(() => new Rbm({ nVisible: 16, nHidden: 6, batchSize: 20, seed: 9, backend }));
  try {
    await Promise.all(groups.map((g) => g.start()));
    await Promise.all(rbms.map((r, k) => r.fit(shard(x, k, 3), { epochs: 3, collective: groups[k]! }).catch(() => undefined)));
    return {
      weights: rbms.slice(0, 2).map((r) => r.getParameters().weights.data),
      events,
      members: groups.slice(0, 2).map((g) => g.members),
      liar: groups[2]!.id,
    };
  } finally {
    for (const g of groups) g.close();
  }
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

test.serial('huge finite parts (1e30 per element) are refused: the liar is dropped, the replicas stay equal and sane', async (t) => {
  const r = await attacked(t, (o) => (o.round > 5 && o.chunk.length > 0 ? { chunk: o.chunk.map(() => 1e30) } : undefined));
  t.true(sameBits(r.weights[0]!, r.weights[1]!));
  t.true(maxAbs(r.weights[0]!) < 10, `max |w| ${maxAbs(r.weights[0]!)}`);
  t.false(r.members[0]!.includes(r.liar));
  t.truthy(
    r.events.find((e) => e.includes('peer-lost') && e.includes('element')),
    r.events.join('\n'),
  );
});

test.serial('parts that grow 40% a round are refused once they pass the guard; the weights stay sane', async (t) => {
  const r = await attacked(t, (o) => (o.chunk.length > 0 ? { chunk: o.chunk.map((v) => v * 1.4 ** o.round) } : undefined));
  t.true(sameBits(r.weights[0]!, r.weights[1]!));
  t.true(maxAbs(r.weights[0]!) < 10, `max |w| ${maxAbs(r.weights[0]!)}`);
  t.false(r.members[0]!.includes(r.liar));
  t.truthy(
    r.events.find((e) => e.includes('peer-lost') && e.includes('norm')),
    r.events.join('\n'),
  );
});

test.serial('an epoch plan claiming a billion rows is refused: the epoch keeps its length and the run ends', async (t) => {
  const r = await attacked(t, (o) => (o.step === -1 ? { scalars: Float64Array.of(1e9) } : undefined));
  t.true(sameBits(r.weights[0]!, r.weights[1]!));
  t.false(r.members[0]!.includes(r.liar));
  t.truthy(
    r.events.find((e) => e.includes('peer-lost') && e.includes('rows')),
    r.events.join('\n'),
  );
});

test.serial('negative row counts (which would flip the sign of the update) are refused', async (t) => {
  const r = await attacked(t, (o) => (o.round > 3 && o.step >= 0 && o.chunk.length > 0 ? { scalars: Float64Array.of(-50) } : undefined));
  t.true(sameBits(r.weights[0]!, r.weights[1]!));
  t.false(r.members[0]!.includes(r.liar));
  t.truthy(
    r.events.find((e) => e.includes('peer-lost') && e.includes('statistic')),
    r.events.join('\n'),
  );
});
