import { loadBundledDigits, shard, take } from '../../src/data/index.js';
import { Dbn } from '../../src/dbn/dbn.js';
import type { LayerOptions } from '../../src/dbn/options.js';
import { PeerTrainer } from '../../src/distributed/async/peer-training.js';
import type { AsyncMode, PeerTrainingOptions } from '../../src/distributed/async/peer-training.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { Backend } from '../../src/kernels/backend.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { createNativeBackend } from '../../src/kernels/native/index.js';
import { Random } from '../../src/random.js';
import { Peer } from '../../src/sync/peer.js';
import { decode, encodeDelta } from '../../src/sync/wire.js';
import type { DeltaMessage } from '../../src/sync/wire.js';
import type { HostMatrix } from '../../src/validate.js';
import { type PeerContext, peerTest, memoryLink } from '../helpers/peer-context.js';

type Ctx = PeerContext;
const test = peerTest();

const FP = 'cd'.repeat(32);
const digits = take(loadBundledDigits(), 600);
const LAYERS: LayerOptions[] = [{ nHidden: 12, epochs: 2, batchSize: 20 }];

async function peerOf(t: { context: Ctx }, seeds: Peer[] = []): Promise<Peer> {
  const p = await Peer.create({
    runId: 'unit',
    fingerprint: FP,
    bind: 'tcp://127.0.0.1:0',
    plaintext: true,
    peers: seeds.map((s) => s.address.pub),
    heartbeatIntervalMs: 50,
    peerTimeoutMs: 3000,
  });
  t.context.peers.push(p);
  return p;
}

function dbnOf(t: { context: Ctx }, layers: LayerOptions[] = LAYERS): Dbn {
  const d = new Dbn({ nVisible: 784, layers, seed: 3, backend: createJsBackend() });
  t.context.dbns.push(d);
  return d;
}

/** The asynchronous mode without anti-entropy rounds (they would make the tests depend on timing), plus `extra`. */
function quiet(extra: Omit<AsyncMode, 'kind'> = {}): AsyncMode {
  return { kind: 'async', antiEntropyMs: 0, ...extra };
}

