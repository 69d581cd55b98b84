import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import { bankOf } from '../../examples/fraud/distributed.js';
import type { BankResult, DistributedResult } from '../../examples/fraud/distributed.js';
import type { PipelineResult } from '../../examples/fraud/pipeline.js';

test('bankOf is deterministic, seeded, and deals rows out about evenly', (t) => {
  const counts = [0, 0, 0];
  for (let r = 0; r < 30_000; r++) counts[bankOf(r, 3, 1)]!++;
  for (const c of counts) t.true(Math.abs(c - 10_000) < 400, `bank sizes ${counts.join(', ')}`);
  t.is(bankOf(12_345, 3, 1), bankOf(12_345, 3, 1));
  let moved = 0;
  for (let r = 0; r < 3000; r++) if (bankOf(r, 3, 1) !== bankOf(r, 3, 2)) moved++;
  t.true(moved > 1500 && moved < 2500, `another seed reassigns about 2/3 of the rows, got ${moved} of 3000`);
});

test('three bank processes train the DBN peer to peer; bank 0’s model ranks the common test part far above chance', async (t) => {
  t.timeout(180_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraud-distributed-'));
  try {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'examples/fraud/main.ts',
        '--rows',
        '20000',
        '--peers',
        '3',
        '--pretrain-epochs',
        '4',
        '--finetune-epochs',
        '6',
        '--models',
        '2',
        '--out',
        dir,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.is(code, 0, output.slice(-3000));
    const pooled = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8')) as PipelineResult;
    const d = JSON.parse(fs.readFileSync(path.join(dir, 'distributed', 'distributed.json'), 'utf8')) as DistributedResult;
    // Every training row of the pooled split is held by exactly one bank.
    t.is(
      d.rows.reduce((n, r) => n + r.train, 0),
      pooled.parts.train.rows,
    );
    t.is(
      d.rows.reduce((n, r) => n + r.trainFrauds, 0),
      pooled.parts.train.positives,
    );
    // The banks summed their counts: the same oversampling factor as the pooled run's.
    t.is(d.oversamplingFactor, pooled.oversamplingFactor);
    // Early stopping on the summed validation loss: one check per epoch ('sum' merge), stopped
    // after 4 checks without improvement or at the 6 epochs given, the best check restored.
    t.is(d.stopping, 'validation');
    t.is(d.validationLoss.length, d.fineTuneEpochs);
    t.true(d.fineTuneEpochs === 6 || d.fineTuneEpochs - 1 - d.bestCheck === 4, `epochs ${d.fineTuneEpochs}, best check ${d.bestCheck}`);
    t.is(Math.min(...d.validationLoss), d.validationLoss[d.bestCheck]!);
    // An ensemble of 2 DBNs (seeds 1 and 1001), each trained by the three banks in turn and each
    // stopped on its own summed validation loss, as in the pooled run.
    t.deepEqual(
      pooled.models.map((m) => m.seed),
      [1, 1001],
    );
    t.deepEqual(
      d.models.map((m) => m.seed),
      [1, 1001],
    );
    for (const m of d.models) {
      t.is(m.validationLoss.length, m.fineTuneEpochs);
      t.true(m.fineTuneEpochs === 6 || m.fineTuneEpochs - 1 - m.bestCheck === 4, `epochs ${m.fineTuneEpochs}, best check ${m.bestCheck}`);
    }
    // The banks' validation rows, pooled by the harness, are the pooled run's validation part.
    const banks = [0, 1, 2].map((i) => JSON.parse(fs.readFileSync(path.join(dir, 'distributed', `bank-${i}.json`), 'utf8')) as BankResult);
    t.is(
      banks.reduce((n, b) => n + b.validation.y.length, 0),
      pooled.parts.validation.rows,
    );
    t.is(
      banks.reduce((n, b) => n + b.validation.y.reduce((a, v) => a + v, 0), 0),
      pooled.parts.validation.positives,
    );
    t.is(d.validation.pooled, pooled.scores.find((s) => s.key === 'dbn')!.validationAveragePrecision);
    t.true(
      d.validation.distributed > 20 * (pooled.parts.validation.positives / pooled.parts.validation.rows),
      `distributed validation AUPRC ${d.validation.distributed}`,
    );
    // Shared scaling and the averaged restore leave every bank with the same models and inputs.
    t.is(d.maxScoreDifference, 0);
    const prevalence = pooled.parts.test.positives / pooled.parts.test.rows;
    const dbn = d.scores.find((s) => s.key === 'dbn')!;
    t.true(dbn.pooled.averagePrecision > 20 * prevalence, `pooled AUPRC ${dbn.pooled.averagePrecision}, prevalence ${prevalence}`);
    t.true(
      dbn.distributed.averagePrecision > 20 * prevalence,
      `distributed AUPRC ${dbn.distributed.averagePrecision}, prevalence ${prevalence}`,
    );
    for (const s of d.sync) {
      t.true(s.published > 0);
      t.true(s.applied > 0, 'each bank applied the others’ deltas');
    }
    // Lockstep (the default): every bank made the same rounds, merging the two others' deltas in each.
    t.true(d.lockstep);
    t.true(
      d.sync.every((s) => s.rounds === d.sync[0]!.rounds && s.rounds > 0 && s.applied === 2 * s.rounds),
      JSON.stringify(d.sync),
    );
    const report = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
    t.regex(report, /## Distributed: 3 banks, peer to peer/);
    t.regex(
      report,
      new RegExp(`\\| DBN fine-tuned \\| ${dbn.pooled.averagePrecision.toFixed(4)} \\| ${dbn.distributed.averagePrecision.toFixed(4)} \\|`),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
