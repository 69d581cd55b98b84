/**
 * Exchange topologies for peer training (issue 11, point 5; not part of `npm test`): for N = 2,
 * 4, 8 replicas, what each topology costs in minibatches to a fixed accuracy and in bytes per
 * peer per epoch.
 *
 * A ONE-PROCESS SIMULATION: the N replicas of the same `Dbn` run in this process over in-memory
 * collectives implementing the `Collective` interface the real exchange (ZeroMQ `PeerGroup`)
 * implements (bench/topologies/collectives.ts). No sockets: minibatch counts, accuracies,
 * divergence and bytes are those of the protocol; the wall times are not those of N machines.
 *
 * Topologies:
 * - `allreduce`: the exact sum by the sharded all-reduce (what the CLI runs);
 * - `sparse:F`: all-to-all SPARSE deltas, the top F of each tensor with error feedback (the
 *   async mode's sparse encoding and the wire's sparse frame), every replica applying the same
 *   sum; `sparse-noflush:F` without sending the residual whole at the end of a stage;
 * - `gossip:ring` / `gossip:hypercube`: D-PSGD, each replica stepping with its own gradient and
 *   averaging its parameters with its neighbours every minibatch round; replicas differ.
 *
 * Schedule: bench/scaling.ts's (`dbn-node train --limit 5000 --epochs 1 --finetune 10
 * --patience 1000 --associative 0 --seed 1`: 784-500-500, 4,000 training rows of the bundled
 * digits, 1,000 test rows, minibatch 100 over all replicas), replica i on shard i/N as the CLI
 * cuts it, the same held-out validation rows (10 % of each shard) and target (0.82). `--seed`
 * acts as the CLI's (the test split and every model's seed).
 *
 * Usage: tsx bench/topologies.ts [--topologies allreduce,sparse:0.01,sparse:0.1,gossip:ring,gossip:hypercube]
 *        [--peers 2,4,8] [--limit 5000] [--epochs 1] [--finetune 10] [--target 0.82] [--seed 1] [--no-single]
 * Prints one JSON line per run (N = 1: one process, no collective, first), then a summary line.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadData } from '../src/cli/data-options.js';
import { deriveSeeds } from '../src/dbn/layer-specs.js';
import { splitValidation } from '../src/dbn/fine-tune.js';
import type { ResolvedFineTune } from '../src/dbn/options.js';
import { shard } from '../src/data/split.js';
import { Dbn, defaultBackend, hostKernelsFor } from '../src/index.js';
import type { Collective } from '../src/rbm/collective.js';
import type { HostMatrix } from '../src/validate.js';
import { machine } from './machine.js';
import {
  type RoundPart,
  type Topology,
  allReduceTopology,
  gossipTopology,
  hypercube,
  inMemoryGroup,
  ring,
  sparseTopology,
  stageParameters,
} from './topologies/collectives.js';

const { values } = parseArgs({
  options: {
    topologies: { type: 'string', default: 'allreduce,sparse:0.01,sparse:0.1,gossip:ring,gossip:hypercube' },
    peers: { type: 'string', default: '2,4,8' },
    limit: { type: 'string', default: '5000' },
    epochs: { type: 'string', default: '1' },
    finetune: { type: 'string', default: '10' },
    target: { type: 'string', default: '0.82' },
    seed: { type: 'string', default: '1' },
    'no-single': { type: 'boolean', default: false },
  },
});

const SIZES = [784, 500, 500];
const LAYERS = SIZES.length - 1;
const BATCH = 100;
const SEED = Number(values.seed);
const pretrainEpochs = Number(values.epochs);
const finetuneEpochs = Number(values.finetune);
const target = Number(values.target);
const { backend, reason } = defaultBackend();
const host = hostKernelsFor(backend);
const data = loadData({ data: 'digits', limit: Number(values.limit), 'test-fraction': 0.2, scale: 'auto' } as never, SEED, false);
const testX = data.test!.x;
const testY = data.test!.y as Int32Array;
const splitSeed = deriveSeeds(SEED, LAYERS + 4)[LAYERS + 1]!;

/** A replica's rows: the pretraining shard, and its fine-tuning split exactly as `Dbn.fineTune` makes it. */
interface ReplicaRows {
  readonly x: HostMatrix;
  readonly train: HostMatrix;
  readonly trainY: Int32Array;
  readonly valid: HostMatrix;
  readonly validY: Int32Array;
}

