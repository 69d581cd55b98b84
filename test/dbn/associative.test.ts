import test from 'ava';
import { AssociativeMemory, Dbn, estimateAssociativeLogPartition, estimateLogPartition } from '../../src/dbn/index.js';
import { DbnError, InvalidOptionError, NotFittedError } from '../../src/errors.js';
import type { Backend } from '../../src/kernels/backend.js';
import { Random } from '../../src/random.js';
import { Rbm } from '../../src/rbm/index.js';
import { cpuBackends, unavailable } from '../helpers/backends.js';
import { maxAbsDiff, prototypes, sameBits, tmpFile } from './fixtures.js';

for (const u of unavailable) {
  test.skip(`associative tests on ${u.name}: unavailable — ${u.reason}`, () => {});
}

const NF = 4;
const C = 3;
const NH = 3;

/** An associative memory of NF features, C classes and NH hidden units with random parameters. */
function tinyMemory(backend: Backend, seed: number): AssociativeMemory {
  const r = new Random(seed);
  const rbm = new Rbm({ nVisible: NF + C, nHidden: NH, softmaxUnits: C, backend, seed });
  rbm.setParameters({
    weights: { rows: NF + C, cols: NH, data: r.fillNormal(new Float32Array((NF + C) * NH), 1) },
    visibleBias: r.fillNormal(new Float32Array(NF + C), 1),
    hiddenBias: r.fillNormal(new Float32Array(NH), 1),
  });
  return new AssociativeMemory(rbm);
}

/** −E(features, e_label, h) in float64: f·b_f + b_label + h·c + Σ_ij v_i W_ij h_j. */
function negEnergy(mem: AssociativeMemory, f: number, label: number, h: number): number {
  const { weights: w, visibleBias: b, hiddenBias: c } = mem.rbm.getParameters();
  const on: number[] = [NF + label];
  for (let i = 0; i < NF; i++) if (f & (1 << i)) on.push(i);
  let e = 0;
  for (const i of on) e += b[i]!;
  for (let j = 0; j < NH; j++) {
    if (!(h & (1 << j))) continue;
    e += c[j]!;
    for (const i of on) e += w.data[i * NH + j]!;
  }
  return e;
}

/** The exact joint over (features, label), marginalized over h, by enumeration: `p[f * C + k]`. */
function exactJoint(mem: AssociativeMemory): Float64Array {
  const p = new Float64Array((1 << NF) * C);
  for (let f = 0; f < 1 << NF; f++) {
    for (let k = 0; k < C; k++) {
      let s = 0;
      for (let h = 0; h < 1 << NH; h++) s += Math.exp(negEnergy(mem, f, k, h));
      p[f * C + k] = s;
    }
  }
  const z = p.reduce((a, x) => a + x, 0);
  return p.map((x) => x / z);
}

function bits(f: number): number[] {
  return Array.from({ length: NF }, (_, i) => ((f >> i) & 1 ? 1 : 0));
}

