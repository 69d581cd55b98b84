/**
 * Rows for a trained model: read the way the model's training record says (the same CSV columns in
 * the same order, the same text classes, the same delimiter) and scaled by its stored scaler.
 * Shared by `evaluate`, `predict` and `transform`.
 */
import { type Dataset, take } from '../data/index.js';
import { Dbn } from '../dbn/index.js';
import { DbnError } from '../errors.js';
import type { HostMatrix } from '../validate.js';
import { type ComputeArgs, type GlobalArgs, checkWritable, openBackend, requireFile } from './common.js';
import { canonicalData, checkLimit, loadSource, type ScalerJson, scalerFromJson, type SourceArgs, type Source } from './data-options.js';
import { writeFileAtomic } from './images.js';
import { type TrainingRecord, trainingRecordOf } from './training-record.js';

/** Reads `--data` (or, without it, the model's own training source) as the model's inputs. */
export function sourceForModel(a: SourceArgs, record: TrainingRecord | undefined, needLabels: boolean): Source {
  const data = a.data ?? record?.data;
  if (data === undefined) throw new DbnError('--data is required: the model holds no record of the data it was trained on.', 'EUSAGE');
  const fromTraining = record !== undefined && canonicalData(data) === record.data;
  const labels = a.labels ?? (fromTraining ? record.labelsFile : undefined);
  const label = needLabels ? (a.label ?? record?.label) : undefined;
  return loadSource({
    data,
    ...(labels === undefined ? {} : { labels }),
    ...(label === undefined ? {} : { label }),
    ...(a.delimiter !== undefined
      ? { delimiter: a.delimiter }
      : record?.delimiter !== undefined
        ? { delimiter: record.delimiter === '\t' ? 'tab' : record.delimiter }
        : {}),
    ...(record?.featureNames === undefined ? {} : { columns: record.featureNames }),
    ...(record?.classNames === undefined ? {} : { classNames: record.classNames }),
  });
}

/** Every row of a source (Fashion-MNIST: its training set, then its test set). */
export function allRows(source: Source): Dataset {
  if (source.all !== undefined) return source.all;
  const { train, test } = source.fashion!;
  const data = new Float32Array(train.x.data.length + test.x.data.length);
  data.set(train.x.data);
  data.set(test.x.data, train.x.data.length);
  const y = train.y instanceof Int32Array && test.y instanceof Int32Array ? Int32Array.from([...train.y, ...test.y]) : undefined;
  return {
    x: { rows: train.x.rows + test.x.rows, cols: train.x.cols, data },
    ...(y === undefined ? {} : { y }),
    source: `${train.source} + ${test.source}`,
  };
}

/** `x` scaled by the model's stored scaler (as is without one). */
export function scaleForModel(x: HostMatrix, metadata: Record<string, unknown>): HostMatrix {
  const scaler = metadata['scaler'] as ScalerJson | undefined;
  return scaler === undefined ? x : scalerFromJson(scaler)(x);
}

/** A CSV field: quoted (RFC 4180) when it holds the delimiter, a quote or a line break. */
export function csvField(s: string, delimiter = ','): string {
  return s.includes(delimiter) || /["\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Reads `--data` as the inputs of the model in `metadata` (no labels), `--limit` applied, scaled by the stored scaler. */
export function inputsForModel(
  a: SourceArgs,
  metadata: Record<string, unknown>,
  record: TrainingRecord | undefined,
): { x: HostMatrix; name: string } {
  const source = sourceForModel(a, record, false);
  let rows = allRows(source);
  if (a.limit !== undefined) rows = take(rows, a.limit);
  return { x: scaleForModel(rows.x, metadata), name: source.name };
}

/** Writes `text` to `--out` atomically (refusing to replace a file without --force), or to stdout without `--out`. */
export function writeOutput(out: string | undefined, text: string, force: boolean): void {
  if (out === undefined) process.stdout.write(text);
  else writeFileAtomic(out, text, force);
}

/** Flags of a command that reads a model and writes one CSV line per input row (`predict`, `transform`). */
export interface RowsCommandArgs extends GlobalArgs, ComputeArgs, SourceArgs {
  readonly model: string;
  readonly out?: string | undefined;
  readonly force: boolean;
}

/**
 * Runs a rows command: checks the flags, opens the backend, loads the model, reads the rows as
 * the model was trained on them, writes the header and one line per row that `lines` returns to
 * `--out` (or stdout), and prints `summary` on stderr; disposes everything.
 */
export async function runRowsCommand(
  a: RowsCommandArgs,
  lines: (dbn: Dbn, x: HostMatrix) => { readonly lines: string[]; readonly summary: string },
  prepare: (dbn: Dbn) => void = () => undefined,
): Promise<void> {
  requireFile('--model', a.model);
  checkLimit(a.limit);
  if (a.out !== undefined) checkWritable('--out', a.out, a.force);
  const { backend, line } = await openBackend(a.backend, a.debug);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    prepare(dbn);
    const { x, name } = inputsForModel(a, dbn.metadata, trainingRecordOf(dbn.metadata));
    const out = lines(dbn, x);
    writeOutput(a.out, `${out.lines.join('\n')}\n`, a.force);
    if (!a.quiet) process.stderr.write(`${line}\n${out.summary} of ${name}${a.out === undefined ? '' : ` → ${a.out}`}\n`);
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}
