import { loadBundledDigits, take } from '../../src/data/index.js';
import { Dbn } from '../../src/dbn/dbn.js';
import type { LayerOptions } from '../../src/dbn/options.js';
import { PeerTrainer } from '../../src/distributed/async/peer-training.js';
import type { PeerTrainingOptions } from '../../src/distributed/async/peer-training.js';
import { SyncError } from '../../src/errors.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Random } from '../../src/random.js';
import { Peer } from '../../src/sync/peer.js';
import type { DeltaMessage } from '../../src/sync/wire.js';
import type { HostMatrix } from '../../src/validate.js';
import { type PeerContext, peerTest, allParameters, memoryLink } from '../helpers/peer-context.js';

type Ctx = PeerContext;
const test = peerTest();

const FP = 'ef'.repeat(32);
const digits = take(loadBundledDigits(), 600);
const LAYERS: LayerOptions[] = [{ nHidden: 12, epochs: 2, batchSize: 20 }];

function dbnOf(t: { context: Ctx }): Dbn {
  const d = new Dbn({ nVisible: 784, layers: LAYERS, seed: 5, backend: createJsBackend() });
  t.context.dbns.push(d);
  return d;
}

/** Rows `from…to−1` of the digits: shards of different sizes (different minibatches per epoch). */
function rows(from: number, to: number): { x: HostMatrix; y: Int32Array } {
  return {
    x: { rows: to - from, cols: digits.x.cols, data: digits.x.data.slice(from * digits.x.cols, to * digits.x.cols) },
    y: Int32Array.from(digits.y!.subarray(from, to)),
  };
}

/** 150, 200 and 250 rows: 8, 10 and 13 minibatches of 20 per epoch. */
const SHARDS = [rows(0, 150), rows(150, 350), rows(350, 600)];

function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) =>
    Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(b[i]!.buffer, b[i]!.byteOffset, b[i]!.byteLength)),
  );
}

/**
 * Three lockstep peers over loopback, each on its shard, pretraining one RBM (2 epochs) and
 * fine-tuning (1 epoch); `sleepy(peer, batch)` may delay a peer's minibatch hook.
 */
async function lockstepRun(
  t: { context: Ctx },
  opts: Omit<PeerTrainingOptions, 'mode'> & { merge: 'sum' | 'average' },
  sleepy?: (peer: number, batch: number) => number,
): Promise<{ params: Float32Array[][]; trainers: PeerTrainer[] }> {
  const peers: Peer[] = [];
  for (let i = 0; i < 3; i++) {
    const p = await Peer.create({
      runId: 'lockstep',
      fingerprint: FP,
      bind: 'tcp://127.0.0.1:0',
      plaintext: true,
      peers: peers.slice(0, 1).map((s) => s.address.pub),
      heartbeatIntervalMs: 40,
      peerTimeoutMs: 10_000,
    });
    t.context.peers.push(p);
    peers.push(p);
  }
  const dbns = peers.map(() => dbnOf(t));
  const trainers = peers.map((p, i) => {
    const { merge, ...rest } = opts;
    const tr = new PeerTrainer(dbns[i]!, p, { publishEvery: 1, barrierTimeoutMs: 20_000, mode: { kind: 'lockstep', merge }, ...rest });
    t.context.trainers.push(tr);
    return tr;
  });
  await Promise.all(trainers.map((tr) => tr.join({ minPeers: 2, timeoutMs: 10_000 })));
  let batch = 0;
  await Promise.all(
    trainers.map(async (tr, i) => {
      const hook = async (): Promise<void> => {
        const ms = sleepy?.(i, batch++) ?? 0;
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      };
      await tr.pretrain(SHARDS[i]!.x, { onBatch: hook });
      await tr.fineTune(SHARDS[i]!.x, SHARDS[i]!.y, { epochs: 1, batchSize: 20, classes: 10, learningRate: 0.05, onBatch: hook });
      await tr.finish();
    }),
  );
  return { params: dbns.map(allParameters), trainers };
}

