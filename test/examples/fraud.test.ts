import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { DatasetError } from '../../src/errors.js';
import { defaultBackend } from '../../src/kernels/index.js';
import { averagePrecision } from '../../src/metrics/index.js';
import { generateSyntheticCreditCard } from '../../examples/fraud/generate.js';
import {
  buildFeatures,
  loadTransactions,
  localPretrainer,
  type PipelineResult,
  runFraudPipeline,
  SCORES,
  splitAndScale,
} from '../../examples/fraud/pipeline.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-fraud-'));
const out = path.join(dir, 'run');

function example(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('examples/fraud/main.ts'), ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

test.serial('npm run example:fraud -- --rows 20000 writes a sane report, chart, ranked scores and metrics', (t) => {
  const r = example(['--rows', '20000', '--out', out, '--seed', '1']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /20000 rows, 35 frauds — SYNTHETIC data/);

  const data = fs.readFileSync(path.join(out, 'synthetic-creditcard.csv'), 'utf8').trim().split('\n');
  t.is(data[0], ['Time', ...Array.from({ length: 28 }, (_, j) => `V${j + 1}`), 'Amount', 'Class'].map((c) => `"${c}"`).join(','));
  t.is(data.length, 20001);
  t.is(data.filter((l) => l.endsWith('"1"')).length, 35);

  const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')) as PipelineResult;
  t.true(m.synthetic);
  t.is(m.rows, 20000);
  t.deepEqual([m.parts.train.rows, m.parts.validation.rows, m.parts.test.rows], [12000, 4000, 4000]);
  const prevalence = m.parts.test.positives / m.parts.test.rows;
  t.deepEqual(
    m.scores.map((s) => s.key),
    SCORES.map((s) => s.key),
  );
  const dbn = m.scores.find((s) => s.key === 'dbn')!;
  t.true(dbn.averagePrecision > 5 * prevalence, `supervised AUPRC ${dbn.averagePrecision} vs prevalence ${prevalence}`);
  for (const s of m.scores) {
    t.true(s.averagePrecision > prevalence && s.averagePrecision <= 1, `${s.key} AUPRC ${s.averagePrecision}`);
    t.true(s.rocAuc > 0.5 && s.rocAuc <= 1, `${s.key} AUROC ${s.rocAuc}`);
    t.deepEqual(Object.keys(s.precisionAtK), ['100', '500', '1000']);
    t.is(s.test.tp + s.test.fp + s.test.fn + s.test.tn, m.parts.test.rows);
    t.is(s.test.tp + s.test.fn, m.parts.test.positives);
  }

  const report = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  for (const word of [
    'Synthetic data',
    'AUPRC',
    'AUROC',
    'P@100',
    'R@100',
    'P@500',
    'R@500',
    'P@1000',
    'R@1000',
    'threshold',
    'validation F1',
    '| TP | FP | FN | TN |',
    'test precision',
    'test recall',
    'pr-curve.png',
  ]) {
    t.true(report.includes(word), `report mentions ${word}`);
  }
  for (const s of SCORES) t.true(report.includes(`| ${s.name} |`), s.name);

  // The ranked scores: one line per test row, sorted by the DBN score, labels as in metrics.json.
  const lines = fs.readFileSync(path.join(out, 'test-scores.csv'), 'utf8').trim().split('\n');
  t.is(lines[0], 'rank,file_row,Time,Amount,label,dbn,logistic,freeEnergy,reconstruction');
  const rows = lines.slice(1).map((l) => l.split(','));
  t.is(rows.length, m.parts.test.rows);
  const scores = rows.map((r) => Number(r[5]));
  t.true(
    scores.every((s, i) => i === 0 || s <= scores[i - 1]!),
    'ranked by the DBN score',
  );
  const labels = rows.map((r) => Number(r[4]));
  t.is(labels.filter((y) => y === 1).length, m.parts.test.positives);
  t.deepEqual(
    rows.map((r) => Number(r[1])).sort((a, b) => a - b),
    Array.from({ length: 4000 }, (_, i) => 16000 + i),
  );
  // The CSV's rounded logistic scores give (nearly) the reported AUPRC.
  t.true(
    Math.abs(
      averagePrecision(
        rows.map((r) => Number(r[6])),
        labels,
      ) - m.scores[1]!.averagePrecision,
    ) < 0.02,
  );

  const png = PNG.sync.read(fs.readFileSync(path.join(out, 'pr-curve.png')));
  t.deepEqual([png.width, png.height], [1000, 600]);
  const colors = new Set<string>();
  for (let k = 0; k < png.data.length; k += 4) colors.add(`${png.data[k]},${png.data[k + 1]},${png.data[k + 2]}`);
  for (const s of SCORES) t.true(colors.has(s.color.join(',')), `the chart has ${s.name}'s colour`);
});

test('the generator is deterministic for a seed and follows the layout', (t) => {
  const a = generateSyntheticCreditCard(path.join(dir, 'a.csv'), { rows: 3000, seed: 5 });
  const b = generateSyntheticCreditCard(path.join(dir, 'b.csv'), { rows: 3000, seed: 5 });
  const c = generateSyntheticCreditCard(path.join(dir, 'c.csv'), { rows: 3000, seed: 6 });
  t.is(a.frauds, 5); // round(3000 · 492 / 284807)
  t.true(fs.readFileSync(a.file).equals(fs.readFileSync(b.file)));
  t.false(fs.readFileSync(a.file).equals(fs.readFileSync(c.file)));
  const tx = loadTransactions(a.file);
  t.is(tx.timeColumn, 'Time');
  t.is(tx.positives, 5);
  const time = Array.from({ length: 3000 }, (_, i) => tx.data.x.data[i * 30]!);
  t.true(time.every((v, i) => v >= 0 && v <= 172_792 && (i === 0 || v >= time[i - 1]!)));
  t.deepEqual(Array.from(tx.fileRow.subarray(0, 5)), [0, 1, 2, 3, 4]);
});

test('features: Time becomes the time of day on the unit circle, Amount log1p; rows sorted by time', (t) => {
  const file = write('tiny.csv', 'Time,V1,Amount,Class\n86400,2,0,0\n21600,-1,1.718281828,1\n43200,0.5,-3,0\n');
  const tx = loadTransactions(file);
  t.deepEqual(Array.from(tx.fileRow), [1, 2, 0]);
  const { x, names } = buildFeatures(tx);
  t.deepEqual(names, ['V1', 'log1p(Amount)', 'tod_sin', 'tod_cos']);
  const row = (i: number): number[] => Array.from(x.data.subarray(i * 4, i * 4 + 4));
  const near = (a: number[], b: number[]): boolean => a.every((v, i) => Math.abs(v - b[i]!) < 1e-6);
  t.true(near(row(0), [-1, 1, 1, 0]), String(row(0))); // 06:00 → angle π/2
  t.true(near(row(1), [0.5, -Math.log1p(3), 0, -1]), String(row(1))); // noon; sign-preserving log
  t.true(near(row(2), [2, 0, 0, 1]), String(row(2))); // midnight
  const none = buildFeatures(loadTransactions(file, { timeColumn: 'none' }), { logColumns: [] });
  t.deepEqual(none.names, ['Time', 'V1', 'Amount']);
});

test('bad input: one DatasetError naming the file, the row and the column', (t) => {
  const missing = write('no-label.csv', 'Time,V1,Amount\n0,1,2\n');
  t.throws(() => loadTransactions(missing), {
    instanceOf: DatasetError,
    code: 'ECOLUMN',
    message: `${missing}: no column 'Class' (the label); the columns are 'Time', 'V1', 'Amount'.`,
  });
  const text = write('text.csv', 'Time,V1,Amount,Class\n0,1,2,0\n1,abc,2,1\n');
  t.throws(() => loadTransactions(text), {
    instanceOf: DatasetError,
    code: 'ENONNUMERIC',
    message: `${text}: line 3, column 'V1': expected a number, got 'abc'.`,
  });
  const one = write('one-class.csv', 'Time,V1,Amount,Class\n0,1,2,0\n1,1,2,0\n');
  t.throws(() => loadTransactions(one), {
    instanceOf: DatasetError,
    code: 'ELABEL',
    message: new RegExp(`^${one}: column 'Class' holds only class 0 \\(legitimate\\) in all 2 data rows; expected both`),
  });
  const empty = write('empty.csv', '');
  t.throws(() => loadTransactions(empty), {
    instanceOf: DatasetError,
    code: 'EEMPTY',
    message: new RegExp(`^${empty}: the file is empty`),
  });
  const two = write('two.csv', 'Time,V1,Amount,Class\n0,1,2,0\n1,1,2,2\n');
  t.throws(() => loadTransactions(two), {
    instanceOf: DatasetError,
    code: 'ELABEL',
    message: `${two}: data row 2, column 'Class': expected 0 (legitimate) or 1 (fraud), got 2.`,
  });
  t.throws(() => loadTransactions(path.join(dir, 'nope.csv')), { instanceOf: DatasetError, code: 'ENOENT' });
  const ok = write('ok.csv', 'Time,V1,Amount,Class\n0,1,2,0\n1,1,2,1\n');
  t.throws(() => loadTransactions(ok, { timeColumn: 'When' }), {
    instanceOf: DatasetError,
    code: 'ECOLUMN',
    message: /no column 'When' \(the time column\)/,
  });

  // Frauds only in the first rows: the later (validation, test) parts have none.
  const early = write('early.csv', `Time,V1,Class\n${Array.from({ length: 10 }, (_, i) => `${i},${i},${i < 2 ? 1 : 0}`).join('\n')}\n`);
  const tx = loadTransactions(early);
  t.throws(() => splitAndScale(tx, buildFeatures(tx).x), {
    instanceOf: DatasetError,
    message: /the validation part of the time-ordered split \(time-ordered rows 7–8\) has no fraud rows/,
  });
});

test('the example prints one line and exits non-zero on a bad file', (t) => {
  const one = write('cli-one-class.csv', 'Time,V1,Amount,Class\n0,1,2,0\n');
  const r = example(['--input', one, '--out', path.join(dir, 'cli-out')]);
  t.is(r.code, 1);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /cli-one-class\.csv: column 'Class' holds only class 0/);
  t.false(fs.existsSync(path.join(dir, 'cli-out', 'report.md')));
});

