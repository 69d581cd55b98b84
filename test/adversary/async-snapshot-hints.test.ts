/**
 * Attack: a snapshot claims that another sender's sequence is near 2^53; once the claim is
 * adopted every later delta of that sender is dropped as stale (the sender is silenced).
 * Defence: a claim is a hint bounded by what was heard on that sender's own connection
 * (src/sync/ledger.ts, HINT_AHEAD).
 */
import test from 'ava';
import { HINT_AHEAD } from '../../src/sync/ledger.js';
import { Peer } from '../../src/sync/peer.js';
import { Hostile, until } from './hostile.js';

const RUN = 'adv-hint';
const FP = 'cd'.repeat(32);
const FAST = { heartbeatIntervalMs: 50, peerTimeoutMs: 1000 } as const;

test("a snapshot's claim about another sender cannot silence it", async (t) => {
  const victim = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, ...FAST });
  const liar = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: '11'.repeat(16) });
  const joiner = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    plaintext: true,
    peers: [victim.address.pub, liar.address.pub],
    ...FAST,
  });
  t.teardown(async () => {
    await joiner.close();
    await victim.close();
    liar.close();
  });
  liar.serveSnapshots(
    [{ layer: 0, tensors: [new Float32Array([1])], shapes: [[1, 1]] }],
    new Map([[victim.senderId, Number.MAX_SAFE_INTEGER]]),
  );
  const heardBoth = until(() => joiner.stats().peers.filter((p) => p.alive).length === 2, 5000, 'both peers heard');
  await liar.beatUntil(heardBoth);
  await joiner.waitForPeers(1, 5000);

  const snap = await joiner.requestSnapshot(5000);
  t.is(snap.from, '11'.repeat(16));
  t.is(snap.sequences.get(victim.senderId), Number.MAX_SAFE_INTEGER);

  const delivered: number[] = [];
  joiner.on('delta', (d) => {
    if (d.senderId === victim.senderId) delivered.push(d.sequence);
  });
  const total = HINT_AHEAD + 6;
  for (let i = 0; i < total; i++) victim.publishDelta(0, [new Float32Array([i])], [[1, 1]]);
  await until(() => delivered.length >= 6, 5000, "the victim's deltas");
  // The claim covered at most HINT_AHEAD sequences past what the victim had announced (0).
  t.deepEqual(
    delivered,
    Array.from({ length: 6 }, (_, i) => HINT_AHEAD + 1 + i),
  );
});