test('lockstep: three peers with different shard sizes end every stage with bit-identical weights', async (t) => {
  const { params, trainers } = await lockstepRun(t, { merge: 'sum', minPeers: 2 });
  t.true(sameBits(params[0]!, params[1]!), 'peer 0 and peer 1');
  t.true(sameBits(params[0]!, params[2]!), 'peer 0 and peer 2');
  const s = trainers.map((tr) => tr.stats());
  // Each epoch makes as many rounds as the largest shard has minibatches (13), each stage one more at its end:
  // pretraining 2 × 13 + 1, fine-tuning 1 × 13 + 1.
  for (const x of s) t.is(x.lockstep.rounds, 2 * 13 + 1 + 13 + 1);
  // The 8- and 10-minibatch peers fill the missing rounds of each of their 3 epochs with empty deltas.
  t.deepEqual(
    s.map((x) => x.lockstep.padded),
    [3 * (13 - 8), 3 * (13 - 10), 0],
  );
  for (const x of s) {
    t.is(x.applied, 2 * x.lockstep.rounds, 'two remote deltas merged per round');
    t.is(x.transport.gaps, 0);
    t.is(x.divergence, 0);
  }
});

test('lockstep: the same seed gives the same bits whatever the delays (one peer sleeping in its hooks)', async (t) => {
  const quiet = await lockstepRun(t, { merge: 'average' });
  const slow = await lockstepRun(t, { merge: 'average' }, (peer, batch) =>
    peer === 1 && batch % 3 === 0 ? 15 : peer === 2 && batch % 7 === 0 ? 30 : 0,
  );
  t.true(sameBits(quiet.params[0]!, slow.params[0]!), 'run 1 and run 2 (peer 0)');
  t.true(sameBits(slow.params[0]!, slow.params[1]!) && sameBits(slow.params[0]!, slow.params[2]!), 'the peers of run 2');
  // And the rounds did merge something: the weights are not those of one peer training alone.
  t.true(quiet.trainers.every((tr) => tr.stats().applied > 0));
});

test('lockstep: a delta of a later round is held, not applied early; a lost delta stops the run (ELOCKSTEP)', async (t) => {
  const dbn = dbnOf(t);
  const { link, sent, deliver, beat } = memoryLink();
  const published = (): Float32Array[][] =>
    sent.map((p) => p.map((b) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))));
  const tr = new PeerTrainer(dbn, link, { publishEvery: 1, mode: { kind: 'lockstep', merge: 'sum' }, barrierTimeoutMs: 5000 });
  t.context.trainers.push(tr);
  beat(1); // a live trainer at stage 0 making one round per epoch
  const shapes: [number, number][] = [
    [784, 12],
    [1, 784],
    [1, 12],
  ];
  const rng = new Random(2);
  const remote = (sequence: number, baseSequence: number): DeltaMessage => {
    const tensors = shapes.map(([r, c]) => Float32Array.from({ length: r * c }, () => (rng.uniform() - 0.5) * 1e-2));
    let sumSquares = 0;
    for (const x of tensors) for (const v of x) sumSquares += v * v;
    return {
      kind: 'delta',
      senderId: 'bb'.repeat(16),
      layer: 0,
      sequence,
      baseSequence,
      float16: false,
      tensors,
      shapes,
      sumSquares,
    } as unknown as DeltaMessage;
  };
  const r1 = remote(1, 0);
  const r2 = remote(2, 1);
  deliver(r1);
  deliver(r2); // round 2, early
  const p0 = dbn.layers[0]!.getParameters();
  const before = [p0.weights.data, p0.visibleBias, p0.hiddenBias].map((x) => x.slice());
  const stop = new AbortController();
  let afterRound1: Float32Array[] | undefined;
  // 20 rows: one minibatch, so one round, then stop.
  await tr.pretrain(take(digits, 20).x, {
    signal: stop.signal,
    onBatch: () => {
      const p = dbn.layers[0]!.getParameters();
      afterRound1 = [p.weights.data, p.visibleBias, p.hiddenBias];
      stop.abort();
    },
  });
  t.is(tr.stats().lockstep.rounds, 1);
  t.is(published().length, 1);
  // Round 1: base + (own delta + bb's round-1 delta), in float32, in sender-id order ('aa…' < 'bb…').
  const expected = before.map((b, i) => b.map((v, k) => Math.fround(v + Math.fround(published()[0]![i]![k]! + r1.tensors[i]![k]!))));
  t.true(sameBits(afterRound1!, expected), 'exactly base + own + round 1');
  const withEarly = expected.map((e, i) => e.map((v, k) => v + r2.tensors[i]![k]!));
  t.false(sameBits(afterRound1!, withEarly));
  t.is(tr.stats().applied, 1);

  // bb's next delta does not follow its last one (sequence 2): one was lost, so the next round fails.
  deliver(remote(4, 3));
  const err = await t.throwsAsync(tr.pretrain(take(digits, 20).x), { instanceOf: SyncError });
  t.is(err?.code, 'ELOCKSTEP');
});
