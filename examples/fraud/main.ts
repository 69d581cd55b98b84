/**
 * `npm run example:fraud [-- options]`: without `--input`, writes the synthetic credit-card file
 * (`generate.ts`) and runs the pipeline on it; with `--input creditcard.csv`, runs the pipeline on
 * that file. Outputs go to `--out` (default `out/fraud/`). See README.md.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DbnError, createBackend, defaultBackend, InvalidOptionError } from '../../src/index.js';
import { CREDITCARD_ROWS, generateSyntheticCreditCard, SYNTHETIC_FILE_NAME } from './generate.js';
import * as fs from 'node:fs';
import { renderDistributedSection, runDistributed } from './distributed.js';
import { runFraudPipeline } from './pipeline.js';
import { int } from './flags.js';

const HELP = `Usage: npm run example:fraud -- [options]

  --input FILE         transactions CSV (default: generate synthetic-creditcard.csv in --out)
  --rows N             rows of the synthetic file (default ${CREDITCARD_ROWS}); ignored with --input
  --out DIR            output directory (default out/fraud)
  --label NAME         0/1 label column (default Class)
  --time-column NAME   column ordering the rows: a name, auto (Time if present) or none (default auto)
  --log-columns A,B    columns replaced by log1p (default Amount if present; '' for none)
  --no-time-of-day     do not add the time of day (sin, cos) as features
  --backend NAME       native, js or gpu (default: native if it loads, else js)
  --seed N             seed of the generator and the models (default 1)
  --hidden 32,16       hidden units per DBN layer
  --pretrain-epochs N  pretraining epochs per layer (default 10)
  --finetune-epochs N  fine-tuning epochs at most (default 20)
  --finetune-learning-rate F   fine-tuning learning rate (default 0.01)
  --finetune-average E         time constant (epochs) of the fine-tuned weights' average; 0: none (default 2)
  --models N           DBNs in the supervised score's ensemble, each pretrained and fine-tuned from
                       its own seed, P(fraud) averaged (default 3; 1: one DBN)
  --positive-share F   share of frauds in the fine-tuning set after oversampling (default 0.1)
  --pretrain-on WHICH  legit (default) or all training rows
  --peers N            also train the DBN distributed: N banks (processes) peer to peer, and
                       compare bank 0's model with the pooled one (report.md, distributed.json)
  --merge sum|average  how the banks' deltas combine with --peers (default sum)
  --publish-every N    minibatches between two published deltas with --peers (default 1)
  --no-lockstep        with --peers, merge deltas as they arrive instead of in synchronous
                       rounds (faster, but a rerun of a seed gives another model)
  --scaling WHICH      shared (default: federated standardization from summed statistics) or
                       own (each bank its own training statistics) with --peers
  --stopping WHICH     validation (default: early stopping on the banks' summed validation loss,
                       as the pooled run) or fixed (--finetune-epochs, no stopping) with --peers
  --debug              print stack traces
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      input: { type: 'string' },
      rows: { type: 'string' },
      out: { type: 'string', default: path.join('out', 'fraud') },
      label: { type: 'string', default: 'Class' },
      'time-column': { type: 'string', default: 'auto' },
      'log-columns': { type: 'string' },
      'no-time-of-day': { type: 'boolean', default: false },
      backend: { type: 'string' },
      seed: { type: 'string', default: '1' },
      hidden: { type: 'string' },
      'pretrain-epochs': { type: 'string' },
      'finetune-epochs': { type: 'string' },
      'finetune-learning-rate': { type: 'string' },
      'finetune-average': { type: 'string' },
      'positive-share': { type: 'string' },
      models: { type: 'string' },
      'pretrain-on': { type: 'string', default: 'legit' },
      peers: { type: 'string' },
      merge: { type: 'string', default: 'sum' },
      'publish-every': { type: 'string' },
      'no-lockstep': { type: 'boolean', default: false },
      scaling: { type: 'string', default: 'shared' },
      stopping: { type: 'string', default: 'validation' },
      debug: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const seed = int('seed', values.seed, 0)!;
  const share = values['positive-share'] === undefined ? undefined : Number(values['positive-share']);
  if (share !== undefined && !(share > 0 && share < 1))
    throw new InvalidOptionError(`--positive-share must be a number in (0, 1), got '${values['positive-share']}'.`);
  const number = (name: string, v: string | undefined, positive: boolean): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (positive ? !(n > 0) : !(n >= 0)))
      throw new InvalidOptionError(`--${name} must be a number ${positive ? '> 0' : '>= 0'}, got '${v}'.`);
    return n;
  };
  const fineTuneLearningRate = number('finetune-learning-rate', values['finetune-learning-rate'], true);
  const fineTuneAverageEpochs = number('finetune-average', values['finetune-average'], false);
  const fineTune = {
    ...(fineTuneLearningRate !== undefined ? { fineTuneLearningRate } : {}),
    ...(fineTuneAverageEpochs !== undefined ? { fineTuneAverageEpochs } : {}),
  };
  const models = int('models', values.models, 1);
  const hidden = values.hidden?.split(',').map((h) => int('hidden', h.trim(), 1)!);
  if (values['pretrain-on'] !== 'legit' && values['pretrain-on'] !== 'all')
    throw new InvalidOptionError(`--pretrain-on must be 'legit' or 'all', got '${values['pretrain-on']}'.`);

  const peers = int('peers', values.peers, 2);
  if (values.merge !== 'sum' && values.merge !== 'average')
    throw new InvalidOptionError(`--merge must be 'sum' or 'average', got '${values.merge}'.`);
  const merge = values.merge;
  if (values.scaling !== 'shared' && values.scaling !== 'own')
    throw new InvalidOptionError(`--scaling must be 'shared' or 'own', got '${values.scaling}'.`);
  if (values.stopping !== 'validation' && values.stopping !== 'fixed')
    throw new InvalidOptionError(`--stopping must be 'validation' or 'fixed', got '${values.stopping}'.`);
  const scaling = values.scaling;
  const stopping = values.stopping;
  const publishEvery = int('publish-every', values['publish-every'], 1);

  let input = values.input;
  const synthetic = input === undefined;
  if (input === undefined) {
    input = path.join(values.out, SYNTHETIC_FILE_NAME);
    const s = generateSyntheticCreditCard(input, { rows: int('rows', values.rows, 100) ?? CREDITCARD_ROWS, seed });
    console.log(`wrote ${s.file}: ${s.rows} rows, ${s.frauds} frauds — SYNTHETIC data (see examples/fraud/README.md)`);
  }
  const { backend, reason } = values.backend === undefined ? defaultBackend() : { backend: createBackend(values.backend), reason: '' };
  if (reason !== '') console.log(`backend: ${reason}`);
  try {
    const started = performance.now();
    const r = await runFraudPipeline({
      input,
      outDir: values.out,
      backend,
      seed,
      synthetic,
      label: values.label,
      timeColumn: values['time-column'],
      timeOfDay: !values['no-time-of-day'],
      ...(values['log-columns'] !== undefined
        ? {
            logColumns: values['log-columns']
              .split(',')
              .map((c) => c.trim())
              .filter((c) => c !== ''),
          }
        : {}),
      ...(hidden !== undefined ? { hidden } : {}),
      ...(values['pretrain-epochs'] !== undefined ? { pretrainEpochs: int('pretrain-epochs', values['pretrain-epochs'], 0)! } : {}),
      ...(values['finetune-epochs'] !== undefined ? { fineTuneEpochs: int('finetune-epochs', values['finetune-epochs'], 1)! } : {}),
      ...(share !== undefined ? { positiveShare: share } : {}),
      ...fineTune,
      ...(models !== undefined ? { models } : {}),
      pretrainOn: values['pretrain-on'],
    });
    if (peers !== undefined) {
      console.log(
        `distributed: ${peers} banks, each its own process, sharing weight deltas (merge '${merge}'${values['no-lockstep'] ? ', asynchronous' : ', lockstep'}) and summed statistics (scaling '${scaling}', stopping '${stopping}')`,
      );
      const d = await runDistributed(
        {
          input,
          banks: peers,
          outDir: path.join(values.out, 'distributed'),
          seed,
          merge,
          scaling,
          stopping,
          ...(publishEvery !== undefined ? { publishEvery } : {}),
          lockstep: !values['no-lockstep'],
          label: values.label,
          timeColumn: values['time-column'],
          timeOfDay: !values['no-time-of-day'],
          ...(values.backend !== undefined ? { backendName: values.backend } : {}),
          ...(values['log-columns'] !== undefined
            ? {
                logColumns: values['log-columns']
                  .split(',')
                  .map((c) => c.trim())
                  .filter((c) => c !== ''),
              }
            : {}),
          ...(hidden !== undefined ? { hidden } : {}),
          ...(values['pretrain-epochs'] !== undefined ? { pretrainEpochs: int('pretrain-epochs', values['pretrain-epochs'], 0)! } : {}),
          ...(values['finetune-epochs'] !== undefined ? { fineTuneEpochs: int('finetune-epochs', values['finetune-epochs'], 1)! } : {}),
          ...(share !== undefined ? { positiveShare: share } : {}),
          ...fineTune,
          ...(models !== undefined ? { models } : {}),
        },
        r,
      );
      for (const s of d.scores)
        console.log(
          `  ${s.name.padEnd(20)} AUPRC pooled ${s.pooled.averagePrecision.toFixed(4)}, distributed ${s.distributed.averagePrecision.toFixed(4)} (gap ${s.gap >= 0 ? '+' : ''}${s.gap.toFixed(4)}); AUROC ${s.pooled.rocAuc.toFixed(4)} / ${s.distributed.rocAuc.toFixed(4)}`,
        );
      console.log(
        `  DBN fine-tuned validation AUPRC pooled ${d.validation.pooled.toFixed(4)}, distributed ${d.validation.distributed.toFixed(4)} (gap ${d.validation.gap >= 0 ? '+' : ''}${d.validation.gap.toFixed(4)})`,
      );
      console.log(`  distributed run: ${d.seconds.toFixed(1)} s`);
      fs.appendFileSync(r.files.report, renderDistributedSection(d, r));
    }
    console.log(
      `done in ${((performance.now() - started) / 1000).toFixed(1)} s: ${r.files.report}, ${r.files.chart}, ${r.files.scores}, ${r.files.metrics}`,
    );
  } finally {
    backend.dispose();
  }
}

main().catch((err: unknown) => {
  const debug = process.argv.includes('--debug');
  if (debug && err instanceof Error) console.error(err.stack);
  else console.error(err instanceof DbnError || err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
