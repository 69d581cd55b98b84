/**
 * The kernel conformance suite: every kernel of the {@link Backend} interface, specified once and
 * run on every backend that starts (tfjs's `jasmine_util` pattern).
 *
 * Usage, one test file per backend, declaring nothing else:
 *
 * ```ts
 * import { runConformance } from './conformance.js';
 * runConformance('gpu', createGpuBackend);
 * ```
 *
 * `export function runConformance(label: string, make: () => Backend | Promise<Backend>): void`
 *
 * - `make` is called once; the backend is shared by the file's tests, awaited through `ready()`
 *   before the first one and disposed after the last.
 * - If `make` throws (or its promise rejects with) {@link BackendUnavailableError}, one
 *   `test.skip('<label>: unavailable — <reason>')` is registered and the reason is logged, so
 *   the skip is visible. A factory whose `ready()` may reject with that error should be wrapped,
 *   `async () => { const b = create(); await b.ready(); return b; }`, to be skipped the same way.
 * - With a promise, the tests are declared when it settles (AVA accepts that only while the
 *   file has declared no other test).
 *
 * Inputs come from the seeded {@link Random} (seeded by test title), and results are compared
 * with the float64 kernels of `reference.ts`. Tolerances, with u = 2⁻²⁴ the float32 unit roundoff:
 * - selections and copies (`read`/`write`, `copy`, `fill`, `bernoulli`, `relu`, `reluBackward`):
 *   exact;
 * - elementwise arithmetic: |got − want| ≤ 1e-5 · s, s the sum of the absolute values of the
 *   terms (so a cancellation is measured against the size of what cancelled). 1e-5 ≈ 170 u
 *   leaves room for a float32 `exp` on a GPU and still catches any wrong formula or index;
 * - `gemm`: |got − want| ≤ 2 (k + 4) u · (|α| Σₚ |op(a)ᵢₚ op(b)ₚⱼ| + |β cᵢⱼ|): Higham's bound
 *   γₖ for a length-k dot product in float32 in any summation order (plus the α, β roundings),
 *   doubled. For k = 784 that is ≈ 9.5e-5 relative to Σ|terms|, for k = 1 ≈ 6e-7;
 * - row/column reductions of n terms: (1e-5 + 2 (n + 4) u) · Σ|terms|, the same reasoning;
 * - `sumSquares`/`sumSquaredDiff` (float64 sums on the host): 1e-5 · Σ|terms|, plus
 *   hand-computed sums that must come out exactly.
 * Every value read back must also be finite.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { BackendUnavailableError } from '../../src/errors.js';
import type { Backend, GemmOptions, Tensor } from '../../src/kernels/backend.js';
import { Random } from '../../src/random.js';
import * as ref from './reference.js';

/** Registers the conformance tests of the backend `make` creates; see the module comment. */
export function runConformance(label: string, make: () => Backend | Promise<Backend>): void {
  let made: Backend | Promise<Backend>;
  try {
    made = make();
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    registerSkip(label, err.reason);
    return;
  }
  if (made instanceof Promise) {
    made.then(
      (backend) => registerSuite(label, backend),
      (err: unknown) => {
        if (err instanceof BackendUnavailableError) registerSkip(label, err.reason);
        else test(`${label}: backend starts`, (t) => t.fail(`make() rejected: ${String(err)}`));
      },
    );
    return;
  }
  registerSuite(label, made);
}

function registerSkip(label: string, reason: string): void {
  console.log(`[conformance] ${label}: unavailable, suite skipped — ${reason}`);
  test.skip(`${label}: unavailable — ${reason}`, (t) => t.pass());
}

const U = 2 ** -24;
const RTOL = 1e-5;

/** Elementwise shapes: a scalar, a row, a column, an odd block, and a CD-1 minibatch of hiddens. */
const SHAPES: readonly (readonly [number, number])[] = [
  [1, 1],
  [1, 23],
  [23, 1],
  [7, 13],
  [100, 500],
];

