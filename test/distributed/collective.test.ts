/**
 * Synchronous data-parallel training through a Collective: replicas on shards hold the same bits,
 * one replica equals local training, and the ZeroMQ PeerGroup sums like the in-memory reference,
 * also after a member is lost mid-run.
 */
import test from 'ava';
import { Dbn } from '../../src/dbn/dbn.js';
import { PeerGroup } from '../../src/distributed/index.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Rbm } from '../../src/rbm/rbm.js';
import type { Collective } from '../../src/rbm/collective.js';
import type { HostMatrix } from '../../src/validate.js';
import { maxAbsDiff, prototypes, sameBits } from '../dbn/fixtures.js';
import { memoryGroup } from '../helpers/memory-collective.js';

function rowsOf(x: HostMatrix, pick: (i: number) => boolean): HostMatrix {
  const idx = Array.from({ length: x.rows }, (_, i) => i).filter(pick);
  const data = new Float32Array(idx.length * x.cols);
  idx.forEach((r, k) => data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), k * x.cols));
  return { rows: idx.length, cols: x.cols, data };
}

function labelsOf(y: Int32Array, n: number, k: number): Int32Array {
  return Int32Array.from(y.filter((_, i) => i % n === k));
}

test('three replicas of a DBN on three shards end with the same bits, pretrained and fine-tuned', async (t) => {
  const { x, y } = prototypes(300, 24, 3, 1);
  const { members, rounds } = memoryGroup(3);
  const backend = createJsBackend();
  const models = [0, 1, 2].map(() => new Dbn({ nVisible: 24, layers: [{ nHidden: 12, epochs: 2, batchSize: 30 }], seed: 7, backend }));
  await Promise.all(
    models.map(async (m, k) => {
      const part = rowsOf(x, (i) => i % 3 === k);
      await m.pretrain(part, { collective: members[k]! });
      await m.fineTune(part, labelsOf(y, 3, k), { epochs: 30, classes: 3, collective: members[k]! });
    }),
  );
  const w = models.map((m) => m.layers[0]!.getParameters().weights.data);
  t.true(sameBits(w[0]!, w[1]!) && sameBits(w[0]!, w[2]!));
  const heads = models.map((m) => m.getClassifierParameters().layers.at(-1)!.weights.data);
  t.true(sameBits(heads[0]!, heads[1]!) && sameBits(heads[0]!, heads[2]!));
  // 2 epochs × (plan + 10 minibatch rounds + summary) for the layer, then the fine-tuning rounds.
  t.is(rounds.filter((r) => r.startsWith('0/')).length, 2 * (1 + 10 + 1));
  const one = new Dbn({ nVisible: 24, layers: [{ nHidden: 12, epochs: 2, batchSize: 30 }], seed: 7, backend });
  await one.pretrain(x);
  await one.fineTune(x, y, { epochs: 30, classes: 3 });
  const [shared, alone] = [models[0]!.evaluate(x, y).accuracy, one.evaluate(x, y).accuracy];
  t.true(Math.abs(shared - alone) <= 0.05, `replicas ${shared}, one process ${alone}`);
  for (const m of [...models, one]) m.dispose();
});

test('one replica through a collective takes the same steps as local training (to float rounding)', async (t) => {
  const { x } = prototypes(200, 20, 4, 3);
  const backend = createJsBackend();
  const local = new Rbm({ nVisible: 20, nHidden: 8, batchSize: 25, seed: 4, backend });
  const alone = new Rbm({ nVisible: 20, nHidden: 8, batchSize: 25, seed: 4, backend });
  await local.fit(x, { epochs: 3 });
  await alone.fit(x, { epochs: 3, collective: memoryGroup(1).members[0]! });
  const d = maxAbsDiff(local.getParameters().weights.data, alone.getParameters().weights.data);
  t.true(d < 1e-5, `max |Δw| ${d}`);
  t.is(local.epochsTrained, alone.epochsTrained);
});

async function openGroups(n: number, base: number): Promise<PeerGroup[]> {
  const endpoints = Array.from({ length: n }, (_, i) => `tcp://127.0.0.1:${base + i}`);
  return Promise.all(
    endpoints.map((bind, i) =>
      PeerGroup.open({
        runId: 'test',
        fingerprint: 'ab'.repeat(32),
        mesh: { bind, plaintext: true },
        maxFrameBytes: 1 << 20,
        peers: endpoints.filter((_, j) => j !== i).map((endpoint) => ({ endpoint, publicKey: null })),
        expectedPeers: n,
        heartbeatMs: 100,
        peerTimeoutMs: 1000,
      }),
    ),
  );
}

async function fitAll(
  groups: readonly PeerGroup[],
  x: HostMatrix,
  epochs: number,
  stopAfter?: { member: number; rounds: number },
  tolerateFailures = false,
): Promise<Rbm[]> {
  const backend = createJsBackend();
  const rbms = groups.map(() => new Rbm({ nVisible: x.cols, nHidden: 6, batchSize: 20, seed: 9, backend }));
  await Promise.all(groups.map((g) => g.start()));
  await Promise.all(
    rbms.map(async (r, k) => {
      const g = groups[k]!;
      let collective: Collective = g;
      if (stopAfter?.member === k) {
        collective = {
          allReduce: async (p, ts, s) => {
            if (g.stats().rounds >= stopAfter.rounds) {
              g.close();
              throw new Error('stopped');
            }
            await g.allReduce(p, ts, s);
          },
        };
      }
      await r
        .fit(
          rowsOf(x, (i) => i % groups.length === k),
          { epochs, collective },
        )
        .catch((e: Error) => {
          if (e.message !== 'stopped' && !tolerateFailures) throw e;
        });
    }),
  );
  return rbms;
}