function replicaRows(index: number, count: number): ReplicaRows {
  const part = count === 1 ? data.train : shard(data.train, index, count);
  const y = part.y as Int32Array;
  const split = splitValidation(part.x, y, { validationFraction: 0.1 } as ResolvedFineTune, undefined, splitSeed);
  return { x: part.x, train: split.train, trainY: split.trainY, valid: split.valid!, validY: split.validY! };
}

function concatRows(parts: readonly HostMatrix[]): HostMatrix {
  const cols = parts[0]!.cols;
  const out = new Float32Array(parts.reduce((s, p) => s + p.rows * cols, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p.data.subarray(0, p.rows * cols), at);
    at += p.rows * cols;
  }
  return { rows: at / cols, cols, data: out };
}

function newModel(): Dbn {
  const layer = { nHidden: 500, epochs: pretrainEpochs, batchSize: BATCH, k: 1, persistent: false, hidden: 'bernoulli' as const };
  return new Dbn({ nVisible: 784, layers: [{ ...layer, visible: 'bernoulli' as const }, layer], backend, seed: SEED });
}

/** The parameters of `stages` of a model (RBMs 0 … LAYERS − 1, the classifier LAYERS), host copies. */
function parametersOf(model: Dbn, stages: readonly number[]): Float32Array[] {
  return stages.flatMap((stage) => stageParameters(model, stage).arrays);
}

const EVERY_STAGE = Array.from({ length: LAYERS + 1 }, (_, stage) => stage);

/** The largest absolute difference between replica 0's parameters of `stages` and any other replica's. */
function largestDifference(models: readonly Dbn[], stages: readonly number[] = EVERY_STAGE): number {
  const all = models.map((m) => parametersOf(m, stages));
  let largest = 0;
  for (const other of all.slice(1)) {
    for (const [t, tensor] of all[0]!.entries()) {
      const o = other[t]!;
      for (let i = 0; i < tensor.length; i++) largest = Math.max(largest, Math.abs(tensor[i]! - o[i]!));
    }
  }
  return largest;
}

/** Writes the element-wise mean of `models`' parameters (every stage) into `into`. */
function averageInto(into: Dbn, models: readonly Dbn[]): void {
  for (let stage = 0; stage <= LAYERS; stage++) {
    const each = models.map((m) => stageParameters(m, stage).arrays);
    const mean = each[0]!.map((a) => new Float32Array(a.length));
    for (const arrays of each) {
      for (const [t, a] of arrays.entries()) {
        const sum = mean[t]!;
        for (let i = 0; i < a.length; i++) sum[i] = sum[i]! + a[i]! / models.length;
      }
    }
    if (stage < LAYERS) {
      const rbm = into.layers[stage]!;
      const p = rbm.getParameters();
      rbm.setParameters({ weights: { ...p.weights, data: mean[0]! }, visibleBias: mean[1]!, hiddenBias: mean[2]! });
    } else {
      const c = models[0]!.getClassifierParameters();
      into.setClassifierParameters({
        activations: c.activations,
        layers: c.layers.map((l, i) => ({ weights: { ...l.weights, data: mean[2 * i]! }, bias: mean[2 * i + 1]! })),
      });
    }
  }
}

/** Per fine-tuning epoch: the validation accuracy the run sees (summed over replicas), and for differing replicas the mean model's and the worst's on all validation rows. */
interface EpochRecord {
  epoch: number;
  validationAccuracy: number;
  meanModelValidation?: number;
  worstReplicaValidation?: number;
  /** Of the classifier (the RBMs are frozen after pretraining). */
  largestDifference?: number;
}