/** `[m, k, n]` of `op(a) (m × k) · op(b) (k × n)`: scalars, a row and a column out, an outer product, an odd block, ragged multi-block, CD-1's. */
const GEMM_SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [1, 17, 9],
  [9, 17, 1],
  [5, 1, 9],
  [7, 13, 5],
  [70, 300, 1030],
  [100, 784, 500],
  // Taller than wide and big enough for the native backend to cut it by rows over its threads.
  [1000, 100, 50],
];

/** Tensors of one test, freed when it ends. */
class Scope {
  private readonly tensors: Tensor[] = [];

  constructor(readonly backend: Backend) {}

  tensor(rows: number, cols: number, data?: Float32Array): Tensor {
    const t = this.backend.alloc(rows, cols);
    this.tensors.push(t);
    if (data !== undefined) this.backend.write(t, data);
    return t;
  }

  read(t: Tensor): Float32Array {
    const out = new Float32Array(t.rows * t.cols);
    this.backend.read(t, out);
    return out;
  }

  free(): void {
    for (const t of this.tensors) this.backend.free(t);
    this.tensors.length = 0;
  }
}

/** A generator seeded from `title` (FNV-1a), so every test has its own reproducible stream. */
function rngFor(title: string): Random {
  let h = 0x811c9dc5;
  for (let i = 0; i < title.length; i++) h = Math.imul(h ^ title.charCodeAt(i), 0x01000193);
  return new Random(h >>> 0);
}

function uniform(rng: Random, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return out;
}

function normal(rng: Random, n: number): Float32Array {
  return rng.fillNormal(new Float32Array(n));
}

function mat(rows: number, cols: number, data: ArrayLike<number>): ref.Mat {
  return { rows, cols, data };
}

/**
 * Asserts `got[i]` is finite and within `tol(i)` of `want[i]` for every i (`tol` 0: exactly equal),
 * reporting the first mismatches.
 */
function expectClose(t: ExecutionContext, what: string, got: Float32Array, want: ArrayLike<number>, tol: (i: number) => number): void {
  t.is(got.length, want.length, `${what}: length`);
  let count = 0;
  const shown: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const bound = tol(i);
    const ok = Number.isFinite(g) && (bound === 0 ? g === w : Math.abs(g - w) <= bound);
    if (!ok) {
      count++;
      if (shown.length < 4) shown.push(`[${i}] got ${g}, expected ${w} ± ${bound.toExponential(2)}`);
    }
  }
  t.true(count === 0, `${what}: ${count} of ${want.length} values wrong: ${shown.join('; ')}`);
}

const exact = (): number => 0;
const relative =
  (scale: ArrayLike<number>) =>
  (i: number): number =>
    RTOL * Math.abs(scale[i]!);
/** Below float32's normal range (1.2e-38) a value may round or flush to 0. */
const F32_TINY = 1e-37;

/** An elementwise kernel: how to make its inputs, run it, and what it must give. */
interface ElementwiseSpec {
  readonly name: string;
  /** Per input, whether it is a `1 × cols` row (a bias) rather than a `rows × cols` matrix. */
  readonly rowInputs: readonly boolean[];
  readonly make: (rng: Random, rows: number, cols: number) => Float32Array[];
  readonly run: (b: Backend, out: Tensor, ins: readonly Tensor[]) => void;
  /** The expected output and, unless the kernel is exact, the scale of its tolerance. */
  readonly want: (ins: readonly Float32Array[], rows: number, cols: number) => { value: ArrayLike<number>; scale?: ArrayLike<number> };
}

function absSum(...terms: ArrayLike<number>[]): Float64Array {
  const n = terms[0]!.length;
  const out = new Float64Array(n);
  for (const term of terms) for (let i = 0; i < n; i++) out[i] = out[i]! + Math.abs(term[i]!);
  return out;
}

function broadcast(bias: Float32Array, rows: number): Float64Array {
  const out = new Float64Array(rows * bias.length);
  for (let i = 0; i < out.length; i++) out[i] = bias[i % bias.length]!;
  return out;
}

