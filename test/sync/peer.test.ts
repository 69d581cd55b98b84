import anyTest from 'ava';
import type { TestFn } from 'ava';
import * as zmq from 'zeromq';
import { InvalidOptionError, ShapeMismatchError, SyncError } from '../../src/errors.js';
import { Peer, parseSeed } from '../../src/sync/peer.js';
import type { PeerEvents, PeerOptions } from '../../src/sync/peer.js';
import { senderIdFor } from '../../src/sync/identity.js';
import { generateKeyPair } from '../../src/sync/keys.js';
import type { KeyPair } from '../../src/sync/keys.js';
import { encodeDelta, encodeHeartbeat } from '../../src/sync/wire.js';
import type { DeltaMessage, Envelope } from '../../src/sync/wire.js';

interface Ctx {
  peers: Peer[];
  sockets: zmq.Socket[];
}
const test = anyTest as TestFn<Ctx>;

const FP = 'ab'.repeat(32);
const RUN = 'peer-test';
const FAST = { heartbeatIntervalMs: 50, peerTimeoutMs: 1000 } as const;

test.beforeEach((t) => {
  t.context.peers = [];
  t.context.sockets = [];
});

test.afterEach.always(async (t) => {
  await Promise.all(t.context.peers.map((p) => p.close()));
  for (const s of t.context.sockets) s.close();
});

async function open(
  t: { context: Ctx },
  options: Partial<PeerOptions> & ({ keys: KeyPair; allowlist: string[] } | { plaintext: true }),
): Promise<Peer> {
  const p = await Peer.create({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', ...FAST, ...options });
  t.context.peers.push(p);
  return p;
}

/** Resolves with the first `event` whose arguments satisfy `pred`; rejects after `ms`. */
function waitFor<E extends keyof PeerEvents>(
  peer: Peer,
  event: E,
  pred: (...args: PeerEvents[E]) => boolean = () => true,
  ms = 5000,
): Promise<PeerEvents[E]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: PeerEvents[E]): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      peer.off(event, listener as never);
      resolve(args);
    };
    const timer = setTimeout(() => {
      peer.off(event, listener as never);
      reject(new Error(`timed out after ${ms} ms waiting for '${String(event)}'`));
    }, ms);
    peer.on(event, listener as never);
  });
}

