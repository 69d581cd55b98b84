/**
 * How much the fine-tuned DBN's **validation** score moves with the model seed, per fine-tuning
 * recipe: `npx tsx examples/fraud/recipe-spread.ts [--data-seed 1] [--model-seeds 1,2,3,4,5]
 * [--recipes base,ensemble3] [--rows N] [--out DIR]`.
 *
 * The data (synthetic, `--data-seed`) and the split stay fixed; each model seed pretrains its own
 * DBN (initial weights, CD sampling) and oversamples in its own order, and every recipe is
 * fine-tuned from that same pretrained DBN. The pooled and the distributed model of one run are
 * two such draws on the same data, so a recipe whose validation AUPRC spreads less over model
 * seeds leaves less room for a gap between them. Only validation figures are printed: recipes are
 * chosen on them (README.md, "Fine-tuning recipe"), never on the test part.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { averagePrecision, Dbn, defaultBackend, InvalidOptionError, Random } from '../../src/index.js';
import { type ClassifierParameters, type HostMatrix } from '../../src/index.js';
import { DEFAULT_RECIPE, type FineTuneRecipe, fineTuneAveraged, fraudProbability, weightedLogLoss } from './finetune.js';
import { CREDITCARD_ROWS, generateSyntheticCreditCard } from './generate.js';
import {
  buildFeatures,
  fraudLayers,
  loadTransactions,
  localPretrainer,
  oversample,
  oversamplingFactor,
  splitAndScale,
} from './pipeline.js';
import { int } from './flags.js';

/**
 * The candidates, by name: the fine-tuning recipe, and optionally the pretraining (hidden units,
 * epochs per layer) and `models`, the number of DBNs each pretrained and fine-tuned with its own
 * seed ({@link modelSeed}) whose P(fraud) are averaged, or `members`, the number of fine-tunings
 * of one pretrained DBN (in other row orders) whose P(fraud) are averaged.
 */
interface Candidate extends FineTuneRecipe {
  readonly members?: number;
  readonly models?: number;
  readonly hidden?: readonly number[];
  readonly pretrainEpochs?: number;
  /**
   * The same seeds on another trajectory: the pretraining rows in another order (the same initial
   * weights and random numbers, other minibatches) and the fine-tuning rows oversampled in another
   * order — as the distributed run differs from the pooled one. `X~` against `X` measures how far
   * such a perturbation moves the validation score.
   */
  readonly perturb?: boolean;
}

const RECIPES: Record<string, Candidate> = {
  base: DEFAULT_RECIPE,
  average4: { ...DEFAULT_RECIPE, averageEpochs: 4 },
  average8: { ...DEFAULT_RECIPE, averageEpochs: 8 },
  rate005: { ...DEFAULT_RECIPE, learningRate: 0.005, epochs: 40, patience: 6 },
  batch300: { ...DEFAULT_RECIPE, batchSize: 300, learningRate: 0.03 },
  members3: { ...DEFAULT_RECIPE, members: 3 },
  models3: { ...DEFAULT_RECIPE, models: 3 },
  models5: { ...DEFAULT_RECIPE, models: 5 },
  hidden64: { ...DEFAULT_RECIPE, hidden: [64, 32] },
  pretrain20: { ...DEFAULT_RECIPE, pretrainEpochs: 20 },
  'base~': { ...DEFAULT_RECIPE, perturb: true },
  'models3~': { ...DEFAULT_RECIPE, models: 3, perturb: true },
};