const ELEMENTWISE: readonly ElementwiseSpec[] = [
  {
    name: 'addRowSigmoid',
    rowInputs: [false, true],
    make: (rng, r, c) => [uniform(rng, r * c, -8, 8), uniform(rng, c, -4, 4)],
    run: (b, out, [x, bias]) => b.addRowSigmoid(out, x!, bias!),
    want: ([x, bias], r, c) => {
      const value = ref.addRowSigmoidRef(mat(r, c, x!), mat(1, c, bias!));
      return { value, scale: value };
    },
  },
  {
    name: 'addRow',
    rowInputs: [false, true],
    make: (rng, r, c) => [uniform(rng, r * c, -3, 3), uniform(rng, c, -3, 3)],
    run: (b, out, [x, bias]) => b.addRow(out, x!, bias!),
    want: ([x, bias], r, c) => ({ value: ref.addRowRef(mat(r, c, x!), mat(1, c, bias!)), scale: absSum(x!, broadcast(bias!, r)) }),
  },
  {
    name: 'bernoulli',
    rowInputs: [false, false],
    make: (rng, r, c) => {
      const p = uniform(rng, r * c, 0, 1);
      const u = uniform(rng, r * c, 0, 1);
      // Ties u == p must give 0 (strict u < p); put one in every eight elements.
      for (let i = 0; i < u.length; i += 8) u[i] = p[i]!;
      return [p, u];
    },
    run: (b, out, [p, u]) => b.bernoulli(out, p!, u!),
    want: ([p, u]) => ({ value: ref.bernoulliRef(p!, u!) }),
  },
  {
    name: 'relu',
    rowInputs: [false],
    make: (rng, r, c) => [normal(rng, r * c)],
    run: (b, out, [x]) => b.relu(out, x!),
    want: ([x]) => ({ value: ref.reluRef(x!) }),
  },
  {
    name: 'noisyRelu',
    rowInputs: [false, false],
    make: (rng, r, c) => [uniform(rng, r * c, -4, 4), normal(rng, r * c)],
    run: (b, out, [x, noise]) => b.noisyRelu(out, x!, noise!),
    want: ([x, noise]) => {
      const value = ref.noisyReluRef(x!, noise!);
      const scale = new Float64Array(value.length);
      for (let i = 0; i < scale.length; i++) scale[i] = Math.abs(x![i]!) + Math.sqrt(ref.sigmoidRef(x![i]!)) * Math.abs(noise![i]!);
      return { value, scale };
    },
  },
  {
    name: 'add',
    rowInputs: [false, false],
    make: (rng, r, c) => [uniform(rng, r * c, -2, 2), uniform(rng, r * c, -2, 2)],
    run: (b, out, [x, y]) => b.add(out, x!, y!),
    want: ([x, y]) => ({ value: ref.addRef(x!, y!), scale: absSum(x!, y!) }),
  },
  {
    name: 'sub',
    rowInputs: [false, false],
    make: (rng, r, c) => [uniform(rng, r * c, -2, 2), uniform(rng, r * c, -2, 2)],
    run: (b, out, [x, y]) => b.sub(out, x!, y!),
    want: ([x, y]) => ({ value: ref.subRef(x!, y!), scale: absSum(x!, y!) }),
  },
  {
    name: 'mul',
    rowInputs: [false, false],
    make: (rng, r, c) => [uniform(rng, r * c, -2, 2), uniform(rng, r * c, -2, 2)],
    run: (b, out, [x, y]) => b.mul(out, x!, y!),
    want: ([x, y]) => {
      const value = ref.mulRef(x!, y!);
      return { value, scale: value };
    },
  },
  {
    name: 'scale',
    rowInputs: [false],
    make: (rng, r, c) => [uniform(rng, r * c, -2, 2)],
    run: (b, out, [x]) => b.scale(out, x!, -1.7),
    want: ([x]) => {
      const value = ref.scaleRef(x!, -1.7);
      return { value, scale: value };
    },
  },
  {
    name: 'softmaxRows',
    rowInputs: [false],
    make: (rng, r, c) => [uniform(rng, r * c, -20, 20)],
    run: (b, out, [x]) => b.softmaxRows(out, x!),
    want: ([x], r, c) => {
      const value = ref.softmaxRowsRef(mat(r, c, x!));
      return { value, scale: value };
    },
  },
  {
    name: 'sigmoidBackward',
    rowInputs: [false, false],
    make: (rng, r, c) => [normal(rng, r * c), uniform(rng, r * c, 0, 1)],
    run: (b, out, [delta, act]) => b.sigmoidBackward(out, delta!, act!),
    want: ([delta, act]) => {
      const value = ref.sigmoidBackwardRef(delta!, act!);
      return { value, scale: value };
    },
  },
  {
    name: 'reluBackward',
    rowInputs: [false, false],
    make: (rng, r, c) => [normal(rng, r * c), normal(rng, r * c).map((v) => Math.max(0, v))],
    run: (b, out, [delta, act]) => b.reluBackward(out, delta!, act!),
    want: ([delta, act]) => ({ value: ref.reluBackwardRef(delta!, act!) }),
  },
];