/** Resolves once `cond()` holds, re-checking whenever `peer` emits one of `events`. */
function until(peer: Peer, events: Array<keyof PeerEvents>, cond: () => boolean, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!cond()) return;
      done();
      resolve();
    };
    const done = (): void => {
      clearTimeout(timer);
      for (const e of events) peer.off(e, check as never);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting on ${events.join('/')}`));
    }, ms);
    for (const e of events) peer.on(e, check as never);
    check();
  });
}

function keysFor(n: number): { keys: KeyPair[]; allow: string[] } {
  const keys = Array.from({ length: n }, () => generateKeyPair());
  return { keys, allow: keys.map((k) => k.publicKey) };
}

const joinedBy =
  (id: string) =>
  (p: { senderId: string | null }): boolean =>
    p.senderId === id;

test('two peers exchange deltas exactly (values, sender, sequence)', async (t) => {
  const { keys, allow } = keysFor(2);
  const a = await open(t, { keys: keys[0]!, allowlist: allow });
  const b = await open(t, { keys: keys[1]!, allowlist: allow, peers: [a.seedAddress] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);

  const atB: DeltaMessage[] = [];
  b.on('delta', (d) => atB.push(d));
  const iter = b.deltas();
  const w = new Float32Array([0.1, -2.5, 3e-38, 1e30, -0, 7]);
  const c = new Float32Array([1, 2, 3]);
  t.is(
    a.publishDelta(
      0,
      [w, c],
      [
        [2, 3],
        [1, 3],
      ],
    ),
    1,
  );
  w.fill(42); // the caller may reuse its arrays at once
  t.is(a.publishDelta(1, [new Float32Array([0.5, 1.5])], [[1, 2]], { float16: true }), 2);
  t.is(
    a.publishDelta(
      0,
      [new Float32Array(6).fill(1), c],
      [
        [2, 3],
        [1, 3],
      ],
    ),
    3,
  );
  const fromB = waitFor(a, 'delta');
  t.is(b.publishDelta(7, [new Float32Array([9])], [[1, 1]]), 1);

  await until(b, ['delta'], () => atB.length === 3);
  t.deepEqual(
    atB.map((d) => [d.senderId, d.sequence, d.baseSequence, d.layer, d.float16]),
    [
      [a.senderId, 1, 0, 0, false],
      [a.senderId, 2, 0, 1, true],
      [a.senderId, 3, 1, 0, false],
    ],
  );
  t.deepEqual([...atB[0]!.tensors[0]!], [...new Float32Array([0.1, -2.5, 3e-38, 1e30, -0, 7])]);
  t.deepEqual([...atB[0]!.tensors[1]!], [1, 2, 3]);
  t.deepEqual(atB[0]!.shapes, [
    [2, 3],
    [1, 3],
  ]);
  t.deepEqual([...atB[1]!.tensors[0]!], [0.5, 1.5]);
  t.deepEqual([...atB[2]!.tensors[0]!], [1, 1, 1, 1, 1, 1]);
  const [d] = await fromB;
  t.is(d.senderId, b.senderId);
  t.deepEqual([...d.tensors[0]!], [9]);

  const first = await iter.next();
  t.is(first.done, false);
  t.is(first.value?.sequence, 1);
  const sb = b.stats();
  t.is(sb.delivered, 3);
  t.deepEqual(sb.perSender[a.senderId], { delivered: 3, duplicates: 0, stale: 0, gaps: 0, floor: 3 });
  t.is(a.stats().sent.deltas, 3);
  t.is(sb.rejected.key, 0);

  await b.close();
  t.is((await iter.next()).done, false, 'already queued deltas are still readable');
  t.is((await iter.next()).done, false);
  t.is((await iter.next()).done, true, 'iteration ends on close');
  t.throws(() => b.publishDelta(0, [c], [[1, 3]]), { instanceOf: SyncError, message: /closed/ });
});

test('waitForPeers waits until the other side hears this peer too: the first delta published right after it arrives', async (t) => {
  // A joiner hears the seed before the seed has subscribed to the joiner; a delta sent in between
  // would be dropped by PUB. Several fresh pairs, each publishing at once.
  for (let trial = 0; trial < 5; trial++) {
    const a = await open(t, { plaintext: true });
    const b = await open(t, { plaintext: true, peers: [a.seedAddress] });
    await b.waitForPeers(1, 5000);
    const got = waitFor(a, 'delta', () => true, 3000);
    t.is(b.publishDelta(0, [new Float32Array([trial])], [[1, 1]]), 1);
    const [d] = await got;
    t.is(d.tensors[0]![0], trial, `trial ${trial}: the seed received the joiner's first delta`);
    await Promise.all([a.close(), b.close()]);
  }
});

