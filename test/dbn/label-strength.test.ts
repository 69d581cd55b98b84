import test from 'ava';
import { AUTO_LABEL_STRENGTH, AssociativeMemory, autoLabelStrength, chooseLabelStrength, Dbn } from '../../src/dbn/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { createBackend } from '../../src/kernels/index.js';
import { Random } from '../../src/random.js';
import { Rbm } from '../../src/rbm/index.js';
import type { HostMatrix } from '../../src/validate.js';
import { prototypes, sameBits } from './fixtures.js';

const NF = 6;
const CLASSES = 3;

function tinyMemory(seed: number): AssociativeMemory {
  const r = new Random(seed);
  const rbm = new Rbm({ nVisible: NF + CLASSES, nHidden: 5, softmaxUnits: CLASSES, backend: createBackend('js'), seed });
  rbm.setParameters({
    weights: { rows: NF + CLASSES, cols: 5, data: r.fillNormal(new Float32Array((NF + CLASSES) * 5), 1) },
    visibleBias: r.fillNormal(new Float32Array(NF + CLASSES), 1),
    hiddenBias: r.fillNormal(new Float32Array(5), 1),
  });
  return new AssociativeMemory(rbm);
}

const search = { ladder: [1, 2, 3, 4], chains: 10, steps: 5, confidence: 0.8, share: 0.9 };

/** `rows × CLASSES` probabilities giving row r's probability `pOf(r)` to `label`, the rest spread evenly. */
function probs(rows: number, label: number, pOf: (r: number) => number): HostMatrix {
  const data = new Float32Array(rows * CLASSES);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < CLASSES; k++) data[r * CLASSES + k] = k === label ? pOf(r) : (1 - pOf(r)) / (CLASSES - 1);
  return { rows, cols: CLASSES, data };
}

test('chooseLabelStrength: the first rung whose pilot is confidently recognised, else the best; binary pilot features of the right shape', (t) => {
  const mem = tinyMemory(3);
  try {
    const seen: HostMatrix[] = [];
    // recognised as the label from the third rung on
    const fromThird = (f: HostMatrix): HostMatrix => {
      seen.push(f);
      return probs(f.rows, 1, () => (seen.length >= 3 ? 0.95 : 0.1));
    };
    const third = chooseLabelStrength(mem, 1, fromThird, new Random(1), search);
    t.deepEqual(third, { strength: 3, shares: [0, 0, 1] });
    for (const f of seen) {
      t.is(f.rows, search.chains);
      t.is(f.cols, NF);
      t.true(f.data.every((v) => v === 0 || v === 1));
    }
    // no rung passes (8, 5, 8, 7 of 10 recognised): the first rung of the highest share, every share reported
    let call = 0;
    const never = (f: HostMatrix): HostMatrix => {
      const n = [8, 5, 8, 7][call++]!;
      return probs(f.rows, 2, (r) => (r < n ? 0.85 : 0.5));
    };
    t.deepEqual(chooseLabelStrength(mem, 2, never, new Random(1), search), { strength: 1, shares: [0.8, 0.5, 0.8, 0.7] });
    // 9 of 10 at p >= 0.8 pass a share of 0.9 at the first rung; p just under the confidence does not count
    const nine = (f: HostMatrix): HostMatrix => probs(f.rows, 0, (r) => (r < 9 ? 0.8 : 0.79));
    t.deepEqual(chooseLabelStrength(mem, 0, nine, new Random(1), search), { strength: 1, shares: [0.9] });
    const unsure = (f: HostMatrix): HostMatrix => probs(f.rows, 0, () => 0.79);
    t.deepEqual(chooseLabelStrength(mem, 0, unsure, new Random(1), search), { strength: 1, shares: [0, 0, 0, 0] });
    // the pilot draws from the caller's generator: same seed, same pilot
    const pilot = (seed: number): Float32Array => {
      let first: Float32Array | undefined;
      chooseLabelStrength(mem, 1, (f) => ((first ??= f.data), probs(f.rows, 1, () => 1)), new Random(seed), search);
      return first!;
    };
    t.true(sameBits(pilot(5), pilot(5)));
    t.false(sameBits(pilot(5), pilot(6)));
  } finally {
    mem.dispose();
  }
});

