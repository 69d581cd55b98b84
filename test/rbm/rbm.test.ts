import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rbm } from '../../src/rbm/index.js';
import { InvalidDataError, InvalidOptionError, ShapeMismatchError, DbnError } from '../../src/errors.js';
import { Random, type RandomSource } from '../../src/random.js';
import type { HostMatrix } from '../../src/validate.js';
import { cpuBackends, unavailable } from '../helpers/backends.js';

for (const u of unavailable) {
  console.log(`rbm tests: backend '${u.name}' unavailable — ${u.reason}`);
  test.skip(`rbm tests on ${u.name}: unavailable — ${u.reason}`, () => {});
}

/** A random source that replays fixed uniforms, for hand-computed updates. */
function fixedSource(uniforms: number[]): RandomSource {
  let k = 0;
  return {
    fillUniform(out) {
      for (let i = 0; i < out.length; i++) out[i] = uniforms[k++ % uniforms.length]!;
      return out;
    },
    fillNormal(out) {
      return out.fill(0);
    },
    permutation(n) {
      return Uint32Array.from({ length: n }, (_, i) => i);
    },
    int: () => 0,
    getState: () => [1, 2, 3, 4],
    setState: () => {},
  };
}

function binaryData(rows: number, cols: number, seed: number, p = 0.3): HostMatrix {
  const r = new Random(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = r.uniform() < p ? 1 : 0;
  return { rows, cols, data };
}

/** Patterned binary data: a few prototypes with 5% bit noise, which an RBM can model. */
function patterns(rows: number, cols: number, seed: number): HostMatrix {
  const r = new Random(seed);
  const protos = [0, 1, 2].map(() => Array.from({ length: cols }, () => (r.uniform() < 0.5 ? 1 : 0)));
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const p = protos[i % protos.length]!;
    for (let j = 0; j < cols; j++) data[i * cols + j] = r.uniform() < 0.05 ? 1 - p[j]! : p[j]!;
  }
  return { rows, cols, data };
}

function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-rbm-')), name);
}

