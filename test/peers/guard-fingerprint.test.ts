import test from 'ava';
import { DeltaGuard } from '../../src/distributed/async/delta-guard.js';
import {
  FINGERPRINT_HEADER,
  encodeFingerprint,
  fingerprintDivergence,
  readFingerprintHeader,
  sampleIndices,
  samplesPerGroup,
} from '../../src/distributed/async/peer-fingerprint.js';
import { sameSequences } from '../../src/distributed/async/peer-training.js';

const SHAPES = [[2, 3], [1, 2]] as const;
const delta = (scale: number): Float32Array[] => [new Float32Array([1, 2, 3, 4, 5, 6]).map((v) => v * scale), new Float32Array([scale, -scale])];

test('the guard refuses an unknown layer, wrong shapes and non-finite values, naming the reason', (t) => {
  const g = new DeltaGuard();
  t.like(g.check(7, delta(1), SHAPES, undefined), { ok: false, reason: 'layer' });
  t.like(g.check(0, [delta(1)[0]!], [SHAPES[0]], SHAPES), { ok: false, reason: 'shape' });
  t.like(g.check(0, delta(1), [[3, 2], [1, 2]], SHAPES), { ok: false, reason: 'shape' });
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

test('the norm check arms after the warm-up and compares with the median of the window', (t) => {
  const g = new DeltaGuard({ normFactor: 10, normWindow: 5, normWarmup: 3 });
  const n = Math.sqrt(93);
  // Before the warm-up even a huge delta passes.
  t.true(g.check(0, delta(1000), SHAPES, SHAPES).ok);
  for (const s of [1, 2, 3]) g.accept(0, s * n);
  t.is(g.recentMedian(0), 2 * n);
  t.true(g.check(0, delta(19.9), SHAPES, SHAPES).ok, '19.9 n < 10 × median 2n');
  t.like(g.check(0, delta(20.1), SHAPES, SHAPES), { ok: false, reason: 'norm' });
  t.true(g.check(1, delta(20.1), SHAPES, SHAPES).ok, 'windows are per layer');
  // The window keeps the last 5: after five norms of 100n the median is 100n.
  for (let i = 0; i < 5; i++) g.accept(0, 100 * n);
  t.is(g.recentMedian(0), 100 * n);
  g.accept(0, 0);
  g.accept(0, Number.NaN);
  t.is(g.recentMedian(0), 100 * n, 'zero and NaN norms are not recorded');
});

test('sparse and dense deltas are judged against their own recent norms', (t) => {
  const g = new DeltaGuard({ normFactor: 10, normWindow: 5, normWarmup: 3 });
  const n = Math.sqrt(93);
  for (let i = 0; i < 3; i++) g.accept(0, n, 'sparse');
  t.is(g.recentMedian(0, 'sparse'), n);
  t.is(g.recentMedian(0), undefined, 'a sparse norm does not enter the dense window');
  // The whole residual a sparse run sends at a stage's end: 30× a sparse delta, still taken.
  t.true(g.check(0, delta(30), SHAPES, SHAPES, undefined, 'dense').ok);
  t.like(g.check(0, delta(30), SHAPES, SHAPES, undefined, 'sparse'), { ok: false, reason: 'norm' });
  t.true(g.check(0, delta(9.9), SHAPES, SHAPES, undefined, 'sparse').ok);
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
  t.true(sameSequences(new Map([['a', 3], ['b', 0]]), new Map([['a', 3]])));
  t.false(sameSequences(new Map([['a', 3]]), new Map([['a', 4]])));
  t.false(sameSequences(new Map([['a', 3]]), new Map([['a', 3], ['c', 1]])));
});
