/** What the in-process peer-training tests share: a context that closes every trainer and peer and disposes every model. */
import anyTest from 'ava';
import type { TestFn } from 'ava';
import type { Dbn } from '../../src/dbn/dbn.js';
import type { PeerTrainer } from '../../src/dbn/peer-training.js';
import type { Peer } from '../../src/sync/peer.js';

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
