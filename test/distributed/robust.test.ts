/** The aggregation rules and the contribution guard of the rounds, as pure functions. */
import test from 'ava';
import { ContributionGuard, aggregateChunks, checkAggregation, krumSelection } from '../../src/distributed/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { PLAN_STEP } from '../../src/rbm/collective.js';

const f32 = (...v: number[]): Float32Array => Float32Array.from(v);

test('sum adds the parts in member order (float32), like the exchange always did', (t) => {
  const parts = [f32(0.1, 1e8), f32(0.2, 1), f32(0.3, -1e8)];
  const out = new Float32Array(2);
  aggregateChunks(parts, { rule: { kind: 'sum' } }, out);
  const expected = new Float32Array(2);
  for (const p of parts) for (let i = 0; i < 2; i++) expected[i] = expected[i]! + p[i]!;
  t.deepEqual(out, expected);
});

test('median and trimmed mean ignore one outlier per coordinate and are scaled to a sum of N', (t) => {
  const parts = [f32(1, -3), f32(2, -1), f32(3, -2), f32(4, 0), f32(1e6, -1e6)];
  const median = new Float32Array(2);
  aggregateChunks(parts, { rule: { kind: 'median' } }, median);
  t.deepEqual([...median], [3 * 5, -2 * 5]);
  const trimmed = new Float32Array(2);
  aggregateChunks(parts, { rule: { kind: 'trimmed-mean', trim: 1 } }, trimmed);
  // Sorted: 1, 2, 3, 4, 1e6 and -1e6, -3, -2, -1, 0: trimming one at each end keeps 2, 3, 4 and -3, -2, -1.
  t.deepEqual([...trimmed], [5 * 3, 5 * -2]);
});

test('mean around the median drops only the values farthest from the median, so a liar does not bias the step', (t) => {
  // Column 1 sorted: 1, 2, 3, 4, 1e6 (median 3): the 4 closest are 1, 2, 3, 4 -> mean 2.5.
  // Column 2 sorted: -1e6, -3, -2, -1, 0 (median -2): the 4 closest are -3, -2, -1, 0 -> mean -1.5.
  // The trimmed mean of the same columns also drops the honest 1 (or 0) and gives 3 and -2.
  const parts = [f32(1, -3), f32(2, -1), f32(3, -2), f32(4, 0), f32(1e6, -1e6)];
  const out = new Float32Array(2);
  aggregateChunks(parts, { rule: { kind: 'mean-around-median', trim: 1 } }, out);
  t.deepEqual([...out], [5 * 2.5, 5 * -1.5]);
  // trim 2 over 0, 1, 2, 10, 11, 12 (median 6), grown from 2: 10 (4 away) before 1 (5); then 1 and 11 tie at 5
  // and the lower side goes first; then 11 (5) before 0 (6). Kept: 1, 2, 10, 11.
  const six = [0, 1, 2, 10, 11, 12].map((v) => f32(v));
  const four = new Float32Array(1);
  aggregateChunks(six, { rule: { kind: 'mean-around-median', trim: 2 } }, four);
  t.deepEqual([...four], [6 * ((2 + 10 + 1 + 11) / 4)]);
  t.throws(() => checkAggregation({ rule: { kind: 'mean-around-median', trim: 0 } }), { instanceOf: InvalidOptionError, message: /trim/ });
});

test('multi-Krum drops the one part far from the others whole and gives exactly 5 x the mean of the other four', (t) => {
  // Squared distances among the four honest parts are 1 or 2; each one's 5 − 1 − 2 = 2 nearest are at 1 and 1: score 2.
  // The liar at (-40, -40) scores at least 3200 + 3281. Kept: members 0-3, mean (0.5, 0.5), times 5.
  const parts = [f32(1, 0), f32(0, 1), f32(1, 1), f32(0, 0), f32(-40, -40)];
  t.deepEqual(krumSelection(parts, 1), [0, 1, 2, 3]);
  const out = new Float32Array(2);
  aggregateChunks(parts, { rule: { kind: 'multi-krum', trim: 1 } }, out);
  t.deepEqual([...out], [2.5, 2.5]);
  // The liar anywhere in the order: the same four honest parts are kept.
  const moved = [parts[0]!, parts[4]!, parts[1]!, parts[2]!, parts[3]!];
  t.deepEqual(krumSelection(moved, 1), [0, 2, 3, 4]);
  // Unlike the coordinate-wise rules, a sign-flipped x4 copy of an honest gradient is not half-kept in any coordinate.
  const honest = [f32(4, 0, 1), f32(0, 4, 1), f32(4, 4, 1), f32(0, 0, 1)];
  const flipped = f32(-16, 0, -4);
  const combined = new Float32Array(3);
  aggregateChunks([...honest, flipped], { rule: { kind: 'multi-krum', trim: 1 } }, combined);
  t.deepEqual([...combined], [10, 10, 5]);
});

