import test from 'ava';
import { DeltaGuard, mergedWeightsSound } from '../../src/distributed/async/delta-guard.js';
import {
  FINGERPRINT_HEADER,
  encodeFingerprint,
  fingerprintDivergence,
  readFingerprintHeader,
  sampleIndices,
  samplesPerGroup,
} from '../../src/distributed/async/peer-fingerprint.js';
import { sameSequences } from '../../src/distributed/async/peer-training.js';

const SHAPES = [
  [2, 3],
  [1, 2],
] as const;
const delta = (scale: number): Float32Array[] => [
  new Float32Array([1, 2, 3, 4, 5, 6]).map((v) => v * scale),
  new Float32Array([scale, -scale]),
];

test('the guard refuses an unknown layer, wrong shapes and non-finite values, naming the reason', (t) => {
  const g = new DeltaGuard({ weightFactor: 100 });
  t.like(g.check(7, delta(1), SHAPES, undefined), { ok: false, reason: 'layer' });
  t.like(g.check(0, [delta(1)[0]!], [SHAPES[0]], SHAPES), { ok: false, reason: 'shape' });
  t.like(
    g.check(
      0,
      delta(1),
      [
        [3, 2],
        [1, 2],
      ],
      SHAPES,
    ),
    { ok: false, reason: 'shape' },
  );
  const nan = delta(1);
  nan[1]![1] = Number.NaN;
  t.like(g.check(0, nan, SHAPES, SHAPES), { ok: false, reason: 'nonfinite' });
  const inf = delta(1);
  inf[0]![0] = Number.POSITIVE_INFINITY;
  t.like(g.check(0, inf, SHAPES, SHAPES), { ok: false, reason: 'nonfinite' });
  // ‖(1..6, 1, −1)‖ = √(91 + 2) = √93.
  const ok = g.check(0, delta(1), SHAPES, SHAPES);
  t.true(ok.ok);
  if (ok.ok) t.is(ok.norm, Math.sqrt(93));
});

test("the hard cap is relative to this peer's own weights (at least the floor): a 1e30 delta is refused", (t) => {
  // SHAPES hold 8 entries: a floor of 1/√8 per entry is a scale of 1.
  const g = new DeltaGuard({ weightFactor: 1, weightFloor: 1 / Math.sqrt(8) });
  const n = Math.sqrt(93);
  t.like(g.check(0, delta(1), SHAPES, SHAPES), { ok: false, reason: 'cap' }, 'weights unknown: the floor bounds the norm');
  g.observeWeights(0, 10);
  t.true(g.check(0, delta((10 / n) * (1 - 1e-4)), SHAPES, SHAPES).ok, 'just under ‖w‖');
  t.like(g.check(0, delta((10 / n) * (1 + 1e-4)), SHAPES, SHAPES), { ok: false, reason: 'cap' });
  t.like(g.check(0, delta(1e30), SHAPES, SHAPES), { ok: false, reason: 'cap' });
  t.like(g.check(0, delta(2e37), SHAPES, SHAPES), { ok: false, reason: 'cap' });
  g.observeWeights(0, 0.001);
  t.true(Math.abs(g.weightScale(0, 8) - 1) < 1e-12, 'tiny weights: the floor');
  g.observeWeights(0, Number.NaN);
  t.true(Math.abs(g.weightScale(0, 8) - 1) < 1e-12, 'a non-finite norm is not recorded');
});

test("the own-update bound arms after the warm-up and compares with the median of this peer's own updates only", (t) => {
  const g = new DeltaGuard({ weightFactor: 1e6, normFactor: 10, normWindow: 5, normWarmup: 3 });
  const n = Math.sqrt(93);
  t.true(g.check(0, delta(1000), SHAPES, SHAPES).ok, 'before the warm-up only the cap applies');
  for (const s of [1, 2, 3]) g.acceptOwn(0, s * n);
  t.is(g.recentMedian(0), 2 * n);
  t.true(g.check(0, delta(19.9), SHAPES, SHAPES).ok, '19.9 n < 10 × median 2n');
  t.like(g.check(0, delta(20.1), SHAPES, SHAPES), { ok: false, reason: 'norm' });
  t.true(g.check(1, delta(20.1), SHAPES, SHAPES).ok, 'windows are per layer');
  // Remote deltas taken do not move the bound.
  for (let i = 0; i < 50; i++) g.acceptRemote(0, 19 * n, { sender: 'x', now: i * 10_000 });
  t.is(g.recentMedian(0), 2 * n);
  for (let i = 0; i < 5; i++) g.acceptOwn(0, 100 * n);
  t.is(g.recentMedian(0), 100 * n, 'the window keeps the last 5 own norms');
  g.acceptOwn(0, 0);
  g.acceptOwn(0, Number.NaN);
  t.is(g.recentMedian(0), 100 * n, 'zero and NaN norms are not recorded');
});