function registerSuite(label: string, backend: Backend): void {
  test.before(async () => {
    await backend.ready();
  });
  test.after.always(() => {
    backend.dispose();
  });

  /** Registers a test that gets a fresh {@link Scope} and a generator seeded by its title. */
  const kernelTest = (name: string, body: (t: ExecutionContext, s: Scope, rng: Random) => void): void => {
    const title = `${label}: ${name}`;
    test(title, (t) => {
      const s = new Scope(backend);
      try {
        body(t, s, rngFor(title));
      } finally {
        s.free();
      }
    });
  };

  kernelTest('info names the backend', (t) => {
    t.is(typeof backend.info.name, 'string');
    t.true(backend.info.description.length > 0);
  });

  kernelTest('alloc gives the requested shape, zero-filled', (t, s) => {
    for (const [r, c] of SHAPES) {
      const x = s.tensor(r, c);
      t.is(x.rows, r);
      t.is(x.cols, c);
      expectClose(t, `alloc ${r}x${c}`, s.read(x), new Float64Array(r * c), exact);
    }
  });

  kernelTest('write then read round-trips exactly', (t, s, rng) => {
    for (const [r, c] of SHAPES) {
      const data = uniform(rng, r * c, -1, 1);
      const special = [0, 1, -1, 3.4e38, -3.4e38, 1.1754944e-38, 1e-30, 123456.789, Math.PI];
      special.forEach((v, i) => {
        if (i < data.length) data[i] = v;
      });
      const x = s.tensor(r, c, data);
      const back = s.read(x);
      expectClose(t, `${r}x${c}`, back, data, exact);
      back[0] = 42;
      expectClose(t, `${r}x${c} after changing the copy read`, s.read(x), data, exact);
    }
  });

  kernelTest('copy', (t, s, rng) => {
    for (const [r, c] of SHAPES) {
      const data = normal(rng, r * c);
      const out = s.tensor(r, c, uniform(rng, r * c, 5, 6));
      const src = s.tensor(r, c, data);
      s.backend.copy(out, src);
      expectClose(t, `${r}x${c}`, s.read(out), data, exact);
      expectClose(t, `${r}x${c} src unchanged`, s.read(src), data, exact);
    }
  });

  kernelTest('fill', (t, s, rng) => {
    for (const [r, c] of SHAPES) {
      const out = s.tensor(r, c, normal(rng, r * c));
      for (const v of [0, -2.5, 1e30, 0.1]) {
        s.backend.fill(out, v);
        expectClose(t, `${r}x${c} fill ${v}`, s.read(out), new Float64Array(r * c).fill(Math.fround(v)), exact);
      }
    }
  });

  for (const [m, k, n] of GEMM_SHAPES) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const shape = `${transA ? `(${k}x${m})ᵀ` : `${m}x${k}`}·${transB ? `(${n}x${k})ᵀ` : `${k}x${n}`}`;
        kernelTest(`gemm ${shape}`, (t, s, rng) => gemmCase(t, s, rng, m, k, n, transA, transB));
      }
    }
  }

  // Optional fused kernels: tested where a backend has them, one visible skip each where it has not.
  const linearShapes = [
    [1, 1, 1],
    [7, 13, 5],
    [100, 784, 500],
  ] as const;
  for (const [name, sample] of [
    ['linearSigmoid', false],
    ['linearSigmoidBernoulli', true],
  ] as const) {
    if (backend[name] === undefined) {
      test.skip(`${label}: ${name} (optional; not implemented)`, (t) => t.pass());
      continue;
    }
    for (const [m, k, n] of linearShapes) {
      for (const transW of [false, true]) {
        kernelTest(`${name} ${m}x${k}·${transW ? `(${n}x${k})ᵀ` : `${k}x${n}`}`, (t, s, rng) =>
          linearCase(t, s, rng, m, k, n, transW, sample),
        );
      }
    }
  }

  for (const spec of ELEMENTWISE) {
    for (const [r, c] of SHAPES) {
      kernelTest(`${spec.name} ${r}x${c} (and in place)`, (t, s, rng) => {
        const data = spec.make(rng, r, c);
        const { value, scale } = spec.want(data, r, c);
        const tol = scale === undefined ? exact : relative(scale);
        const shapeOf = (i: number): [number, number] => (spec.rowInputs[i] === true ? [1, c] : [r, c]);
        const ins = data.map((d, i) => s.tensor(...shapeOf(i), d));
        const out = s.tensor(r, c, uniform(rng, r * c, -9, 9));
        spec.run(s.backend, out, ins);
        expectClose(t, 'out-of-place', s.read(out), value, tol);
        ins.forEach((x, i) => expectClose(t, `input ${i} unchanged`, s.read(x), data[i]!, exact));
        // In place: out is each full-size input in turn.
        data.forEach((d, i) => {
          if (spec.rowInputs[i] === true) return;
          const fresh = ins.map((x, j) => (j === i ? s.tensor(r, c, d) : x));
          spec.run(s.backend, fresh[i]!, fresh);
          expectClose(t, `in place on input ${i}`, s.read(fresh[i]!), value, tol);
        });
      });
    }
  }

  for (const [r, c] of SHAPES) {
    kernelTest(`axpy ${r}x${c} (and out === x)`, (t, s, rng) => {
      const o = uniform(rng, r * c, -2, 2);
      const x = uniform(rng, r * c, -2, 2);
      const out = s.tensor(r, c, o);
      const xt = s.tensor(r, c, x);
      s.backend.axpy(out, 0.3, xt);
      expectClose(t, 'out += 0.3 x', s.read(out), ref.axpyRef(o, 0.3, x), relative(absSum(o, ref.scaleRef(x, 0.3))));
      expectClose(t, 'x unchanged', s.read(xt), x, exact);
      s.backend.axpy(xt, -2.5, xt);
      expectClose(t, 'x += -2.5 x', s.read(xt), ref.scaleRef(x, -1.5), relative(ref.scaleRef(x, 3.5)));
    });

    kernelTest(`colSum ${r}x${c}`, (t, s, rng) => {
      const x = uniform(rng, r * c, -1, 1);
      const old = uniform(rng, c, -1, 1);
      const xt = s.tensor(r, c, x);
      const tol = (alpha: number, beta: number) => {
        const mag = ref.colSumRef(mat(r, c, x.map(Math.abs)), old.map(Math.abs), Math.abs(alpha), Math.abs(beta));
        return (j: number) => (RTOL + 2 * (r + 4) * U) * mag[j]!;
      };
      for (const [alpha, beta] of [
        [1, 0],
        [-0.5, 0.25],
        [2, 1],
      ] as const) {
        const out = s.tensor(1, c, old);
        s.backend.colSum(out, xt, alpha, beta);
        expectClose(t, `alpha ${alpha}, beta ${beta}`, s.read(out), ref.colSumRef(mat(r, c, x), old, alpha, beta), tol(alpha, beta));
      }
      expectClose(t, 'x unchanged', s.read(xt), x, exact);
    });

    kernelTest(`softplusRowSum ${r}x${c}`, (t, s, rng) => {
      const x = uniform(rng, r * c, -10, 10);
      const out = s.tensor(r, 1, uniform(rng, r, -1, 1));
      s.backend.softplusRowSum(out, s.tensor(r, c, x));
      const want = ref.softplusRowSumRef(mat(r, c, x));
      // Every softplus term is positive, so Σ|terms| is the sum itself.
      expectClose(t, 'row sums', s.read(out), want, (i) => (RTOL + 2 * (c + 4) * U) * want[i]!);
    });

    kernelTest(`rowSquaredDistance ${r}x${c}`, (t, s, rng) => {
      const x = uniform(rng, r * c, -2, 2);
      const bias = uniform(rng, c, -2, 2);
      const out = s.tensor(r, 1, uniform(rng, r, -1, 1));
      s.backend.rowSquaredDistance(out, s.tensor(r, c, x), s.tensor(1, c, bias));
      const want = ref.rowSquaredDistanceRef(mat(r, c, x), mat(1, c, bias));
      expectClose(t, 'row distances', s.read(out), want, (i) => (RTOL + 2 * (c + 4) * U) * want[i]!);
    });

    kernelTest(`momentumStep ${r}x${c}`, (t, s, rng) => {
      const p = uniform(rng, r * c, -1, 1);
      const v = uniform(rng, r * c, -0.1, 0.1);
      const g = uniform(rng, r * c, -50, 50);
      const opts = { learningRate: 0.05, momentum: 0.9, weightDecay: 2e-4, gradScale: 0.01 };
      const [pt, vt, gt] = [s.tensor(r, c, p), s.tensor(r, c, v), s.tensor(r, c, g)];
      s.backend.momentumStep(pt, vt, gt, opts);
      const want = ref.momentumStepRef(p, v, g, opts);
      const vScale = absSum(
        ref.scaleRef(v, opts.momentum),
        ref.scaleRef(g, opts.learningRate * opts.gradScale),
        ref.scaleRef(p, opts.learningRate * opts.weightDecay),
      );
      expectClose(t, 'velocity', s.read(vt), want.velocity, relative(vScale));
      expectClose(t, 'param', s.read(pt), want.param, relative(absSum(p, vScale)));
      expectClose(t, 'grad unchanged', s.read(gt), g, exact);
    });
  }

  kernelTest('bernoulli: u < p is 1, u == p is 0 (hand-picked thresholds)', (t, s) => {
    const p = Float32Array.from([0.5, 0.5, 0.25, 0, 1, 0.75, 0.3, 0.3]);
    const u = Float32Array.from([0.5, 0.4999, 0.25, 0, 0.99999994, 0.8, 0.3, 0.29999998]);
    const out = s.tensor(1, 8);
    s.backend.bernoulli(out, s.tensor(1, 8, p), s.tensor(1, 8, u));
    expectClose(t, 'samples', s.read(out), [0, 1, 0, 0, 1, 0, 0, 1], exact);
  });

  kernelTest('momentumStep: hand-computed 2-element example', (t, s) => {
    // v = 0.9·[0.5, 0.25] + 0.1·(0.5·[4, −8] − 0.01·[1, −2]) = [0.649, −0.173]; p = [1, −2] + v.
    const p = s.tensor(1, 2, Float32Array.from([1, -2]));
    const v = s.tensor(1, 2, Float32Array.from([0.5, 0.25]));
    const g = s.tensor(1, 2, Float32Array.from([4, -8]));
    s.backend.momentumStep(p, v, g, { learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, gradScale: 0.5 });
    expectClose(t, 'velocity', s.read(v), [0.649, -0.173], (i) => RTOL * [0.649, 0.173][i]!);
    expectClose(t, 'param', s.read(p), [1.649, -2.173], (i) => RTOL * [1.649, 2.173][i]!);
  });

  kernelTest('softplusRowSum: ±50, ±100 and ±1000 neither overflow nor lose the large terms', (t, s) => {
    const x = Float32Array.from([50, -50, 100, -100, 0, 20, -20, 1e-3, 1000, -1000, 1000, 0, -50, -50, -100, -100]);
    const out = s.tensor(4, 1);
    s.backend.softplusRowSum(out, s.tensor(4, 4, x));
    const got = s.read(out);
    const want = ref.softplusRowSumRef(mat(4, 4, x));
    t.true(Math.abs(got[0]! - 150) <= RTOL * 150, `row 0 = ${got[0]}, expected 150`);
    t.true(Math.abs(got[1]! - want[1]!) <= RTOL * want[1]!, `row 1 = ${got[1]}, expected ${want[1]}`);
    t.true(Math.abs(got[2]! - want[2]!) <= RTOL * want[2]!, `row 2 = ${got[2]}, expected ${want[2]} (2000 + log 2)`);
    // softplus(−50) ≈ 1.9e-22: a float32 log(1 + e^z) may round it to 0, but never below 0 nor to anything visible.
    t.true(got[3]! >= 0 && got[3]! < 1e-6, `row 3 = ${got[3]}, expected ≈ ${want[3]}`);
  });

  kernelTest('softmaxRows: rows sum to 1 and stay finite for inputs of ±1000', (t, s, rng) => {
    const c = 7;
    const rows = [
      [1000, 999, 998, 990, 0, -5, 1000],
      [-1000, -999, -1000, -1000.5, -1001, -1000, -998],
      [1000, -1000, 0, 500, -500, 1, -1],
      Array.from(uniform(rng, c, -30, 30)),
    ];
    const x = Float32Array.from(rows.flat());
    const r = rows.length;
    const out = s.tensor(r, c);
    s.backend.softmaxRows(out, s.tensor(r, c, x));
    const got = s.read(out);
    const want = ref.softmaxRowsRef(mat(r, c, x));
    expectClose(t, 'probabilities', got, want, (i) => RTOL * want[i]! + F32_TINY);
    for (let i = 0; i < r; i++) {
      const sum = got.slice(i * c, (i + 1) * c).reduce((a, b) => a + b, 0);
      t.true(Math.abs(sum - 1) <= RTOL, `row ${i} sums to ${sum}`);
    }
    const big = uniform(rng, 100 * 500, -1000, 1000);
    const bigOut = s.tensor(100, 500);
    s.backend.softmaxRows(bigOut, s.tensor(100, 500, big));
    const bigGot = s.read(bigOut);
    for (let i = 0; i < 100; i++) {
      const sum = bigGot.slice(i * 500, (i + 1) * 500).reduce((a, b) => a + b, 0);
      t.true(Number.isFinite(sum) && Math.abs(sum - 1) <= RTOL, `100x500 row ${i} sums to ${sum}`);
    }
  });

  kernelTest('sumSquares and sumSquaredDiff: hand-computed sums', (t, s) => {
    const a = s.tensor(2, 2, Float32Array.from([1, 2, 3, 4]));
    const b = s.tensor(2, 2, Float32Array.from([0.5, 2, 3, -1]));
    t.is(s.backend.sumSquares(a), 30);
    t.is(s.backend.sumSquaredDiff(a, b), 25.25);
    t.is(s.backend.sumSquaredDiff(b, b), 0);
    const last = new Float32Array(777);
    last[776] = 3;
    t.is(s.backend.sumSquares(s.tensor(7, 111, last)), 9);
    const first = new Float32Array(777);
    first[0] = -0.5;
    t.is(s.backend.sumSquaredDiff(s.tensor(7, 111, first), s.tensor(7, 111, last)), 9.25);
  });

  for (const [r, c] of SHAPES) {
    kernelTest(`sumSquares and sumSquaredDiff ${r}x${c}`, (t, s, rng) => {
      const a = uniform(rng, r * c, -3, 3);
      const b = uniform(rng, r * c, -3, 3);
      const [at, bt] = [s.tensor(r, c, a), s.tensor(r, c, b)];
      const ss = s.backend.sumSquares(at);
      const ssWant = ref.sumSquaresRef(a);
      t.true(Math.abs(ss - ssWant) <= RTOL * ssWant, `sumSquares = ${ss}, expected ${ssWant}`);
      const sd = s.backend.sumSquaredDiff(at, bt);
      const sdWant = ref.sumSquaredDiffRef(a, b);
      t.true(Math.abs(sd - sdWant) <= RTOL * sdWant, `sumSquaredDiff = ${sd}, expected ${sdWant}`);
      expectClose(t, 'a unchanged', s.read(at), a, exact);
    });
  }
}

