/**
 * Attack: an allowlisted peer takes another peer's sender id before that peer is heard, so that
 * its forged deltas are delivered under the victim's name and the victim's own are refused.
 * Defence: a sender id carries a prefix of its holder's CURVE key, checked against the key of
 * every connection (src/sync/identity.ts).
 */
import test from 'ava';
import { Peer } from '../../src/sync/peer.js';
import { senderIdFor } from '../../src/sync/identity.js';
import { generateKeyPair } from '../../src/sync/keys.js';
import { Hostile, until } from './hostile.js';

const RUN = 'adv-id';
const FP = 'ab'.repeat(32);
const FAST = { heartbeatIntervalMs: 50, peerTimeoutMs: 1000 } as const;

test('a peer cannot speak under the sender id of a peer not yet heard; the real one is heard afterwards', async (t) => {
  const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair()] as const;
  const allowlist = keys.map((k) => k.publicKey);
  const victimId = senderIdFor(keys[0].publicKey);
  const mallory = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: senderIdFor(keys[2].publicKey), keys: keys[2] });
  const bob = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    keys: keys[1],
    allowlist,
    peers: [mallory.seed],
    ...FAST,
  });
  const late: { alice?: Peer } = {};
  t.teardown(async () => {
    await late.alice?.close();
    await bob.close();
    mallory.close();
  });
  const fromVictim: number[] = [];
  bob.on('delta', (d) => {
    if (d.senderId === victimId) fromVictim.push(d.tensors[0]![0]!);
  });
  await mallory.beatUntil(new Promise((resolve) => bob.once('peer-joined', resolve)));

  // Mallory speaks first under Alice's id, before Alice exists.
  for (let i = 1; i <= 3; i++) await mallory.publish(mallory.delta(victimId, i, new Float32Array([666])));
  await until(() => bob.stats().received >= 4 || fromVictim.length > 0, 5000, 'the forged deltas to reach Bob');

  const alice = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    keys: keys[0],
    allowlist,
    senderId: victimId,
    peers: [bob.seedAddress],
    ...FAST,
  });
  late.alice = alice;
  await alice.waitForPeers(1, 5000);
  await bob.waitForPeers(1, 5000);
  alice.publishDelta(0, [new Float32Array([1])], [[1, 1]]);
  await until(() => fromVictim.includes(1) || bob.stats().rejected.sender > 3, 5000, "Alice's delta");
  t.deepEqual(fromVictim, [1], "only Alice's own delta arrives under her id");
  t.true(bob.stats().rejected.sender >= 3, 'the forged deltas are refused and counted');
});