test("a sender growing its deltas by 3 % each time cannot walk the bound up (it is this peer's own median)", (t) => {
  const g = new DeltaGuard({ weightFactor: 1e6, normFactor: 10, normWarmup: 5, rateFactor: 1e9 });
  g.observeWeights(0, 1e6);
  const n = Math.sqrt(93);
  for (let i = 0; i < 5; i++) g.acceptOwn(0, n);
  let largest = 0;
  let refused = 0;
  for (let k = 0; k < 200; k++) {
    const origin = { sender: 'walker', now: k * 2000 };
    const v = g.check(0, delta(1.03 ** k), SHAPES, SHAPES, undefined, 'dense', origin);
    if (v.ok) {
      g.acceptRemote(0, v.norm, origin);
      largest = Math.max(largest, v.norm);
    } else {
      t.is(v.reason, 'norm');
      refused++;
    }
  }
  t.true(largest <= 10 * n, `largest accepted ${largest / n} × the own median`);
  t.true(largest > 9.5 * n);
  // 1.03^k > 10 from k = 78 on: every later delta is refused.
  t.is(refused, 200 - 78);
});

test("the rate limit bounds what one sender moves within the window, relative to this peer's weights", (t) => {
  const g = new DeltaGuard({ weightFactor: 1, rateFactor: 4, rateWindowMs: 1000 });
  const n = Math.sqrt(93);
  g.observeWeights(0, 2 * n);
  // Each delta has norm n = ‖w‖ / 2; the window allows 4 × ‖w‖ = 8 n.
  const send = (sender: string, now: number): boolean => {
    const v = g.check(0, delta(1), SHAPES, SHAPES, undefined, 'dense', { sender, now });
    if (v.ok) g.acceptRemote(0, v.norm, { sender, now });
    else t.is(v.reason, 'rate');
    return v.ok;
  };
  const first = Array.from({ length: 10 }, (_, i) => send('a', i));
  t.deepEqual(first, [true, true, true, true, true, true, true, true, false, false]);
  t.true(send('b', 10), 'another sender has its own window');
  t.true(send('a', 1001), 'the window moved on');
  g.forget('a');
  t.true(send('a', 1002));
});

test('the check after merging refuses non-finite or exploded weights: two 2e38 deltas summing to Inf', (t) => {
  const settings = new DeltaGuard({ weightFactor: 1, weightFloor: 1 }).settings;
  const sum = Math.fround(Math.fround(2e38) + Math.fround(2e38));
  t.is(sum, Number.POSITIVE_INFINITY);
  t.false(mergedWeightsSound(1, sum * sum, 2, 1, settings));
  t.false(mergedWeightsSound(100, Number.NaN, 1, 1, settings));
  // Each accepted delta adds at most weightFactor × ‖w‖: 2 deltas, at most 3 × ‖w‖.
  t.true(mergedWeightsSound(100, 900, 2, 1, settings));
  t.false(mergedWeightsSound(100, 901, 2, 1, settings));
  t.true(mergedWeightsSound(0, 4, 1, 1, settings), 'the floor: from zero weights, up to 2 × 1');
  t.false(mergedWeightsSound(0, 4.01, 1, 1, settings));
});

test('fingerprints: layout, fixed sample indices, divergence by hand', (t) => {
  t.is(samplesPerGroup(1), 64 - FINGERPRINT_HEADER);
  t.is(samplesPerGroup(3), Math.floor((64 - FINGERPRINT_HEADER) / 3));
  const idx = sampleIndices(1000, 10);
  t.deepEqual([...idx], [...sampleIndices(1000, 10)], 'deterministic');
  t.is(new Set(idx).size, 10);
  t.true([...idx].every((i) => i < 1000));
  t.is(sampleIndices(3, 10).length, 3);

  const a = encodeFingerprint({ stage: 1, epochs: 4, settled: 0 }, [new Float64Array([3, 4]), new Float64Array([1, 0])]);
  t.like(readFingerprintHeader(a), { stage: 1, epochs: 4, groups: 2, settled: 0 });
  t.is(fingerprintDivergence(a, a), 0);
  const b = encodeFingerprint({ stage: 1, epochs: 9 }, [new Float64Array([3, 4]), new Float64Array([1, 1])]);
  // Block 2: ‖(1,0) − (1,1)‖ / max(‖(1,0)‖, ‖(1,1)‖) = 1 / √2; block 1 agrees.
  t.true(Math.abs(fingerprintDivergence(a, b)! - 1 / Math.SQRT2) < 1e-12);
  const otherStage = encodeFingerprint({ stage: 2, epochs: 0 }, [new Float64Array([3, 4]), new Float64Array([1, 0])]);
  t.is(fingerprintDivergence(a, otherStage), undefined, 'stages differ: not comparable');
  t.is(fingerprintDivergence(a, new Float64Array([9, 1, 2, 3, 0])), undefined, 'another format');
  t.is(readFingerprintHeader(new Float64Array(2)), undefined);
});

test('sameSequences treats a missing sender as 0', (t) => {
  t.true(
    sameSequences(
      new Map([
        ['a', 3],
        ['b', 0],
      ]),
      new Map([['a', 3]]),
    ),
  );
  t.false(sameSequences(new Map([['a', 3]]), new Map([['a', 4]])));
  t.false(
    sameSequences(
      new Map([['a', 3]]),
      new Map([
        ['a', 3],
        ['c', 1],
      ]),
    ),
  );
});
