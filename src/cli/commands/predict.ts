/** `dbn-node predict`: the class and class probabilities of every row of a file, from a fine-tuned model. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Dbn } from '../../dbn/index.js';
import { NotFittedError } from '../../errors.js';
import { type ComputeArgs, type GlobalArgs, checkWritable, computeOptions, openBackend, requireFile } from '../common.js';
import { checkLimit, type SourceArgs, sourceOptions } from '../data-options.js';
import { csvField, inputsForModel, writeOutput } from '../model-rows.js';
import { trainingRecordOf } from '../training-record.js';

interface PredictArgs extends GlobalArgs, ComputeArgs, SourceArgs {
  readonly model: string;
  readonly out?: string | undefined;
  readonly force: boolean;
}

async function handler(a: ArgumentsCamelCase<PredictArgs>): Promise<void> {
  requireFile('--model', a.model);
  checkLimit(a.limit);
  if (a.out !== undefined) checkWritable('--out', a.out, a.force);
  const { backend, line } = await openBackend(a.backend);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    if (dbn.classes === undefined) throw new NotFittedError(`${a.model} holds a DBN that was never fine-tuned: it has no classifier to predict with (train it with labels).`);
    const record = trainingRecordOf(dbn.metadata);
    const { x, name } = inputsForModel(a, dbn.metadata, record);
    const proba = dbn.predictProba(x);
    const names = Array.from({ length: proba.cols }, (_, k) => record?.classNames?.[k] ?? String(k));
    const lines = [['row', 'class', ...names.map((n) => `p_${n}`)].map((f) => csvField(f)).join(',')];
    for (let r = 0; r < proba.rows; r++) {
      const p = proba.data.subarray(r * proba.cols, (r + 1) * proba.cols);
      let best = 0;
      for (let k = 1; k < p.length; k++) if (p[k]! > p[best]!) best = k;
      lines.push([String(r + 1), csvField(names[best]!), ...Array.from(p, (v) => v.toFixed(6))].join(','));
    }
    writeOutput(a.out, `${lines.join('\n')}\n`, a.force);
    if (!a.quiet) process.stderr.write(`${line}\npredicted ${proba.rows} rows of ${name}${a.out === undefined ? '' : ` → ${a.out}`}\n`);
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}

/** The `predict` command. */
export const predictCommand: CommandModule<GlobalArgs, PredictArgs> = {
  command: 'predict',
  describe: 'class and class probabilities of every row of a file (CSV: the model\'s feature columns, by name)',
  builder: ((y: Argv) =>
    sourceOptions(computeOptions(y), "rows to score: a .csv file (its label column, if any, is ignored), an IDX file, 'digits' or 'fashion'")
      .demandOption('data')
      .option('model', { type: 'string', demandOption: true, describe: 'model file written by train (fine-tuned)' })
      .option('out', { type: 'string', describe: 'CSV file to write: row, class, one probability per class (default: stdout)', group: 'Output:' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --out', group: 'Output:' })
      .example('$0 predict --model fraud/model.dbn --data new.csv --out scores.csv', 'one line per row: row,class,p_0,p_1')) as unknown as CommandModule<GlobalArgs, PredictArgs>['builder'],
  handler,
};