test('the pretraining step can be swapped (the seam for distributed pretraining)', async (t) => {
  const file = generateSyntheticCreditCard(path.join(dir, 'seam.csv'), { rows: 20000, seed: 1 }).file;
  const { backend } = defaultBackend();
  const seen: number[][] = [];
  try {
    const r = await runFraudPipeline({
      input: file,
      outDir: path.join(dir, 'seam'),
      backend,
      seed: 7,
      pretrainEpochs: 1,
      fineTuneEpochs: 2,
      log: () => {},
      pretrain: async (rows, ctx) => {
        seen.push([rows.rows, rows.cols, ctx.layers.length, ctx.seed]);
        return localPretrainer(rows, ctx);
      },
    });
    // 12000 training rows minus their 24 frauds; 28 components + log amount + time of day (2).
    // The ensemble (3 DBNs by default): one pretraining per model, from seeds 7, 1007, 2007.
    const legit = 12000 - r.parts.train.positives;
    t.deepEqual(
      seen,
      [7, 1007, 2007].map((seed) => [legit, 31, 2, seed]),
    );
    t.deepEqual(
      r.models.map((m) => m.seed),
      [7, 1007, 2007],
    );
    for (const m of r.models) {
      t.is(m.validationLoss.length, m.fineTuneEpochs);
      t.is(Math.min(...m.validationLoss), m.validationLoss[m.bestEpoch - 1]!);
    }
    t.is(r.parts.train.positives, 24);
  } finally {
    backend.dispose();
  }
});
