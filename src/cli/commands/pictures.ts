/** `dbn-node filters`: a PNG grid of the first layer's weights (`sample` is in `sample.ts`). */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { Dbn } from '../../dbn/index.js';
import { InvalidOptionError } from '../../errors.js';
import { type ComputeArgs, type GlobalArgs, checkWritable, computeOptions, openBackend, requireFile, squareSide } from '../common.js';
import { renderGrid, writeFileAtomic } from '../images.js';

interface PictureArgs extends GlobalArgs, ComputeArgs {
  readonly model: string;
  readonly out: string;
  readonly count: number;
  readonly force: boolean;
  readonly width?: number | undefined;
}

function common(y: Argv, out: string, count: number): Argv<PictureArgs> {
  return computeOptions(y)
    .option('model', { type: 'string', demandOption: true, describe: 'model file written by train' })
    .option('out', { type: 'string', default: out, describe: 'PNG file to write' })
    .option('count', { type: 'number', default: count, describe: 'number of tiles' })
    .option('width', { type: 'number', describe: 'image width in pixels (default: √inputs for square images)' })
    .option('force', { type: 'boolean', default: false, describe: 'overwrite --out' }) as unknown as Argv<PictureArgs>;
}

function tileShape(a: PictureArgs, n: number): { width: number; height: number } {
  const width = a.width ?? squareSide(n);
  if (width === undefined || !Number.isInteger(width) || width < 1 || n % width !== 0) {
    throw new InvalidOptionError(`--width must divide the model's ${n} inputs (they are not a square image); got ${a.width ?? 'none'}.`);
  }
  return { width, height: n / width };
}

async function withModel(a: PictureArgs, fn: (dbn: Dbn) => Buffer): Promise<void> {
  requireFile('--model', a.model);
  checkWritable('--out', a.out, a.force);
  if (!Number.isSafeInteger(a.count) || a.count < 1) throw new InvalidOptionError(`--count must be a positive integer, got ${a.count}.`);
  const { backend } = await openBackend(a.backend, a.debug);
  let dbn: Dbn | undefined;
  try {
    dbn = Dbn.load(a.model, { backend });
    writeFileAtomic(a.out, fn(dbn), a.force);
    if (!a.quiet) process.stdout.write(`wrote ${a.out}\n`);
  } finally {
    dbn?.dispose();
    backend.dispose();
  }
}

/** The `filters` command. */
export const filtersCommand: CommandModule<GlobalArgs, PictureArgs> = {
  command: 'filters',
  describe: "write the first layer's weights (one tile per hidden unit) as a PNG grid",
  builder: ((y: Argv) =>
    common(y, 'filters.png', 100).example(
      '$0 filters --model dbn-run/model.dbn --out filters.png',
      'the first 100 receptive fields',
    )) as unknown as CommandModule<GlobalArgs, PictureArgs>['builder'],
  handler: (a: ArgumentsCamelCase<PictureArgs>) =>
    withModel(a, (dbn) => {
      const shape = tileShape(a, dbn.nVisible);
      const w = dbn.layers[0]!.getParameters().weights;
      const count = Math.min(a.count, w.cols);
      const tiles = new Float32Array(count * w.rows);
      for (let j = 0; j < count; j++) for (let i = 0; i < w.rows; i++) tiles[j * w.rows + i] = w.data[i * w.cols + j]!;
      return renderGrid(tiles, count, { ...shape, normalize: 'per-tile', scale: 2 });
    }),
};
