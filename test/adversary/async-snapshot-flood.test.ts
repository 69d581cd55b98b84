/**
 * Attack: hundreds of tiny snapshot requests make a peer call its provider, encode and queue a
 * full snapshot for each (memory and CPU exhaustion).
 * Defence: requests rate-limited per client connection, one encoding cached for
 * snapshotCacheMs and shared by concurrent requests, the ROUTER queue bounded in bytes
 * (src/sync/snapshot-service.ts).
 */
import test from 'ava';
import { Peer } from '../../src/sync/peer.js';
import { encodeSnapshotRequest } from '../../src/sync/wire.js';
import { Hostile, until } from './hostile.js';

const RUN = 'adv-flood';
const FP = '12'.repeat(32);

test('a flood of snapshot requests calls the provider once per cache period and answers few (defaults)', async (t) => {
  // The defaults: 4 requests per second per client, one encoding serves 200 ms.
  const peer = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 1000 });
  const hostile = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: '33'.repeat(16) });
  t.teardown(async () => {
    await peer.close();
    hostile.close();
  });
  let calls = 0;
  const weights = new Float32Array(250_000); // 1 MB per snapshot
  peer.serveSnapshots(() => {
    calls++;
    return { layers: [{ layer: 0, tensors: [weights], shapes: [[500, 500]] }], sequences: new Map() };
  });
  const n = 300;
  const request = (id: number): Buffer[] => encodeSnapshotRequest(hostile.env(), { requestId: id, layers: [] });
  const t0 = Date.now();
  const dealer = await hostile.sendTo(peer.address.router, request(1));
  for (let i = 2; i <= n; i++) await dealer.send(request(i));
  await until(() => peer.stats().received >= n, 10_000, 'the requests');
  await until(() => peer.stats().sent.snapshotResponses + peer.stats().dropped.snapshotRate >= n, 5000, 'every request handled');
  const seconds = (Date.now() - t0) / 1000;
  const s = peer.stats();
  t.true(calls <= 1 + Math.ceil(seconds / 0.2), `the provider ran once per 200 ms at most: ${calls} calls in ${seconds} s`);
  t.true(
    s.sent.snapshotResponses <= 4 + Math.ceil(4 * seconds),
    `4 answers, then 4 per second: ${s.sent.snapshotResponses} in ${seconds} s`,
  );
  t.true(s.dropped.snapshotRate >= n - 4 - Math.ceil(4 * seconds));
  t.is(s.sent.snapshotResponses + s.dropped.snapshotRate, n);
  // The answers that went out are whole, valid snapshots for the right requests.
  const first = await dealer.receive();
  t.is(first.length, 4);
});
