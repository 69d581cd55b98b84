/** `dbn-node evaluate`: accuracy, confusion matrix and log-loss of a fine-tuned model. */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Dbn } from '../../dbn/index.js';
import { DbnError } from '../../errors.js';
import { type ComputeArgs, type GlobalArgs, computeOptions, openBackend, requireFile } from '../common.js';
import { type DataArgs, type ScalerJson, dataOptions, loadData } from '../data-options.js';
import { fmt } from '../progress.js';

interface EvaluateArgs extends GlobalArgs, ComputeArgs, DataArgs {
  readonly model: string;
  readonly json: boolean;
}

async function handler(a: ArgumentsCamelCase<EvaluateArgs>): Promise<void> {
  requireFile('--model', a.model);
  const { backend, line } = await openBackend(a.backend, a.debug);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    const meta = dbn.metadata;
    const scaler = meta['scaler'] as ScalerJson | undefined;
    const data = loadData(a, a.seed, false, scaler);
    const rows = data.test ?? data.train;
    if (!(rows.y instanceof Int32Array)) throw new DbnError(`--data ${a.data} has no labels to evaluate against.`, 'ENOLABELS');
    if (dbn.classes === undefined) throw new DbnError(`${a.model} holds a DBN that was never fine-tuned: it has no classifier to evaluate.`, 'ENOTFITTED');
    const ev = dbn.evaluate(rows.x, rows.y);
    if (a.json) {
      process.stdout.write(`${JSON.stringify({ model: a.model, data: data.description, rows: rows.x.rows, ...ev })}\n`);
      return;
    }
    if (!a.quiet) process.stderr.write(`${line}\n`);
    const out: string[] = [];
    out.push(`${a.model} on ${data.description}: ${rows.x.rows} rows`);
    out.push(`accuracy ${(ev.accuracy * 100).toFixed(2)}%   log-loss ${fmt(ev.logLoss)}`);
    out.push('confusion matrix (rows: true class, columns: predicted):');
    const w = Math.max(5, ...ev.confusionMatrix.flat().map((v) => String(v).length + 1));
    out.push(`${''.padStart(4)}${ev.confusionMatrix.map((_, j) => String(j).padStart(w)).join('')}`);
    ev.confusionMatrix.forEach((row, i) => out.push(`${String(i).padStart(4)}${row.map((v) => String(v).padStart(w)).join('')}`));
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}

/** The `evaluate` command. */
export const evaluateCommand: CommandModule<GlobalArgs, EvaluateArgs> = {
  command: 'evaluate',
  describe: 'accuracy, confusion matrix and log-loss of a fine-tuned model on labelled data',
  builder: ((y: Argv) =>
    dataOptions(computeOptions(y), 'evaluate')
      .option('model', { type: 'string', demandOption: true, describe: 'model file written by train (e.g. dbn-run/model.dbn)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
      .example('$0 evaluate --model dbn-run/model.dbn', 'the held-out 20% of the bundled digits (same seed as train)')) as unknown as CommandModule<GlobalArgs, EvaluateArgs>['builder'],
  handler,
};