function trainerOf(t: { context: Ctx }, dbn: Dbn, peer: Peer, opts: PeerTrainingOptions = {}): PeerTrainer {
  const tr = new PeerTrainer(dbn, peer, { publishEvery: 3, barrierTimeoutMs: 20_000, mode: quiet(), ...opts });
  t.context.trainers.push(tr);
  return tr;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function weights(d: Dbn, layer = 0): Float32Array {
  return d.layers[layer]!.getParameters().weights.data;
}

test('a trainer with no peer trains exactly like Dbn.pretrain (same bits)', async (t) => {
  const alone = dbnOf(t);
  const tr = trainerOf(t, alone, await peerOf(t), { publishEvery: 2 });
  await tr.pretrain(digits.x);
  await tr.finish();
  const plain = dbnOf(t);
  await plain.pretrain(digits.x);
  t.is(maxAbsDiff(weights(alone), weights(plain)), 0);
  const s = tr.stats();
  // 600 rows / 20 = 30 minibatches per epoch, 2 epochs, a delta every 2: 30 deltas, and a 31st
  // at the end of the layer only for what float32 rounding left behind (base holds exactly what
  // the receivers compute, base + d in float32, so cur − base keeps the rounding residual).
  t.true(s.published === 30 || s.published === 31, `published ${s.published}`);
  t.is(s.syncs, 31);
  t.is(s.applied, 0);
});

test('three trainers on thirds of the rows end with the same weights; every delta is applied once', async (t) => {
  const a = await peerOf(t);
  const b = await peerOf(t, [a]);
  const c = await peerOf(t, [a]);
  const dbns = [dbnOf(t), dbnOf(t), dbnOf(t)];
  const trainers = [a, b, c].map((p, i) => trainerOf(t, dbns[i]!, p));
  await Promise.all(trainers.map((tr) => tr.join({ minPeers: 2, timeoutMs: 10_000 })));
  await Promise.all(
    trainers.map(async (tr, i) => {
      await tr.pretrain(shard(digits, i, 3).x);
      await tr.finish();
    }),
  );
  t.true(maxAbsDiff(weights(dbns[0]!), weights(dbns[1]!)) < 1e-6);
  t.true(maxAbsDiff(weights(dbns[0]!), weights(dbns[2]!)) < 1e-6);
  const s = trainers.map((tr) => tr.stats());
  const published = s.reduce((n, x) => n + x.published, 0);
  for (const x of s) {
    t.is(x.applied, published - x.published, 'each applies every other peer’s deltas');
    t.is(x.transport.gaps, 0);
    t.deepEqual(x.rejected, { layer: 0, shape: 0, nonfinite: 0, cap: 0, norm: 0, rate: 0 });
    t.is(x.rolledBack, 0);
    t.true(x.divergence !== null && x.divergence < 1e-5);
  }
});

test('float16 deltas with error feedback: half the bytes, and the peers still agree exactly at the end', async (t) => {
  const a = await peerOf(t);
  const b = await peerOf(t, [a]);
  const dbns = [dbnOf(t), dbnOf(t)];
  const trainers = [a, b].map((p, i) => trainerOf(t, dbns[i]!, p, { mode: quiet({ encoding: { kind: 'float16' } }) }));
  await Promise.all(trainers.map((tr) => tr.join({ minPeers: 1, timeoutMs: 10_000 })));
  await Promise.all(
    trainers.map(async (tr, i) => {
      await tr.pretrain(shard(digits, i, 2).x);
      await tr.finish();
    }),
  );
  // The last delta of a stage goes as float32, carrying every rounding residual.
  t.true(maxAbsDiff(weights(dbns[0]!), weights(dbns[1]!)) < 1e-6);
  const r = trainers[0]!.stats().compressionRatio;
  t.true(r > 1.8 && r < 2, `ratio ${r}`);
});

test('sparse deltas with error feedback: a fraction of the bytes, and the peers still agree exactly at the end', async (t) => {
  const a = await peerOf(t);
  const b = await peerOf(t, [a]);
  const dbns = [dbnOf(t), dbnOf(t)];
  const trainers = [a, b].map((p, i) => trainerOf(t, dbns[i]!, p, { mode: quiet({ encoding: { kind: 'sparse', fraction: 0.05 } }) }));
  await Promise.all(trainers.map((tr) => tr.join({ minPeers: 1, timeoutMs: 10_000 })));
  await Promise.all(
    trainers.map(async (tr, i) => {
      await tr.pretrain(shard(digits, i, 2).x);
      await tr.finish();
    }),
  );
  // The last delta of a stage goes whole, as float32, carrying every entry not yet sent.
  t.true(maxAbsDiff(weights(dbns[0]!), weights(dbns[1]!)) < 1e-6);
  for (const tr of trainers) {
    const s = tr.stats();
    t.is(
      s.applied,
      trainers.reduce((n, x) => n + x.stats().published, 0) - s.published,
      'every remote delta applied, sparse ones included',
    );
    t.true(s.compressionRatio > 3, `ratio ${s.compressionRatio}`);
  }
});

test('a sparse publication sends about the asked fraction, the largest entries, and nothing is lost', async (t) => {
  const dbn = dbnOf(t);
  const w0 = dbn.layers[0]!.getParameters();
  const start = [w0.weights.data, w0.visibleBias, w0.hiddenBias].map((x) => Float64Array.from(x));
  const { link, sent } = memoryLink();
  const tr = new PeerTrainer(dbn, link, {
    publishEvery: 3,
    barrierTimeoutMs: 0,
    mode: quiet({ merge: 'sum', encoding: { kind: 'sparse', fraction: 0.02 } }),
  });
  t.context.trainers.push(tr);
  const before: Float32Array[] = [];
  await tr.pretrain(take(digits, 240).x, {
    onBatch: () => {
      const p = dbn.layers[0]!.getParameters();
      before.push(p.weights.data.slice());
    },
  });
  await tr.finish();
  const n = 784 * 12;
  const sizes = [n, 784, 12];
  // Every frame but the stage's last is SPARSE (8 bytes an entry); the last is dense float32.
  const last = sent[sent.length - 1]!;
  t.deepEqual(
    last.map((f) => f.length),
    sizes.map((k) => 4 * k),
  );
  const sparse = sent.slice(0, -1);
  t.true(sparse.length >= 3);
  for (const frames of sparse) {
    const m = frames[0]!.length / 8;
    t.true(m >= 0.01 * n && m <= 0.04 * n, `${m} of ${n} entries for a fraction of 0.02`);
  }
  // The first publication's entries are the largest changes since the start: every entry sent
  // is at least as large as every entry not sent (up to the threshold's estimate).
  const first = sparse[0]![0]!;
  const m = first.length / 8;
  const idx = new Set<number>();
  let smallestSent = Infinity;
  for (let j = 0; j < m; j++) {
    idx.add(first.readUInt32LE(4 * j));
    smallestSent = Math.min(smallestSent, Math.abs(first.readFloatLE(4 * (m + j))));
  }
  const changeAtFirst = before[2]!; // weights after the third minibatch: the first publication point
  let largerUnsent = 0;
  for (let k = 0; k < n; k++) if (!idx.has(k) && Math.abs(changeAtFirst[k]! - start[0]![k]!) > smallestSent * 1.0001) largerUnsent++;
  t.is(largerUnsent, 0, 'no unsent entry is larger than the smallest sent one');
  // Nothing is lost: the start plus every published delta (decoded from its bytes) is the end.
  const total = start.map((x) => Float64Array.from(x));
  for (const frames of sent) {
    frames.forEach((f, ti) => {
      if (f.length === 4 * sizes[ti]!) for (let k = 0; k < sizes[ti]!; k++) total[ti]![k]! += f.readFloatLE(4 * k);
      else {
        const e = f.length / 8;
        for (let j = 0; j < e; j++) total[ti]![f.readUInt32LE(4 * j)]! += f.readFloatLE(4 * (e + j));
      }
    });
  }
  const end = dbn.layers[0]!.getParameters();
  const ends = [end.weights.data, end.visibleBias, end.hiddenBias];
  for (let ti = 0; ti < 3; ti++) {
    let worst = 0;
    for (let k = 0; k < sizes[ti]!; k++) worst = Math.max(worst, Math.abs(total[ti]![k]! - ends[ti]![k]!));
    t.true(worst < 1e-5, `tensor ${ti}: start + Σ deltas is ${worst} from the end`);
  }
});

test('the sparse encoding is checked', (t) => {
  const dbn = dbnOf(t);
  const { link } = memoryLink();
  for (const bad of [0, 1, -0.1, Number.NaN]) {
    t.throws(() => new PeerTrainer(dbn, link, { mode: { kind: 'async', encoding: { kind: 'sparse', fraction: bad } } }), {
      instanceOf: InvalidOptionError,
      message: /'fraction'/,
    });
  }
  const missing = { kind: 'sparse' } as unknown as { kind: 'sparse'; fraction: number };
  t.throws(() => new PeerTrainer(dbn, link, { mode: { kind: 'async', encoding: missing } }), {
    instanceOf: InvalidOptionError,
    message: /fraction.*required/,
  });
  const unknown = { kind: 'int8' } as unknown as { kind: 'float32' };
  t.throws(() => new PeerTrainer(dbn, link, { mode: { kind: 'async', encoding: unknown } }), {
    instanceOf: InvalidOptionError,
    message: /'float32', 'float16', 'sparse'/,
  });
});

/** `be` without its optional host-array kernels (deltaStep, sparseSelect): the trainer then runs its own TypeScript loops. */
function withoutDeltaStep(be: Backend): Backend {
  const w: Record<string, unknown> = { info: be.info };
  for (const k of Object.getOwnPropertyNames(Object.getPrototypeOf(be))) {
    const v = (be as unknown as Record<string, unknown>)[k];
    if (k !== 'constructor' && k !== 'deltaStep' && k !== 'sparseSelect' && typeof v === 'function') w[k] = v.bind(be);
  }
  return w as unknown as Backend;
}

const nativeOrSkip = (() => {
  try {
    createNativeBackend().dispose();
    return test;
  } catch {
    return test.skip;
  }
})();

for (const encoding of ['float32', 'float16', 'sparse'] as const) {
  const float16 = encoding === 'float16';
  const encodingOption = encoding === 'sparse' ? ({ kind: 'sparse', fraction: 0.05 } as const) : ({ kind: encoding } as const);
  nativeOrSkip(
    `the backend's deltaStep/sparseSelect kernels and the trainer's own loops publish and keep the same bits (${encoding})`,
    async (t) => {
      const native = createNativeBackend();
      const dbns: Dbn[] = [];
      t.teardown(() => {
        for (const d of dbns) d.dispose();
        native.dispose();
      });
      const nv = 784;
      const nh = 12;
      const shapes: [number, number][] = [
        [nv, nh],
        [1, nv],
        [1, nh],
      ];
      const rng = new Random(9);
      const remote = (i: number): DeltaMessage => {
        const tensors = shapes.map(([r, c]) => Float32Array.from({ length: r * c }, () => (rng.uniform() - 0.5) * 1e-3));
        return decode(
          encodeDelta(
            { runId: 'unit', fingerprint: FP, senderId: 'bb'.repeat(16), timestamp: 0 },
            { layer: 0, sequence: i, baseSequence: i - 1, tensors, shapes, float16 },
          ),
        ) as DeltaMessage;
      };
      const deltas = Array.from({ length: 12 }, (_, i) => remote(i + 1));
      const runs = [native, withoutDeltaStep(native)].map(async (backend) => {
        const dbn = new Dbn({ nVisible: nv, layers: LAYERS, seed: 3, backend });
        dbns.push(dbn);
        const { link, sent, deliver, beat } = memoryLink();
        const tr = new PeerTrainer(dbn, link, {
          publishEvery: 3,
          barrierTimeoutMs: 0,
          mode: quiet({ encoding: encodingOption, merge: 'average' }),
        });
        t.context.trainers.push(tr);
        beat();
        let b = 0;
        // One remote delta at most batches, two at some, so the merge takes 0, 1 or 2 at a publication.
        await tr.pretrain(digits.x, {
          onBatch: () => {
            for (const k of b % 5 === 0 ? [] : b % 7 === 0 ? [0, 1] : [0]) deliver(deltas[(b + k) % deltas.length]!);
            b++;
          },
        });
        return { sent, weights: dbn.layers[0]!.getParameters(), stats: tr.stats() };
      });
      const [withKernel, withLoop] = await Promise.all(runs);
      t.true(withKernel!.stats.applied > 20 && withKernel!.stats.published > 10, JSON.stringify(withKernel!.stats));
      t.is(withKernel!.stats.applied, withLoop!.stats.applied);
      t.is(withKernel!.sent.length, withLoop!.sent.length);
      t.true(
        withKernel!.sent.every((frames, i) => frames.every((f, j) => f.equals(withLoop!.sent[i]![j]!))),
        'identical payload bytes',
      );
      if (encoding === 'sparse') {
        const entries = withKernel!.sent.slice(0, -1).map((frames) => frames[0]!.length / 8);
        t.true(
          entries.every((m) => m > 0.02 * nv * nh && m < 0.1 * nv * nh),
          `about 5 % of the entries: ${entries.join(' ')}`,
        );
      } else
        t.true(
          withKernel!.sent.some((frames) => frames[0]!.length === nv * nh * (float16 ? 2 : 4)),
          'in the encoding asked for',
        );
      const a = withKernel!.weights;
      const c = withLoop!.weights;
      t.is(maxAbsDiff(a.weights.data, c.weights.data), 0);
      t.is(maxAbsDiff(a.visibleBias, c.visibleBias), 0);
      t.is(maxAbsDiff(a.hiddenBias, c.hiddenBias), 0);
    },
  );
}

test('bad deltas are refused and counted; a good one is added exactly', async (t) => {
  const dbn = dbnOf(t);
  const p = await peerOf(t);
  const tr = trainerOf(t, dbn, p, { guard: { normWarmup: 2 } });
  await tr.pretrain(digits.x); // publishes a few deltas: arms the norm check
  const raw = await peerOf(t, [p]);
  await p.waitForPeers(1, 5000);
  await raw.waitForPeers(1, 5000);
  const before = dbn.layers[0]!.getParameters();
  const nv = 784;
  const nh = 12;
  const shapes: [number, number][] = [
    [nv, nh],
    [1, nv],
    [1, nh],
  ];
  const zeros = (): Float32Array[] => [new Float32Array(nv * nh), new Float32Array(nv), new Float32Array(nh)];
  raw.publishDelta(5, zeros(), shapes); // no layer 5 here
  raw.publishDelta(0, [new Float32Array(nv * nh)], [[nv, nh]]); // missing the biases
  const huge = zeros();
  huge[0]!.fill(50);
  raw.publishDelta(0, huge, shapes);
  const good = zeros();
  good[0]![7] = 0.25;
  good[2]![1] = -0.5;
  raw.publishDelta(0, good, shapes);
  const deadline = Date.now() + 5000;
  while (tr.stats().pending < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(tr.stats().rejected, { layer: 1, shape: 1, nonfinite: 0, cap: 1, norm: 0, rate: 0 });
  await tr.finish(); // applies what waits
  const after = dbn.layers[0]!.getParameters();
  const expected = before.weights.data.slice();
  expected[7] = expected[7]! + 0.25;
  t.is(maxAbsDiff(after.weights.data, expected), 0);
  t.is(after.hiddenBias[1], Math.fround(before.hiddenBias[1]! - 0.5));
  t.is(tr.stats().applied, 1);
});

test('a late peer joins from a snapshot: weights and epoch taken over, then trained together', async (t) => {
  const layers: LayerOptions[] = [{ nHidden: 12, epochs: 4, batchSize: 20 }];
  const a = await peerOf(t);
  const da = dbnOf(t, layers);
  const ta = trainerOf(t, da, a);
  const stop = new AbortController();
  const half = shard(digits, 0, 2).x;
  await ta.pretrain(half, { signal: stop.signal, onEpoch: (_l, m) => void (m.epoch === 1 && stop.abort()) });
  await ta.stop();
  t.is(da.layers[0]!.epochsTrained, 2);
  const b = await peerOf(t, [a]);
  const db = dbnOf(t, layers);
  const tb = trainerOf(t, db, b);
  const joined = await tb.join({ timeoutMs: 10_000, seeds: true });
  t.like(joined, { snapshot: true, from: a.senderId, stage: 0, epochs: 2 });
  t.is(db.layers[0]!.epochsTrained, 2);
  t.is(maxAbsDiff(weights(db), weights(da)), 0, 'the snapshot is A’s published state');
  await Promise.all([ta.pretrain(half).then(() => ta.finish()), tb.pretrain(shard(digits, 1, 2).x).then(() => tb.finish())]);
  t.is(da.layers[0]!.epochsTrained, 4);
  t.is(db.layers[0]!.epochsTrained, 4);
  t.true(maxAbsDiff(weights(da), weights(db)) < 1e-6);
});

test('fine-tuning is synchronized too: the classifiers end identical; early stopping is refused', async (t) => {
  const a = await peerOf(t);
  const b = await peerOf(t, [a]);
  const dbns = [dbnOf(t), dbnOf(t)];
  const trainers = [a, b].map((p, i) => trainerOf(t, dbns[i]!, p));
  await Promise.all(trainers.map((tr) => tr.join({ minPeers: 1, timeoutMs: 10_000 })));
  await Promise.all(
    trainers.map(async (tr, i) => {
      const part = shard(digits, i, 2);
      await tr.pretrain(part.x);
      await tr.fineTune(part.x, part.y as Int32Array, { epochs: 2, batchSize: 20, classes: 10 });
      await tr.finish();
    }),
  );
  const [pa, pb] = dbns.map((d) => d.getClassifierParameters());
  for (let l = 0; l < pa!.layers.length; l++) {
    t.true(maxAbsDiff(pa!.layers[l]!.weights.data, pb!.layers[l]!.weights.data) < 1e-6, `dense layer ${l}`);
    t.true(maxAbsDiff(pa!.layers[l]!.bias, pb!.layers[l]!.bias) < 1e-6);
  }
  await t.throwsAsync(trainers[0]!.fineTune(digits.x, digits.y as Int32Array, { validationFraction: 0.1 }), {
    instanceOf: InvalidOptionError,
  });
});

test('Dbn.fineTune calls onStart before the first minibatch; setClassifierParameters replaces or creates the classifier', async (t) => {
  const d = dbnOf(t);
  await d.pretrain(digits.x);
  let seen: HostMatrix | undefined;
  await d.fineTune(digits.x, digits.y as Int32Array, {
    epochs: 1,
    validationFraction: 0,
    onStart: (info) => {
      t.deepEqual(info, { classes: 10, epochsDone: 0 });
      seen = d.getClassifierParameters().layers[0]!.weights;
    },
  });
  // 'auto' init: the first dense layer starts as the RBM's weights.
  t.is(maxAbsDiff(seen!.data, weights(d)), 0);
  const p = d.getClassifierParameters();
  const other = dbnOf(t);
  t.is(other.classes, undefined);
  other.setClassifierParameters(p);
  t.is(other.classes, 10);
  // predict runs the classifier only, so the copy predicts like the original.
  t.deepEqual([...other.predict(take(digits, 50).x)], [...d.predict(take(digits, 50).x)]);
  t.throws(() => other.setClassifierParameters({ activations: p.activations, layers: p.layers.slice(1) }), { code: 'ESHAPE' });
  const bad = { activations: p.activations, layers: [p.layers[0]!, { weights: p.layers[1]!.weights, bias: new Float32Array(3) }] };
  t.throws(() => other.setClassifierParameters(bad), { code: 'ESHAPE' });
});
