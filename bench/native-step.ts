/**
 * One CD-1 step of a Bernoulli RBM on the native backend, made of backend calls only, timed the
 * way `ref_rbm.py` (numpy + OpenBLAS) times its step: same shape, same five GEMMs per minibatch.
 * Uniforms for the hidden sample are generated up front (the backend takes them as input);
 * `--rng-in-step` instead draws them from the seeded generator and writes them every step, as
 * numpy's step does.
 *
 * Usage: tsx bench/native-step.ts [--visible 784] [--hidden 500] [--batch 100] [--samples 10000] [--repeats 5] [--rng-in-step]
 * Prints JSON: samples_per_s and gflops (medians over repeats of one pass over the samples), machine.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { createNativeBackend } from '../src/kernels/native/index.js';
import { Random } from '../src/random.js';

const { values } = parseArgs({
  options: {
    visible: { type: 'string', default: '784' },
    hidden: { type: 'string', default: '500' },
    batch: { type: 'string', default: '100' },
    samples: { type: 'string', default: '10000' },
    repeats: { type: 'string', default: '5' },
    'rng-in-step': { type: 'boolean', default: false },
  },
});
const nv = Number(values.visible);
const nh = Number(values.hidden);
const batch = Number(values.batch);
const samples = Number(values.samples);
const repeats = Number(values.repeats);
const batches = Math.ceil(samples / batch);
const rngInStep = values['rng-in-step'];

const be = createNativeBackend();
const rng = new Random(0);

const W = be.alloc(nv, nh);
be.write(W, rng.fillNormal(new Float32Array(nv * nh), 0.01));
const bv = be.alloc(1, nv);
const bh = be.alloc(1, nh);
const vW = be.alloc(nv, nh);
const vbv = be.alloc(1, nv);
const vbh = be.alloc(1, nh);
const gW = be.alloc(nv, nh);
const gbv = be.alloc(1, nv);
const gbh = be.alloc(1, nh);
const h0 = be.alloc(batch, nh);
const hs = be.alloc(batch, nh);
const v1 = be.alloc(batch, nv);
const h1 = be.alloc(batch, nh);
const data = Array.from({ length: batches }, () => {
  const t = be.alloc(batch, nv);
  be.write(
    t,
    Float32Array.from({ length: batch * nv }, () => (rng.uniform() < 0.13 ? 1 : 0)),
  );
  return t;
});
const uniforms = Array.from({ length: 8 }, () => {
  const t = be.alloc(batch, nh);
  be.write(t, rng.fillUniform(new Float32Array(batch * nh)));
  return t;
});
const hostUniforms = new Float32Array(batch * nh);
const update = { learningRate: 0.05, momentum: 0.5, weightDecay: 0, gradScale: 1 / batch };
const biasUpdate = { ...update, weightDecay: 0 };

let err = 0;
function step(i: number): void {
  const v0 = data[i % batches]!;
  be.gemm(h0, v0, W);
  be.addRowSigmoid(h0, h0, bh);
  const u = uniforms[i % uniforms.length]!;
  if (rngInStep) be.write(u, rng.fillUniform(hostUniforms));
  be.bernoulli(hs, h0, u);
  be.gemm(v1, hs, W, { transB: true });
  be.addRowSigmoid(v1, v1, bv);
  be.gemm(h1, v1, W);
  be.addRowSigmoid(h1, h1, bh);
  be.gemm(gW, v0, h0, { transA: true });
  be.gemm(gW, v1, h1, { transA: true, alpha: -1, beta: 1 });
  be.colSum(gbv, v0, 1, 0);
  be.colSum(gbv, v1, -1, 1);
  be.colSum(gbh, h0, 1, 0);
  be.colSum(gbh, h1, -1, 1);
  be.momentumStep(W, vW, gW, update);
  be.momentumStep(bv, vbv, gbv, biasUpdate);
  be.momentumStep(bh, vbh, gbh, biasUpdate);
  err = be.sumSquaredDiff(v0, v1) / (batch * nv);
}

for (let i = 0; i < 5; i++) step(i);
const rates: number[] = [];
for (let r = 0; r < repeats; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < batches; i++) step(i);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rates.push((batches * batch) / seconds);
}
rates.sort((a, b) => a - b);
const samplesPerS = rates[Math.floor(rates.length / 2)]!;
const gflops = (samplesPerS * 5 * 2 * nv * nh) / 1e9;
console.log(
  JSON.stringify({
    samples_per_s: samplesPerS,
    gflops,
    recon_mse: err,
    runs_samples_per_s: rates,
    shape: { visible: nv, hidden: nh, batch, samples: batches * batch },
    rng_in_step: rngInStep,
    machine: { backend: be.info.description, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
  }),
);
be.dispose();
