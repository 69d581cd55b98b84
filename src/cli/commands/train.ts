/** `dbn-node train`: greedy pretraining, optional fine-tuning, a summary, pictures, a model file. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { shard } from '../../data/index.js';
import { Dbn, type LayerOptions } from '../../dbn/index.js';
import { type PeerGroup, reportingRounds } from '../../distributed/index.js';
import { InvalidOptionError, SyncError } from '../../errors.js';
import type { Backend } from '../../kernels/index.js';
import {
  type ComputeArgs,
  type GlobalArgs,
  computeOptions,
  checkSeed,
  openBackend,
  parseIntList,
  parseJsonConfig,
  squareSide,
} from '../common.js';
import { type DataArgs, type LoadedData, dataOptions, loadData } from '../data-options.js';
import { describeFatalCheckpoint, rejoinAdvice, saveCheckpointOnFatal } from '../fatal-checkpoint.js';
import { renderGrid, writeFileAtomic } from '../images.js';
import { associativeFor, samplesPicture, trainAssociativeLayer } from '../associative.js';
import { MetricsWriter } from '../metrics.js';
import { type PeerArgs, type PeerConfig, peerOptions, resolvePeerArgs } from '../peer-options.js';
import { type PeerRun, startPeerRun } from '../peer-run.js';
import { type Progress, createProgress, fmt } from '../progress.js';
import { type ObserveArgs, Observer, observeOptions } from '../observe/session.js';

/** Flags of `train`. */
export interface TrainArgs extends GlobalArgs, ComputeArgs, DataArgs, PeerArgs, ObserveArgs {
  readonly layers: string | readonly (number | LayerOptions)[];
  readonly epochs: number;
  readonly 'learning-rate'?: number | undefined;
  readonly 'batch-size': number;
  readonly k: number;
  readonly pcd: boolean;
  readonly visible: 'bernoulli' | 'gaussian';
  readonly hidden: 'bernoulli' | 'noisy-relu';
  readonly 'weight-decay'?: number | undefined;
  readonly 'sparsity-cost'?: number | undefined;
  readonly 'sparsity-target'?: number | undefined;
  readonly finetune: number;
  readonly 'finetune-learning-rate': number;
  readonly dropout: number;
  readonly patience: number;
  readonly out: string;
  readonly force: boolean;
  readonly metrics?: string | undefined;
  readonly pictures: boolean;
  readonly 'checkpoint-every'?: number | undefined;
  readonly resume?: string | undefined;
  readonly associative: number;
  readonly 'associative-epochs'?: number | undefined;
  readonly 'associative-k'?: number | undefined;
}