/** gemm with its defaults (and NaN in `out`, which `beta = 0` must ignore), and with α, β ≠ defaults (β = 1 accumulates, β < 0). */
function gemmCase(t: ExecutionContext, s: Scope, rng: Random, m: number, k: number, n: number, transA: boolean, transB: boolean): void {
  const aShape: [number, number] = transA ? [k, m] : [m, k];
  const bShape: [number, number] = transB ? [n, k] : [k, n];
  const a = uniform(rng, m * k, -1, 1);
  const b = uniform(rng, k * n, -1, 1);
  const at = s.tensor(...aShape, a);
  const bt = s.tensor(...bShape, b);
  const product = ref.productRef(mat(...aShape, a), mat(...bShape, b), transA, transB);
  const tol =
    (magnitude: Float64Array) =>
    (i: number): number =>
      2 * (k + 4) * U * magnitude[i]!;

  const out = s.tensor(m, n, new Float32Array(m * n).fill(Number.NaN));
  if (!transA && !transB) s.backend.gemm(out, at, bt);
  else s.backend.gemm(out, at, bt, { transA, transB });
  const plain = ref.scaleProductRef(product, undefined, 1, 0);
  expectClose(t, 'defaults (alpha 1, beta 0, NaN in out)', s.read(out), plain.value, tol(plain.magnitude));

  for (const [alpha, beta] of [
    [-0.75, 0.5],
    [1.5, 1],
    [0.25, 0],
    [1, -1.25],
  ] as const) {
    const old = uniform(rng, m * n, -1, 1);
    const c = s.tensor(m, n, old);
    const opts: GemmOptions = { transA, transB, alpha, beta };
    s.backend.gemm(c, at, bt, opts);
    const want = ref.scaleProductRef(product, old, alpha, beta);
    expectClose(t, `alpha ${alpha}, beta ${beta}`, s.read(c), want.value, tol(want.magnitude));
  }
  expectClose(t, 'a unchanged', s.read(at), a, exact);
  expectClose(t, 'b unchanged', s.read(bt), b, exact);
}

