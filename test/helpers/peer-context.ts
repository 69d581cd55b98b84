/** What the in-process peer-training tests share: a context that closes every trainer and peer and disposes every model. */
import anyTest from 'ava';
import type { TestFn } from 'ava';
import type { Dbn } from '../../src/dbn/dbn.js';
import { encodeFingerprint } from '../../src/distributed/async/peer-fingerprint.js';
import type { PeerLink, PeerTrainer } from '../../src/distributed/async/peer-training.js';
import type { Peer } from '../../src/sync/peer.js';
import type { DeltaMessage } from '../../src/sync/wire.js';

/** What a test registers for cleanup. */
export interface PeerContext {
  peers: Peer[];
  trainers: PeerTrainer[];
  dbns: Dbn[];
}

/** ava's `test` with a {@link PeerContext} reset before each test and cleaned up after it, pass or fail. */
export function peerTest(): TestFn<PeerContext> {
  const test = anyTest as TestFn<PeerContext>;
  test.beforeEach((t) => {
    t.context.peers = [];
    t.context.trainers = [];
    t.context.dbns = [];
  });
  test.afterEach.always(async (t) => {
    for (const tr of t.context.trainers) tr.close();
    await Promise.all(t.context.peers.map((p) => p.close()));
    for (const d of t.context.dbns) d.dispose();
  });
  return test;
}

/** Every parameter of a Dbn (RBMs, then the classifier if any), as one list of arrays. */
export function allParameters(d: Dbn): Float32Array[] {
  const out: Float32Array[] = [];
  for (const l of d.layers) {
    const p = l.getParameters();
    out.push(p.weights.data, p.visibleBias, p.hiddenBias);
  }
  if (d.classes !== undefined) for (const l of d.getClassifierParameters().layers) out.push(l.weights.data, l.bias);
  return out;
}

/**
 * An in-memory PeerLink for one trainer: records every published payload (copied), and lets the
 * test play a second trainer 'bb…' (its deltas through `deliver`, its heartbeats through `beat`,
 * with `samples` as its progress).
 */
export function memoryLink(): { link: PeerLink; sent: Buffer[][]; deliver: (m: DeltaMessage) => void; beat: (samples?: number) => void } {
  const handlers = new Map<string, (x: never) => void>();
  const sent: Buffer[][] = [];
  let seq = 0;
  const stats = {
    delivered: 0,
    gaps: 0,
    duplicates: 0,
    stale: 0,
    rejected: { key: 0 },
    handshakeFailures: 0,
    decodeMs: 0,
    perSender: {},
    sent: { heartbeats: 0 },
  };
  const link = {
    senderId: 'aa'.repeat(16),
    publishDelta: () => ++seq,
    publishDeltaFrames: (_layer: number, payload: readonly Buffer[]) => {
      sent.push(payload.map((b) => Buffer.from(b)));
      return ++seq;
    },
    flush: () => Promise.resolve(),
    on: (e: string, f: (x: never) => void) => handlers.set(e, f),
    off: () => undefined,
    setWeightFingerprint: () => undefined,
    setProgress: () => undefined,
    serveSnapshots: () => undefined,
    requestSnapshot: () => Promise.reject(new Error('no snapshots here')),
    adoptSequences: () => undefined,
    sequences: () => new Map<string, number>(),
    stats: () => stats,
    waitForPeers: () => Promise.resolve(),
    setMaxFrameBytes: () => undefined,
  } as unknown as PeerLink;
  const beat = (samples = 0): void =>
    (handlers.get('heartbeat') as (h: unknown) => void)({
      kind: 'heartbeat',
      senderId: 'bb'.repeat(16),
      lastSequence: 0,
      progress: { epoch: 0, batches: samples === 0 ? 1 : 0, samples },
      weightFingerprint: encodeFingerprint({ stage: 0, epochs: 0 }, [new Float64Array(4)]),
    });
  return { link, sent, deliver: (m) => (handlers.get('delta') as (d: DeltaMessage) => void)(m), beat };
}