test('AUTO_LABEL_STRENGTH, the default search (bench/RESULTS.md generation run 6): the first rung where 80 of 100 pilot samples get p >= 0.9', (t) => {
  t.deepEqual(AUTO_LABEL_STRENGTH, { ladder: [1.5, 2, 2.5, 3, 3.5, 4, 5], chains: 100, steps: 300, confidence: 0.9, share: 0.8 });
  const mem = tinyMemory(4);
  try {
    // 79 of 100 recognised at the first rung is not enough, 80 at the second is
    let call = 0;
    const second = (f: HostMatrix): HostMatrix => {
      t.is(f.rows, 100);
      const n = call++ === 0 ? 79 : 80;
      return probs(f.rows, 1, (r) => (r < n ? 0.95 : 0.5));
    };
    t.deepEqual(chooseLabelStrength(mem, 1, second, new Random(2)), { strength: 2, shares: [0.79, 0.8] });
    // p of 0.89 does not count as recognised
    const unsure = (f: HostMatrix): HostMatrix => probs(f.rows, 1, () => 0.89);
    t.deepEqual(chooseLabelStrength(mem, 1, unsure, new Random(2)), { strength: 1.5, shares: [0, 0, 0, 0, 0, 0, 0] });
  } finally {
    mem.dispose();
  }
});

test("Dbn.generate labelStrength 'auto' (the default): in-class samples of a separable toy set, same seed same bits", async (t) => {
  const { x, y } = prototypes(300, 24, 3, 4, 0.03);
  const dbn = new Dbn({
    nVisible: 24,
    layers: [{ nHidden: 16, epochs: 20, batchSize: 10, monitorSize: 0 }],
    associative: { classes: 3, nHidden: 20, epochs: 10, batchSize: 10, learningRate: 0.05, monitorSize: 0 },
    backend: createBackend('js'),
    seed: 3,
  });
  try {
    await dbn.pretrain(x);
    await dbn.pretrainAssociative(x, y);
    for (let k = 0; k < 3; k++) {
      const choice = autoLabelStrength(dbn, k, new Random(10 + k));
      t.true(AUTO_LABEL_STRENGTH.ladder.includes(choice.strength));
      const passed = choice.shares.map((s) => s >= AUTO_LABEL_STRENGTH.share);
      // the choice is the first rung that passed (or, none passing, the first of the highest share)
      t.deepEqual(passed.slice(0, -1), new Array<boolean>(passed.length - 1).fill(false), `class ${k}: ${choice.shares.join(' ')}`);
      const best = AUTO_LABEL_STRENGTH.ladder[choice.shares.indexOf(Math.max(...choice.shares))];
      t.true(passed[passed.length - 1]! || choice.strength === best);
      const samples = dbn.generate({ label: k, count: 20, burnIn: 50, seed: 10 + k });
      t.true(sameBits(samples.data, dbn.generate({ label: k, count: 20, burnIn: 50, seed: 10 + k, labelStrength: 'auto' }).data));
      // every sample nearer its class's prototype rows than any other class's
      const inClass = nearestClass(x, y, samples).filter((c) => c === k).length;
      t.true(inClass >= 18, `class ${k}: ${inClass} of 20 in class`);
    }
    t.throws(() => dbn.generate({ label: 0, count: 1, labelStrength: 'strong' as 'auto' }), {
      instanceOf: InvalidOptionError,
      message: /'labelStrength'.*'auto'/,
    });
  } finally {
    dbn.dispose();
  }
});

function nearestClass(x: HostMatrix, y: Int32Array, samples: HostMatrix): number[] {
  const means = Array.from({ length: CLASSES }, () => new Float64Array(x.cols));
  const counts = new Array<number>(CLASSES).fill(0);
  for (let r = 0; r < x.rows; r++) {
    counts[y[r]!]!++;
    for (let i = 0; i < x.cols; i++) means[y[r]!]![i]! += x.data[r * x.cols + i]!;
  }
  return Array.from({ length: samples.rows }, (_, r) => {
    const d = means.map((m, k) => m.reduce((a, v, i) => a + (v / counts[k]! - samples.data[r * samples.cols + i]!) ** 2, 0));
    return d.indexOf(Math.min(...d));
  });
}