test('multi-Krum breaks score ties by member order, and sums two parts', (t) => {
  // Four members on a line, trim 1: each one's single nearest neighbour is 1 away, all scores tie at 1; 3 are kept.
  const line = [0, 1, 2, 3].map((v) => f32(v));
  t.deepEqual(krumSelection(line, 1), [0, 1, 2]);
  const out = new Float32Array(1);
  aggregateChunks(line, { rule: { kind: 'multi-krum', trim: 1 } }, out);
  t.is(out[0], 4 * 1);
  aggregateChunks([...line].reverse(), { rule: { kind: 'multi-krum', trim: 1 } }, out);
  t.is(out[0], 4 * 2);
  // Three members, trim 1: the two closest keep each other, the third goes.
  t.deepEqual(krumSelection([f32(0), f32(10), f32(1)], 1), [0, 2]);
  aggregateChunks([f32(3), f32(1e6)], { rule: { kind: 'multi-krum', trim: 1 } }, out);
  t.is(out[0], 1e6 + 3);
  t.throws(() => checkAggregation({ rule: { kind: 'multi-krum', trim: 0 } }), { instanceOf: InvalidOptionError, message: /trim/ });
});

test('robust rules give the same bits whatever the order of the members', (t) => {
  const parts = Array.from({ length: 6 }, (_, m) =>
    Float32Array.from({ length: 50 }, (_, i) => Math.sin(m * 7.1 + i * 0.37) * (m === 2 ? 50 : 1)),
  );
  for (const rule of [{ kind: 'median' }, { kind: 'trimmed-mean', trim: 2 }, { kind: 'mean-around-median', trim: 2 }] as const) {
    const a = new Float32Array(50);
    const b = new Float32Array(50);
    aggregateChunks(parts, { rule }, a);
    aggregateChunks([...parts].reverse(), { rule }, b);
    t.deepEqual(a, b);
  }
});

test('a trim too large for the members falls back to the median', (t) => {
  const parts = [f32(1), f32(5), f32(100)];
  const out = new Float32Array(1);
  aggregateChunks(parts, { rule: { kind: 'trimmed-mean', trim: 4 } }, out);
  t.is(out[0], 15);
});

test('clipping scales a part down to clipNorm × the median part norm before combining', (t) => {
  const parts = [f32(3, 4), f32(0, 5), f32(5, 0), f32(300, 400)];
  const out = new Float32Array(2);
  aggregateChunks(parts, { rule: { kind: 'sum' }, clipNorm: 2 }, out);
  // Norms 5, 5, 5, 500: median 5, limit 10: the last part becomes (6, 8).
  t.true(Math.abs(out[0]! - 14) < 1e-5 && Math.abs(out[1]! - 17) < 1e-5, `${out}`);
});

test('bad aggregation options raise one InvalidOptionError naming the option', (t) => {
  t.is(
    t.throws(() => checkAggregation({ rule: { kind: 'trimmed-mean', trim: 0 } }), { instanceOf: InvalidOptionError })!.code,
    'EINVALIDOPTION',
  );
  t.throws(() => checkAggregation({ rule: { kind: 'mode' } as never }), { message: /'aggregate' rule/ });
  t.throws(() => checkAggregation({ rule: { kind: 'median' }, clipNorm: -1 }), { message: /'clipNorm'/ });
});

test('the guard refuses parts far above this peer own part of the chunk, and any element above the hard cap', (t) => {
  const g = new ContributionGuard();
  const own = Float32Array.from({ length: 100 }, (_, i) => Math.cos(i));
  t.is(
    g.judgeTensor(
      own.map((v) => v * 5),
      20,
      own,
      20,
    ),
    undefined,
  );
  t.regex(
    g.judgeTensor(
      own.map((v) => v * 50),
      20,
      own,
      20,
    )!,
    /norm/,
  );
  // Twice the rows: twice the norm allowed.
  t.is(
    g.judgeTensor(
      own.map((v) => v * 30),
      40,
      own,
      20,
    ),
    undefined,
  );
  t.regex(g.judgeTensor(f32(1e30), 20, f32(0), 0)!, /element/);
  t.regex(g.judgeTensor(f32(Number.NaN), 20, f32(1), 20)!, /non-finite/);
  // This peer had no rows this round: only the hard cap applies.
  t.is(g.judgeTensor(f32(100), 20, f32(0), 0), undefined);
});

test('the guard refuses negative or non-finite statistics, a plan far above this peer rows and a minibatch above the plan', (t) => {
  const g = new ContributionGuard();
  const at = (step: number): { stage: number; epoch: number; step: number } => ({ stage: 0, epoch: 0, step });
  t.regex(g.judgeScalars('a', at(3), Float64Array.of(-5), Float64Array.of(5))!, /statistic/);
  t.regex(g.judgeScalars('a', at(3), Float64Array.of(Number.POSITIVE_INFINITY), Float64Array.of(5))!, /statistic/);
  t.regex(g.judgeScalars('a', at(PLAN_STEP), Float64Array.of(1e9), Float64Array.of(1000))!, /rows for an epoch/);
  t.is(g.judgeScalars('a', at(PLAN_STEP), Float64Array.of(1200), Float64Array.of(1000)), undefined);
  // This peer has 10 of its 1000 rows in the round; 'a' planned 1200: at most ceil(1200·11/1000) + 1 = 15.
  t.is(g.judgeScalars('a', at(0), Float64Array.of(13), Float64Array.of(10)), undefined);
  t.regex(g.judgeScalars('a', at(0), Float64Array.of(400), Float64Array.of(10))!, /minibatch/);
  t.regex(g.judgeScalars('a', at(0), Float64Array.of(2.5), Float64Array.of(10))!, /integer/);
});