function close(t: { true: (c: boolean, m?: string) => void }, a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  t.true(a.length === b.length, `${what}: lengths ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  t.true(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
}

for (const { name, make } of cpuBackends) {
  test(`${name}: a CD-1 update on a 3x2 RBM with fixed uniforms matches the hand computation`, (t) => {
    const backend = make();
    const rbm = new Rbm({
      nVisible: 3,
      nHidden: 2,
      backend,
      random: fixedSource([0.3, 0.6]),
      learningRate: 0.5,
      initialMomentum: 0,
      weightDecay: 0,
      batchSize: 1,
    });
    rbm.setParameters({
      weights: { rows: 3, cols: 2, data: Float32Array.from([0.1, -0.2, 0.3, 0.4, -0.5, 0.6]) },
      visibleBias: Float32Array.from([0, 0.1, -0.1]),
      hiddenBias: Float32Array.from([0.2, -0.3]),
    });
    // h0 = σ([-0.2, 0.1]) = [0.450166, 0.524979]; uniforms [0.3, 0.6] → hs = [1, 0];
    // v1 = σ([0.1, 0.4, -0.6]) = [0.524979, 0.598688, 0.354344]; h1 = σ(v1·W + b_h) = [0.563390, 0.511769];
    // ΔW = 0.5·(v0ᵀh0 − v1ᵀh1), Δb_v = 0.5·(v0 − v1), Δb_h = 0.5·(h0 − h1).
    const err = rbm.partialFit([[1, 0, 1]]);
    t.true(Math.abs(err - 0.33364792) < 1e-6, `reconstruction error ${err}`);
    const p = rbm.getParameters();
    close(t, p.weights.data, [0.17719895, -0.07184449, 0.13135263, 0.24680505, -0.37473387, 0.7718185], 2e-6, 'W');
    close(t, p.visibleBias, [0.23751041, -0.19934383, 0.22282815], 2e-6, 'b_v');
    close(t, p.hiddenBias, [0.14338793, -0.293395], 2e-6, 'b_h');
    rbm.dispose();
    backend.dispose();
  });

  test(`${name}: the exact log-likelihood of a tiny RBM (all states enumerated) rises over training`, async (t) => {
    const backend = make();
    const nv = 6;
    const nh = 4;
    const data = patterns(60, nv, 3);
    const rbm = new Rbm({ nVisible: nv, nHidden: nh, backend, seed: 11, learningRate: 0.1, batchSize: 10, monitorSize: 0 });
    const exactLL = (): number => {
      // log Z = log Σ_v exp(−F(v)), F(v) = −v·b_v − Σ_j softplus(b_h + vW), all 2^nv visible states
      const { weights: W, visibleBias: bv, hiddenBias: bh } = rbm.getParameters();
      const F = (v: number[]): number => {
        let f = 0;
        for (let i = 0; i < nv; i++) f -= v[i]! * bv[i]!;
        for (let j = 0; j < nh; j++) {
          let z = bh[j]!;
          for (let i = 0; i < nv; i++) z += v[i]! * W.data[i * nh + j]!;
          f -= Math.log1p(Math.exp(z));
        }
        return f;
      };
      const fs: number[] = [];
      for (let s = 0; s < 1 << nv; s++) fs.push(-F(Array.from({ length: nv }, (_, i) => (s >> i) & 1)));
      const m = Math.max(...fs);
      const logZ = m + Math.log(fs.reduce((a, x) => a + Math.exp(x - m), 0));
      let ll = 0;
      for (let r = 0; r < data.rows; r++) ll += -F(Array.from(data.data.subarray(r * nv, (r + 1) * nv))) - logZ;
      return ll / data.rows;
    };
    const before = exactLL();
    t.true(Math.abs(before - -nv * Math.log(2)) < 0.05, `near-uniform model at start: ${before}`);
    await rbm.fit(data, { epochs: 30 });
    const after = exactLL();
    t.true(after > before + 0.5, `log-likelihood ${before} → ${after}`);
    rbm.dispose();
    backend.dispose();
  });

  test(`${name}: same seed, same backend → same bits; partialFit over batches matches fit`, async (t) => {
    const backend = make();
    const data = binaryData(50, 12, 5);
    const mk = (): Rbm => new Rbm({ nVisible: 12, nHidden: 7, backend, seed: 42, batchSize: 10, shuffle: false, monitorSize: 0 });
    const a = mk();
    const b = mk();
    const c = mk();
    await a.fit(data, { epochs: 1 });
    await b.fit(data, { epochs: 1 });
    for (let s = 0; s < 50; s += 10) c.partialFit({ rows: 10, cols: 12, data: data.data.subarray(s * 12, (s + 10) * 12) });
    const pa = a.getParameters();
    t.deepEqual(pa.weights.data, b.getParameters().weights.data);
    t.deepEqual(pa.weights.data, c.getParameters().weights.data);
    t.deepEqual(pa.hiddenBias, c.getParameters().hiddenBias);
    for (const r of [a, b, c]) r.dispose();
    backend.dispose();
  });

  test(`${name}: input is not mutated; transform is the mean field σ(vW + b_h) (and meanHiddens its alias); gibbs gives no NaN`, async (t) => {
    const backend = make();
    const data = binaryData(30, 10, 6);
    const copy = new Float32Array(data.data);
    const rbm = new Rbm({ nVisible: 10, nHidden: 5, backend, seed: 1, monitorSize: 10 });
    await rbm.fit(data, { epochs: 2 });
    rbm.transform(data);
    rbm.gibbs(data);
    rbm.freeEnergy(data);
    rbm.scoreSamples(data);
    t.deepEqual(data.data, copy);
    const features = rbm.transform(data);
    t.deepEqual(features.data, rbm.meanHiddens(data).data);
    // independent expectation: the mean field computed on the host from the parameters
    const params = rbm.getParameters();
    for (let row = 0; row < data.rows; row++) {
      for (let j = 0; j < 5; j++) {
        let act = params.hiddenBias[j]!;
        for (let i = 0; i < 10; i++) act += data.data[row * 10 + i]! * params.weights.data[i * 5 + j]!;
        const expected = 1 / (1 + Math.exp(-act));
        t.true(
          Math.abs(features.data[row * 5 + j]! - expected) < 1e-5,
          `row ${row} unit ${j}: ${features.data[row * 5 + j]} vs ${expected}`,
        );
      }
    }
    // huge weights: the sigmoid saturates but must stay finite
    const p = rbm.getParameters();
    rbm.setParameters({ ...p, weights: { ...p.weights, data: p.weights.data.map((_, i) => (i % 2 ? 1e4 : -1e4)) } });
    const g = rbm.gibbs(data, 3);
    t.true(g.data.every((v) => v === 0 || v === 1));
    t.true(rbm.freeEnergy(data).every(Number.isFinite));
    rbm.dispose();
    backend.dispose();
  });

  test(`${name}: hidden sample means approach the mean field`, (t) => {
    const backend = make();
    const rbm = new Rbm({ nVisible: 8, nHidden: 6, backend, seed: 9, initStd: 1 });
    rbm.setParameters(rbm.getParameters()); // the random initial weights, declared learned
    const v = binaryData(1, 8, 2);
    const reps = 4000;
    const many: HostMatrix = { rows: reps, cols: 8, data: new Float32Array(reps * 8) };
    for (let r = 0; r < reps; r++) many.data.set(v.data, r * 8);
    const mean = rbm.transform(v).data;
    const s = rbm.sampleHiddens(many).data;
    for (let j = 0; j < 6; j++) {
      let m = 0;
      for (let r = 0; r < reps; r++) m += s[r * 6 + j]!;
      m /= reps;
      const sd = Math.sqrt((mean[j]! * (1 - mean[j]!)) / reps);
      t.true(Math.abs(m - mean[j]!) < 4 * sd + 1e-6, `unit ${j}: sample mean ${m} vs ${mean[j]}`);
    }
    rbm.dispose();
    backend.dispose();
  });

  test(`${name}: Gaussian visible and noisy-ReLU hidden units train and stay finite`, async (t) => {
    const backend = make();
    const r = new Random(4);
    const x: HostMatrix = { rows: 200, cols: 6, data: new Float32Array(1200) };
    for (let i = 0; i < 200; i++) {
      const z = r.normal();
      for (let j = 0; j < 6; j++) x.data[i * 6 + j] = z * (j < 3 ? 1 : -1) * 0.9 + r.normal() * 0.3;
    }
    for (const hidden of ['bernoulli', 'noisy-relu'] as const) {
      const rbm = new Rbm({ nVisible: 6, nHidden: 4, visible: 'gaussian', hidden, backend, seed: 3, learningRate: 0.01, batchSize: 20 });
      rbm.setParameters(rbm.getParameters());
      const e0 = rbm.reconstructionError(x);
      const h = await rbm.fit(x, { epochs: 15 });
      const e1 = rbm.reconstructionError(x);
      t.true(h.every((m) => Number.isFinite(m.reconstructionError)));
      t.true(e1 < e0 * 0.8, `${hidden}: reconstruction error ${e0} → ${e1}`);
      rbm.dispose();
    }
    backend.dispose();
  });

  test(`${name}: PCD, CD-3, sparsity and a learning-rate schedule train without NaN and lower the error`, async (t) => {
    const backend = make();
    const data = patterns(120, 16, 8);
    const rbm = new Rbm({
      nVisible: 16,
      nHidden: 12,
      backend,
      seed: 5,
      persistent: true,
      k: 3,
      sparsityCost: 0.1,
      sparsityTarget: 0.2,
      learningRateSchedule: 'exponential',
      learningRateDecay: 0.95,
      batchSize: 25,
      monitorSize: 50,
    });
    rbm.setParameters(rbm.getParameters());
    const before = rbm.reconstructionError(data);
    const hist = await rbm.fit(data, { epochs: 25, validation: patterns(40, 16, 9) });
    t.true(rbm.reconstructionError(data) < before);
    t.is(hist.length, 25);
    t.true(Math.abs(hist[3]!.learningRate - 0.1 * 0.95 ** 3) < 1e-12);
    t.is(hist[0]!.momentum, 0.5);
    t.is(hist[24]!.momentum, 0.9);
    t.true(hist.every((m) => Number.isFinite(m.pseudoLogLikelihood!) && Number.isFinite(m.freeEnergyGap!)));
    // the sparsity penalty pulls the mean activation towards its target
    t.true(Math.abs(hist[24]!.meanHiddenActivation - 0.2) < Math.abs(hist[0]!.meanHiddenActivation - 0.2) + 0.05);
    rbm.dispose();
    backend.dispose();
  });

  test(`${name}: save with training state, load, and continue exactly`, async (t) => {
    const backend = make();
    const data = binaryData(40, 9, 12);
    const opts = { nVisible: 9, nHidden: 5, backend, seed: 8, batchSize: 10, persistent: true, monitorSize: 0 } as const;
    const a = new Rbm(opts);
    await a.fit(data, { epochs: 2 });
    const file = tmpFile('a.rbm');
    a.save(file, { trainingState: true });
    const b = Rbm.load(file, { backend });
    t.is(b.epochsTrained, 2);
    await a.fit(data, { epochs: 2 });
    await b.fit(data, { epochs: 2 });
    t.deepEqual(b.getParameters().weights.data, a.getParameters().weights.data);
    a.dispose();
    b.dispose();
    backend.dispose();
  });
}

if (cpuBackends.length >= 2) {
  test('a model saved on one backend loads on another with the same outputs (1e-5)', async (t) => {
    const [first, second] = cpuBackends as [(typeof cpuBackends)[0], (typeof cpuBackends)[0]];
    const b1 = first.make();
    const b2 = second.make();
    const data = binaryData(64, 20, 13);
    const rbm = new Rbm({ nVisible: 20, nHidden: 10, backend: b1, seed: 2, monitorSize: 0 });
    await rbm.fit(data, { epochs: 3 });
    const file = tmpFile('x.rbm');
    rbm.save(file);
    const other = Rbm.load(file, { backend: b2 });
    close(t, other.transform(data).data, rbm.transform(data).data, 1e-5, `${first.name}→${second.name} transform`);
    close(t, other.freeEnergy(data), rbm.freeEnergy(data), 1e-4, 'free energy');
    t.true(Math.abs(other.reconstructionError(data) - rbm.reconstructionError(data)) < 1e-5);
    rbm.dispose();
    other.dispose();
    b1.dispose();
    b2.dispose();
  });
}

test('every bad option raises InvalidOptionError naming the option and the expectation', (t) => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ nVisible: 0, nHidden: 2 }, /'nVisible' option of Rbm must be an integer in \[1, inf\]\. Got 0/],
    [{ nVisible: 3 }, /'nHidden' option of Rbm is required/],
    [{ nVisible: 3, nHidden: 2, learningRate: -1 }, /'learningRate' option of Rbm must be a number in \(0, inf\)\. Got -1\./],
    [{ nVisible: 3, nHidden: 2, visible: 'poisson' }, /'visible' option of Rbm must be one of 'bernoulli', 'gaussian'/],
    [{ nVisible: 3, nHidden: 2, initialMomentum: 1 }, /'initialMomentum'/],
    [{ nVisible: 3, nHidden: 2, k: 1.5 }, /'k' option/],
    [{ nVisible: 3, nHidden: 2, sparsityTarget: 1 }, /'sparsityTarget'/],
    [{ nVisible: 3, nHidden: 2, backend: {} }, /'backend' option of Rbm must be a Backend/],
    [{ nVisible: 3, nHidden: 2, learningRateSchedule: 'cosine' }, /'learningRateSchedule'/],
    [{ nVisible: 3, nHidden: 2, learningRateSchedule: 'exponential', learningRateDecay: 2 }, /'learningRateDecay'/],
    [{ nVisible: 3, nHidden: 2, learningRate: Number.NaN }, /'learningRate'/],
    [{ nVisible: 3, nHidden: 2, epochz: 3 }, /Rbm has no option 'epochz'/],
  ];
  for (const [o, re] of bad) {
    const err = t.throws(() => new Rbm(o as never), { instanceOf: InvalidOptionError });
    t.regex(err!.message, re);
  }
});

test('bad data raises ShapeMismatchError / InvalidDataError', async (t) => {
  const [{ make }] = cpuBackends as [(typeof cpuBackends)[0]];
  const backend = make();
  const rbm = new Rbm({ nVisible: 3, nHidden: 2, backend, seed: 1 });
  t.throws(() => rbm.partialFit([[1, 0]]), { instanceOf: ShapeMismatchError, message: /must have 3 columns, got 2/ });
  t.throws(
    () =>
      rbm.partialFit([
        [1, 0, 1],
        [1, 0],
      ]),
    { instanceOf: ShapeMismatchError, message: /row 1 has 2 columns/ },
  );
  t.throws(() => rbm.partialFit([[1, 0, 2]]), { instanceOf: InvalidDataError, message: /\[0, 1\].*row 0, column 2 is 2/ });
  t.throws(() => rbm.transform([[1, Number.NaN, 0]]), { instanceOf: InvalidDataError, message: /column 1 is NaN/ });
  t.throws(() => rbm.transform({ rows: 2, cols: 3, data: new Float32Array(5) }), { instanceOf: ShapeMismatchError });
  await t.throwsAsync(rbm.fit([]), { instanceOf: ShapeMismatchError, message: /at least 1 row/ });
  await t.throwsAsync(rbm.fit([[1, 0, 1]], { epochs: -1 }), { instanceOf: InvalidOptionError, message: /'epochs' option of Rbm\.fit/ });
  const g = new Rbm({ nVisible: 3, nHidden: 2, backend, seed: 1, visible: 'gaussian', hidden: 'noisy-relu' });
  t.notThrows(() => g.partialFit([[5, -3, 0.5]]));
  t.throws(() => g.freeEnergy([[1, 0, 1]]), { instanceOf: DbnError, message: /Bernoulli hidden units only/ });
  rbm.dispose();
  g.dispose();
  backend.dispose();
});

for (const { name, make } of cpuBackends) {
  test(`${name}: readParametersInto / writeParametersTrusted copy without allocating, check lengths, and match get/setParameters`, (t) => {
    const rbm = new Rbm({ nVisible: 4, nHidden: 3, backend: make(), seed: 3, monitorSize: 0 });
    const p = rbm.getParameters();
    const w = new Float32Array(12);
    const bv = new Float32Array(4);
    const bh = new Float32Array(3);
    rbm.readParametersInto(w, bv, bh);
    t.deepEqual([w, bv, bh], [p.weights.data, p.visibleBias, p.hiddenBias]);
    const w2 = Float32Array.from({ length: 12 }, (_, i) => i / 7);
    const bv2 = Float32Array.from([1, 2, 3, 4]);
    const bh2 = Float32Array.from([-1, -2, -3]);
    rbm.writeParametersTrusted(w2, bv2, bh2);
    const q = rbm.getParameters();
    t.deepEqual([q.weights.data, q.visibleBias, q.hiddenBias], [w2, bv2, bh2]);
    t.throws(() => rbm.readParametersInto(new Float32Array(11), bv, bh), {
      instanceOf: ShapeMismatchError,
      message: "Argument 'weights' passed to 'Rbm.readParametersInto' must be a Float32Array of 12 values, got 11 values.",
    });
    t.throws(() => rbm.writeParametersTrusted(w2, bv2, new Float32Array(4)), {
      instanceOf: ShapeMismatchError,
      message: /'hiddenBias' passed to 'Rbm.writeParametersTrusted' must be a Float32Array of 3 values/,
    });
    // The validating form refuses what the trusted one would take.
    w2[0] = Number.NaN;
    t.throws(() => rbm.setParameters({ weights: { rows: 4, cols: 3, data: w2 }, visibleBias: bv2, hiddenBias: bh2 }), {
      instanceOf: InvalidDataError,
    });
  });
}
