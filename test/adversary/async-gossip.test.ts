/**
 * Attack: one announce listing hundreds of made-up addresses (and ipc:// or malformed ones)
 * makes a peer open a SUB socket for each, until file descriptors run out.
 * Defence: gossip takes only tcp://host:port, at most maxNewPeersPerHeartbeat new records per
 * heartbeat and maxPeers in all (src/sync/membership.ts).
 */
import test from 'ava';
import { Peer } from '../../src/sync/peer.js';
import type { PeerAddress } from '../../src/sync/wire.js';
import { Hostile, until } from './hostile.js';

const RUN = 'adv-gossip';
const FP = 'ef'.repeat(32);

test('announces of hundreds of made-up addresses are capped (default maxPeers); ipc:// and malformed endpoints are refused', async (t) => {
  const peer = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 1000 });
  const hostile = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: '22'.repeat(16) });
  t.teardown(async () => {
    await peer.close();
    hostile.close();
  });
  const fake = (i: number): PeerAddress => ({
    pub: `tcp://127.0.0.1:${20000 + 2 * i}`,
    router: `tcp://127.0.0.1:${20001 + 2 * i}`,
    publicKey: null,
  });
  const bad: PeerAddress[] = [
    { pub: 'ipc:///tmp/dbn-adv.sock', router: 'ipc:///tmp/dbn-adv-r.sock', publicKey: null },
    { pub: 'tcp://127.0.0.1:99999', router: 'tcp://127.0.0.1:99998', publicKey: null },
    { pub: 'tcp://*:5555', router: 'tcp://*:5556', publicKey: null },
  ];
  const peers = [...bad, ...Array.from({ length: 500 }, (_, i) => fake(i))];
  const rounds = 40;
  const dealer = await hostile.sendTo(peer.address.router, hostile.heartbeat({ peers }));
  for (let i = 1; i < rounds; i++) await dealer.send(hostile.heartbeat({ peers }));
  await until(() => peer.stats().received >= rounds, 5000, 'the announces');
  const s = peer.stats();
  t.is(s.peers.length, 256, 'maxPeers (default 256) records, 16 more per announce until then');
  t.false(
    s.peers.some((p) => !/^tcp:\/\/127\.0\.0\.1:\d+$/.test(p.pub) || Number(p.pub.split(':')[2]) > 65535),
    'only tcp://host:port with a real port',
  );
  t.true(s.rejected.gossip >= bad.length, 'refusals are counted');
});

test('one announce adds at most maxNewPeersPerHeartbeat records', async (t) => {
  const peer = await Peer.create({
    runId: RUN,
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    plaintext: true,
    heartbeatIntervalMs: 1000,
    maxNewPeersPerHeartbeat: 5,
  });
  const hostile = await Hostile.create({ runId: RUN, fingerprint: FP, senderId: '23'.repeat(16) });
  t.teardown(async () => {
    await peer.close();
    hostile.close();
  });
  const peers = Array.from({ length: 100 }, (_, i) => ({
    pub: `tcp://127.0.0.1:${30000 + 2 * i}`,
    router: `tcp://127.0.0.1:${30001 + 2 * i}`,
    publicKey: null,
  }));
  await hostile.sendTo(peer.address.router, hostile.heartbeat({ peers }));
  await until(() => peer.stats().received >= 1, 5000, 'the announce');
  t.is(peer.stats().peers.length, 5);
});