/** The seed of the `k`-th DBN of an ensemble for model seed `seed` (the 0th is `seed` itself). */
function modelSeed(seed: number, k: number): number {
  return seed + 1000 * k;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-seed': { type: 'string', default: '1' },
      'model-seeds': { type: 'string', default: '1,2,3,4,5' },
      recipes: { type: 'string', default: Object.keys(RECIPES).join(',') },
      rows: { type: 'string' },
      out: { type: 'string', default: path.join('out', 'fraud-spread') },
    },
    strict: true,
  });
  const dataSeed = int('data-seed', values['data-seed'], 0)!;
  const seeds = values['model-seeds'].split(',').map((s) => int('model-seeds', s.trim(), 0)!);
  const names = values.recipes.split(',').map((s) => s.trim());
  for (const n of names)
    if (RECIPES[n] === undefined)
      throw new InvalidOptionError(`--recipes: unknown recipe '${n}'; known: ${Object.keys(RECIPES).join(', ')}.`);
  const rows = int('rows', values.rows, 100) ?? CREDITCARD_ROWS;
  fs.mkdirSync(values.out, { recursive: true });
  const file = path.join(values.out, `synthetic-${rows}-${dataSeed}.csv`);
  if (!fs.existsSync(file)) generateSyntheticCreditCard(file, { rows, seed: dataSeed });
  const tx = loadTransactions(file);
  const { x } = buildFeatures(tx);
  const { train, validation } = splitAndScale(tx, x);
  const validationWeight = oversamplingFactor(validation.y.length - validation.positives, validation.positives, 0.1);
  const legit = train.y.reduce<number[]>((a, v, i) => (v === 0 ? (a.push(i), a) : a), []);
  const pretrainRows = { rows: legit.length, cols: train.x.cols, data: new Float32Array(legit.length * train.x.cols) };
  legit.forEach((r, k) => pretrainRows.data.set(train.x.data.subarray(r * train.x.cols, (r + 1) * train.x.cols), k * train.x.cols));
  const order = new Random(1_000_003).permutation(pretrainRows.rows);
  const permuted = { rows: pretrainRows.rows, cols: pretrainRows.cols, data: new Float32Array(pretrainRows.data.length) };
  order.forEach((r, k) =>
    permuted.data.set(pretrainRows.data.subarray(r * pretrainRows.cols, (r + 1) * pretrainRows.cols), k * pretrainRows.cols),
  );
  console.log(`data seed ${dataSeed}: ${rows} rows; validation ${validation.y.length} rows, ${validation.positives} frauds`);

  const { backend } = defaultBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fraud-spread-'));
  const results: Record<string, { auprc: number; loss: number; epochs: string }[]> = Object.fromEntries(names.map((n) => [n, []]));
  try {
    for (const seed of seeds) {
      const cache = new Map<string, string>();
      const pretrained = async (hidden: readonly number[], epochs: number, k: number, perturb: boolean): Promise<string> => {
        const key = `${hidden.join('-')}-${epochs}-${k}${perturb ? '-perturbed' : ''}`;
        const hit = cache.get(key);
        if (hit !== undefined) return hit;
        const started = performance.now();
        const dbn = await localPretrainer(perturb ? permuted : pretrainRows, {
          nVisible: x.cols,
          layers: fraudLayers(hidden, epochs, 0.01),
          backend,
          seed: modelSeed(seed, k),
          log: () => undefined,
        });
        const saved = path.join(tmp, `pretrained-${seed}-${key}.dbn`);
        dbn.save(saved, { overwrite: true });
        dbn.dispose();
        console.log(`  (pretrained ${key} in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
        cache.set(key, saved);
        return saved;
      };
      console.log(`model seed ${seed}`);
      for (const name of names) {
        const recipe = RECIPES[name]!;
        const t0 = performance.now();
        const members: { best: ClassifierParameters; bestCheck: number; epochs: number }[] = [];
        const models = recipe.models ?? 1;
        const perModel = recipe.members ?? 1;
        for (let k = 0; k < models; k++) {
          const saved = await pretrained(recipe.hidden ?? [32, 16], recipe.pretrainEpochs ?? 10, k, recipe.perturb === true);
          for (let m = 0; m < perModel; m++) {
            const dbn = Dbn.load(saved, { backend });
            try {
              // The first fine-tuning oversamples in the model seed's order (as the pipeline does); the others in their own.
              const over = oversample(train, 0.1, modelSeed(seed, k) + 7919 * m + (recipe.perturb === true ? 500_000 : 0));
              members.push(
                await fineTuneAveraged(dbn, dbn, over.x, over.y, {
                  recipe,
                  validationLoss: (q) => {
                    const s = weightedLogLoss(fraudProbability(q, validation.x), validation.y, validationWeight);
                    return s.lossSum / s.weight;
                  },
                }),
              );
            } finally {
              dbn.dispose();
            }
          }
        }
        const p = meanProbability(
          members.map((m) => m.best),
          validation.x,
        );
        const s = weightedLogLoss(p, validation.y, validationWeight);
        const single = members.map((m) => averagePrecision(fraudProbability(m.best, validation.x), validation.y).toFixed(4)).join(' ');
        const r = {
          auprc: averagePrecision(p, validation.y),
          loss: s.lossSum / s.weight,
          epochs: members.map((m) => `${m.bestCheck + 1}/${m.epochs}`).join(' '),
        };
        results[name]!.push(r);
        console.log(
          `  ${name.padEnd(16)} validation AUPRC ${r.auprc.toFixed(4)}, loss ${r.loss.toFixed(4)}, best/run epochs ${r.epochs}${members.length > 1 ? `; each: ${single}` : ''} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        );
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    backend.dispose();
  }
  console.log(`\nvalidation AUPRC over model seeds ${seeds.join(', ')} (data seed ${dataSeed}):`);
  console.log('| recipe | mean | std | min | max | range | mean validation loss |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const name of names) {
    const a = results[name]!.map((r) => r.auprc);
    const mean = a.reduce((p, v) => p + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((p, v) => p + (v - mean) ** 2, 0) / Math.max(1, a.length - 1));
    const loss = results[name]!.reduce((p, r) => p + r.loss, 0) / a.length;
    console.log(
      `| ${name} | ${mean.toFixed(4)} | ${std.toFixed(4)} | ${Math.min(...a).toFixed(4)} | ${Math.max(...a).toFixed(4)} | ${(Math.max(...a) - Math.min(...a)).toFixed(4)} | ${loss.toFixed(4)} |`,
    );
  }
  const pairs = names.filter((n) => n.endsWith('~') && names.includes(n.slice(0, -1)));
  if (pairs.length > 0) {
    console.log('\nvalidation AUPRC moved by the perturbation (X~ − X), per model seed:');
    console.log('| recipe | per seed | mean |Δ| | max |Δ| |');
    console.log('|---|---|---:|---:|');
    for (const n of pairs) {
      const d = results[n]!.map((r, i) => r.auprc - results[n.slice(0, -1)]![i]!.auprc);
      console.log(
        `| ${n.slice(0, -1)} | ${d.map((v) => `${v >= 0 ? '+' : ''}${v.toFixed(4)}`).join(', ')} | ${(d.reduce((p, v) => p + Math.abs(v), 0) / d.length).toFixed(4)} | ${Math.max(...d.map(Math.abs)).toFixed(4)} |`,
      );
    }
  }
}

function meanProbability(members: readonly ClassifierParameters[], x: HostMatrix): Float64Array {
  const out = new Float64Array(x.rows);
  for (const m of members) fraudProbability(m, x).forEach((v, i) => (out[i]! += v / members.length));
  return out;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (process.argv.includes('--debug') ? err.stack : err.message) : String(err));
  process.exitCode = 1;
});
