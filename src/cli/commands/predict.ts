/** `dbn-node predict`: the class and class probabilities of every row of a file, from a fine-tuned model. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { NotFittedError } from '../../errors.js';
import { type GlobalArgs, computeOptions } from '../common.js';
import { sourceOptions } from '../data-options.js';
import { type RowsCommandArgs, csvField, runRowsCommand } from '../model-rows.js';
import { trainingRecordOf } from '../training-record.js';

type PredictArgs = RowsCommandArgs;

async function handler(a: ArgumentsCamelCase<PredictArgs>): Promise<void> {
  let names: string[] = [];
  await runRowsCommand(
    a,
    (dbn, x) => {
      const proba = dbn.predictProba(x);
      const lines = [['row', 'class', ...names.map((n) => `p_${n}`)].map((f) => csvField(f)).join(',')];
      for (let r = 0; r < proba.rows; r++) {
        const p = proba.data.subarray(r * proba.cols, (r + 1) * proba.cols);
        let best = 0;
        for (let k = 1; k < p.length; k++) if (p[k]! > p[best]!) best = k;
        lines.push([String(r + 1), csvField(names[best]!), ...Array.from(p, (v) => v.toFixed(6))].join(','));
      }
      return { lines, summary: `predicted ${proba.rows} rows` };
    },
    (dbn) => {
      if (dbn.classes === undefined)
        throw new NotFittedError(
          `${a.model} holds a DBN that was never fine-tuned: it has no classifier to predict with (train it with labels).`,
        );
      const record = trainingRecordOf(dbn.metadata);
      names = Array.from({ length: dbn.classes }, (_, k) => record?.classNames?.[k] ?? String(k));
    },
  );
}

/** The `predict` command. */
export const predictCommand: CommandModule<GlobalArgs, PredictArgs> = {
  command: 'predict',
  describe: "class and class probabilities of every row of a file (CSV: the model's feature columns, by name)",
  builder: ((y: Argv) =>
    sourceOptions(
      computeOptions(y),
      "rows to score: a .csv file (its label column, if any, is ignored), an IDX file, 'digits' or 'fashion'",
    )
      .demandOption('data')
      .option('model', { type: 'string', demandOption: true, describe: 'model file written by train (fine-tuned)' })
      .option('out', {
        type: 'string',
        describe: 'CSV file to write: row, class, one probability per class (default: stdout)',
        group: 'Output:',
      })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --out', group: 'Output:' })
      .example(
        '$0 predict --model fraud/model.dbn --data new.csv --out scores.csv',
        'one line per row: row,class,p_0,p_1',
      )) as unknown as CommandModule<GlobalArgs, PredictArgs>['builder'],
  handler,
};
