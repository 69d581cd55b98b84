/** `dbn-node train`: greedy pretraining, optional fine-tuning, a summary, pictures, a model file. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { shard } from '../../data/index.js';
import { Dbn, type LayerOptions, PeerTrainer, type PeerTrainingReport } from '../../dbn/index.js';
import { InvalidOptionError } from '../../errors.js';
import { Peer } from '../../sync/index.js';
import { type ComputeArgs, type GlobalArgs, computeOptions, checkSeed, openBackend, parseIntList, squareSide } from '../common.js';
import { type DataArgs, dataOptions, loadData } from '../data-options.js';
import { renderGrid, writeFileAtomic } from '../images.js';
import { associativeFor, samplesPicture, trainAssociativeLayer } from '../associative.js';
import { MetricsWriter } from '../metrics.js';
import { type PeerArgs, peerFingerprint, peerOptions, resolvePeerArgs } from '../peer-options.js';
import { createProgress, fmt } from '../progress.js';

/** Flags of `train`. */
export interface TrainArgs extends GlobalArgs, ComputeArgs, DataArgs, PeerArgs {
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
}

function builder(y: Argv): Argv<TrainArgs> {
  return peerOptions(dataOptions(computeOptions(y), 'train'))
    .option('layers', { type: 'string', default: '500,500', describe: 'hidden units per layer, e.g. 500,500,2000 (a config file may give per-layer objects)', group: 'Model:' })
    .option('epochs', { type: 'number', default: 5, describe: 'pretraining epochs per layer', group: 'Model:' })
    .option('learning-rate', { type: 'number', describe: 'pretraining learning rate (default 0.1; 0.01 for Gaussian visible units)', group: 'Model:' })
    .option('batch-size', { type: 'number', default: 100, group: 'Model:' })
    .option('k', { type: 'number', default: 1, describe: 'Gibbs steps of CD-k', group: 'Model:' })
    .option('pcd', { type: 'boolean', default: false, describe: 'persistent contrastive divergence', group: 'Model:' })
    .option('visible', { choices: ['bernoulli', 'gaussian'] as const, default: 'bernoulli' as const, describe: 'first-layer visible units', group: 'Model:' })
    .option('hidden', { choices: ['bernoulli', 'noisy-relu'] as const, default: 'bernoulli' as const, group: 'Model:' })
    .option('weight-decay', { type: 'number', group: 'Model:' })
    .option('sparsity-cost', { type: 'number', group: 'Model:' })
    .option('sparsity-target', { type: 'number', group: 'Model:' })
    .option('associative', {
      type: 'number',
      default: 500,
      describe: 'hidden units of the top-level associative memory over [top features, label] (Hinton 2006; trained when the data has labels; 0 = none)',
      group: 'Model:',
    })
    .option('associative-epochs', { type: 'number', describe: 'epochs of the associative memory (default: --epochs)', group: 'Model:' })
    .option('finetune', { type: 'number', default: 30, describe: 'supervised fine-tuning epochs (0 = pretraining only; needs labels)', group: 'Fine-tuning:' })
    .option('finetune-learning-rate', { type: 'number', default: 0.1, group: 'Fine-tuning:' })
    .option('dropout', { type: 'number', default: 0, describe: 'hidden-layer dropout while fine-tuning', group: 'Fine-tuning:' })
    .option('patience', { type: 'number', default: 8, describe: 'early-stopping patience (epochs)', group: 'Fine-tuning:' })
    .option('out', { type: 'string', default: 'dbn-run', describe: 'output directory: model.dbn, filters.png, samples.png', group: 'Output:' })
    .option('force', { type: 'boolean', default: false, describe: 'replace files already in --out', group: 'Output:' })
    .option('metrics', { type: 'string', describe: 'append one JSON object per epoch per layer to this .jsonl file', group: 'Output:' })
    .option('pictures', { type: 'boolean', default: true, describe: 'write filters.png and samples.png (square images only)', group: 'Output:' })
    .option('checkpoint-every', { type: 'number', describe: 'write --out/checkpoint.dbn every N epochs', group: 'Output:' })
    .option('resume', { type: 'string', describe: 'continue from a checkpoint written by --checkpoint-every', group: 'Output:' })
    .config('config', 'JSON file of options (the same names as the flags; flags given on the command line win)')
    .example('$0 train', 'pretrain 784-500-500 on the bundled real digits, fine-tune, write dbn-run/')
    .example('$0 train --data fashion --layers 1000,1000 --epochs 10 --finetune 50 --out fashion-run', 'Fashion-MNIST (apt-get install dataset-fashion-mnist)')
    .example('$0 train --data tx.csv --label Class --visible gaussian --layers 64 --out fraud', 'a CSV with a label column')
    .example(
      '$0 train --bind tcp://10.0.0.1:5555 --keys keys/ --peers tcp://10.0.0.2:5555#<its curve.pub>,tcp://10.0.0.3:5555#<…> --shard 1/3 --out run1',
      'one of three peers, each on a third of the rows (see src/dbn/PEER-TRAINING.md)',
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
  for (const [flag, key] of [['learning-rate', 'learningRate'], ['weight-decay', 'weightDecay'], ['sparsity-cost', 'sparsityCost'], ['sparsity-target', 'sparsityTarget']] as const) {
    if (a[flag] !== undefined) common[key] = a[flag];
  }
  const spec = a.layers;
  const items: (number | LayerOptions)[] = typeof spec === 'string' ? parseIntList('--layers', spec) : Array.isArray(spec) ? [...spec] : [];
  if (items.length === 0) throw new InvalidOptionError(`--layers must name at least one layer (e.g. 500,500).`);
  return items.map((it, i) => {
    const own = typeof it === 'number' ? { nHidden: it } : it;
    if (typeof own !== 'object' || own === null) throw new InvalidOptionError(`layer ${i} of --layers must be a number or an options object.`);
    return { ...common, ...(i === 0 ? { visible: a.visible } : {}), ...own } as LayerOptions;
  });
}

async function handler(a: ArgumentsCamelCase<TrainArgs>): Promise<void> {
  checkSeed(a.seed);
  for (const [flag, v, min] of [['--epochs', a.epochs, 0], ['--finetune', a.finetune, 0], ['--batch-size', a['batch-size'], 1], ['--k', a.k, 1], ['--patience', a.patience, 1]] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new InvalidOptionError(`${flag} must be an integer >= ${min}, got ${v}.`);
  }
  const layers = layerList(a);
  const peerConfig = await resolvePeerArgs(a);
  const out = a.out;
  const modelFile = path.join(out, 'model.dbn');
  const checkpointFile = path.join(out, 'checkpoint.dbn');
  const pictures = [path.join(out, 'filters.png'), path.join(out, 'samples.png')];
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new InvalidOptionError(`--out: '${out}' exists and is not a directory.`);
  if (!a.force && a.resume === undefined) {
    for (const f of [modelFile, ...pictures]) {
      if (fs.existsSync(f)) throw new InvalidOptionError(`--out: '${f}' exists; pass --force to overwrite it (or choose another --out).`);
    }
  }
  const progress = createProgress({ quiet: a.quiet });
  let data = loadData(a, a.seed, a.visible === 'gaussian');
  if (peerConfig?.shard !== undefined) {
    const { index, count } = peerConfig.shard;
    if (count > data.train.x.rows) throw new InvalidOptionError(`--shard ${index + 1}/${count}: there are only ${data.train.x.rows} training rows.`);
    const part = shard(data.train, index, count);
    data = { ...data, train: part, description: `${data.description}; shard ${index + 1}/${count}: ${part.x.rows} training rows` };
  }
  const { backend, line } = await openBackend(a.backend);
  progress.line(line);
  progress.line(`data: ${data.description}`);
  const metrics = a.metrics === undefined ? undefined : new MetricsWriter(a.metrics);
  let dbn: Dbn | undefined;
  let peer: Peer | undefined;
  let trainer: PeerTrainer | undefined;
  const abort = new AbortController();
  const onSigint = (): void => {
    progress.line('interrupted: finishing the current minibatch, then saving a checkpoint…');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  try {
    fs.mkdirSync(out, { recursive: true });
    if (a.resume !== undefined) {
      dbn = Dbn.resume(a.resume, { backend });
      progress.line(`resumed from ${a.resume}`);
    } else {
      const associative = associativeFor(a, data.train, peerConfig !== undefined, progress);
      dbn = new Dbn({ nVisible: data.train.x.cols, layers, backend, seed: a.seed, ...(associative === undefined ? {} : { associative }) });
    }
    const model = dbn;
    model.metadata = { ...model.metadata, data: data.description, ...(data.scaler === undefined ? {} : { scaler: data.scaler }) };
    const checkpoint = a['checkpoint-every'] === undefined ? undefined : { path: checkpointFile, everyEpochs: a['checkpoint-every'] };
    const trainX = data.train;
    progress.line(`architecture: ${[model.nVisible, ...model.layers.map((l) => l.nHidden)].join('-')}`);
    if (peerConfig !== undefined) {
      peer = await Peer.create({ ...peerConfig.peer, fingerprint: peerFingerprint(model) });
      progress.line(`peer: ${peer.seedAddress} (sender ${peer.senderId}, run ${peerConfig.peer.runId})`);
      metrics?.write({ phase: 'sync', event: 'start', senderId: peer.senderId, address: peer.seedAddress, runId: peerConfig.peer.runId });
      trainer = new PeerTrainer(model, peer, { ...peerConfig.trainer, onReport: (r) => reportSync(r, metrics, progress) });
      const j = await trainer.join(peerConfig.join);
      progress.line(
        j.snapshot
          ? `joined: weights from peer ${j.from ?? '?'} (stage ${j.stage}, epoch ${j.epochs}); ${j.peers} peer(s) alive`
          : `joined: ${j.peers} peer(s) alive; starting from the shared initial weights`,
      );
    }
    const runner: Pick<Dbn, 'pretrain' | 'fineTune'> = trainer ?? model;
    const t0 = performance.now();
    let layerShown = -1;
    let firstEpoch = 0;
    if (trainer?.runFinished === true) progress.line('the run had already finished: took its final weights');
    await runner.pretrain(trainX.x, {
      signal: abort.signal,
      ...(checkpoint === undefined ? {} : { checkpoint }),
      ...(data.test === undefined ? {} : { validation: data.test.x }),
      onBatch: (layer, b) => {
        if (layer !== layerShown) {
          progress.stop();
          firstEpoch = b.epoch;
          const remaining = Math.max(1, model.layers[layer]!.options.epochs - firstEpoch);
          progress.start(`layer ${layer} (${model.layers[layer]!.nVisible}→${model.layers[layer]!.nHidden})`, b.batches * remaining);
          layerShown = layer;
        }
        const done = (b.epoch - firstEpoch) * b.batches + b.batch + 1;
        progress.update(done, { epoch: b.epoch, recon: b.reconstructionError });
      },
      onEpoch: (layer, m) => {
        metrics?.write({ phase: 'pretrain', layer, ...m });
        if (!process.stderr.isTTY || a.quiet) {
          const extra = m.pseudoLogLikelihood === undefined ? '' : `  pseudo-LL ${fmt(m.pseudoLogLikelihood)}`;
          const gap = m.freeEnergyGap === undefined ? '' : `  F-gap ${fmt(m.freeEnergyGap)}`;
          progress.line(`layer ${layer} epoch ${m.epoch}: recon ${fmt(m.reconstructionError)}${extra}${gap}  ${(m.elapsedMs / 1000).toFixed(1)}s`);
        }
      },
    });
    progress.stop();
    const pretrainS = (performance.now() - t0) / 1000;
    progress.line(`pretrained ${model.layers.length} layer(s) in ${pretrainS.toFixed(1)}s; reconstruction error ${fmt(model.layers[0]!.reconstructionError(take(trainX.x, 2000)))}`);
    if (!abort.signal.aborted) await trainAssociativeLayer(model, data, { signal: abort.signal, checkpoint, metrics, progress, quiet: a.quiet });
    if (!abort.signal.aborted && a.finetune > 0 && data.train.y instanceof Int32Array && trainer?.runFinished !== true) {
      const t1 = performance.now();
      if (trainer !== undefined) progress.line('fine-tuning as a peer: no early stopping (every peer ends with the same weights)');
      progress.start('fine-tuning', a.finetune);
      const res = await runner.fineTune(data.train.x, data.train.y, {
        epochs: a.finetune,
        learningRate: a['finetune-learning-rate'],
        dropout: a.dropout,
        ...(trainer === undefined ? { patience: a.patience } : {}),
        signal: abort.signal,
        ...(checkpoint === undefined ? {} : { checkpoint }),
        onEpoch: (m) => {
          metrics?.write({ phase: 'finetune', ...m });
          progress.update(m.epoch + 1, { loss: m.loss, 'val acc': m.validationAccuracy ?? Number.NaN });
          if (!process.stderr.isTTY || a.quiet) {
            progress.line(`fine-tune epoch ${m.epoch}: loss ${fmt(m.loss)}  train acc ${fmt(m.trainAccuracy)}  val acc ${fmt(m.validationAccuracy ?? Number.NaN)}`);
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
    } else if (a.finetune > 0 && !(data.train.y instanceof Int32Array)) {
      progress.line('no labels: skipped fine-tuning (pretraining only)');
    }
    if (trainer !== undefined && abort.signal.aborted) {
      await trainer.stop();
      progress.line('published the last delta');
    } else if (trainer !== undefined) {
      await trainer.finish();
      const s = trainer.stats();
      progress.line(
        `peers: published ${s.published}, applied ${s.applied}, rejected ${Object.values(s.rejected).reduce((x, y) => x + y, 0)}, gaps ${s.transport.gaps}, ` +
          `divergence ${s.divergence === null ? 'n/a' : fmt(s.divergence)} (${s.peersCompared} peer(s)), sync ${fmt(s.syncMs / 1000)}s`,
      );
    }
    if (abort.signal.aborted) {
      model.save(checkpointFile, { overwrite: true, trainingState: true });
      progress.line(`stopped early; checkpoint saved to ${checkpointFile} (continue with --resume ${checkpointFile})`);
      process.exitCode = 130;
      return;
    }
    model.save(modelFile, { overwrite: true });
    progress.line(`model saved to ${modelFile}`);
    const side = squareSide(model.nVisible);
    if (a.pictures && side !== undefined) {
      const count = Math.min(100, model.layers[0]!.nHidden);
      const w = model.layers[0]!.getParameters().weights;
      const filt = new Float32Array(count * model.nVisible);
      for (let j = 0; j < count; j++) for (let i = 0; i < model.nVisible; i++) filt[j * model.nVisible + i] = w.data[i * w.cols + j]!;
      writeFileAtomic(pictures[0]!, renderGrid(filt, count, { width: side, height: side, normalize: 'per-tile', scale: 2 }), true);
      writeFileAtomic(pictures[1]!, samplesPicture(model, side, a.seed), true);
      progress.line(`pictures: ${pictures.join(', ')}`);
    }
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    progress.stop();
    trainer?.close();
    await peer?.close();
    metrics?.close();
    dbn?.dispose();
    backend.dispose();
  }
}

/** Peer reports: every one to --metrics; notable ones as a line. */
function reportSync(r: PeerTrainingReport, metrics: MetricsWriter | undefined, progress: { line(text: string): void }): void {
  metrics?.write({ phase: 'sync', ...r });
  if (r.event === 'peer-joined' || r.event === 'peer-lost' || r.event === 'barrier' || r.event === 'anti-entropy') progress.line(`peer ${r.event}: ${r.detail ?? ''}`);
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
