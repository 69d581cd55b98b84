/**
 * Resource exhaustion by a hostile peer: a flood of messages on a connection that never proves
 * its sender, an announce of many made-up peers, a message of too many frames. Each stays bounded
 * and the honest peers go on.
 */
import test from 'ava';
import { PeerGroup } from '../../src/distributed/index.js';
import { senderIdOf } from '../../src/sync/mesh.js';
import { SendQueue } from '../../src/sync/queues.js';
import { HostilePeer, until } from './hostile-peer.js';

const FINGERPRINT = '12'.repeat(32);
let port = 7800 + (process.pid % 100) * 8;

async function openGroup(expectedPeers: number): Promise<PeerGroup> {
  const bind = `tcp://127.0.0.1:${port++}`;
  return PeerGroup.open({
    runId: 'res',
    fingerprint: FINGERPRINT,
    mesh: { bind, plaintext: true },
    maxFrameBytes: 4 << 20,
    peers: [{ endpoint: `tcp://127.0.0.1:${port++}`, publicKey: null }],
    expectedPeers,
    heartbeatMs: 100,
    peerTimeoutMs: 1000,
    startTimeoutMs: 30_000,
  });
}

test.serial('a flood on a connection that never proves its sender is held only up to the bound, then dropped', async (t) => {
  const g = await openGroup(3);
  void g.start().catch(() => undefined);
  const h = await HostilePeer.open({ bind: `tcp://127.0.0.1:${port++}`, runId: 'res', fingerprint: FINGERPRINT, plaintext: true });
  h.answerChallenges = false;
  try {
    const big = Buffer.alloc(1 << 20, 7);
    const to = { endpoint: g.endpoint, publicKey: null };
    for (let i = 0; i < 60; i++) h.send(to, 'hello', { ...h.identity(), running: false, view: 0, next: 0, members: [], known: [] }, [big]);
    await until(() => g.gate.binder.counters.dropped >= 28, 5000, 'the binder to drop what passes its bound');
    t.true(g.gate.binder.counters.challenges >= 1);
    t.false(g.directory.has(h.id), 'nothing from an unproven connection was handled');
  } finally {
    h.close();
    g.close();
  }
});

test.serial('an announce of many made-up peers adds at most a few records, never hundreds of dialed sockets', async (t) => {
  const g = await openGroup(3);
  void g.start().catch(() => undefined);
  const h = await HostilePeer.open({ bind: `tcp://127.0.0.1:${port++}`, runId: 'res', fingerprint: FINGERPRINT, plaintext: true });
  try {
    const to = { endpoint: g.endpoint, publicKey: null };
    for (let round = 0; round < 10; round++) {
      const known = Array.from({ length: 64 }, (_, i) => {
        const endpoint = `tcp://10.255.${round}.${i + 1}:5555`;
        return { id: senderIdOf(null, endpoint), endpoint, publicKey: null };
      });
      h.send(to, 'hello', { ...h.identity(), running: false, view: 0, next: 0, members: [], known });
      await new Promise((r) => setTimeout(r, 60));
    }
    await until(() => g.directory.has(h.id), 3000, 'the hostile hello to be handled');
    await new Promise((r) => setTimeout(r, 300));
    t.true(g.directory.size <= 1 + 16, `${g.directory.size} records`);
  } finally {
    h.close();
    g.close();
  }
});

test.serial('a message of too many frames is refused whole; the peer goes on', async (t) => {
  const g = await openGroup(3);
  void g.start().catch(() => undefined);
  const h = await HostilePeer.open({ bind: `tcp://127.0.0.1:${port++}`, runId: 'res', fingerprint: FINGERPRINT, plaintext: true });
  const refused: string[] = [];
  (g.options as { onEvent?: (e: { event: string; detail: string }) => void }).onEvent = (e) => refused.push(e.detail);
  try {
    h.sendRaw(
      { endpoint: g.endpoint, publicKey: null },
      Array.from({ length: 500 }, () => Buffer.alloc(16)),
    );
    h.send({ endpoint: g.endpoint, publicKey: null }, 'hello', {
      ...h.identity(),
      running: false,
      view: 0,
      next: 0,
      members: [],
      known: [],
    });
    await until(() => g.directory.has(h.id), 3000, 'the next, valid message to be handled');
    t.truthy(
      refused.find((d) => d.includes('at most 66 frames')),
      refused.join('\n'),
    );
  } finally {
    h.close();
    g.close();
  }
});

test('a send queue is bounded in bytes as well as messages', (t) => {
  const stuck = { send: () => new Promise<void>(() => undefined) };
  const q = new SendQueue(stuck, 100, () => undefined, 1000);
  t.true(q.push([Buffer.alloc(400)])); // in flight
  t.true(q.push([Buffer.alloc(600)]));
  t.true(q.push([Buffer.alloc(400)]));
  t.false(q.push([Buffer.alloc(1)]), 'over 1000 bytes waiting');
  t.is(q.queuedBytes, 1000);
});
