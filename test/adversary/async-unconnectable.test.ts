/**
 * Attack: a peer advertises a snapshot endpoint that ZeroMQ cannot connect to (`tcp://*:port`);
 * the raw EINVAL of ZeroMQ's connect escaped requestSnapshot, so a joining peer died.
 * Defence: only tcp://host:port (port 1–65535, no wildcard host) is taken from heartbeats, and a connect that
 * ZeroMQ refuses gives SyncError ECONNECT to the warning handler and skips that peer
 * (src/sync/membership.ts, src/sync/dealers.ts, src/sync/snapshot-client.ts).
 */
import test from 'ava';
import { SyncError } from '../../src/errors.js';
import { Peer } from '../../src/sync/peer.js';
import { Hostile } from './hostile.js';

const RUN = 'adv-conn';
const FP = '34'.repeat(32);
const FAST = { heartbeatIntervalMs: 50, peerTimeoutMs: 1000 } as const;

test('an unconnectable advertised snapshot endpoint gives a typed error and the others still serve', async (t) => {
  const hostile = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: '44'.repeat(16) });
  const joiner = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    plaintext: true,
    peers: [hostile.address.pub],
    ...FAST,
  });
  const late: { server?: Peer } = {};
  t.teardown(async () => {
    await joiner.close();
    await late.server?.close();
    hostile.close();
  });
  const lie = (): Buffer[] => hostile.heartbeat({ self: { ...hostile.address, router: 'tcp://*:5556' } });
  await hostile.beatUntil(new Promise((resolve) => joiner.once('peer-joined', resolve)), lie);
  const beating = setInterval(() => void hostile.publish(lie()), 20);
  t.teardown(() => clearInterval(beating));

  const err = await t.throwsAsync(joiner.requestSnapshot(500));
  t.true(err instanceof SyncError, `a typed error, got ${String(err)}`);
  t.is((err as SyncError).code, 'ETIMEDOUT');

  // Training goes on: a real peer that serves snapshots is asked next.
  const server = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    plaintext: true,
    peers: [joiner.address.pub],
    ...FAST,
  });
  late.server = server;
  server.serveSnapshots(() => ({ layers: [{ layer: 0, tensors: [new Float32Array([5])], shapes: [[1, 1]] }], sequences: new Map() }));
  await joiner.waitForPeers(1, 5000);
  const snap = await joiner.requestSnapshot(5000);
  t.is(snap.from, server.senderId);
  t.deepEqual([...snap.layers[0]!.tensors[0]!], [5]);
});
