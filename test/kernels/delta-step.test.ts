// The optional `deltaStep` kernel (one publication point of peer-to-peer training), on every
// backend that has it, against a plain float64 reference written from its specification.
import test from 'ava';
import { BackendUnavailableError, ShapeMismatchError } from '../../src/errors.js';
import type { Backend, DeltaStepArgs } from '../../src/kernels/backend.js';
import { createBackend } from '../../src/kernels/index.js';
import { Random } from '../../src/random.js';
import { fromFloat16Bits, toFloat16Bits } from '../../src/sync/float16.js';

interface Case {
  readonly n: number;
  readonly remotes: number;
  readonly share: number;
  readonly keep: boolean;
  readonly half: boolean;
}

/** Values spread over the ranges a delta crosses: zeros, binary16 subnormals (< 2^-14), normals, ties. */
function inputs(rng: Random, c: Case): { cur: Float32Array; base: Float32Array; remote: Float32Array[] } {
  const base = Float32Array.from({ length: c.n }, () => rng.uniform() * 2 - 1);
  const cur = new Float32Array(c.n);
  for (let k = 0; k < c.n; k++) {
    const kind = k % 5;
    const step =
      kind === 0
        ? 0
        : kind === 1
          ? (rng.uniform() - 0.5) * 1e-5
          : kind === 2
            ? (rng.uniform() - 0.5) * 1e-3
            : kind === 3
              ? (rng.uniform() - 0.5) * 0.2
              : 2 ** -20 * 3;
    cur[k] = base[k]! + step;
  }
  const remote = Array.from({ length: c.remotes }, () => Float32Array.from({ length: c.n }, () => (rng.uniform() - 0.5) * 1e-3));
  return { cur, base, remote };
}

/** The specification, element by element, in float64 with the roundings it names. */
function reference(cur: Float32Array, base: Float32Array, remote: Float32Array[], c: Case) {
  const n = cur.length;
  const d = new Float32Array(n);
  const half = new Uint16Array(n);
  const baseNext = new Float32Array(n);
  const curNext = new Float32Array(n);
  let sq = 0;
  let overflow = false;
  for (let k = 0; k < n; k++) {
    const x = Math.fround((cur[k]! - base[k]!) * c.share);
    d[k] = x;
    sq += x * x;
    let r = remote.length === 0 ? 0 : remote[0]![k]!;
    for (let j = 1; j < remote.length; j++) r = Math.fround(r + remote[j]![k]!);
    let sent = x;
    if (c.half) {
      half[k] = toFloat16Bits(x);
      sent = fromFloat16Bits(half[k]!);
      if (!Number.isFinite(sent)) overflow = true;
    }
    baseNext[k] = base[k]! + sent + r;
    curNext[k] = (c.keep ? base[k]! + x : cur[k]!) + r;
  }
  return { d, half, baseNext, curNext, sq, overflow };
}