for (const { name, make } of cpuBackends) {
  test(`${name}: p(label | features) by free energy matches exact enumeration over the hidden states`, (t) => {
    const backend = make();
    const mem = tinyMemory(backend, 3);
    try {
      const joint = exactJoint(mem);
      const rows = Array.from({ length: 1 << NF }, (_, f) => f);
      const x = { rows: rows.length, cols: NF, data: Float32Array.from(rows.flatMap(bits)) };
      const p = mem.predictProba(x);
      const expected = new Float64Array(rows.length * C);
      for (const f of rows) {
        const m = joint[f * C]! + joint[f * C + 1]! + joint[f * C + 2]!;
        for (let k = 0; k < C; k++) expected[f * C + k] = joint[f * C + k]! / m;
      }
      t.true(maxAbsDiff(p.data, expected) < 1e-5, `max |diff| ${maxAbsDiff(p.data, expected)}`);
      const predicted = mem.predict(x);
      for (const f of rows) {
        const best = [0, 1, 2].reduce((a, k) => (expected[f * C + k]! > expected[f * C + a]! ? k : a), 0);
        t.is(predicted[f], best);
      }
    } finally {
      mem.dispose();
      backend.dispose();
    }
  });

  test(`${name}: the softmax group's visible means and samples follow p(v | h)`, (t) => {
    const backend = make();
    const mem = tinyMemory(backend, 5);
    try {
      const { weights: w, visibleBias: b } = mem.rbm.getParameters();
      const hs = [0, 1, 5, 7].map((h) => Array.from({ length: NH }, (_, j) => ((h >> j) & 1 ? 1 : 0)));
      const hidden = { rows: hs.length, cols: NH, data: Float32Array.from(hs.flat()) };
      const means = mem.rbm.meanVisibles(hidden);
      for (const [r, h] of hs.entries()) {
        const a = Array.from({ length: NF + C }, (_, i) => b[i]! + h.reduce((s: number, hj, j) => s + hj * w.data[i * NH + j]!, 0));
        const lab = a.slice(NF).map(Math.exp);
        const z = lab.reduce((s, x) => s + x, 0);
        const want = [...a.slice(0, NF).map((x) => 1 / (1 + Math.exp(-x))), ...lab.map((x) => x / z)];
        t.true(maxAbsDiff(means.data.subarray(r * (NF + C), (r + 1) * (NF + C)), want) < 1e-5);
      }
      // 3000 samples given h = 5: exactly one label unit on, frequencies near the softmax
      const n = 3000;
      const many = { rows: n, cols: NH, data: new Float32Array(n * NH) };
      for (let r = 0; r < n; r++) many.data.set(hs[2]!, r * NH);
      const s = mem.rbm.sampleVisibles(many, { random: new Random(9) });
      const counts = new Array<number>(C).fill(0);
      for (let r = 0; r < n; r++) {
        const lab = Array.from(s.data.subarray(r * (NF + C) + NF, (r + 1) * (NF + C)));
        t.is(
          lab.reduce((a, x) => a + x, 0),
          1,
        );
        counts[lab.indexOf(1)]!++;
      }
      for (let k = 0; k < C; k++) {
        const p = means.data[2 * (NF + C) + NF + k]!;
        t.true(Math.abs(counts[k]! / n - p) < 4 * Math.sqrt((p * (1 - p)) / n) + 1e-3, `label ${k}: ${counts[k]! / n} vs ${p}`);
      }
    } finally {
      mem.dispose();
      backend.dispose();
    }
  });

  test(`${name}: clamped and free Gibbs chains reach the exact conditional and marginal`, (t) => {
    const backend = make();
    const mem = tinyMemory(backend, 11);
    try {
      const joint = exactJoint(mem);
      const chains = 2000;
      const free = mem.sample({ count: chains, chains, burnIn: 30, thin: 1, random: new Random(1) });
      const freq = new Array<number>(C).fill(0);
      for (const k of free.labels) freq[k]!++;
      for (let k = 0; k < C; k++) {
        let pk = 0;
        for (let f = 0; f < 1 << NF; f++) pk += joint[f * C + k]!;
        t.true(Math.abs(freq[k]! / chains - pk) < 0.04, `p(label ${k}): ${freq[k]! / chains} vs exact ${pk}`);
      }
      const label = 2;
      const clamped = mem.sample({ label, count: chains, chains: 500, burnIn: 30, thin: 5, random: new Random(2) });
      t.true(clamped.labels.every((k) => k === label));
      // E[feature_i | label] from the chain vs exact
      let pk = 0;
      const ef = new Float64Array(NF);
      for (let f = 0; f < 1 << NF; f++) {
        pk += joint[f * C + label]!;
        for (let i = 0; i < NF; i++) if (f & (1 << i)) ef[i]! += joint[f * C + label]!;
      }
      const got = new Float64Array(NF);
      for (let r = 0; r < chains; r++) for (let i = 0; i < NF; i++) got[i]! += clamped.features.data[r * NF + i]! / chains;
      t.true(
        maxAbsDiff(
          got,
          ef.map((x) => x / pk),
        ) < 0.04,
        `${Array.from(got)} vs ${Array.from(ef.map((x) => x / pk))}`,
      );
      const again = mem.sample({ label, count: chains, chains: 500, burnIn: 30, thin: 5, random: new Random(2) });
      const other = mem.sample({ label, count: chains, chains: 500, burnIn: 30, thin: 5, random: new Random(3) });
      t.true(sameBits(again.features.data, clamped.features.data), 'same seed, same samples');
      t.false(sameBits(other.features.data, clamped.features.data), 'another seed, other samples');
    } finally {
      mem.dispose();
      backend.dispose();
    }
  });

  test(`${name}: AIS of the associative memory matches the exact log Z`, (t) => {
    const backend = make();
    const mem = tinyMemory(backend, 7);
    try {
      let z = 0;
      for (let f = 0; f < 1 << NF; f++)
        for (let k = 0; k < C; k++) for (let h = 0; h < 1 << NH; h++) z += Math.exp(negEnergy(mem, f, k, h));
      const est = estimateAssociativeLogPartition(mem, { runs: 100, betas: 300, seed: 1 });
      t.is(est.perLabel.length, C);
      t.true(Math.abs(est.logZ - Math.log(z)) < 0.05, `AIS ${est.logZ} vs exact ${Math.log(z)}`);
      t.true(est.logZStd >= 0 && est.logZLow <= est.logZ && est.logZ <= est.logZHigh);
      const err = t.throws(() => estimateLogPartition(mem.rbm), { instanceOf: DbnError });
      t.is(err?.code, 'EUNSUPPORTED');
    } finally {
      mem.dispose();
      backend.dispose();
    }
  });
}

