/** The associative top layer in `dbn-node train`: its options from the flags, its training with progress, and the samples picture. */
import type { Dataset } from '../data/index.js';
import { ASSOCIATIVE_DEFAULTS } from '../dbn/associative.js';
import type { AssociativeOptions, CheckpointOptions, Dbn } from '../dbn/index.js';
import { InvalidOptionError } from '../errors.js';
import { sampleRows } from './commands/sample.js';
import { renderGrid } from './images.js';
import type { MetricsWriter } from './metrics.js';
import { fmt, type Progress } from './progress.js';

/** Samples per class in the main job's `samples.png`. */
const SAMPLES_PER_CLASS = 10;

/** The flags that shape the associative layer. */
export interface AssociativeArgs {
  readonly associative: number;
  readonly 'associative-epochs'?: number | undefined;
  readonly 'associative-k'?: number | undefined;
  readonly epochs: number;
  readonly k: number;
}

/**
 * The `associative` option of the DBN `train` builds: on when the training rows have class
 * labels and `--associative` is not 0 (library defaults for the rest, `ASSOCIATIVE_DEFAULTS`); off for peer training (the associative layer is not
 * exchanged between peers), saying so.
 */
export function associativeFor(
  a: AssociativeArgs,
  train: Dataset,
  peers: boolean,
  progress: Pick<Progress, 'line'>,
): AssociativeOptions | undefined {
  for (const [flag, v] of [
    ['--associative', a.associative],
    ['--associative-epochs', a['associative-epochs']],
  ] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new InvalidOptionError(`${flag} must be an integer >= 0, got ${v}.`);
  }
  const k = a['associative-k'];
  if (k !== undefined && (!Number.isSafeInteger(k) || k < 1))
    throw new InvalidOptionError(`--associative-k must be an integer >= 1, got ${k}.`);
  if (a.associative === 0 || !(train.y instanceof Int32Array)) return undefined;
  if (peers) {
    progress.line('peer training: no associative top layer (it is not exchanged between peers); samples.png shows free samples');
    return undefined;
  }
  let classes = train.classes ?? 0;
  for (const v of train.y) classes = Math.max(classes, v + 1);
  if (classes < 2) return undefined;
  return { classes, nHidden: a.associative, epochs: a['associative-epochs'] ?? a.epochs, k: k ?? ASSOCIATIVE_DEFAULTS.k };
}

/** Trains the associative layer of `model` (if any) on the training rows, with a progress bar; reports free-energy test accuracy. */
export async function trainAssociativeLayer(
  model: Dbn,
  data: { readonly train: Dataset; readonly test: Dataset | undefined },
  o: {
    signal: AbortSignal;
    checkpoint: CheckpointOptions | undefined;
    metrics: MetricsWriter | undefined;
    progress: Progress;
    quiet: boolean;
  },
): Promise<void> {
  const mem = model.associative;
  const y = data.train.y;
  if (mem === undefined || !(y instanceof Int32Array)) return;
  const rbm = mem.rbm;
  if (rbm.epochsTrained >= rbm.options.epochs) return;
  const t0 = performance.now();
  const first = rbm.epochsTrained;
  let started = false;
  await model.pretrainAssociative(data.train.x, y, {
    signal: o.signal,
    ...(o.checkpoint === undefined ? {} : { checkpoint: o.checkpoint }),
    onBatch: (b) => {
      if (!started) {
        o.progress.start(
          `associative (${mem.nFeatures}+${mem.classes} labels→${mem.nHidden})`,
          b.batches * Math.max(1, rbm.options.epochs - first),
        );
        started = true;
      }
      o.progress.update((b.epoch - first) * b.batches + b.batch + 1, { epoch: b.epoch, recon: b.reconstructionError });
    },
    onEpoch: (m) => {
      o.metrics?.write({ phase: 'associative', ...m });
      if (!process.stderr.isTTY || o.quiet)
        o.progress.line(`associative epoch ${m.epoch}: recon ${fmt(m.reconstructionError)}  ${(m.elapsedMs / 1000).toFixed(1)}s`);
    },
  });
  o.progress.stop();
  let line = `trained the associative layer in ${((performance.now() - t0) / 1000).toFixed(1)}s`;
  const test = data.test;
  if (!o.signal.aborted && test?.y instanceof Int32Array) {
    const p = model.freeEnergyProba(test.x);
    let right = 0;
    for (let r = 0; r < p.rows; r++) {
      let best = 0;
      for (let k = 1; k < p.cols; k++) if (p.data[r * p.cols + k]! > p.data[r * p.cols + best]!) best = k;
      if (best === test.y[r]) right++;
    }
    line += `; free-energy test accuracy ${((100 * right) / p.rows).toFixed(2)}%`;
    o.metrics?.write({ phase: 'associative-test', accuracy: right / p.rows, rows: p.rows });
  }
  o.progress.line(line);
}

/**
 * The main job's `samples.png`: with an associative layer, one row per class of
 * {@link SAMPLES_PER_CLASS} label-clamped samples (1000 Gibbs steps each); else 64 free samples.
 */
export function samplesPicture(model: Dbn, side: number, seed: number): Buffer {
  const classes = model.associative === undefined ? undefined : Array.from({ length: model.associative.classes }, (_, k) => k);
  const count = classes === undefined ? 64 : SAMPLES_PER_CLASS;
  const s = sampleRows(model, classes, count, { steps: 1000, seed });
  return renderGrid(s.data, s.rows, { width: side, height: side, scale: 2, ...(classes === undefined ? {} : { columns: count }) });
}