function builder(y: Argv): Argv<TrainArgs> {
  return observeOptions(peerOptions(dataOptions(computeOptions(y))))
    .option('layers', {
      type: 'string',
      default: '500,500',
      describe: 'hidden units per layer, e.g. 500,500,2000 (a config file may give per-layer objects)',
      group: 'Model:',
    })
    .option('epochs', { type: 'number', default: 5, describe: 'pretraining epochs per layer', group: 'Model:' })
    .option('learning-rate', {
      type: 'number',
      describe: 'pretraining learning rate (default 0.1; 0.01 for Gaussian visible units)',
      group: 'Model:',
    })
    .option('batch-size', { type: 'number', default: 100, group: 'Model:' })
    .option('k', { type: 'number', default: 1, describe: 'Gibbs steps of CD-k', group: 'Model:' })
    .option('pcd', { type: 'boolean', default: false, describe: 'persistent contrastive divergence', group: 'Model:' })
    .option('visible', {
      choices: ['bernoulli', 'gaussian'] as const,
      default: 'bernoulli' as const,
      describe: 'first-layer visible units',
      group: 'Model:',
    })
    .option('hidden', { choices: ['bernoulli', 'noisy-relu'] as const, default: 'bernoulli' as const, group: 'Model:' })
    .option('weight-decay', { type: 'number', group: 'Model:' })
    .option('sparsity-cost', { type: 'number', group: 'Model:' })
    .option('sparsity-target', { type: 'number', group: 'Model:' })
    .option('associative', {
      type: 'number',
      default: 500,
      describe:
        'hidden units of the top-level associative memory over [top features, label] (Hinton 2006; trained when the data has labels; 0 = none)',
      group: 'Model:',
    })
    .option('associative-epochs', { type: 'number', describe: 'epochs of the associative memory (default: --epochs)', group: 'Model:' })
    .option('associative-k', {
      type: 'number',
      describe: 'Gibbs steps of its CD-k (default 3: more varied samples than CD-1, at about twice its training time)',
      group: 'Model:',
    })
    .option('finetune', {
      type: 'number',
      default: 30,
      describe: 'supervised fine-tuning epochs (0 = pretraining only; needs labels)',
      group: 'Fine-tuning:',
    })
    .option('finetune-learning-rate', { type: 'number', default: 0.1, group: 'Fine-tuning:' })
    .option('dropout', { type: 'number', default: 0, describe: 'hidden-layer dropout while fine-tuning', group: 'Fine-tuning:' })
    .option('patience', { type: 'number', default: 8, describe: 'early-stopping patience (epochs)', group: 'Fine-tuning:' })
    .option('out', {
      type: 'string',
      default: 'dbn-run',
      describe: 'output directory: model.dbn, filters.png, samples.png',
      group: 'Output:',
    })
    .option('force', { type: 'boolean', default: false, describe: 'replace files already in --out', group: 'Output:' })
    .option('metrics', { type: 'string', describe: 'append one JSON object per epoch per layer to this .jsonl file', group: 'Output:' })
    .option('pictures', {
      type: 'boolean',
      default: true,
      describe: 'write filters.png and samples.png (square images only)',
      group: 'Output:',
    })
    .option('checkpoint-every', { type: 'number', describe: 'write --out/checkpoint.dbn every N epochs', group: 'Output:' })
    .option('resume', { type: 'string', describe: 'continue from a checkpoint written by --checkpoint-every', group: 'Output:' })
    .config('config', 'JSON file of options (the same names as the flags; flags given on the command line win)', parseJsonConfig)
    .example('$0 train', 'pretrain 784-500-500 on the bundled real digits, fine-tune, write dbn-run/')
    .example(
      '$0 train --data fashion --layers 1000,1000 --epochs 10 --finetune 50 --out fashion-run',
      'Fashion-MNIST (apt-get install dataset-fashion-mnist)',
    )
    .example('$0 train --data tx.csv --label Class --visible gaussian --layers 64 --out fraud', 'a CSV with a label column')
    .example(
      '$0 train --bind tcp://10.0.0.1:5555 --keys keys/ --peers tcp://10.0.0.2:5555#<its curve.pub>,tcp://10.0.0.3:5555#<…> --shard 1/3 --out run1',
      'one of three peers, each on a third of the rows; the three start together and end with the same model (docs/peer-training.md)',
    ) as unknown as Argv<TrainArgs>;
}

function layerList(a: TrainArgs): LayerOptions[] {
  const common: Record<string, unknown> = {
    epochs: a.epochs,
    batchSize: a['batch-size'],
    k: a.k,
    persistent: a.pcd,
    hidden: a.hidden,
  };
  for (const [flag, key] of [
    ['learning-rate', 'learningRate'],
    ['weight-decay', 'weightDecay'],
    ['sparsity-cost', 'sparsityCost'],
    ['sparsity-target', 'sparsityTarget'],
  ] as const) {
    if (a[flag] !== undefined) common[key] = a[flag];
  }
  const spec = a.layers;
  const items: (number | LayerOptions)[] = typeof spec === 'string' ? parseIntList('--layers', spec) : Array.isArray(spec) ? [...spec] : [];
  if (items.length === 0) throw new InvalidOptionError(`--layers must name at least one layer (e.g. 500,500).`);
  return items.map((it, i) => {
    const own = typeof it === 'number' ? { nHidden: it } : it;
    if (typeof own !== 'object' || own === null)
      throw new InvalidOptionError(`layer ${i} of --layers must be a number or an options object.`);
    return { ...common, ...(i === 0 ? { visible: a.visible } : {}), ...own } as LayerOptions;
  });
}

/** Everything a training run holds, for the steps below. */
interface RunContext {
  readonly a: ArgumentsCamelCase<TrainArgs>;
  readonly data: LoadedData;
  readonly classes: number | undefined;
  readonly progress: Progress;
  readonly metrics: MetricsWriter | undefined;
  readonly abort: AbortController;
  readonly checkpointFile: string;
  readonly collective: PeerGroup | undefined;
  readonly observer: Observer;
}

