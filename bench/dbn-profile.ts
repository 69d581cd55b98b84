/**
 * Where a DBN pretraining's time goes: `Dbn.pretrain` of `bench/dbn-pretrain.ts` (784-500-500-2000 on
 * Fashion-MNIST's 60,000 training images unless told, one epoch per layer, Rbm's defaults) on one
 * backend whose every call is timed, summed by kernel and output shape (the fused gradient by its
 * weights' shape).
 *
 *   npx tsx bench/dbn-profile.ts [--backend native] [--limit 0] [--layers 500,500,2000] [--dir /usr/share/datasets/fashion-mnist]
 *
 * Prints one JSON object: per kernel the milliseconds and calls (a method that calls another counts
 * once, as itself), the pretraining's milliseconds, the time outside backend calls (the JavaScript
 * loop, and time the process was not scheduled), the machine. The timing wrapper adds a little to
 * each call: compare its totals with `bench/dbn-pretrain.ts`'s only roughly.
 */
import { parseArgs } from 'node:util';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../src/data/fashion-mnist.js';
import { Dbn } from '../src/dbn/index.js';
import type { CdGradientArgs, Tensor } from '../src/kernels/backend.js';
import { createBackend } from '../src/kernels/index.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine } from './machine.js';
import { kernelTable, timeBackendCalls } from './timed-backend.js';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    limit: { type: 'string', default: '0' },
    layers: { type: 'string', default: '500,500,2000' },
    dir: { type: 'string', default: FASHION_MNIST_DIR },
  },
});
const limit = Number(a.limit);
const hidden = a.layers.split(',').map(Number);

const backend = createBackend(a.backend);
await backend.ready();

/** Kernel name with the output's shape (the fused gradient: its weights' shape). */
function key(name: string, args: unknown[]): string {
  if (name === 'cdGradient') {
    const w = (args[0] as CdGradientArgs).grad.weights;
    return `cdGradient ${w.rows}x${w.cols}`;
  }
  const out = args[0];
  if (typeof out === 'object' && out !== null && 'rows' in out && 'cols' in out) {
    const t = out as Tensor;
    return `${name} ${t.rows}x${t.cols}`;
  }
  return name;
}
const spent = timeBackendCalls(backend, key);

const { train } = loadFashionMnist(a.dir, limit > 0 ? { limit } : {});
const dbn = new Dbn({
  nVisible: train.x.cols,
  // as bench/dbn-pretrain.ts: Rbm's defaults but for the monitor
  layers: hidden.map((nHidden) => ({ nHidden, epochs: 1, monitorSize: 0 })),
  backend,
  seed: 1,
});
spent.clear();
const t0 = performance.now();
await dbn.pretrain(train.x);
const pretrainMs = performance.now() - t0;
const { kernels, insideMs: inside } = kernelTable(spent);
console.log(
  JSON.stringify(
    {
      bench: 'dbn-profile',
      backend: backend.info.description,
      layers: [train.x.cols, ...hidden],
      rows: train.x.rows,
      pretrain_ms: pretrainMs,
      outside_backend_ms: pretrainMs - inside,
      kernels,
      machine: { ...machine(), vector: cpuVectorFlags() },
    },
    null,
    2,
  ),
);
dbn.dispose();
backend.dispose();