function firstReaching(records: readonly EpochRecord[], key: keyof EpochRecord): number | null {
  const hit = records.find((r) => (r[key] ?? -1) >= target);
  return hit === undefined ? null : hit.epoch + 1;
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

interface Run {
  readonly models: Dbn[];
  readonly rows: ReplicaRows[];
  readonly records: EpochRecord[];
  readonly sent: Float64Array;
}

async function train(rows: ReplicaRows[], models: Dbn[], collectives: (Collective | undefined)[], records: EpochRecord[]): Promise<void> {
  await Promise.all(
    models.map(async (model, k) => {
      const r = rows[k]!;
      const collective = collectives[k];
      await model.pretrain(r.x, { validation: testX, ...(collective === undefined ? {} : { collective }) });
      await model.fineTune(r.train, r.trainY, {
        epochs: finetuneEpochs,
        learningRate: 0.1,
        dropout: 0,
        patience: 1000,
        classes: 10,
        validation: { x: r.valid, y: r.validY },
        ...(collective === undefined ? {} : { collective }),
        onEpoch: (m) => {
          if (collective === undefined) records.push({ epoch: m.epoch, validationAccuracy: m.validationAccuracy! });
        },
      });
    }),
  );
}

async function runTopology(n: number, make: ((models: Dbn[]) => Topology) | undefined): Promise<Run & { topology: Topology | undefined }> {
  const rows = Array.from({ length: n }, (_, k) => replicaRows(k, n));
  const models = rows.map(() => newModel());
  const records: EpochRecord[] = [];
  const sent = new Float64Array(n);
  if (make === undefined) {
    await train(rows, models, [undefined], records);
    return { models, rows, records, sent, topology: undefined };
  }
  const topology = make(models);
  const unionValid = concatRows(rows.map((r) => r.valid));
  const unionValidY = Int32Array.from(rows.flatMap((r) => [...r.validY]));
  const probe = newModel();
  const replicasDiffer = topology.name.startsWith('gossip');
  const observe = (position: { stage: number; epoch: number; step: number }, parts: readonly RoundPart[]): void => {
    if (position.stage !== LAYERS || position.step < 0 || parts[0]!.tensors.length > 0) return;
    const sums = parts[0]!.scalars;
    const record: EpochRecord = { epoch: position.epoch, validationAccuracy: sums[4]! / sums[5]! };
    if (replicasDiffer) {
      averageInto(probe, models);
      record.meanModelValidation = probe.evaluate(unionValid, unionValidY).accuracy;
      record.worstReplicaValidation = Math.min(...models.map((m) => m.evaluate(unionValid, unionValidY).accuracy));
      record.largestDifference = largestDifference(models, [LAYERS]);
    }
    records.push(record);
  };
  const collectives = inMemoryGroup(n, topology, sent, observe);
  await train(rows, models, collectives, records);
  probe.dispose();
  return { models, rows, records, sent, topology };
}

function topologyOf(spec: string): (models: Dbn[]) => Topology {
  const [kind, arg] = spec.split(':') as [string, string | undefined];
  const stages = { epochsOf: (stage: number) => (stage < LAYERS ? pretrainEpochs : finetuneEpochs), batchSize: BATCH };
  if (kind === 'allreduce') return () => allReduceTopology();
  if (kind === 'sparse' || kind === 'sparse-noflush') return () => sparseTopology(Number(arg), host, stages, kind === 'sparse');
  if (kind === 'gossip' && (arg === 'ring' || arg === 'hypercube'))
    return (models) => gossipTopology(arg === 'ring' ? ring : hypercube, models);
  throw new Error(`unknown topology '${spec}' (allreduce, sparse:F, sparse-noflush:F, gossip:ring, gossip:hypercube)`);
}

function summarize(spec: string, n: number, run: Run & { topology: Topology | undefined }, seconds: number): Record<string, unknown> {
  const trainingRows = run.rows.reduce((s, r) => s + r.x.rows, 0);
  const finetuneRows = run.rows.reduce((s, r) => s + r.train.rows, 0);
  const perEpochMinibatches = (epochs: number | null): number | null =>
    epochs === null ? null : LAYERS * pretrainEpochs * Math.ceil(trainingRows / BATCH) + epochs * Math.ceil(finetuneRows / BATCH);
  const epochsRun = LAYERS * pretrainEpochs + run.records.length;
  const mibPerEpoch = run.sent.reduce((a, b) => a + b, 0) / n / epochsRun / 2 ** 20;
  const tests = run.models.map((m) => m.evaluate(testX, testY).accuracy);
  const gossip = run.topology?.name.startsWith('gossip') === true;
  let meanModelTest: number | undefined;
  if (gossip) {
    const probe = newModel();
    averageInto(probe, run.models);
    meanModelTest = probe.evaluate(testX, testY).accuracy;
    probe.dispose();
  }
  const epochs = firstReaching(run.records, gossip ? 'worstReplicaValidation' : 'validationAccuracy');
  return {
    topology: run.topology?.name ?? 'one process',
    spec,
    peers: n,
    degree: run.topology?.degree(n) ?? 0,
    trainingRows,
    finetuneEpochsToTarget: epochs,
    minibatchesToTarget: perEpochMinibatches(epochs),
    ...(gossip
      ? {
          finetuneEpochsToTargetSummedValidation: firstReaching(run.records, 'validationAccuracy'),
          finetuneEpochsToTargetMeanModel: firstReaching(run.records, 'meanModelValidation'),
          minibatchesToTargetMeanModel: perEpochMinibatches(firstReaching(run.records, 'meanModelValidation')),
        }
      : {}),
    finalTestAccuracy: round(tests[0]!, 4),
    worstReplicaTestAccuracy: round(Math.min(...tests), 4),
    ...(meanModelTest === undefined ? {} : { meanModelTestAccuracy: round(meanModelTest, 4) }),
    largestReplicaDifference: n > 1 ? largestDifference(run.models) : 0,
    largestClassifierDifference: n > 1 ? largestDifference(run.models, [LAYERS]) : 0,
    mibSentPerPeerPerEpoch: n > 1 ? round(mibPerEpoch, 2) : null,
    epochsRun,
    validation: run.records.map((r) => ({
      ...r,
      validationAccuracy: round(r.validationAccuracy, 4),
      ...(r.largestDifference === undefined ? {} : { largestDifference: round(r.largestDifference, 5) }),
    })),
    seconds: round(seconds, 1),
  };
}

const startedAt = new Date().toISOString();
const results: Record<string, unknown>[] = [];
async function measure(spec: string, n: number, make: ((models: Dbn[]) => Topology) | undefined): Promise<void> {
  const t0 = performance.now();
  const run = await runTopology(n, make);
  const row = summarize(spec, n, run, (performance.now() - t0) / 1000);
  for (const m of run.models) m.dispose();
  results.push(row);
  console.log(JSON.stringify(row));
}

if (!values['no-single']) await measure('one process', 1, undefined);
for (const spec of values.topologies.split(',')) {
  for (const n of values.peers.split(',').map(Number)) await measure(spec, n, topologyOf(spec));
}
const two = new Map(results.filter((r) => r['peers'] === 2).map((r) => [r['spec'], r['mibSentPerPeerPerEpoch'] as number]));
const single = results.find((r) => r['peers'] === 1)?.['minibatchesToTarget'] as number | null | undefined;
console.log(
  JSON.stringify({
    bench: 'topologies',
    simulation:
      'one process, N replicas over in-memory collectives (the Collective interface of the real exchange): protocol figures, not wall times',
    startedAt,
    schedule: { sizes: SIZES, limit: Number(values.limit), pretrainEpochs, finetuneEpochs, batchSize: BATCH, target, seed: SEED },
    backend: reason,
    machine: { ...machine(), avx512: fs.readFileSync('/proc/cpuinfo', 'utf8').includes('avx512f') },
    summary: results.map((r) => ({
      topology: r['topology'],
      peers: r['peers'],
      degree: r['degree'],
      minibatchesToTarget: r['minibatchesToTarget'],
      minibatchRatio:
        typeof r['minibatchesToTarget'] === 'number' && typeof single === 'number'
          ? round((r['minibatchesToTarget'] as number) / single, 3)
          : null,
      mibSentPerPeerPerEpoch: r['mibSentPerPeerPerEpoch'],
      bytesRatioToN2:
        typeof r['mibSentPerPeerPerEpoch'] === 'number' ? round((r['mibSentPerPeerPerEpoch'] as number) / two.get(r['spec'])!, 2) : null,
      finalTestAccuracy: r['finalTestAccuracy'],
      largestReplicaDifference: r['largestReplicaDifference'],
    })),
  }),
);
