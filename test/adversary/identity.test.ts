/**
 * Attacks on identity and on what peers claim about the run, by an allowlisted-but-hostile peer
 * (CURVE keys, loopback): speaking for another peer's key, and a lone 'finished' claim.
 */
import test from 'ava';
import { PeerGroup, type StartResult } from '../../src/distributed/index.js';
import { generateKeyPair, type KeyPair } from '../../src/sync/keys.js';
import { HostilePeer, until } from './hostile-peer.js';

const FINGERPRINT = 'cd'.repeat(32);
let port = 7600 + (process.pid % 100) * 6;

function nextEndpoint(): string {
  return `tcp://127.0.0.1:${port++}`;
}

async function honestPair(
  hostile: KeyPair,
  alsoAllowed: readonly string[] = [],
): Promise<{ groups: PeerGroup[]; keys: KeyPair[]; endpoints: string[] }> {
  const keys = [generateKeyPair(), generateKeyPair()];
  const endpoints = [nextEndpoint(), nextEndpoint()];
  const allowlist = [...keys.map((k) => k.publicKey), hostile.publicKey, ...alsoAllowed];
  const groups = await Promise.all(
    [0, 1].map((i) =>
      PeerGroup.open({
        runId: 'adv',
        fingerprint: FINGERPRINT,
        mesh: { bind: endpoints[i]!, keys: keys[i]!, allowlist },
        maxFrameBytes: 1 << 20,
        peers: [{ endpoint: endpoints[1 - i]!, publicKey: keys[1 - i]!.publicKey }],
        expectedPeers: 2,
        heartbeatMs: 100,
        peerTimeoutMs: 3000,
      }),
    ),
  );
  await Promise.all(groups.map((g) => g.start()));
  return { groups, keys, endpoints };
}

test.serial('impersonation: a hostile peer that says "B leaves" on its own connection cannot drop B', async (t) => {
  const hostileKeys = generateKeyPair();
  const { groups, keys, endpoints } = await honestPair(hostileKeys);
  const [a, b] = groups as [PeerGroup, PeerGroup];
  const h = await HostilePeer.open({
    bind: nextEndpoint(),
    runId: 'adv',
    fingerprint: FINGERPRINT,
    keys: hostileKeys,
    allowlist: keys.map((k) => k.publicKey),
  });
  const toA = { endpoint: endpoints[0]!, publicKey: keys[0]!.publicKey };
  try {
    // First as itself (its connection is bound to its own id), then speaking for B.
    h.send(toA, 'hello', { ...h.identity(), running: false, view: 0, next: 0, members: [], known: [] });
    await until(() => a.gate.binder.counters.bound >= 2, 3000, 'A to bind the hostile connection');
    for (let i = 0; i < 5; i++) h.send(toA, 'bye', { leaving: true }, [], { sender: b.id, instance: 1 });
    await until(() => a.gate.binder.counters.impersonations >= 5, 3000, 'A to drop the messages');
    await new Promise((r) => setTimeout(r, 300));
    t.deepEqual(a.members, [a.id, b.id].sort());
    t.false(a.views.isSuspect(b.id));
  } finally {
    h.close();
    for (const g of groups) g.close();
  }
});

test.serial('impersonation: messages claiming B on a connection never proved are held, then dropped', async (t) => {
  const hostileKeys = generateKeyPair();
  const { groups, keys, endpoints } = await honestPair(hostileKeys);
  const [a, b] = groups as [PeerGroup, PeerGroup];
  const h = await HostilePeer.open({
    bind: nextEndpoint(),
    runId: 'adv',
    fingerprint: FINGERPRINT,
    keys: hostileKeys,
    allowlist: keys.map((k) => k.publicKey),
  });
  try {
    for (let i = 0; i < 3; i++)
      h.send({ endpoint: endpoints[0]!, publicKey: keys[0]!.publicKey }, 'bye', { leaving: true }, [], { sender: b.id, instance: 1 });
    await new Promise((r) => setTimeout(r, 800));
    t.deepEqual(a.members, [a.id, b.id].sort());
    t.false(a.views.isSuspect(b.id));
  } finally {
    h.close();
    for (const g of groups) g.close();
  }
});

test.serial("a lone 'finished' claim does not make a joiner adopt a model while a running peer it hears disagrees", async (t) => {
  const hostileKeys = generateKeyPair();
  const joinerKeys = generateKeyPair();
  const { groups, keys, endpoints } = await honestPair(hostileKeys, [joinerKeys.publicKey]);
  const allowlist = [...keys.map((k) => k.publicKey), hostileKeys.publicKey, joinerKeys.publicKey];
  const h = await HostilePeer.open({ bind: nextEndpoint(), runId: 'adv', fingerprint: FINGERPRINT, keys: hostileKeys, allowlist });
  const joiner = await PeerGroup.open({
    runId: 'adv',
    fingerprint: FINGERPRINT,
    mesh: { bind: nextEndpoint(), keys: joinerKeys, allowlist },
    maxFrameBytes: 1 << 20,
    peers: [
      { endpoint: endpoints[0]!, publicKey: keys[0]!.publicKey },
      { endpoint: h.endpoint, publicKey: hostileKeys.publicKey },
    ],
    expectedPeers: 3,
    heartbeatMs: 100,
    peerTimeoutMs: 1000,
    startTimeoutMs: 20_000,
  });
  // The hostile peer answers every hello as a running member and claims the run finished.
  h.onMessage = (msg) => {
    if (msg.kind !== 'hello' && msg.kind !== 'join') return;
    const to = { endpoint: joiner.endpoint, publicKey: joinerKeys.publicKey };
    h.send(to, 'hello', { ...h.identity(), running: true, view: 3, next: 40, members: [h.id, groups[0]!.id], known: [] });
    h.send(to, 'finished', {}, [Buffer.from('not a model at all')]);
  };
  let outcome: StartResult | Error | undefined;
  joiner.start().then(
    (r) => (outcome = r),
    (e: Error) => (outcome = e),
  );
  try {
    await until(() => h.received.some((m) => m.kind === 'join'), 5000, 'the joiner to ask to join');
    // Past the joiner's quiet period (one peer timeout): only the running peer's disagreement keeps it from adopting.
    await new Promise((r) => setTimeout(r, 2500));
    t.is(outcome, undefined, `the joiner entered the run: ${outcome instanceof Error ? outcome.message : outcome?.kind}`);
    t.true(h.received.filter((m) => m.kind === 'join').length > 10);
  } finally {
    h.close();
    joiner.close();
    for (const g of groups) g.close();
  }
});
