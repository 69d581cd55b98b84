/**
 * `dbn-node evaluate`: accuracy, confusion matrix and log-loss of a fine-tuned model. By default it
 * scores the rows the model held out at training time (the split stored in the model); other data
 * or `--all-rows` is scored as asked, with a loud warning when those rows include training rows.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type Dataset, take } from '../../data/index.js';
import { Dbn } from '../../dbn/index.js';
import { DbnError } from '../../errors.js';
import { type ComputeArgs, type GlobalArgs, computeOptions, openBackend, requireFile } from '../common.js';
import { escapeText } from '../escape.js';
import { canonicalData, checkLimit, type SourceArgs, sourceOptions, splitSource } from '../data-options.js';
import { allRows, scaleForModel, sourceForModel } from '../model-rows.js';
import { fmt } from '../progress.js';
import { contentHash, countTrainingRows, type TrainingRecord, trainingRecordOf } from '../training-record.js';

interface EvaluateArgs extends GlobalArgs, ComputeArgs, SourceArgs {
  readonly model: string;
  readonly json: boolean;
  readonly 'all-rows': boolean;
}

interface Chosen {
  readonly rows: Dataset;
  readonly description: string;
  readonly heldOut: boolean;
  readonly trainingRows: number | undefined;
}

/** The rows the model held out at training time, rebuilt from its record and checked against its hash. */
function heldOutRows(a: EvaluateArgs, record: TrainingRecord): Chosen {
  const source = sourceForModel({}, record, true);
  const split = splitSource(source, record.limit, record.testFraction, record.splitSeed);
  if (contentHash(split.train.x) !== record.trainContentHash) {
    throw new DbnError(
      `${record.data} no longer holds the rows ${a.model} was trained on (their hash differs: the file changed since training), so the rows held out cannot be told apart; ` +
        'score another file with --data, or every row with --all-rows.',
      'ESPLIT',
    );
  }
  if (split.test === undefined) {
    throw new DbnError(
      `${a.model} was trained on every row of ${record.data} (--test-fraction ${record.testFraction}): there are no held-out rows. Score other data with --data, or training rows knowingly with --all-rows.`,
      'ENOHELDOUT',
    );
  }
  const rows = a.limit === undefined ? split.test : take(split.test, a.limit);
  return {
    rows,
    description: `${source.name}: ${rows.x.rows} rows held out at training (split seed ${record.splitSeed}, test fraction ${record.testFraction})`,
    heldOut: true,
    trainingRows: countTrainingRows(rows.x, record),
  };
}

function choose(a: EvaluateArgs, record: TrainingRecord | undefined): Chosen {
  const sameData = a.data === undefined || (record !== undefined && canonicalData(a.data) === record.data);
  if (record !== undefined && sameData && !a['all-rows']) return heldOutRows(a, record);
  const source = sourceForModel(a, record, true);
  let rows = allRows(source);
  if (a.limit !== undefined) rows = take(rows, a.limit);
  return {
    rows,
    description: `${source.name}: ${rows.x.rows} rows${a['all-rows'] ? ' (--all-rows)' : ''}`,
    heldOut: false,
    trainingRows: record === undefined ? undefined : countTrainingRows(rows.x, record),
  };
}

async function handler(a: ArgumentsCamelCase<EvaluateArgs>): Promise<void> {
  requireFile('--model', a.model);
  checkLimit(a.limit);
  const { backend, line } = await openBackend(a.backend, a.debug);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    if (dbn.classes === undefined)
      throw new DbnError(`${a.model} holds a DBN that was never fine-tuned: it has no classifier to evaluate.`, 'ENOTFITTED');
    const record = trainingRecordOf(dbn.metadata);
    const chosen = choose(a, record);
    const { rows } = chosen;
    if (!(rows.y instanceof Int32Array))
      throw new DbnError(`${chosen.description} has no labels to evaluate against (name the label column with --label).`, 'ENOLABELS');
    if (record === undefined) {
      process.stderr.write(
        `WARN: ${a.model} holds no record of its training data (written by an older dbn-node): the rows scored may include training rows, and nothing can check it.\n`,
      );
    } else if (chosen.trainingRows! > 0 && !chosen.heldOut) {
      process.stderr.write(
        `WARN: ${chosen.trainingRows} of the ${rows.x.rows} rows scored are rows ${a.model} was trained on (identical features): ` +
          `these scores are optimistic, not a held-out estimate${a['all-rows'] ? '' : ' (drop --data to score the rows held out at training)'}.\n`,
      );
    } else if (chosen.trainingRows! > 0 && !a.quiet) {
      process.stderr.write(
        `note: ${chosen.trainingRows} held-out row(s) have the same features as a training row (duplicates in the data).\n`,
      );
    }
    const ev = dbn.evaluate(scaleForModel(rows.x, dbn.metadata), rows.y);
    const classNames = record?.classNames;
    if (a.json) {
      const extra = {
        heldOut: chosen.heldOut,
        trainingRowsScored: chosen.trainingRows ?? null,
        ...(classNames === undefined ? {} : { classNames }),
      };
      process.stdout.write(`${JSON.stringify({ model: a.model, data: chosen.description, rows: rows.x.rows, ...extra, ...ev })}\n`);
      return;
    }
    if (!a.quiet) process.stderr.write(`${line}\n`);
    // Class names come from the model file: escaped, so a crafted name cannot drive the terminal.
    const names = ev.confusionMatrix.map((_, i) => escapeText(classNames?.[i] ?? String(i)));
    const out: string[] = [];
    out.push(`${escapeText(a.model)} on ${escapeText(chosen.description)}`);
    out.push(`accuracy ${(ev.accuracy * 100).toFixed(2)}%   log-loss ${fmt(ev.logLoss)}`);
    out.push('confusion matrix (rows: true class, columns: predicted):');
    const w = Math.max(5, ...ev.confusionMatrix.flat().map((v) => String(v).length + 1), ...names.map((n) => n.length + 1));
    const first = Math.max(4, ...names.map((n) => n.length));
    out.push(`${''.padStart(first)}${names.map((n) => n.padStart(w)).join('')}`);
    ev.confusionMatrix.forEach((row, i) => out.push(`${names[i]!.padStart(first)}${row.map((v) => String(v).padStart(w)).join('')}`));
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}

/** The `evaluate` command. */
export const evaluateCommand: CommandModule<GlobalArgs, EvaluateArgs> = {
  command: 'evaluate',
  describe: 'accuracy, confusion matrix and log-loss of a fine-tuned model on the rows it held out (or on other labelled data)',
  builder: ((y: Argv) =>
    sourceOptions(
      computeOptions(y),
      'rows to score (default: the rows the model held out at training, rebuilt from the split stored in the model); a file given here is scored whole',
    )
      .option('all-rows', {
        type: 'boolean',
        default: false,
        describe: 'score every row of the data, training rows included (warned about), not only the held-out ones',
        group: 'Data:',
      })
      .option('model', { type: 'string', demandOption: true, describe: 'model file written by train (e.g. dbn-run/model.dbn)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
      .example('$0 evaluate --model dbn-run/model.dbn', 'the rows held out when the model was trained (its stored split)')
      .example(
        '$0 evaluate --model fraud/model.dbn --data new-month.csv',
        'other labelled rows (warns if any are training rows)',
      )) as unknown as CommandModule<GlobalArgs, EvaluateArgs>['builder'],
  handler,
};
