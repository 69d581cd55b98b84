/** `dbn-node transform`: the features a pretrained model computes for every row of a file. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { InvalidOptionError } from '../../errors.js';
import { type GlobalArgs, computeOptions } from '../common.js';
import { sourceOptions } from '../data-options.js';
import { type RowsCommandArgs, runRowsCommand } from '../model-rows.js';

interface TransformArgs extends RowsCommandArgs {
  readonly layer?: number | undefined;
}

async function handler(a: ArgumentsCamelCase<TransformArgs>): Promise<void> {
  let layer = 0;
  await runRowsCommand(
    a,
    (dbn, x) => {
      const h = dbn.transform(x, layer);
      const lines = [['row', ...Array.from({ length: h.cols }, (_, j) => `h${layer}_${j}`)].join(',')];
      for (let r = 0; r < h.rows; r++)
        lines.push([String(r + 1), ...Array.from(h.data.subarray(r * h.cols, (r + 1) * h.cols), (v) => String(v))].join(','));
      return { lines, summary: `transformed ${h.rows} rows to ${h.cols} features of layer ${layer}` };
    },
    (dbn) => {
      const top = dbn.layers.length - 1;
      layer = a.layer ?? top;
      if (!Number.isSafeInteger(layer) || layer < 0 || layer > top)
        throw new InvalidOptionError(`--layer must be an integer in [0, ${top}] (the model has ${top + 1} layer(s)), got ${layer}.`);
    },
  );
}

/** The `transform` command. */
export const transformCommand: CommandModule<GlobalArgs, TransformArgs> = {
  command: 'transform',
  describe: 'the hidden-unit features (mean activations) a pretrained model computes for every row of a file',
  builder: ((y: Argv) =>
    sourceOptions(
      computeOptions(y),
      "rows to transform: a .csv file (its label column, if any, is ignored), an IDX file, 'digits' or 'fashion'",
    )
      .demandOption('data')
      .option('model', { type: 'string', demandOption: true, describe: 'model file written by train' })
      .option('layer', { type: 'number', describe: 'the layer whose features to write (default: the top layer)' })
      .option('out', {
        type: 'string',
        describe: 'CSV file to write: row, then one column per hidden unit (default: stdout)',
        group: 'Output:',
      })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --out', group: 'Output:' })
      .example(
        '$0 transform --model run/model.dbn --data tx.csv --out features.csv',
        'top-layer features of every row',
      )) as unknown as CommandModule<GlobalArgs, TransformArgs>['builder'],
  handler,
};
