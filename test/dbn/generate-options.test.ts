import test from 'ava';
import { AssociativeMemory, Dbn } from '../../src/dbn/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import type { Backend } from '../../src/kernels/backend.js';
import { Random } from '../../src/random.js';
import { Rbm } from '../../src/rbm/index.js';
import type { HostMatrix } from '../../src/validate.js';
import { cpuBackends } from '../helpers/backends.js';
import { maxAbsDiff, prototypes, sameBits } from './fixtures.js';

const NF = 4;
const C = 3;
const NH = 3;

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

/**
 * `p_s(features = f | label)` for every f by enumeration over h, written from the energy with the
 * label's weights (not its bias, a constant given the label) times `strength`:
 * `Σ_h exp(f·b_f + h·(c + s·W_label) + f·W·h)`, normalized.
 */
function exactStrengthConditional(mem: AssociativeMemory, label: number, strength: number): Float64Array {
  const { weights: w, visibleBias: b, hiddenBias: c } = mem.rbm.getParameters();
  const p = new Float64Array(1 << NF);
  for (let f = 0; f < 1 << NF; f++) {
    for (let h = 0; h < 1 << NH; h++) {
      let e = 0;
      for (let i = 0; i < NF; i++) if (f & (1 << i)) e += b[i]!;
      for (let j = 0; j < NH; j++) {
        if (!(h & (1 << j))) continue;
        e += c[j]! + strength * w.data[(NF + label) * NH + j]!;
        for (let i = 0; i < NF; i++) if (f & (1 << i)) e += w.data[i * NH + j]!;
      }
      p[f]! += Math.exp(e);
    }
  }
  const z = p.reduce((a, x) => a + x, 0);
  return p.map((x) => x / z);
}

/** For each row of `samples`, the class whose mean training row is nearest (Euclidean). */
function nearestClassMean(x: HostMatrix, y: Int32Array, classes: number, samples: HostMatrix): number[] {
  const means = Array.from({ length: classes }, () => new Float64Array(x.cols));
  const counts = new Array<number>(classes).fill(0);
  for (let r = 0; r < x.rows; r++) {
    counts[y[r]!]!++;
    for (let i = 0; i < x.cols; i++) means[y[r]!]![i]! += x.data[r * x.cols + i]!;
  }
  means.forEach((m, k) => m.forEach((v, i) => (m[i] = v / counts[k]!)));
  return Array.from({ length: samples.rows }, (_, r) => {
    const d = means.map((m) => m.reduce((a, v, i) => a + (v - samples.data[r * samples.cols + i]!) ** 2, 0));
    return d.indexOf(Math.min(...d));
  });
}

for (const { name, make } of cpuBackends) {
  test(`${name}: a clamped chain with labelStrength s samples p_s(features | label) exactly (binary states)`, (t) => {
    const backend = make();
    const mem = tinyMemory(backend, 21);
    try {
      const label = 1;
      for (const strength of [0, 2.5]) {
        const exact = exactStrengthConditional(mem, label, strength);
        const n = 3000;
        const s = mem.sample({
          label,
          labelStrength: strength,
          states: 'samples',
          count: n,
          chains: 600,
          burnIn: 30,
          thin: 5,
          random: new Random(4),
        });
        t.true(
          s.features.data.every((v) => v === 0 || v === 1),
          'states are binary',
        );
        const freq = new Float64Array(1 << NF);
        for (let r = 0; r < n; r++) {
          let f = 0;
          for (let i = 0; i < NF; i++) if (s.features.data[r * NF + i] === 1) f |= 1 << i;
          freq[f]! += 1 / n;
        }
        t.true(
          maxAbsDiff(freq, exact) < 0.035,
          `strength ${strength}: ${Array.from(freq, (x) => x.toFixed(3))} vs ${Array.from(exact, (x) => x.toFixed(3))}`,
        );
      }
      // strength 1 is the plain conditional: the same bits as no strength at all
      const plain = mem.sample({ label, count: 50, chains: 50, burnIn: 10, thin: 1, random: new Random(7) });
      const one = mem.sample({ label, labelStrength: 1, count: 50, chains: 50, burnIn: 10, thin: 1, random: new Random(7) });
      t.true(sameBits(plain.features.data, one.features.data));
      t.throws(() => mem.clamped(0, -1), { instanceOf: InvalidOptionError, message: /'labelStrength'.*-1/ });
      t.throws(() => mem.clamped(0, Number.NaN), { instanceOf: InvalidOptionError, message: /'labelStrength'/ });
    } finally {
      mem.dispose();
      backend.dispose();
    }
  });
}

