/**
 * How large an honest round's step is next to the weights it changes (not part of `npm test`):
 * the data a bound on a combined round's step, relative to the weights, is chosen from.
 *
 * One process trains the CLI's model (784-500-500, minibatch 100, bundled digits 8,000 train) as
 * a group of one over a collective that leaves the sums as they are (the same rounds, plan and
 * steps as peers, whose combined gradient is the same sum over all rows). For every minibatch
 * round and every weight matrix it records `learningRate × ‖Σ gradient‖ / rows / ‖weights before
 * the step‖` (the gradient part of the step; momentum adds at most `1 / (1 − momentum)` times it)
 * and prints the largest and the 99th percentile per stage.
 *
 * Usage: tsx bench/step-ratio.ts [--pretrain 2] [--finetune 10]
 */
import { parseArgs } from 'node:util';
import { loadData } from '../src/cli/data-options.js';
import { Dbn, defaultBackend } from '../src/index.js';
import type { Collective, RoundPosition } from '../src/rbm/collective.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: { pretrain: { type: 'string', default: '2' }, finetune: { type: 'string', default: '10' } },
});

function norm(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

const data = loadData({ data: 'digits', 'test-fraction': 0.2, scale: 'auto' } as never, 1, false);
const { backend, reason } = defaultBackend();
const layer = { nHidden: 500, epochs: Number(values.pretrain), batchSize: 100 };
const model = new Dbn({ nVisible: 784, layers: [layer, layer], backend, seed: 1 });
const PRETRAIN_RATE = 0.1;
const FINETUNE_RATE = 0.1;
const ratios = new Map<number, number[]>();

/** Weight matrices of the model before this round's step, by stage: the RBM's, or every dense layer's. */
function weightsOf(stage: number): Float32Array[] {
  if (stage < model.layers.length) return [model.layers[stage]!.getParameters().weights.data];
  return model.getClassifierParameters().layers.map((l) => l.weights.data);
}

const collective: Collective = {
  allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
    if (tensors.length === 0 || position.step < 0 || scalars[0]! <= 0) return Promise.resolve();
    const rows = scalars[0]!;
    const pretraining = position.stage < model.layers.length;
    const rate = pretraining ? PRETRAIN_RATE : FINETUNE_RATE;
    // Pretraining tensors: [weights, visible bias, hidden bias]; fine-tuning: [W0, b0, W1, b1, ...].
    const gradients = pretraining ? [tensors[0]!] : tensors.filter((_, i) => i % 2 === 0);
    const weights = weightsOf(position.stage);
    const list = ratios.get(position.stage) ?? [];
    gradients.forEach((g, i) => list.push((rate * norm(g)) / rows / Math.max(norm(weights[i]!), 1e-30)));
    ratios.set(position.stage, list);
    return Promise.resolve();
  },
};

const t0 = performance.now();
await model.pretrain(data.train.x, { collective });
await model.fineTune(data.train.x, data.train.y as Int32Array, { epochs: Number(values.finetune), patience: 8, classes: 10, collective });
const accuracy = model.evaluate(data.test!.x, data.test!.y as Int32Array).accuracy;
const stages = [...ratios.entries()].map(([stage, list]) => {
  const sorted = [...list].sort((a, b) => a - b);
  return {
    stage: stage < model.layers.length ? `pretrain layer ${stage}` : 'fine-tune',
    rounds: list.length,
    largest: sorted.at(-1),
    p99: sorted[Math.floor(0.99 * (sorted.length - 1))],
    median: sorted[sorted.length >> 1],
  };
});
console.log(
  JSON.stringify({
    bench: 'step-ratio',
    accuracy,
    seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
    stages,
    backend: reason,
    machine: machine(),
  }),
);
model.dispose();