test.serial('PeerGroups over loopback sum like the in-memory reference: the same bits on every replica', async (t) => {
  const { x } = prototypes(240, 16, 4, 5);
  const groups = await openGroups(3, 7390);
  try {
    const rbms = await fitAll(groups, x, 2);
    const w = rbms.map((r) => r.getParameters().weights.data);
    t.true(sameBits(w[0]!, w[1]!) && sameBits(w[0]!, w[2]!));
    // The reference sums in member order; give member m the shard of the group with the m-th smallest id.
    const byId = [...groups].sort((a, b) => (a.id < b.id ? -1 : 1)).map((g) => groups.indexOf(g));
    const { members } = memoryGroup(3);
    const backend = createJsBackend();
    const ref = [0, 1, 2].map(() => new Rbm({ nVisible: 16, nHidden: 6, batchSize: 20, seed: 9, backend }));
    await Promise.all(
      ref.map((r, m) =>
        r.fit(
          rowsOf(x, (i) => i % 3 === byId[m]),
          { epochs: 2, collective: members[m]! },
        ),
      ),
    );
    t.true(sameBits(w[0]!, ref[0]!.getParameters().weights.data));
  } finally {
    for (const g of groups) g.close();
  }
});

test.serial('when a member is lost mid-run the others change view, go on, and still hold the same bits', async (t) => {
  const { x } = prototypes(240, 16, 4, 6);
  const groups = await openGroups(3, 7395);
  const events: string[] = [];
  try {
    const rbms = await fitAll(groups, x, 3, { member: 2, rounds: 7 });
    const w = rbms.map((r) => r.getParameters().weights.data);
    t.true(sameBits(w[0]!, w[1]!));
    t.false(sameBits(w[0]!, w[2]!));
    t.is(groups[0]!.members.length, 2);
    t.is(groups[0]!.view, groups[1]!.view);
    t.is(rbms[0]!.epochsTrained, 3);
    t.true(groups[0]!.stats().recoveries + groups[1]!.stats().recoveries >= 1, events.join('\n'));
  } finally {
    for (const g of groups) g.close();
  }
});

test.serial('a member whose contributions are not finite is dropped; the others end with the same finite bits', async (t) => {
  const { x } = prototypes(240, 16, 4, 7);
  const groups = await openGroups(3, 7380);
  const events: string[] = [];
  // The liar's wire: after a few rounds every chunk it sends for others to sum is NaN.
  const liar = groups[2]!;
  const send = liar.sendTo.bind(liar);
  liar.sendTo = (id, kind, meta, payload = [], round = liar.next) => {
    const poisoned =
      kind === 'contribution' && round > 5
        ? [payload[0]!, Buffer.from(new Float32Array(payload[1]!.length / 4).fill(Number.NaN).buffer)]
        : payload;
    send(id, kind, meta, poisoned, round);
  };
  try {
    for (const g of groups.slice(0, 2)) {
      const prev = g.options.onEvent;
      (g.options as { onEvent?: (e: { event: string; detail: string }) => void }).onEvent = (e) => {
        events.push(`${e.event}: ${e.detail}`);
        prev?.(e as never);
      };
    }
    const rbms = await fitAll(groups, x, 3, undefined, true);
    const w = rbms.map((r) => r.getParameters().weights.data);
    t.true(sameBits(w[0]!, w[1]!));
    t.true(w[0]!.every((v) => Number.isFinite(v)));
    t.deepEqual(groups[0]!.members, groups[1]!.members);
    t.false(groups[0]!.members.includes(liar.id));
    t.truthy(
      events.find((e) => e.includes('non-finite')),
      events.join('\n'),
    );
  } finally {
    for (const g of groups) g.close();
  }
});

test.serial(
  'a peer whose event loop was held longer than the peer timeout does not drop the members it could not hear meanwhile',
  async (t) => {
    // Both groups live in this process, so holding the event loop makes every one of them deaf at
    // once, as when all peers of a run compute a layer boundary on a loaded machine. Silence is
    // judged by listening time: no view change, the same bits.
    const { x } = prototypes(240, 16, 4, 8);
    const groups = await openGroups(2, 7400);
    const events: string[] = [];
    for (const g of groups) {
      const prev = g.options.onEvent;
      (g.options as { onEvent?: (e: { event: string; detail: string }) => void }).onEvent = (e) => {
        events.push(`${e.event}: ${e.detail}`);
        prev?.(e as never);
      };
    }
    const held = groups[0]!;
    const allReduce = held.allReduce.bind(held);
    let heldOnce = false;
    held.allReduce = async (p, ts, s) => {
      if (!heldOnce && held.stats().rounds >= 6) {
        heldOnce = true;
        const until = Date.now() + 2500; // 2.5 × the peer timeout of openGroups
        while (Date.now() < until);
      }
      await allReduce(p, ts, s);
    };
    try {
      const rbms = await fitAll(groups, x, 3);
      t.true(heldOnce);
      const w = rbms.map((r) => r.getParameters().weights.data);
      t.true(sameBits(w[0]!, w[1]!), events.join('\n'));
      t.is(groups[0]!.view, 1, events.join('\n'));
      t.is(groups[1]!.view, 1, events.join('\n'));
      t.is(groups[0]!.stats().recoveries + groups[1]!.stats().recoveries, 0);
    } finally {
      for (const g of groups) g.close();
    }
  },
);
