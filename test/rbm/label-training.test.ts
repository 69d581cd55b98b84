import test from 'ava';
import { AssociativeMemory } from '../../src/dbn/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { Random } from '../../src/random.js';
import { Rbm, type RbmParameters } from '../../src/rbm/index.js';
import { cpuBackends } from '../helpers/backends.js';

const NF = 5;
const C = 3;
const NH = 4;
const NV = NF + C;

function params(seed: number): RbmParameters {
  const r = new Random(seed);
  return {
    weights: { rows: NV, cols: NH, data: r.fillNormal(new Float32Array(NV * NH), 0.7) },
    visibleBias: r.fillNormal(new Float32Array(NV), 0.5),
    hiddenBias: r.fillNormal(new Float32Array(NH), 0.5),
  };
}

/** Rows of random binary features with random one-hot labels (`rows × NV`). */
function rows(n: number, seed: number): { x: Float32Array; features: Float32Array; labels: Int32Array } {
  const r = new Random(seed);
  const x = new Float32Array(n * NV);
  const features = new Float32Array(n * NF);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < NF; j++) x[i * NV + j] = features[i * NF + j] = r.uniform() < 0.5 ? 1 : 0;
    labels[i] = r.int(C);
    x[i * NV + NF + labels[i]!] = 1;
  }
  return { x, features, labels };
}

const plain = { learningRate: 0.1, initialMomentum: 0, finalMomentum: 0, weightDecay: 0, monitorSize: 0, batchSize: 16 } as const;

for (const { name, make } of cpuBackends) {
  test(`${name}: the discriminative term adds exactly β·∇ mean log p(label | features) (central differences)`, (t) => {
    const backend = make();
    const beta = 0.5;
    const a = new Rbm({ ...plain, nVisible: NV, nHidden: NH, softmaxUnits: C, backend, seed: 4 });
    const b = new Rbm({ ...plain, nVisible: NV, nHidden: NH, softmaxUnits: C, discriminativeWeight: beta, backend, seed: 4 });
    const probe = new Rbm({ nVisible: NV, nHidden: NH, softmaxUnits: C, backend, seed: 1 });
    try {
      const p0 = params(8);
      const data = rows(16, 9);
      for (const r of [a, b]) {
        r.setParameters(p0);
        r.partialFit({ rows: 16, cols: NV, data: data.x });
      }
      const pa = a.getParameters();
      const pb = b.getParameters();
      const mem = new AssociativeMemory(probe);
      const meanLogP = (p: RbmParameters): number => {
        probe.setParameters(p);
        const pr = mem.predictProba({ rows: 16, cols: NF, data: data.features });
        let s = 0;
        for (let i = 0; i < 16; i++) s += Math.log(pr.data[i * C + data.labels[i]!]!);
        return s / 16;
      };
      const eps = 1e-2;
      const numeric = (kind: 'w' | 'bv' | 'bh', i: number): number => {
        const bump = (d: number): RbmParameters => {
          const q = {
            weights: { ...p0.weights, data: p0.weights.data.slice() },
            visibleBias: p0.visibleBias.slice(),
            hiddenBias: p0.hiddenBias.slice(),
          };
          const arr = kind === 'w' ? q.weights.data : kind === 'bv' ? q.visibleBias : q.hiddenBias;
          arr[i] = arr[i]! + d;
          return q;
        };
        return (meanLogP(bump(eps)) - meanLogP(bump(-eps))) / (2 * eps);
      };
      const checks: [string, 'w' | 'bv' | 'bh', number, Float32Array, Float32Array][] = [
        ['feature weight', 'w', 1 * NH + 2, pa.weights.data, pb.weights.data],
        ['label weight', 'w', (NF + 1) * NH + 3, pa.weights.data, pb.weights.data],
        ['label bias', 'bv', NF + 2, pa.visibleBias, pb.visibleBias],
        ['hidden bias', 'bh', 1, pa.hiddenBias, pb.hiddenBias],
        ['feature bias (no discriminative term)', 'bv', 0, pa.visibleBias, pb.visibleBias],
      ];
      for (const [what, kind, i, va, vb] of checks) {
        const got = (vb[i]! - va[i]!) / (plain.learningRate * beta);
        const want = numeric(kind, i);
        t.true(Math.abs(got - want) < 2e-3 + 0.02 * Math.abs(want), `${what}: update/(lr·β) ${got} vs d mean log p / dθ ${want}`);
      }
    } finally {
      for (const r of [a, b, probe]) r.dispose();
      backend.dispose();
    }
  });

  test(`${name}: with labels clamped in the negative phase the label biases get no CD gradient`, (t) => {
    const backend = make();
    const data = rows(64, 3);
    try {
      for (const persistent of [false, true]) {
        const clamped = new Rbm({
          ...plain,
          nVisible: NV,
          nHidden: NH,
          softmaxUnits: C,
          labelNegativePhase: 'clamped',
          persistent,
          backend,
          seed: 2,
        });
        const sampled = new Rbm({ ...plain, nVisible: NV, nHidden: NH, softmaxUnits: C, persistent, backend, seed: 2 });
        try {
          const p0 = params(5);
          for (const r of [clamped, sampled]) {
            r.setParameters(p0);
            for (let e = 0; e < 3; e++) r.partialFit({ rows: 64, cols: NV, data: data.x });
          }
          const moved = (r: Rbm): number =>
            Math.max(...Array.from({ length: C }, (_, k) => Math.abs(r.getParameters().visibleBias[NF + k]! - p0.visibleBias[NF + k]!)));
          if (persistent) {
            // chains hold labels i mod C (16 chains: 6, 5, 5); data holds its own counts: only their difference moves the biases
            const counts = [0, 0, 0];
            for (const y of data.labels) counts[y]!++;
            const chains = [6, 5, 5];
            const bias = clamped.getParameters().visibleBias;
            for (let k = 0; k < C; k++) {
              const step = 3 * 4 * plain.learningRate * (counts[k]! / 64 - chains[k]! / 16);
              t.true(Math.abs(bias[NF + k]! - p0.visibleBias[NF + k]! - step) < 1e-5, `PCD label ${k}`);
            }
          } else {
            t.true(moved(clamped) < 1e-7, `CD: label biases moved by ${moved(clamped)}`);
          }
          t.true(moved(sampled) > 1e-3, 'sampled negative phase moves them');
        } finally {
          clamped.dispose();
          sampled.dispose();
        }
      }
    } finally {
      backend.dispose();
    }
  });
}

test('the label-training options need a softmax group', (t) => {
  t.throws(() => new Rbm({ nVisible: 6, nHidden: 2, discriminativeWeight: 1 }), {
    instanceOf: InvalidOptionError,
    message: /discriminativeWeight/,
  });
  t.throws(() => new Rbm({ nVisible: 6, nHidden: 2, softmaxUnits: 2, labelNegativePhase: 'fixed' as never }), {
    instanceOf: InvalidOptionError,
    message: /labelNegativePhase/,
  });
});
