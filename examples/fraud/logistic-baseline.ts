/**
 * The fraud example's logistic-regression baseline, before and after it was brought up to
 * scikit-learn's default `LogisticRegression()` (C = 1, no class weights, solved to convergence),
 * with the steps in between, on the pipeline's own inputs (features, time-ordered split,
 * standardization): the test AUPRC of each variant for each seed. Prints one JSON object.
 *
 *   npx tsx examples/fraud/logistic-baseline.ts [--seeds 1,2,3,4,5] [--rows N] [--input file.csv] [--export DIR]
 *
 * `--export DIR` also writes each seed's scaled train/test matrices as CSV, for
 * `examples/fraud/sklearn_baseline.py` to fit scikit-learn's default on the very same rows.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { averagePrecision } from '../../src/metrics/index.js';
import type { HostMatrix } from '../../src/validate.js';
import { int } from './flags.js';
import { CREDITCARD_ROWS, generateSyntheticCreditCard } from './generate.js';
import { LogisticRegression, type LogisticOptions } from './logistic.js';
import { buildFeatures, loadTransactions, oversamplingFactor, splitAndScale } from './pipeline.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3,4,5' },
    rows: { type: 'string' },
    input: { type: 'string' },
    export: { type: 'string' },
  },
});
const seeds = values.seeds.split(',').map((s) => int('seeds', s, 0)!);
const rows = int('rows', values.rows, 100) ?? CREDITCARD_ROWS;

/** The variants, from the pipeline's earlier call to scikit-learn's default; `factor` is the pipeline's oversampling factor. */
function variants(factor: number): { key: string; what: string; options: LogisticOptions }[] {
  return [
    {
      key: 'before',
      what: 'earlier pipeline: λ = 1e-4, frauds weighted ×factor, accelerated gradient, ≤ 2000 iterations',
      options: { solver: 'agd', l2: 1e-4, positiveWeight: factor, tolerance: 1e-6, maxIterations: 2000 },
    },
    {
      key: 'converged',
      what: 'the same objective solved by Newton to a gradient < 1e-8',
      options: { l2: 1e-4, positiveWeight: factor, tolerance: 1e-8 },
    },
    {
      key: 'c1Weighted',
      what: 'C = 1 (λ = 1/(C·Σ weights)), frauds weighted ×factor, Newton',
      options: { c: 1, positiveWeight: factor, tolerance: 1e-8 },
    },
    {
      key: 'after',
      what: "scikit-learn's default: C = 1, no class weights, Newton to a gradient < 1e-8",
      options: { c: 1, tolerance: 1e-8 },
    },
  ];
}

function writeMatrix(file: string, x: HostMatrix, y: Int32Array): void {
  const lines: string[] = [];
  for (let r = 0; r < x.rows; r++) lines.push(`${Array.from(x.data.subarray(r * x.cols, (r + 1) * x.cols)).join(',')},${y[r]}`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fraud-lr-'));
const results: Record<string, unknown>[] = [];
try {
  for (const seed of seeds) {
    let input = values.input;
    if (input === undefined) {
      input = path.join(tmp, `synthetic-${seed}.csv`);
      generateSyntheticCreditCard(input, { rows, seed });
    }
    const tx = loadTransactions(input);
    const { x } = buildFeatures(tx);
    const { train, test } = splitAndScale(tx, x);
    const factor = oversamplingFactor(train.y.length - train.positives, train.positives, 0.1);
    if (values.export !== undefined) {
      fs.mkdirSync(values.export, { recursive: true });
      writeMatrix(path.join(values.export, `seed${seed}-train.csv`), train.x, train.y);
      writeMatrix(path.join(values.export, `seed${seed}-test.csv`), test.x, test.y);
    }
    const row: Record<string, unknown> = {
      seed,
      trainRows: train.y.length,
      trainFrauds: train.positives,
      testRows: test.y.length,
      testFrauds: test.positives,
      factor,
    };
    for (const v of variants(factor)) {
      const t0 = performance.now();
      const m = new LogisticRegression(v.options).fit(train.x, train.y);
      row[v.key] = {
        auprc: averagePrecision(m.predictProba(test.x), test.y),
        iterations: m.iterations,
        converged: m.converged,
        seconds: (performance.now() - t0) / 1000,
      };
    }
    results.push(row);
    console.error(JSON.stringify(row));
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
const mean = (key: string): number => results.reduce((s, r) => s + (r[key] as { auprc: number }).auprc, 0) / results.length;
console.log(
  JSON.stringify(
    {
      data: values.input ?? `synthetic (examples/fraud/generate.ts), ${rows} rows per seed`,
      variants: variants(0).map(({ key, what }) => ({ key, what })),
      seeds: results,
      meanAuprc: Object.fromEntries(variants(0).map((v) => [v.key, mean(v.key)])),
    },
    null,
    1,
  ),
);
