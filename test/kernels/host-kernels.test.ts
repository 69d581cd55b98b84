// Conformance of the host-array kernels (src/kernels/host/): the TypeScript implementation and
// every backend that overrides them run on the same inputs and must write the same bits, and
// raise the same error code for each fault of their arguments.
import test from 'ava';
import { BackendUnavailableError, ShapeMismatchError } from '../../src/errors.js';
import type { DeltaStepArgs, SparseSelectArgs } from '../../src/kernels/backend.js';
import { type HostKernels, hostKernelsFor, TypeScriptHostKernels } from '../../src/kernels/host/host-kernels.js';
import { createBackend } from '../../src/kernels/index.js';
import { Random } from '../../src/random.js';

function overriding(): HostKernels[] {
  const out: HostKernels[] = [];
  for (const name of ['native', 'js']) {
    try {
      const backend = createBackend(name);
      const kernels = hostKernelsFor(backend);
      if (kernels.name !== 'typescript') out.push(kernels);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
    }
  }
  return out;
}

const reference = new TypeScriptHostKernels();
const others = overriding();

/** A change whose entries span zeros, binary16 subnormals, normals and values beyond binary16. */
function change(rng: Random, n: number, large: boolean): { cur: Float32Array; base: Float32Array } {
  const base = Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1);
  const cur = Float32Array.from(base, (b, k) => {
    const kind = k % 6;
    const scale = kind === 0 ? 0 : kind === 1 ? 1e-6 : kind === 2 ? 1e-3 : kind === 3 ? 0.3 : kind === 4 ? 2 ** -20 : large ? 1e6 : 1e-2;
    return b + (rng.uniform() - 0.5) * scale;
  });
  return { cur, base };
}

function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string | undefined {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  for (let k = 0; k < a.length; k++) if (!Object.is(a[k], b[k])) return `element ${k}: ${a[k]} ≠ ${b[k]}`;
  return undefined;
}

function runDeltaStep(
  kernels: HostKernels,
  cur: Float32Array,
  base: Float32Array,
  remote: Float32Array[],
  share: number,
  keep: boolean,
  half: boolean,
) {
  const n = cur.length;
  const out = { delta: new Float32Array(n), half: new Uint16Array(n), baseNext: new Float32Array(n), curNext: new Float32Array(n) };
  const args: DeltaStepArgs = {
    cur,
    base,
    ...(remote.length > 0 ? { remote } : {}),
    share,
    keep,
    ...(half ? { half: out.half } : { delta: out.delta }),
    baseNext: out.baseNext,
    curNext: out.curNext,
  };
  return { ...out, ...kernels.deltaStep(args) };
}

test('there is a TypeScript implementation, and the overriding backends are listed', (t) => {
  t.is(reference.name, 'typescript');
  t.is(hostKernelsFor().name, 'typescript');
  t.log(`overriding: ${others.map((k) => k.name).join(', ') || 'none here'}`);
  t.pass();
});