/**
 * `linearSigmoid` (σ(x · op(w) + bias)) or `linearSigmoidBernoulli` (u < that). The gemm bound on z
 * becomes σ(1 − σ)·|Δz| on σ; a Bernoulli sample must match wherever u is further than that
 * tolerance from σ (it may go either way closer than that).
 */
function linearCase(t: ExecutionContext, s: Scope, rng: Random, m: number, k: number, n: number, transW: boolean, sample: boolean): void {
  const wShape: [number, number] = transW ? [n, k] : [k, n];
  const x = uniform(rng, m * k, -1, 1);
  const w = uniform(rng, k * n, -0.3, 0.3);
  const bias = uniform(rng, n, -2, 2);
  const z = ref.scaleProductRef(ref.productRef(mat(m, k, x), mat(...wShape, w), false, transW), broadcast(bias, m), 1, 1);
  const p = z.value.map(ref.sigmoidRef);
  const tol = (i: number): number => RTOL * p[i]! + p[i]! * (1 - p[i]!) * 2 * (k + 5) * U * z.magnitude[i]!;
  const [xt, wt, bt] = [s.tensor(m, k, x), s.tensor(...wShape, w), s.tensor(1, n, bias)];
  const out = s.tensor(m, n, new Float32Array(m * n).fill(Number.NaN));
  if (!sample) {
    if (transW) s.backend.linearSigmoid!(out, xt, wt, bt, true);
    else s.backend.linearSigmoid!(out, xt, wt, bt);
    expectClose(t, 'probabilities', s.read(out), p, tol);
    return;
  }
  const u = uniform(rng, m * n, 0, 1);
  const ut = s.tensor(m, n, u);
  if (transW) s.backend.linearSigmoidBernoulli!(out, xt, wt, bt, ut, true);
  else s.backend.linearSigmoidBernoulli!(out, xt, wt, bt, ut);
  const got = s.read(out);
  const want = ref.bernoulliRef(p, u);
  expectClose(t, 'samples', got, want, (i) => (Math.abs(u[i]! - p[i]!) <= tol(i) ? 1 : 0));
  t.true(
    got.every((v) => v === 0 || v === 1),
    'samples are 0 or 1',
  );
  expectClose(t, 'u unchanged', s.read(ut), u, exact);
}
