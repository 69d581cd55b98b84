/**
 * Why peer training keeps the minibatch global (not part of `npm test`): the alternative, N peers
 * each taking a minibatch of 100 per round with the learning rate scaled N× ("linear scaling"),
 * is one process on minibatches of 100·N with learning rate 0.1·N. This trains that process on
 * the bundled digits with the CLI's defaults otherwise (784-500-500, 5+5 pretraining epochs, 30
 * fine-tuning epochs, patience 8) and prints its test accuracy.
 *
 * Usage: tsx bench/large-batch.ts N [linear|sqrt|same] [fine-tuning scaling, default the same]
 */
import { loadData } from '../src/cli/data-options.js';
import { Dbn, defaultBackend } from '../src/index.js';
import { machine } from './machine.js';

const N = Number(process.argv[2] ?? 1);
const mode = process.argv[3] ?? 'linear';
const ftScale = process.argv[4] ?? mode;
const data = loadData({ data: 'digits', 'test-fraction': 0.2 } as never, 1, false);
const { backend } = defaultBackend();
const factor = (m: string): number => (m === 'linear' ? N : m === 'sqrt' ? Math.sqrt(N) : 1);
const batchSize = 100 * N;
const layer = { nHidden: 500, epochs: 5, batchSize, learningRate: 0.1 * factor(mode) };
const dbn = new Dbn({ nVisible: 784, layers: [layer, layer], backend, seed: 1 });
const t0 = Date.now();
await dbn.pretrain(data.train.x);
const r = await dbn.fineTune(data.train.x, data.train.y as Int32Array, {
  epochs: 30,
  learningRate: 0.1 * factor(ftScale),
  batchSize,
  patience: 8,
});
const ev = dbn.evaluate(data.test!.x, data.test!.y as Int32Array);
console.log(
  JSON.stringify({
    bench: 'large-batch',
    N,
    mode,
    ftScale,
    accuracy: ev.accuracy,
    bestEpoch: r.bestEpoch,
    seconds: (Date.now() - t0) / 1000,
    machine: machine(),
  }),
);