test('Dbn.generate: sampled and mean down passes, label strength, same seed same bits, typed errors', async (t) => {
  const { x, y } = prototypes(300, 24, 3, 4, 0.03);
  const dbn = new Dbn({
    nVisible: 24,
    layers: [
      { nHidden: 16, epochs: 20, batchSize: 10, monitorSize: 0 },
      { nHidden: 12, epochs: 20, batchSize: 10, monitorSize: 0 },
    ],
    associative: { classes: 3, nHidden: 20, epochs: 10, batchSize: 10, learningRate: 0.05, monitorSize: 0 },
    seed: 3,
  });
  try {
    await dbn.pretrain(x);
    await dbn.pretrainAssociative(x, y);
    const sampled = dbn.generate({ label: 2, count: 8, burnIn: 30, seed: 5 });
    const mean = dbn.generate({ label: 2, count: 8, burnIn: 30, seed: 5, downPass: 'mean' });
    const unlabelled = dbn.generate({ label: 2, count: 8, burnIn: 30, seed: 5, labelStrength: 0 });
    for (const s of [sampled, mean, unlabelled]) t.true(s.data.every((v) => v >= 0 && v <= 1));
    t.true(
      sameBits(sampled.data, dbn.generate({ label: 2, count: 8, burnIn: 30, seed: 5, downPass: 'sampled' }).data),
      "'sampled' is the default",
    );
    t.false(sameBits(sampled.data, mean.data));
    t.false(sameBits(sampled.data, unlabelled.data), 'labelStrength reaches the chain');
    t.true(
      sameBits(unlabelled.data, dbn.generate({ label: 2, count: 8, burnIn: 30, seed: 5, labelStrength: 0 }).data),
      'same seed, same samples',
    );
    // the joint free chain ignores labelStrength; a sampled free chain still gives probabilities at the input
    const free = dbn.generate({ count: 5, burnIn: 10, seed: 1, labelStrength: 9, freeLabel: 'chain' });
    t.true(sameBits(free.data, dbn.generate({ count: 5, burnIn: 10, seed: 1, freeLabel: 'chain' }).data));
    t.true(
      free.data.some((v) => v > 0 && v < 1),
      'input probabilities, not binary states',
    );
    // without a label, by default each sample's class is drawn uniformly: every class appears
    const mixed = dbn.generate({ count: 45, burnIn: 30, seed: 2 });
    t.true(sameBits(mixed.data, dbn.generate({ count: 45, burnIn: 30, seed: 2, freeLabel: 'uniform' }).data), "'uniform' is the default");
    t.false(
      sameBits(mixed.data, dbn.generate({ count: 45, burnIn: 30, seed: 2, labelStrength: 1 }).data),
      'labelStrength applies to its clamped chains',
    );
    const nearest = nearestClassMean(x, y, 3, mixed);
    for (let k = 0; k < 3; k++) t.true(nearest.filter((c) => c === k).length >= 5, `class ${k}: ${nearest.join('')}`);
    t.throws(() => dbn.generate({ label: 0, count: 1, labelStrength: -1 }), { instanceOf: InvalidOptionError, message: /'labelStrength'/ });
    t.throws(() => dbn.generate({ label: 0, count: 1, downPass: 'up' as 'mean' }), {
      instanceOf: InvalidOptionError,
      message: /'downPass'/,
    });
    t.throws(() => dbn.generate({ count: 1, freeLabel: 'x' as 'chain' }), { instanceOf: InvalidOptionError, message: /'freeLabel'/ });
  } finally {
    dbn.dispose();
  }
});
