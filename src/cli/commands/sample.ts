/**
 * `dbn-node sample`: generated images — of one class, of every class (one row each), or free —
 * as a PNG grid (`--out`) and/or a header-less CSV of visible probabilities (`--csv`).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_LABEL_STRENGTH, Dbn, type GenerateRequest } from '../../dbn/index.js';
import { InvalidOptionError } from '../../errors.js';
import type { HostMatrix } from '../../validate.js';
import { type ComputeArgs, type GlobalArgs, checkWritable, computeOptions, openBackend, requireFile, squareSide } from '../common.js';
import { renderGrid, samplesCsv, writeFileAtomic } from '../images.js';

/** Flags of `sample`. */
export interface SampleArgs extends GlobalArgs, ComputeArgs {
  readonly model: string;
  readonly class?: string | undefined;
  readonly count: number;
  readonly out?: string | undefined;
  readonly csv?: string | undefined;
  readonly force: boolean;
  readonly width?: number | undefined;
  readonly steps: number;
  readonly 'burn-in'?: number | undefined;
  readonly thin?: number | undefined;
  readonly chains?: number | undefined;
  readonly 'label-strength'?: string | undefined;
  readonly 'down-pass'?: string | undefined;
}

function builder(y: Argv): Argv<SampleArgs> {
  return computeOptions(y)
    .option('model', { type: 'string', demandOption: true, describe: 'model file written by train' })
    .option('class', {
      type: 'string',
      describe: "clamp the label to this class, or 'all' (one row per class); needs a model with an associative top layer",
    })
    .option('count', { type: 'number', default: 64, describe: 'samples (per class with --class all)' })
    .option('out', { type: 'string', describe: 'PNG grid to write (default samples.png unless --csv is given)' })
    .option('csv', { type: 'string', describe: 'header-less CSV to write: one sample per row, the visible probabilities in [0, 1]' })
    .option('width', { type: 'number', describe: 'image width in pixels (default: √inputs for square images)' })
    .option('force', { type: 'boolean', default: false, describe: 'overwrite --out and --csv' })
    .option('steps', {
      type: 'number',
      default: 1000,
      describe: 'Gibbs steps in the top RBM before the first sample of a chain (burn-in = steps − 1)',
    })
    .option('burn-in', { type: 'number', describe: 'Gibbs steps before the first sample of a chain (overrides --steps)' })
    .option('thin', { type: 'number', describe: 'Gibbs steps between samples of one chain (default 100)' })
    .option('chains', { type: 'number', describe: 'chains run side by side (default: one per sample)' })
    .option('label-strength', {
      type: 'string',
      describe: `weight of the clamped label in the top layer: a number (1: the model's exact conditional) or 'auto' (per class, the smallest at which the model recognises its own samples; default ${DEFAULT_LABEL_STRENGTH})`,
    })
    .option('down-pass', {
      type: 'string',
      choices: ['sampled', 'mean'],
      describe: "top-down pass: binary states down to the input's layer ('sampled', default) or probabilities ('mean')",
    })
    .example('$0 sample --model dbn-run/model.dbn --class all --count 10 --out digits.png', 'ten samples of every digit, one row per digit')
    .example('$0 sample --model dbn-run/model.dbn --class 7 --count 50 --csv sevens.csv', 'fifty 7s as CSV rows')
    .example(
      '$0 sample --model dbn-run/model.dbn --out samples.png --count 100',
      '100 samples with the label free',
    ) as unknown as Argv<SampleArgs>;
}

/** The classes `--class` names for a model with `classes` label units (undefined: no clamping). */
export function parseClass(flag: string | undefined, classes: number | undefined): number[] | undefined {
  if (flag === undefined) return undefined;
  if (classes === undefined)
    throw new InvalidOptionError(`--class needs a model with an associative top layer (train it with labels; see 'train --associative').`);
  if (flag === 'all') return Array.from({ length: classes }, (_, k) => k);
  const k = Number(flag);
  if (!/^\d+$/.test(flag) || k >= classes)
    throw new InvalidOptionError(`--class must be 'all' or an integer in [0, ${classes - 1}], got '${flag}'.`);
  return [k];
}