for (const kernels of others) {
  for (const half of [false, true]) {
    for (const [remotes, share, keep, large] of [
      [0, 1, false, false],
      [1, 0.5, true, false],
      [3, 1 / 3, true, true],
    ] as const) {
      test(`${kernels.name} deltaStep = typescript (${half ? 'binary16' : 'float32'}, ${remotes} remote, share ${share.toFixed(2)}, keep ${keep}${large ? ', overflowing' : ''})`, (t) => {
        const rng = new Random(17 + remotes);
        const { cur, base } = change(rng, 5003, large);
        const remote = Array.from({ length: remotes }, () => Float32Array.from({ length: cur.length }, () => (rng.uniform() - 0.5) * 1e-3));
        const want = runDeltaStep(reference, cur, base, remote, share, keep, half);
        const got = runDeltaStep(kernels, cur, base, remote, share, keep, half);
        t.is(firstDifference(got.baseNext, want.baseNext), undefined, 'baseNext');
        t.is(firstDifference(got.curNext, want.curNext), undefined, 'curNext');
        if (half) t.is(firstDifference(got.half, want.half), undefined, 'half');
        else t.is(firstDifference(got.delta, want.delta), undefined, 'delta');
        t.true(Math.abs(got.sumSquares - want.sumSquares) <= 1e-12 * want.sumSquares, `Σd² ${got.sumSquares} vs ${want.sumSquares}`);
        t.is(got.overflow, want.overflow);
        t.is(want.overflow, half && large);
      });
    }
  }

  for (const fraction of [0.001, 0.05, 0.5]) {
    test(`${kernels.name} sparseSelect = typescript (fraction ${fraction}, with a NaN)`, (t) => {
      const { cur, base } = change(new Random(5), 20_011, false);
      cur[333] = Number.NaN;
      const run = (k: HostKernels) => {
        const args: SparseSelectArgs = {
          cur,
          base,
          share: 0.5,
          fraction,
          indices: new Uint32Array(cur.length),
          values: new Float32Array(cur.length),
          sample: new Float64Array(4096),
        };
        const count = k.sparseSelect(args);
        return { count, indices: args.indices.subarray(0, count), values: args.values.subarray(0, count) };
      };
      const want = run(reference);
      const got = run(kernels);
      t.is(got.count, want.count);
      t.true(want.count > 0 && want.count < cur.length);
      t.true(Array.from(want.indices).includes(333), 'the NaN entry is selected');
      t.is(firstDifference(got.indices, want.indices), undefined, 'indices');
      t.is(firstDifference(got.values, want.values), undefined, 'values');
    });
  }
}

/** Each fault, the arguments that commit it, and its code. */
function faults(): [string, string, (k: HostKernels) => unknown][] {
  const n = 8;
  const a = (m = n): Float32Array => new Float32Array(m);
  const step = (over: Partial<DeltaStepArgs>) => (k: HostKernels) =>
    k.deltaStep({ cur: a(), base: a(), share: 1, keep: false, delta: a(), baseNext: a(), curNext: a(), ...over });
  const select = (over: Partial<SparseSelectArgs>) => (k: HostKernels) =>
    k.sparseSelect({
      cur: a(),
      base: a(),
      share: 1,
      fraction: 0.1,
      indices: new Uint32Array(n),
      values: a(),
      sample: new Float64Array(4),
      ...over,
    });
  return [
    ['deltaStep: base too short', 'EHOSTLENGTH', step({ base: a(7) })],
    ['deltaStep: a remote too long', 'EHOSTLENGTH', step({ remote: [a(), a(9)] })],
    ['deltaStep: both delta and half', 'EHOSTOUTPUT', step({ half: new Uint16Array(n) })],
    ['deltaStep: share 0', 'EHOSTSHARE', step({ share: 0 })],
    ['deltaStep: share NaN', 'EHOSTSHARE', step({ share: Number.NaN })],
    ['sparseSelect: fraction 1', 'EHOSTFRACTION', select({ fraction: 1 })],
    ['sparseSelect: share 2', 'EHOSTSHARE', select({ share: 2 })],
    ['sparseSelect: base too long', 'EHOSTLENGTH', select({ base: a(9) })],
    ['sparseSelect: no room for the entries', 'EHOSTCAPACITY', select({ values: a(3) })],
    ['sparseSelect: empty sample', 'EHOSTSAMPLE', select({ sample: new Float64Array(0) })],
    ['frame: negative size', 'EHOSTBYTES', (k) => k.frame(-1)],
    ['frame: fractional size', 'EHOSTBYTES', (k) => k.frame(1.5)],
  ];
}

for (const kernels of [reference, ...others]) {
  test(`${kernels.name}: every fault of the arguments is a ShapeMismatchError with its own code`, (t) => {
    for (const [what, code, call] of faults()) {
      const err = t.throws(() => call(kernels), { instanceOf: ShapeMismatchError }, what);
      t.is(err?.code, code, what);
    }
  });

  test(`${kernels.name}: frames are 4-byte aligned and of the size asked`, (t) => {
    for (const bytes of [0, 1, 4, 4099]) {
      const frame = kernels.frame(bytes);
      t.is(frame.length, bytes);
      t.is(frame.byteOffset & 3, 0);
    }
  });
}