test('publishDeltaFrames sends payloads written in the wire encoding; decoding time is counted', async (t) => {
  const a = await open(t, { plaintext: true });
  const b = await open(t, { plaintext: true, peers: [a.address.pub] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  const got = waitFor(b, 'delta');
  const f32 = Buffer.alloc(12);
  [0.25, -1, 3].forEach((v, i) => f32.writeFloatLE(v, 4 * i));
  const f16 = Buffer.from(new Uint16Array([0x3c00, 0xc000]).buffer); // 1, −2
  t.is(a.publishDeltaFrames(2, [f32], [[1, 3]]), 1);
  const [d] = await got;
  t.deepEqual([d.layer, d.sequence, d.float16, [...d.tensors[0]!], d.sumSquares], [2, 1, false, [0.25, -1, 3], 0.0625 + 1 + 9]);
  const got2 = waitFor(b, 'delta');
  t.is(a.publishDeltaFrames(2, [f16], [[2, 1]], { float16: true }), 2);
  const [d2] = await got2;
  t.deepEqual([d2.baseSequence, d2.float16, [...d2.tensors[0]!]], [1, true, [1, -2]]);
  t.true(b.stats().decodeMs > 0);
  t.throws(() => a.publishDeltaFrames(0, [Buffer.alloc(4)], [[1, 2]]), { instanceOf: ShapeMismatchError });
  t.is(a.stats().sent.deltas, 2, 'a refused call assigns no sequence');
});

test('gossip: C knows only B, learns A from B’s heartbeats and receives A’s deltas', async (t) => {
  const { keys, allow } = keysFor(3);
  const a = await open(t, { keys: keys[0]!, allowlist: allow });
  const b = await open(t, { keys: keys[1]!, allowlist: allow, peers: [a.seedAddress] });
  await b.waitForPeers(1, 5000);
  const c = await open(t, { keys: keys[2]!, allowlist: allow, peers: [b.seedAddress] });
  await waitFor(c, 'peer-joined', joinedBy(a.senderId));
  const got = waitFor(c, 'delta', (d) => d.senderId === a.senderId);
  a.publishDelta(2, [new Float32Array([4, 5, 6])], [[3, 1]]);
  const [d] = await got;
  t.deepEqual([...d.tensors[0]!], [4, 5, 6]);
  t.is(d.sequence, 1);
  const known = c.stats().peers.find((p) => p.pub === a.address.pub);
  t.truthy(known);
  t.false(known!.seed);
  t.is(known!.publicKey, a.address.publicKey);
  // A hears C too (C announced itself), so the mesh is complete.
  await until(a, ['peer-joined'], () => a.stats().peers.some((p) => p.senderId === c.senderId && p.alive));
  t.pass();
});

test('duplicates and stale deltas are dropped, gaps counted, bad frames counted by code', async (t) => {
  const p = await open(t, { plaintext: true });
  // A hand-driven publisher speaking the wire format directly.
  const pub = new zmq.Publisher({ linger: 0 });
  const router = new zmq.Router({ linger: 0 });
  t.context.sockets.push(pub, router);
  await pub.bind('tcp://127.0.0.1:0');
  await router.bind('tcp://127.0.0.1:0');
  const fakeId = '5a'.repeat(16);
  const env: Envelope = { runId: RUN, fingerprint: FP, senderId: fakeId };
  const self = { pub: pub.lastEndpoint!, router: router.lastEndpoint!, publicKey: null };
  const hb = (lastSequence: number): Buffer[] =>
    encodeHeartbeat(env, { lastSequence, self, peers: [], progress: { epoch: 0, batches: 0, samples: 0 }, weightFingerprint: [] });
  const delta = (sequence: number, e: Envelope = env): Buffer[] =>
    encodeDelta(e, { layer: 0, sequence, baseSequence: sequence - 1, tensors: [new Float32Array([sequence])], shapes: [[1, 1]] });

  // Announce ourselves through p's ROUTER so that p connects its SUB to us, then heartbeat
  // until p reports having heard us (the resends are only there to beat the slow joiner).
  const dealer = new zmq.Dealer({ linger: 0 });
  t.context.sockets.push(dealer);
  dealer.connect(p.address.router);
  await dealer.send(hb(0));
  const joined = waitFor(p, 'peer-joined', joinedBy(fakeId));
  let heard = false;
  void joined.then(
    () => (heard = true),
    () => undefined,
  );
  while (!heard) {
    await pub.send(hb(0));
    await Promise.race([joined, new Promise((r) => setTimeout(r, 20))]);
  }

  const seqs: number[] = [];
  p.on('delta', (d) => seqs.push(d.sequence));
  const bad = delta(100);
  bad[2]![1] = bad[2]![1]! ^ 4; // payload corrupted → ECRC
  const otherRun = delta(101);
  otherRun[0] = Buffer.from('dbn/other/0'); // not subscribed: filtered by ZeroMQ, never seen
  const script: Buffer[][] = [
    delta(1),
    delta(2),
    delta(2), // duplicate
    delta(5), // gap: 3, 4
    delta(3), // stale (counted lost, arrives late)
    delta(5), // duplicate
    bad,
    [Buffer.from(`dbn/${RUN}/0`), Buffer.from('garbage')], // ETRUNCATED
    delta(6, { ...env, fingerprint: 'cd'.repeat(32) }), // another architecture
    otherRun,
    delta(6),
  ];
  for (const m of script) await pub.send(m);
  await until(p, ['delta'], () => seqs.includes(6));
  t.deepEqual(seqs, [1, 2, 5, 6]);
  let s = p.stats();
  t.deepEqual(s.perSender[fakeId], { delivered: 4, duplicates: 2, stale: 1, gaps: 2, floor: 6 });
  t.deepEqual(s.malformed, { ECRC: 1, ETRUNCATED: 1 });
  t.is(s.rejected.fingerprint, 1);
  t.is(s.rejected.run, 0);

  // A heartbeat travels behind the deltas: sequences 7 and 8 never arrived, so they are gaps.
  await pub.send(hb(8));
  await waitFor(p, 'heartbeat', (h) => h.senderId === fakeId && h.lastSequence === 8);
  s = p.stats();
  t.is(s.perSender[fakeId]!.gaps, 4);
  t.is(s.perSender[fakeId]!.floor, 8);
  await pub.send(delta(8));
  await pub.send(delta(9));
  await until(p, ['delta'], () => seqs.includes(9));
  t.is(p.stats().perSender[fakeId]!.stale, 2);

  // A message of another run that reaches the ROUTER (no topic filter there) is rejected.
  const rejected = waitFor(p, 'rejected', (r) => r.reason === 'run');
  await dealer.send(
    encodeHeartbeat(
      { ...env, runId: 'other' },
      { lastSequence: 0, self, peers: [], progress: { epoch: 0, batches: 0, samples: 0 }, weightFingerprint: [] },
    ),
  );
  await rejected;
  t.is(p.stats().rejected.run, 1);
});

test('a snapshot request returns the provider’s tensors and sequences; older deltas become stale', async (t) => {
  const { keys, allow } = keysFor(2);
  const a = await open(t, { keys: keys[0]!, allowlist: allow });
  const b = await open(t, { keys: keys[1]!, allowlist: allow, peers: [a.seedAddress] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);

  const other = '77'.repeat(16);
  let asked: readonly number[] | undefined;
  a.serveSnapshots((layers) => {
    asked = layers;
    return {
      layers: [
        {
          layer: 0,
          tensors: [new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([0.5, -0.5])],
          shapes: [
            [3, 2],
            [1, 2],
          ],
        },
        { layer: 1, tensors: [new Float32Array([7, 8])], shapes: [[2, 1]] },
      ],
      sequences: new Map([
        [a.senderId, 5],
        [other, 3],
      ]),
    };
  });
  const snap = await b.requestSnapshot(5000);
  t.deepEqual(asked, []);
  t.is(snap.from, a.senderId);
  t.deepEqual(
    snap.layers.map((l) => [l.layer, l.shapes, l.tensors.map((x) => [...x])]),
    [
      [
        0,
        [
          [3, 2],
          [1, 2],
        ],
        [
          [1, 2, 3, 4, 5, 6],
          [0.5, -0.5],
        ],
      ],
      [1, [[2, 1]], [[7, 8]]],
    ],
  );
  t.deepEqual(
    [...snap.sequences],
    [
      [a.senderId, 5],
      [other, 3],
    ],
  );
  // A claim about a sender B has never heard is a hint only: it creates no floor.
  t.is(b.stats().perSender[other], undefined);

  const only = await b.requestSnapshot(5000, { layers: [1] });
  t.deepEqual(asked, [1]);
  t.deepEqual(
    only.layers.map((l) => l.layer),
    [1],
  );

  // The snapshot reflects A's deltas 1..5: B drops them as stale and delivers 6.
  const seqs: number[] = [];
  b.on('delta', (d) => seqs.push(d.sequence));
  for (let i = 1; i <= 6; i++) a.publishDelta(0, [new Float32Array([i])], [[1, 1]]);
  await until(b, ['delta'], () => seqs.length === 1);
  t.deepEqual(seqs, [6]);
  t.is(b.stats().perSender[a.senderId]!.stale, 5);
});

test('a snapshot requested with adoptSequences: false leaves the floors alone until adoptSequences()', async (t) => {
  const a = await open(t, { plaintext: true });
  const b = await open(t, { plaintext: true, peers: [a.address.pub] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  const seqs: number[] = [];
  b.on('delta', (d) => seqs.push(d.sequence));
  a.publishDelta(0, [new Float32Array([1])], [[1, 1]]);
  await until(b, ['delta'], () => seqs.length === 1);
  a.serveSnapshots(() => ({
    layers: [{ layer: 0, tensors: [new Float32Array([9])], shapes: [[1, 1]] }],
    sequences: new Map([[a.senderId, 4]]),
  }));
  const snap = await b.requestSnapshot(5000, { adoptSequences: false });
  t.deepEqual([...snap.sequences], [[a.senderId, 4]]);
  t.is(b.stats().perSender[a.senderId]!.floor, 1, 'floor unchanged');
  a.publishDelta(0, [new Float32Array([2])], [[1, 1]]);
  await until(b, ['delta'], () => seqs.length === 2);
  b.adoptSequences(
    new Map([
      [a.senderId, 4],
      [b.senderId, 99],
    ]),
  );
  t.is(b.stats().perSender[a.senderId]!.floor, 4);
  t.is(b.stats().perSender[b.senderId], undefined, 'its own id is skipped');
  for (let i = 0; i < 3; i++) a.publishDelta(0, [new Float32Array([3 + i])], [[1, 1]]);
  await until(b, ['delta'], () => seqs.length === 3);
  t.deepEqual(seqs, [1, 2, 5]);
  t.is(b.stats().perSender[a.senderId]!.stale, 2);
  t.throws(() => b.adoptSequences(new Map([['xyz', 1]])), { instanceOf: InvalidOptionError });
});

test('requestSnapshot fails with ETIMEDOUT when no peer can serve one', async (t) => {
  const lonely = await open(t, { plaintext: true });
  await t.throwsAsync(lonely.requestSnapshot(200), { instanceOf: SyncError, code: 'ETIMEDOUT' } as never);
  // A live peer without a provider answers "unavailable"; the request still times out.
  const b = await open(t, { plaintext: true, peers: [lonely.address.pub] });
  await Promise.all([lonely.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  const answered = until(lonely, ['heartbeat'], () => lonely.stats().sent.snapshotRequests > 0 && b.stats().sent.snapshotResponses > 0);
  await t.throwsAsync(lonely.requestSnapshot(500), { instanceOf: SyncError, code: 'ETIMEDOUT' } as never);
  await answered;
});

test('a peer whose key is not in the allowlist gets nothing and is never heard; allowed peers work', async (t) => {
  const { keys, allow } = keysFor(2);
  const xKeys = generateKeyPair();
  const a = await open(t, { keys: keys[0]!, allowlist: allow });
  const b = await open(t, { keys: keys[1]!, allowlist: allow, peers: [a.seedAddress] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);

  const deniedSub = waitFor(a, 'rejected', (r) => r.reason === 'key' && r.detail.includes(xKeys.publicKey));
  const x = await open(t, { keys: xKeys, allowlist: [...allow, xKeys.publicKey], peers: [a.seedAddress] });
  let xJoined = 0;
  x.on('peer-joined', () => xJoined++);
  const xFailed = waitFor(x, 'handshake-failed');
  await deniedSub;
  await xFailed;
  // X also tries to announce itself directly to A's ROUTER: denied as well.
  const dealer = new zmq.Dealer({
    linger: 0,
    curveServerKey: a.address.publicKey,
    curvePublicKey: xKeys.publicKey,
    curveSecretKey: xKeys.secretKey,
  });
  t.context.sockets.push(dealer);
  const deniedAnnounce = until(a, ['rejected'], () => a.stats().rejected.key >= 2);
  dealer.connect(a.address.router);
  void dealer
    .send(
      encodeHeartbeat(
        { runId: RUN, fingerprint: FP, senderId: x.senderId },
        { lastSequence: 0, self: x.address, peers: [], progress: { epoch: 0, batches: 0, samples: 0 }, weightFingerprint: [] },
      ),
    )
    .catch(() => undefined);
  await deniedAnnounce;

  for (let i = 0; i < 5; i++) x.publishDelta(0, [new Float32Array([13])], [[1, 1]]);
  await x.flush();
  const atB = waitFor(b, 'delta', (d) => d.senderId === a.senderId);
  a.publishDelta(0, [new Float32Array([1])], [[1, 1]]);
  await atB;

  for (const p of [a, b]) {
    const s = p.stats();
    t.is(s.perSender[x.senderId], undefined);
    t.false(s.peers.some((q) => q.senderId === x.senderId || q.pub === x.address.pub));
  }
  t.is(x.stats().received, 0);
  t.is(x.stats().delivered, 0);
  t.is(xJoined, 0);
  t.is(b.stats().rejected.key, 0);
});

test('a frame beyond maxFrameBytes never reaches the application; setMaxFrameBytes applies to live connections', async (t) => {
  t.throws(() => new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, maxFrameBytes: 10 }), {
    instanceOf: InvalidOptionError,
    message: /maxFrameBytes/,
  });
  const a = await open(t, { plaintext: true });
  const b = await open(t, { plaintext: true, peers: [a.address.pub], maxFrameBytes: 4096 });
  t.is(b.maxFrameBytes, 4096);
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  const sizes: number[] = [];
  b.on('delta', (d) => sizes.push(d.tensors[0]!.length));
  const big = new Float32Array(2000).fill(0.5); // an 8000-byte payload frame
  const small = new Float32Array([1]);
  // ZeroMQ drops the connection on the big frame and reconnects; resend small deltas until one arrives.
  a.publishDelta(0, [big], [[1, 2000]]);
  for (let i = 0; i < 200 && sizes.length === 0; i++) {
    a.publishDelta(0, [small], [[1, 1]]);
    await new Promise((r) => setTimeout(r, 25));
  }
  t.true(sizes.length > 0, 'small deltas get through after the reconnection');
  t.false(sizes.includes(2000), 'the oversized frame was never delivered');
  t.true(b.stats().gaps >= 1, 'the dropped delta is counted as a gap');

  b.setMaxFrameBytes(1 << 20);
  t.is(b.maxFrameBytes, 1 << 20);
  for (let i = 0; i < 200 && !sizes.includes(2000); i++) {
    a.publishDelta(0, [big], [[1, 2000]]);
    await new Promise((r) => setTimeout(r, 25));
  }
  t.true(sizes.includes(2000), 'the raised limit holds on the reconnected SUB');
  t.throws(() => b.setMaxFrameBytes(100), { instanceOf: InvalidOptionError });
});

test('CURVE: an allowlisted peer cannot speak under another peer’s sender id (ids carry the key prefix)', async (t) => {
  const { keys, allow } = keysFor(3);
  const a = await open(t, { keys: keys[0]!, allowlist: allow });
  // M: a hand-driven CURVE publisher holding the third allowlisted key.
  const m = new zmq.XPublisher({ linger: 0, curveServer: true, curvePublicKey: keys[2]!.publicKey, curveSecretKey: keys[2]!.secretKey });
  t.context.sockets.push(m);
  await m.bind('tcp://127.0.0.1:0');
  const subscribed = m.receive();
  const b = await open(t, { keys: keys[1]!, allowlist: allow, peers: [a.seedAddress, `${m.lastEndpoint!}#${keys[2]!.publicKey}`] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  await subscribed;
  const forged = (senderId: string, v: number): Buffer[] =>
    encodeDelta(
      { runId: RUN, fingerprint: FP, senderId },
      { layer: 0, sequence: 1000 + v, baseSequence: 0, tensors: [new Float32Array([v])], shapes: [[1, 1]] },
    );
  const values: number[] = [];
  b.on('delta', (d) => values.push(d.tensors[0]![0]!));
  const refused = waitFor(b, 'rejected', (r) => r.reason === 'sender' && r.senderId === a.senderId);
  await m.send(forged(a.senderId, 666)); // A was heard under A's key: refused
  await refused;
  const ownId = senderIdFor(keys[2]!.publicKey); // an id derived from M's own key
  const accepted = waitFor(b, 'delta', (d) => d.senderId === ownId);
  await m.send(forged(ownId, 7)); // M under an id of its own: delivered
  await accepted;
  t.deepEqual(values, [7]);
  t.is(b.stats().rejected.sender, 1);
  t.is(b.stats().perSender[a.senderId]?.delivered ?? 0, 0);
  // A's own deltas still arrive.
  const fromA = waitFor(b, 'delta', (d) => d.senderId === a.senderId);
  a.publishDelta(0, [new Float32Array([1])], [[1, 1]]);
  await fromA;
});

test('plaintext only when asked: a CURVE peer and a plaintext peer do not talk', async (t) => {
  t.throws(() => new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0' }), {
    instanceOf: InvalidOptionError,
    message: /plaintext: true/,
  });
  const k = generateKeyPair();
  t.throws(() => new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, keys: k, allowlist: [] }), {
    instanceOf: InvalidOptionError,
  });
  t.throws(
    () => new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', keys: k, allowlist: [], peers: ['tcp://127.0.0.1:9'] }),
    {
      instanceOf: InvalidOptionError,
      message: /needs its public key/,
    },
  );

  // libzmq reports a mechanism mismatch once per connection and then gives that connection up.
  const plain = await open(t, { plaintext: true });
  const fakeKey = generateKeyPair().publicKey; // what the CURVE peer believes the plaintext peer's key is
  const { keys, allow } = keysFor(2);
  const plainRefused = waitFor(plain, 'handshake-failed');
  const curve = await open(t, { keys: keys[0]!, allowlist: [...allow, fakeKey], peers: [`${plain.address.pub}#${fakeKey}`] });
  await plainRefused;
  const curveRefused = waitFor(curve, 'handshake-failed');
  const plain2 = await open(t, { plaintext: true, peers: [curve.address.pub] });
  await curveRefused;
  // Compatible peers as positive controls: they do hear the deltas published below.
  const curve2 = await open(t, { keys: keys[1]!, allowlist: allow, peers: [curve.seedAddress] });
  const plain3 = await open(t, { plaintext: true, peers: [plain2.address.pub] });
  await Promise.all([curve2.waitForPeers(1, 5000), plain3.waitForPeers(1, 5000)]);
  const controls = Promise.all([waitFor(curve2, 'delta'), waitFor(plain3, 'delta')]);
  curve.publishDelta(0, [new Float32Array([1])], [[1, 1]]);
  plain2.publishDelta(0, [new Float32Array([2])], [[1, 1]]);
  const [[c], [p]] = await controls;
  t.deepEqual([...c.tensors[0]!], [1]);
  t.deepEqual([...p.tensors[0]!], [2]);
  t.is(plain.stats().received, 0);
  t.is(plain.stats().handshakeFailures > 0, true);
  t.false(curve.stats().peers.some((q) => q.alive && q.pub === plain.address.pub));
  t.false(plain2.stats().peers.some((q) => q.pub === curve.address.pub && q.alive));
  t.is(plain2.stats().perSender[curve.senderId], undefined);
  t.is(curve.stats().perSender[plain2.senderId], undefined);
  t.is(curve.stats().perSender[plain.senderId], undefined);
});

test('a flood of deltas past a small HWM does not crash and the losses are counted as gaps', async (t) => {
  const { keys, allow } = keysFor(2);
  const a = await open(t, { keys: keys[0]!, allowlist: allow, sndHWM: 2 });
  const b = await open(t, { keys: keys[1]!, allowlist: allow, rcvHWM: 2, peers: [a.seedAddress] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  const N = 150;
  const big = new Float32Array(65536).fill(0.25);
  for (let i = 1; i <= N; i++) t.is(a.publishDelta(0, [big], [[256, 256]]), i);
  // The next heartbeat of A (behind its deltas) tells B where A's sequence stands.
  await waitFor(b, 'heartbeat', (h) => h.senderId === a.senderId && h.lastSequence === N, 8000);
  const s = b.stats().perSender[a.senderId]!;
  t.log(`delivered ${s.delivered}, gaps ${s.gaps}`);
  t.is(s.delivered + s.gaps, N);
  t.true(s.gaps > 0);
  t.is(s.floor, N);
  t.is(a.stats().sent.deltas, N);
});

test('a full send queue refuses a delta without consuming a sequence number', async (t) => {
  const a = await open(t, { plaintext: true, maxQueuedMessages: 3 });
  const one = new Float32Array([1]);
  // One message in flight (handed to ZeroMQ at once) plus 3 waiting; the rest are refused.
  const results = Array.from({ length: 7 }, () => a.publishDelta(0, [one], [[1, 1]]));
  t.deepEqual(results, [1, 2, 3, 4, undefined, undefined, undefined]);
  t.is(a.stats().dropped.queueFull, 3);
  t.is(a.stats().sent.deltas, 4);
  await a.flush();
  t.is(a.publishDelta(0, [one], [[1, 1]]), 5);
  t.is(a.lastSequence, 5);
});

test('a silent peer is lost, and joins again when heard from', async (t) => {
  const { keys, allow } = keysFor(2);
  const a = await open(t, { keys: keys[0]!, allowlist: allow, peerTimeoutMs: 300 });
  const b = await open(t, { keys: keys[1]!, allowlist: allow, peerTimeoutMs: 300, peers: [a.seedAddress] });
  await Promise.all([a.waitForPeers(1, 5000), b.waitForPeers(1, 5000)]);
  const where = b.address;
  const lost = waitFor(a, 'peer-lost', joinedBy(b.senderId));
  await b.close();
  const [info] = await lost;
  t.is(info.pub, where.pub);
  t.false(info.alive);
  t.false(a.stats().peers.find((p) => p.pub === where.pub)!.alive);

  // A restarted B at the same endpoints (a new sender id): A's SUB reconnects by itself.
  const rejoined = waitFor(a, 'peer-joined', (p) => p.pub === where.pub);
  let b2: Peer | undefined;
  for (let attempt = 0; b2 === undefined; attempt++) {
    try {
      b2 = await open(t, { keys: keys[1]!, allowlist: allow, peerTimeoutMs: 300, bind: where.pub, routerBind: where.router });
    } catch (err) {
      if (attempt > 50 || !(err instanceof SyncError) || err.code !== 'EBIND') throw err;
      await new Promise((r) => setTimeout(r, 20)); // the old socket may still hold the port
    }
  }
  const [again] = await rejoined;
  t.is(again.senderId, b2.senderId);
  t.true(again.alive);
});

test('a refused connection is retried: a peer restarted with a fixed allowlist is heard', async (t) => {
  const { keys, allow } = keysFor(2);
  const [ka, kb] = keys as [KeyPair, KeyPair];
  const opts = { peerTimeoutMs: 300 } as const;
  const a = await open(t, { keys: ka, allowlist: [], ...opts }); // forgot B's key
  const refused = waitFor(a, 'rejected', (r) => r.reason === 'key' && r.detail.includes(kb.publicKey));
  const b = await open(t, { keys: kb, allowlist: allow, peers: [a.seedAddress], ...opts });
  await refused;
  const where = a.address;
  await a.close();
  const joined = waitFor(b, 'peer-joined', (p) => p.pub === where.pub, 8000);
  let a2: Peer | undefined;
  for (let attempt = 0; a2 === undefined; attempt++) {
    try {
      a2 = await open(t, { keys: ka, allowlist: allow, bind: where.pub, routerBind: where.router, ...opts });
    } catch (err) {
      if (attempt > 50 || !(err instanceof SyncError) || err.code !== 'EBIND') throw err;
      await new Promise((r) => setTimeout(r, 20)); // the old socket may still hold the port
    }
  }
  const [p] = await joined;
  t.is(p.senderId, a2.senderId);
  t.true(b.stats().handshakeFailures >= 1);
});

test('options are validated and seeds parsed', (t) => {
  const k = generateKeyPair();
  t.deepEqual(parseSeed(`tcp://h:1#${k.publicKey}`), { pub: 'tcp://h:1', publicKey: k.publicKey });
  t.deepEqual(parseSeed('tcp://h:1'), { pub: 'tcp://h:1', publicKey: null });
  t.throws(() => parseSeed('tcp://h:1#short'), { instanceOf: InvalidOptionError, message: /40-character Z85/ });
  t.throws(() => new Peer({ runId: 'x/y', fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true }), {
    instanceOf: InvalidOptionError,
    message: /'runId'/,
  });
  t.throws(
    () =>
      new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, heartbeatIntervalMs: 100, peerTimeoutMs: 100 }),
    {
      instanceOf: InvalidOptionError,
      message: /'peerTimeoutMs'/,
    },
  );
  t.throws(
    () =>
      new Peer({
        runId: RUN,
        fingerprint: FP,
        bind: 'tcp://127.0.0.1:0',
        keys: { publicKey: k.publicKey, secretKey: generateKeyPair().secretKey },
        allowlist: [],
      }),
    {
      instanceOf: InvalidOptionError,
      message: /does not belong/,
    },
  );
  t.throws(
    () =>
      new Peer({
        runId: RUN,
        fingerprint: FP,
        bind: 'tcp://127.0.0.1:0',
        keys: k,
        allowlist: [],
        peers: [`tcp://h:1#${generateKeyPair().publicKey}`],
      }),
    {
      instanceOf: InvalidOptionError,
      message: /not in the allowlist/,
    },
  );
  t.throws(() => new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', plaintext: true, bogus: 1 } as PeerOptions), {
    instanceOf: InvalidOptionError,
    message: /no option 'bogus'/,
  });
});

test('a wildcard bind needs an advertised address', async (t) => {
  const p = new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://*:0', plaintext: true });
  t.context.peers.push(p);
  await t.throwsAsync(p.start(), { instanceOf: InvalidOptionError, message: /'advertise'/ });
  const q = await open(t, { plaintext: true, bind: 'tcp://*:0', advertise: 'tcp://127.0.0.1:1234' });
  t.is(q.address.pub, 'tcp://127.0.0.1:1234');
  t.regex(q.address.router, /^tcp:\/\/127\.0\.0\.1:\d+$/);
});

test('close() during start() ends cleanly', async (t) => {
  const { keys, allow } = keysFor(1);
  const p = new Peer({ runId: RUN, fingerprint: FP, bind: 'tcp://127.0.0.1:0', keys: keys[0]!, allowlist: allow });
  t.context.peers.push(p);
  const starting = p.start();
  await p.close();
  const err = await t.throwsAsync(starting, { instanceOf: SyncError });
  t.is(err?.code, 'ECLOSED');
  t.throws(() => p.publishDelta(0, [new Float32Array(1)], [[1, 1]]), { instanceOf: SyncError, message: /closed/ });
});