function checkTrainArgs(a: TrainArgs): void {
  checkSeed(a.seed);
  for (const [flag, v, min] of [
    ['--epochs', a.epochs, 0],
    ['--finetune', a.finetune, 0],
    ['--batch-size', a['batch-size'], 1],
    ['--k', a.k, 1],
    ['--patience', a.patience, 1],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new InvalidOptionError(`${flag} must be an integer >= ${min}, got ${v}.`);
  }
}

function outputFiles(a: TrainArgs, singleProcess: boolean): { modelFile: string; checkpointFile: string; pictures: [string, string] } {
  const out = a.out;
  const files = {
    modelFile: path.join(out, 'model.dbn'),
    checkpointFile: path.join(out, 'checkpoint.dbn'),
    pictures: [path.join(out, 'filters.png'), path.join(out, 'samples.png')] as [string, string],
  };
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new InvalidOptionError(`--out: '${out}' exists and is not a directory.`);
  if (!a.force) {
    // A fresh single-process run would also replace an earlier run's checkpoint; a resumed one
    // continues its own (a restarted peer takes a snapshot from the others instead).
    const resumingFrom = a.resume === undefined ? undefined : path.resolve(a.resume);
    const kept = !singleProcess || path.resolve(files.checkpointFile) === resumingFrom ? [] : [files.checkpointFile];
    for (const f of [files.modelFile, ...files.pictures, ...kept]) {
      if (fs.existsSync(f)) throw new InvalidOptionError(`--out: '${f}' exists; pass --force to overwrite it (or choose another --out).`);
    }
  }
  return files;
}

function shardOf(data: LoadedData, peerConfig: PeerConfig): LoadedData {
  if (peerConfig.shard === undefined) return data;
  const { index, count } = peerConfig.shard;
  if (count > data.train.x.rows)
    throw new InvalidOptionError(`--shard ${index + 1}/${count}: there are only ${data.train.x.rows} training rows.`);
  const part = shard(data.train, index, count);
  return { ...data, train: part, description: `${data.description}; shard ${index + 1}/${count}: ${part.x.rows} training rows` };
}

/** The options `/status` shows (paths and sizes, no key material). */
function runOptions(a: TrainArgs): Record<string, unknown> {
  const keys = [
    'layers',
    'epochs',
    'learning-rate',
    'batch-size',
    'k',
    'pcd',
    'visible',
    'hidden',
    'finetune',
    'finetune-learning-rate',
    'data',
    'limit',
    'backend',
    'seed',
    'out',
    'bind',
    'advertise',
    'shard',
    'run-id',
    'heartbeat-ms',
    'peer-timeout-ms',
    'plaintext',
  ] as const;
  return Object.fromEntries(
    keys.flatMap((k) =>
      (a as unknown as Record<string, unknown>)[k] === undefined ? [] : [[k, (a as unknown as Record<string, unknown>)[k]]],
    ),
  );
}

/** Every option that decides which rounds a run has and what they compute (peers must agree on it). */
function schedule(a: TrainArgs, classes: number | undefined): Record<string, unknown> {
  return {
    finetune: a.finetune,
    finetuneLearningRate: a['finetune-learning-rate'],
    dropout: a.dropout,
    patience: a.patience,
    classes: classes ?? null,
    visible: a.visible,
  };
}

async function handler(a: ArgumentsCamelCase<TrainArgs>): Promise<void> {
  checkTrainArgs(a);
  const layers = layerList(a);
  const peerConfig = await resolvePeerArgs(a);
  const { modelFile, checkpointFile, pictures } = outputFiles(a, peerConfig === undefined);
  const observer = Observer.create(a, createProgress({ quiet: a.quiet }), runOptions(a));
  const progress = observer.progress;
  const full = loadData(a, a.seed, a.visible === 'gaussian');
  const classes = full.train.y instanceof Int32Array ? full.train.classes : undefined;
  const data = peerConfig === undefined ? full : shardOf(full, peerConfig);
  const { backend, line } = await openBackend(a.backend, a.debug);
  progress.line(line);
  progress.line(`data: ${data.description}`);
  const metrics = a.metrics === undefined ? undefined : new MetricsWriter(a.metrics);
  let model: Dbn | undefined;
  let peers: PeerRun | undefined;
  const abort = new AbortController();
  const onSignal = (): void => {
    progress.line('interrupted: finishing the current minibatch, then saving a checkpoint…');
    abort.abort();
    void peers?.group.leave();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let singleProcessTraining = false;
  try {
    await observer.serve();
    fs.mkdirSync(a.out, { recursive: true });
    model = createModel(a, data, layers, backend, peerConfig !== undefined, progress);
    observer.setModel(model);
    singleProcessTraining = peerConfig === undefined;
    if (peerConfig !== undefined) {
      peers = await startPeerRun(peerConfig, model, schedule(a, classes), a.out, (l) => progress.line(l), metrics, observer);
      model = peers.model;
      observer.setModel(model);
    }
    const ctx: RunContext = { a, data, classes, progress, metrics, abort, checkpointFile, collective: peers?.group, observer };
    if (peers?.finished !== true) await train(ctx, model);
    if (abort.signal.aborted) {
      saveCheckpoint(model, checkpointFile, progress, 'stopped early');
      process.exitCode = 130;
      return;
    }
    observer.phase('done');
    await peers?.finish();
    model.save(modelFile, { overwrite: true });
    singleProcessTraining = false;
    progress.line(`model saved to ${modelFile}`);
    if (a.pictures) writePictures(model, pictures, a.seed, progress);
  } catch (err) {
    if (peers !== undefined && model !== undefined && err instanceof SyncError && err.code === 'EABORTED') {
      saveCheckpoint(model, checkpointFile, progress, 'stopped early');
      process.exitCode = 130;
      return;
    }
    if (peers !== undefined && model !== undefined && err instanceof SyncError)
      progress.line(
        describeFatalCheckpoint(saveCheckpointOnFatal(model, checkpointFile), `peer training failed (${err.code})`, rejoinAdvice(err.code)),
      );
    if (singleProcessTraining && model !== undefined) {
      progress.stop();
      progress.line(describeFatalCheckpoint(saveCheckpointOnFatal(model, checkpointFile), 'training failed'));
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.stop();
    peers?.group.close();
    await observer.close();
    metrics?.close();
    model?.dispose();
    backend.dispose();
  }
}

/** The model to train: resumed from `--resume`, or new; with the data's description, scaler and split in its metadata. */
function createModel(
  a: ArgumentsCamelCase<TrainArgs>,
  data: LoadedData,
  layers: ReturnType<typeof layerList>,
  backend: Backend,
  asPeer: boolean,
  progress: Progress,
): Dbn {
  const associative = a.resume === undefined ? associativeFor(a, data.train, asPeer, progress) : undefined;
  const model =
    a.resume !== undefined
      ? Dbn.resume(a.resume, { backend })
      : new Dbn({ nVisible: data.train.x.cols, layers, backend, seed: a.seed, ...(associative === undefined ? {} : { associative }) });
  if (a.resume !== undefined) progress.line(`resumed from ${a.resume}`);
  model.metadata = {
    ...model.metadata,
    data: data.description,
    ...(data.scaler === undefined ? {} : { scaler: data.scaler }),
    training: data.training,
  };
  progress.line(`architecture: ${[model.nVisible, ...model.layers.map((l) => l.nHidden)].join('-')}`);
  return model;
}

function saveCheckpoint(model: Dbn, file: string, progress: Progress, why: string): void {
  model.save(file, { overwrite: true, trainingState: true });
  progress.line(`${why}; checkpoint saved to ${file} (continue with --resume ${file})`);
}

async function train(ctx: RunContext, model: Dbn): Promise<void> {
  const { a, data, progress, metrics, abort } = ctx;
  const checkpoint = a['checkpoint-every'] === undefined ? undefined : { path: ctx.checkpointFile, everyEpochs: a['checkpoint-every'] };
  const collective = ctx.collective === undefined ? {} : { collective: reportingRounds(ctx.collective) };
  const t0 = performance.now();
  let layerShown = -1;
  let firstEpoch = 0;
  await model.pretrain(data.train.x, {
    signal: abort.signal,
    ...collective,
    ...(checkpoint === undefined ? {} : { checkpoint }),
    ...(data.test === undefined ? {} : { validation: data.test.x }),
    onBatch: (layer, b) => {
      ctx.observer.batchDone('pretrain', layer);
      if (layer !== layerShown) {
        progress.stop();
        firstEpoch = b.epoch;
        const remaining = Math.max(1, model.layers[layer]!.options.epochs - firstEpoch);
        progress.start(`layer ${layer} (${model.layers[layer]!.nVisible}→${model.layers[layer]!.nHidden})`, b.batches * remaining);
        layerShown = layer;
      }
      progress.update((b.epoch - firstEpoch) * b.batches + b.batch + 1, { epoch: b.epoch, recon: b.reconstructionError });
    },
    onEpoch: (layer, m) => {
      metrics?.write({ phase: 'pretrain', layer, ...m });
      ctx.observer.pretrainEpoch(layer, m.epoch, m.reconstructionError, data.train.x.rows);
      if (!process.stderr.isTTY || a.quiet) {
        const extra = m.pseudoLogLikelihood === undefined ? '' : `  pseudo-LL ${fmt(m.pseudoLogLikelihood)}`;
        const gap = m.freeEnergyGap === undefined ? '' : `  F-gap ${fmt(m.freeEnergyGap)}`;
        progress.line(
          `layer ${layer} epoch ${m.epoch}: recon ${fmt(m.reconstructionError)}${extra}${gap}  ${(m.elapsedMs / 1000).toFixed(1)}s`,
        );
      }
    },
  });
  progress.stop();
  if (model.layers[0]!.isFitted) {
    progress.line(
      `pretrained ${model.layers.length} layer(s) in ${((performance.now() - t0) / 1000).toFixed(1)}s; reconstruction error ${fmt(model.layers[0]!.reconstructionError(take(data.train.x, 2000)))}`,
    );
  } else {
    progress.line('no pretraining (--epochs 0): the layers keep their initial weights');
  }
  if (abort.signal.aborted) return;
  if (model.associative !== undefined) ctx.observer.phase('associative');
  await trainAssociativeLayer(model, data, { signal: abort.signal, checkpoint, metrics, progress, quiet: a.quiet });
  if (abort.signal.aborted) return;
  if (a.finetune > 0 && data.train.y instanceof Int32Array) await fineTune(ctx, model, data.train.y, checkpoint);
  else if (a.finetune > 0) progress.line('no labels: skipped fine-tuning (pretraining only)');
}

async function fineTune(
  ctx: RunContext,
  model: Dbn,
  y: Int32Array,
  checkpoint: { path: string; everyEpochs: number } | undefined,
): Promise<void> {
  const { a, data, progress, metrics } = ctx;
  const t1 = performance.now();
  progress.start('fine-tuning', a.finetune);
  const res = await model.fineTune(data.train.x, y, {
    epochs: a.finetune,
    learningRate: a['finetune-learning-rate'],
    dropout: a.dropout,
    patience: a.patience,
    signal: ctx.abort.signal,
    ...(ctx.collective === undefined ? {} : { collective: reportingRounds(ctx.collective) }),
    ...(ctx.classes === undefined ? {} : { classes: ctx.classes }),
    ...(checkpoint === undefined ? {} : { checkpoint }),
    onBatch: () => ctx.observer.batchDone('finetune', model.layers.length),
    onEpoch: (m) => {
      metrics?.write({ phase: 'finetune', ...m });
      ctx.observer.fineTuneEpoch(m.epoch, m.loss, m.validationAccuracy, y.length);
      progress.update(m.epoch + 1, { loss: m.loss, 'val acc': m.validationAccuracy ?? Number.NaN });
      if (!process.stderr.isTTY || a.quiet) {
        progress.line(
          `fine-tune epoch ${m.epoch}: loss ${fmt(m.loss)}  train acc ${fmt(m.trainAccuracy)}  val acc ${fmt(m.validationAccuracy ?? Number.NaN)}`,
        );
      }
    },
  });
  progress.stop();
  progress.line(`fine-tuned ${res.epochs} epoch(s) in ${((performance.now() - t1) / 1000).toFixed(1)}s (best epoch ${res.bestEpoch})`);
  if (data.test?.y instanceof Int32Array) {
    const ev = model.evaluate(data.test.x, data.test.y);
    progress.line(`test accuracy ${(ev.accuracy * 100).toFixed(2)}%  log-loss ${fmt(ev.logLoss)}  (${data.test.x.rows} rows)`);
    metrics?.write({ phase: 'test', accuracy: ev.accuracy, logLoss: ev.logLoss, rows: data.test.x.rows });
  }
}

function writePictures(model: Dbn, pictures: readonly [string, string], seed: number, progress: Progress): void {
  const side = squareSide(model.nVisible);
  if (side === undefined) return;
  const count = Math.min(100, model.layers[0]!.nHidden);
  const w = model.layers[0]!.getParameters().weights;
  const filt = new Float32Array(count * model.nVisible);
  for (let j = 0; j < count; j++) for (let i = 0; i < model.nVisible; i++) filt[j * model.nVisible + i] = w.data[i * w.cols + j]!;
  writeFileAtomic(pictures[0], renderGrid(filt, count, { width: side, height: side, normalize: 'per-tile', scale: 2 }), true);
  if (model.isPretrained) {
    writeFileAtomic(pictures[1], samplesPicture(model, side, seed), true);
  }
  progress.line(`pictures: ${(model.isPretrained ? pictures : pictures.slice(0, 1)).join(', ')}`);
}

function take(x: { rows: number; cols: number; data: Float32Array }, n: number): { rows: number; cols: number; data: Float32Array } {
  const r = Math.min(n, x.rows);
  return { rows: r, cols: x.cols, data: x.data.subarray(0, r * x.cols) };
}

/** The `train` command. */
export const trainCommand: CommandModule<GlobalArgs, TrainArgs> = {
  command: 'train',
  describe: 'pretrain a DBN layer by layer (and fine-tune it when the data has labels)',
  builder: builder as unknown as CommandModule<GlobalArgs, TrainArgs>['builder'],
  handler,
};
