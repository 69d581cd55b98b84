/** `dbn-node transform`: the features a pretrained model computes for every row of a file. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Dbn } from '../../dbn/index.js';
import { InvalidOptionError } from '../../errors.js';
import { type ComputeArgs, type GlobalArgs, checkWritable, computeOptions, openBackend, requireFile } from '../common.js';
import { checkLimit, type SourceArgs, sourceOptions } from '../data-options.js';
import { inputsForModel, writeOutput } from '../model-rows.js';
import { trainingRecordOf } from '../training-record.js';

interface TransformArgs extends GlobalArgs, ComputeArgs, SourceArgs {
  readonly model: string;
  readonly layer?: number | undefined;
  readonly out?: string | undefined;
  readonly force: boolean;
}

async function handler(a: ArgumentsCamelCase<TransformArgs>): Promise<void> {
  requireFile('--model', a.model);
  checkLimit(a.limit);
  if (a.out !== undefined) checkWritable('--out', a.out, a.force);
  const { backend, line } = await openBackend(a.backend);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    const top = dbn.layers.length - 1;
    const layer = a.layer ?? top;
    if (!Number.isSafeInteger(layer) || layer < 0 || layer > top) throw new InvalidOptionError(`--layer must be an integer in [0, ${top}] (the model has ${top + 1} layer(s)), got ${layer}.`);
    const { x, name } = inputsForModel(a, dbn.metadata, trainingRecordOf(dbn.metadata));
    const h = dbn.transform(x, layer);
    const lines = [['row', ...Array.from({ length: h.cols }, (_, j) => `h${layer}_${j}`)].join(',')];
    for (let r = 0; r < h.rows; r++) lines.push([String(r + 1), ...Array.from(h.data.subarray(r * h.cols, (r + 1) * h.cols), (v) => String(v))].join(','));
    writeOutput(a.out, `${lines.join('\n')}\n`, a.force);
    if (!a.quiet) process.stderr.write(`${line}\ntransformed ${h.rows} rows of ${name} to ${h.cols} features of layer ${layer}${a.out === undefined ? '' : ` → ${a.out}`}\n`);
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}

/** The `transform` command. */
export const transformCommand: CommandModule<GlobalArgs, TransformArgs> = {
  command: 'transform',
  describe: 'the hidden-unit features (mean activations) a pretrained model computes for every row of a file',
  builder: ((y: Argv) =>
    sourceOptions(computeOptions(y), "rows to transform: a .csv file (its label column, if any, is ignored), an IDX file, 'digits' or 'fashion'")
      .demandOption('data')
      .option('model', { type: 'string', demandOption: true, describe: 'model file written by train' })
      .option('layer', { type: 'number', describe: 'the layer whose features to write (default: the top layer)' })
      .option('out', { type: 'string', describe: 'CSV file to write: row, then one column per hidden unit (default: stdout)', group: 'Output:' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --out', group: 'Output:' })
      .example('$0 transform --model run/model.dbn --data tx.csv --out features.csv', 'top-layer features of every row')) as unknown as CommandModule<GlobalArgs, TransformArgs>['builder'],
  handler,
};