test('a Dbn with an associative layer learns labels, generates the same bits for the same seed, and survives save/load', async (t) => {
  const { x, y } = prototypes(300, 24, 3, 4, 0.03);
  const dbn = new Dbn({
    nVisible: 24,
    layers: [{ nHidden: 16, epochs: 40, batchSize: 10, monitorSize: 0 }],
    associative: { classes: 3, nHidden: 20, epochs: 15, batchSize: 10, learningRate: 0.05, monitorSize: 0 },
    seed: 2,
  });
  try {
    await dbn.pretrain(x);
    const history = await dbn.pretrainAssociative(x, y);
    t.is(history.length, 15);
    t.is(dbn.associative!.rbm.options.labelNegativePhase, 'clamped', 'the associative defaults apply');
    const pred = dbn.freeEnergyProba(x);
    let right = 0;
    for (let r = 0; r < x.rows; r++) {
      const row = Array.from(pred.data.subarray(r * 3, r * 3 + 3));
      if (row.indexOf(Math.max(...row)) === y[r]) right++;
    }
    t.true(right / x.rows > 0.9, `free-energy accuracy ${right / x.rows}`);
    const a = dbn.generate({ label: 1, count: 6, burnIn: 50, seed: 5 });
    const b = dbn.generate({ label: 1, count: 6, burnIn: 50, seed: 5 });
    t.is(a.rows, 6);
    t.is(a.cols, 24);
    t.true(sameBits(a.data, b.data));
    t.is(dbn.generate({ count: 7, chains: 3, thin: 2, burnIn: 5, seed: 1 }).rows, 7);
    const file = tmpFile('assoc.dbn');
    dbn.save(file);
    const loaded = Dbn.load(file, { backend: dbn.backend });
    try {
      t.true(sameBits(loaded.generate({ label: 1, count: 6, burnIn: 50, seed: 5 }).data, a.data));
      t.true(maxAbsDiff(loaded.freeEnergyProba(x).data, pred.data) < 1e-6);
      t.deepEqual(await loaded.pretrainAssociative(x, y), [], 'already trained: nothing to do');
    } finally {
      loaded.dispose();
    }
    t.throws(() => dbn.generate({ label: 3, count: 1 }), { instanceOf: InvalidOptionError });
  } finally {
    dbn.dispose();
  }
});

test('bad requests get one clear typed error', (t) => {
  const dbn = new Dbn({ nVisible: 6, layers: [{ nHidden: 4 }], seed: 1 });
  try {
    t.throws(() => dbn.generate({ count: 1 }), { instanceOf: NotFittedError, message: /pretrain/ });
    dbn.layers[0]!.setParameters(dbn.layers[0]!.getParameters());
    t.throws(() => dbn.generate({ label: 0, count: 1 }), { instanceOf: NotFittedError, message: /associative/ });
    t.throws(() => dbn.generate({ count: 0 }), { instanceOf: InvalidOptionError, message: /'count'/ });
    t.throws(() => dbn.freeEnergyProba({ rows: 1, cols: 6, data: new Float32Array(6) }), { instanceOf: NotFittedError });
  } finally {
    dbn.dispose();
  }
  t.throws(() => new Rbm({ nVisible: 5, nHidden: 2, softmaxUnits: 1 }), { instanceOf: InvalidOptionError, message: /softmaxUnits/ });
  t.throws(() => new Rbm({ nVisible: 5, nHidden: 2, softmaxUnits: 2, visible: 'gaussian' }), {
    instanceOf: InvalidOptionError,
    message: /Bernoulli/,
  });
  t.throws(() => new Dbn({ nVisible: 6, layers: [{ nHidden: 4 }], associative: { classes: 1, nHidden: 3 } }), {
    instanceOf: InvalidOptionError,
    message: /'classes'/,
  });
  t.throws(() => new Dbn({ nVisible: 6, layers: [{ nHidden: 4, softmaxUnits: 2 } as never] }), {
    instanceOf: InvalidOptionError,
    message: /softmaxUnits/,
  });
});