function run(be: Backend, cur: Float32Array, base: Float32Array, remote: Float32Array[], c: Case) {
  const out = { delta: new Float32Array(c.n), half: new Uint16Array(c.n), baseNext: new Float32Array(c.n), curNext: new Float32Array(c.n) };
  const args: DeltaStepArgs = {
    cur,
    base,
    ...(remote.length > 0 ? { remote } : {}),
    share: c.share,
    keep: c.keep,
    ...(c.half ? { half: out.half } : { delta: out.delta }),
    baseNext: out.baseNext,
    curNext: out.curNext,
  };
  const res = be.deltaStep!(args);
  return { ...out, ...res };
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string | undefined {
  for (let k = 0; k < a.length; k++) if (!Object.is(a[k], b[k])) return `element ${k}: ${a[k]} ≠ ${b[k]}`;
  return undefined;
}

const CASES: Case[] = [
  { n: 1037, remotes: 0, share: 1, keep: false, half: false },
  { n: 1037, remotes: 1, share: 1, keep: false, half: true },
  { n: 4099, remotes: 3, share: 1 / 3, keep: true, half: true },
  { n: 4099, remotes: 2, share: 0.5, keep: true, half: false },
  { n: 7, remotes: 1, share: 1, keep: true, half: true },
  { n: 0, remotes: 0, share: 1, keep: false, half: true },
];

for (const name of ['native', 'js', 'gpu']) {
  let be: Backend | undefined;
  try {
    be = createBackend(name);
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
  }
  if (be?.deltaStep === undefined) {
    test(`${name}: has no deltaStep (callers fall back to their own loop)`, (t) => {
      t.pass(be === undefined ? `${name} is unavailable here` : `${name} leaves the optional kernel out`);
      be?.dispose();
    });
    continue;
  }
  const backend = be;
  test.after.always(() => backend.dispose());

  for (const c of CASES) {
    test(`${name}: deltaStep n=${c.n} remotes=${c.remotes} share=${c.share.toFixed(3)} keep=${c.keep} ${c.half ? 'binary16' : 'float32'} matches the specification`, (t) => {
      const { cur, base, remote } = inputs(new Random(c.n + 31 * c.remotes + (c.half ? 7 : 0)), c);
      const want = reference(cur, base, remote, c);
      const got = run(backend, cur, base, remote, c);
      if (c.half) t.is(firstDifference(got.half, want.half), undefined, 'half');
      else t.is(firstDifference(got.delta, want.d), undefined, 'delta');
      t.is(firstDifference(got.baseNext, want.baseNext), undefined, 'baseNext');
      t.is(firstDifference(got.curNext, want.curNext), undefined, 'curNext');
      t.true(Math.abs(got.sumSquares - want.sq) <= 1e-12 * want.sq, `Σd² ${got.sumSquares} vs ${want.sq}`);
      t.is(got.overflow, false);
      if (c.n > 0) t.true(want.sq > 0);
    });
  }

  test(`${name}: deltaStep rounds binary16 exactly at every boundary and flags overflow`, (t) => {
    // Every binary16 value and the midpoints between neighbours (ties to even), as deltas from 0.
    const values: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const lo = fromFloat16Bits(h);
      const hi = h + 1 === 0x7c00 ? 65536 : fromFloat16Bits(h + 1);
      values.push(lo, -lo, Math.fround(lo + (hi - lo) * 0.49));
      // The midpoint above 65504 is 65520, which rounds (to even) to infinity: tested below.
      if (h < 0x7bff) values.push((lo + hi) / 2, -(lo + hi) / 2);
    }
    const cur = Float32Array.from(values);
    const base = new Float32Array(cur.length);
    const c: Case = { n: cur.length, remotes: 0, share: 1, keep: false, half: true };
    const got = run(backend, cur, base, [], c);
    const want = reference(cur, base, [], c);
    t.is(firstDifference(got.half, want.half), undefined);
    t.is(got.overflow, false, 'everything below 65520 stays finite');
    for (const bad of [65520, -1e6, Number.NaN, Number.POSITIVE_INFINITY]) {
      const x = Float32Array.from([0.5, bad, 0.25]);
      const r = run(backend, x, new Float32Array(3), [], { n: 3, remotes: 0, share: 1, keep: false, half: true });
      t.true(r.overflow, `overflow flagged for ${bad}`);
    }
    const nan = run(backend, Float32Array.from([1, Number.NaN]), new Float32Array(2), [], {
      n: 2,
      remotes: 0,
      share: 1,
      keep: false,
      half: false,
    });
    t.true(Number.isNaN(nan.sumSquares), 'a NaN makes Σd² NaN');
  });

  test(`${name}: deltaStep refuses arrays of the wrong length and an ambiguous output`, (t) => {
    const a = new Float32Array(8);
    const base: Omit<DeltaStepArgs, 'delta' | 'half'> = {
      cur: a,
      base: a,
      share: 1,
      keep: false,
      baseNext: new Float32Array(8),
      curNext: new Float32Array(8),
    };
    t.throws(() => backend.deltaStep!({ ...base, base: new Float32Array(7), delta: new Float32Array(8) }), {
      instanceOf: ShapeMismatchError,
      code: 'EHOSTLENGTH',
      message: /base/,
    });
    t.throws(() => backend.deltaStep!({ ...base, remote: [new Float32Array(9)], delta: new Float32Array(8) }), {
      instanceOf: ShapeMismatchError,
      code: 'EHOSTLENGTH',
      message: /remote\[0\]/,
    });
    t.throws(() => backend.deltaStep!({ ...base, half: new Uint16Array(4) }), {
      instanceOf: ShapeMismatchError,
      code: 'EHOSTLENGTH',
      message: /half/,
    });
    t.throws(() => backend.deltaStep!({ ...base, delta: new Float32Array(8), half: new Uint16Array(8) }), {
      code: 'EHOSTOUTPUT',
      message: /Exactly one of 'delta' and 'half'/,
    });
    t.throws(() => backend.deltaStep!({ ...base }), { code: 'EHOSTOUTPUT', message: /Exactly one of 'delta' and 'half'/ });
    t.throws(() => backend.deltaStep!({ ...base, share: 0, delta: new Float32Array(8) }), { code: 'EHOSTSHARE', message: /share/ });
  });
}
