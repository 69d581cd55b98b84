/**
 * Attack: a peer that floods deltas while the application reads slowly grows the queues without
 * limit (they were bounded by message count, not bytes).
 * Defence: every queue is bounded in bytes: the send queues (maxQueuedBytes) and each deltas()
 * iterator (maxInboxBytes); what does not fit is refused and counted (src/sync/queues.ts).
 */
import test from 'ava';
import { Peer } from '../../src/sync/peer.js';
import { SendQueue } from '../../src/sync/queues.js';
import { Hostile, until } from './hostile.js';

const RUN = 'adv-queue';
const FP = '56'.repeat(32);
const FAST = { heartbeatIntervalMs: 50, peerTimeoutMs: 1000 } as const;

test('a deltas() iterator nobody reads holds at most maxInboxBytes; the rest is counted as dropped', async (t) => {
  const hostile = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: '55'.repeat(16) });
  const peer = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    plaintext: true,
    peers: [hostile.address.pub],
    maxInboxBytes: 64 * 1024,
    ...FAST,
  });
  t.teardown(async () => {
    await peer.close();
    hostile.close();
  });
  await hostile.beatUntil(new Promise((resolve) => peer.once('peer-joined', resolve)));
  const unread = peer.deltas();
  let events = 0;
  peer.on('delta', () => events++);
  const n = 100;
  for (let i = 1; i <= n; i++) await hostile.publish(hostile.delta('55'.repeat(16), i, new Float32Array(1024).fill(i)));
  await until(() => events === n, 5000, 'every delta delivered to the event');
  t.is(peer.stats().dropped.inboxFull, n - 16, '16 deltas of 4 KiB fit in 64 KiB');
  const first = await unread.next();
  t.is(first.value?.sequence, 1);
  await unread.return?.();
});

test('a send queue refuses what exceeds its byte bound (one oversized message still passes alone)', (t) => {
  const never = { send: () => new Promise<void>(() => undefined) };
  const q = new SendQueue(never, 1000, () => undefined, 10_000);
  const msg = (bytes: number): Buffer[] => [Buffer.alloc(bytes)];
  t.true(q.push(msg(3000)), 'taken and in flight');
  t.true(q.push(msg(6000)));
  t.true(q.push(msg(4000)));
  t.false(q.push(msg(1)), '10,000 bytes wait already');
  t.is(q.bytes, 10_000);
  const empty = new SendQueue(never, 1000, () => undefined, 10_000);
  t.true(empty.push(msg(5000)), 'in flight at once');
  t.true(empty.push(msg(50_000)), 'an oversized message is taken when nothing waits, so that it can ever be sent');
  t.false(empty.push(msg(1)), 'but nothing joins it');
});