/** `--label-strength`: 'auto' or a finite number >= 0. */
export function parseLabelStrength(flag: string): number | 'auto' {
  if (flag === 'auto') return 'auto';
  const v = Number(flag);
  if (flag.trim() === '' || !Number.isFinite(v) || v < 0)
    throw new InvalidOptionError(`--label-strength must be 'auto' or a number >= 0, got '${flag}'.`);
  return v;
}

function positive(flag: string, v: number | undefined, min: number): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < min))
    throw new InvalidOptionError(`${flag} must be an integer >= ${min}, got ${v}.`);
}

/**
 * `count` samples per class of `classes` (or `count` free samples), with the chain flags of `a`,
 * rows grouped by class. Class `k` draws from seed `seed + k`.
 */
export function sampleRows(
  dbn: Dbn,
  classes: number[] | undefined,
  count: number,
  a: Pick<SampleArgs, 'steps' | 'burn-in' | 'thin' | 'chains' | 'seed' | 'label-strength' | 'down-pass'>,
): HostMatrix {
  const base: GenerateRequest = {
    count,
    gibbsSteps: a.steps,
    ...(a['burn-in'] === undefined ? {} : { burnIn: a['burn-in'] }),
    ...(a.thin === undefined ? {} : { thin: a.thin }),
    ...(a.chains === undefined ? {} : { chains: a.chains }),
    ...(a['label-strength'] === undefined ? {} : { labelStrength: parseLabelStrength(a['label-strength']) }),
    ...(a['down-pass'] === undefined ? {} : { downPass: a['down-pass'] as 'sampled' | 'mean' }),
  };
  if (classes === undefined) return dbn.generate({ ...base, seed: a.seed });
  const data = new Float32Array(classes.length * count * dbn.nVisible);
  for (const [i, k] of classes.entries()) data.set(dbn.generate({ ...base, label: k, seed: a.seed + k }).data, i * count * dbn.nVisible);
  return { rows: classes.length * count, cols: dbn.nVisible, data };
}

async function handler(a: ArgumentsCamelCase<SampleArgs>): Promise<void> {
  requireFile('--model', a.model);
  positive('--count', a.count, 1);
  positive('--steps', a.steps, 1);
  positive('--burn-in', a['burn-in'], 0);
  positive('--thin', a.thin, 1);
  positive('--chains', a.chains, 1);
  if (a['label-strength'] !== undefined) parseLabelStrength(a['label-strength']);
  const out = a.out ?? (a.csv === undefined ? 'samples.png' : undefined);
  if (out !== undefined) checkWritable('--out', out, a.force);
  if (a.csv !== undefined) checkWritable('--csv', a.csv, a.force);
  const { backend } = await openBackend(a.backend);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    const classes = parseClass(a.class, dbn.associative?.classes);
    let shape: { width: number; height: number } | undefined;
    if (out !== undefined) {
      const width = a.width ?? squareSide(dbn.nVisible);
      if (width === undefined || !Number.isInteger(width) || width < 1 || dbn.nVisible % width !== 0) {
        throw new InvalidOptionError(
          `--width must divide the model's ${dbn.nVisible} inputs (they are not a square image); got ${a.width ?? 'none'}.`,
        );
      }
      shape = { width, height: dbn.nVisible / width };
    }
    const s = sampleRows(dbn, classes, a.count, a);
    if (a.csv !== undefined) {
      writeFileAtomic(a.csv, samplesCsv(s), a.force);
      if (!a.quiet) process.stdout.write(`wrote ${a.csv} (${s.rows} rows)\n`);
    }
    if (out !== undefined && shape !== undefined) {
      const columns = classes === undefined ? undefined : a.count;
      writeFileAtomic(out, renderGrid(s.data, s.rows, { ...shape, scale: 2, ...(columns === undefined ? {} : { columns }) }), a.force);
      if (!a.quiet) process.stdout.write(`wrote ${out}\n`);
    }
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}

/** The `sample` command. */
export const sampleCommand: CommandModule<GlobalArgs, SampleArgs> = {
  command: 'sample',
  describe: 'generate images (Gibbs chains in the top layer, a label clamped with --class, then a down pass) into a PNG grid or CSV',
  builder: builder as unknown as CommandModule<GlobalArgs, SampleArgs>['builder'],
  handler,
};
