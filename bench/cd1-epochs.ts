/**
 * How steady a backend's CD-1 throughput is from one short epoch to the next: the bench workload
 * (`cd1-setup.ts`: 784→500, batch 100, `Rbm`'s defaults) trained for `--epochs` epochs of
 * `--samples` rows in one process, each epoch timed. A fork-join whose threads sleep between a
 * step's products shows here as epochs swinging by a factor of 2–3 on a shared machine, where the
 * medians of longer runs hide it.
 *
 *   npx tsx bench/cd1-epochs.ts [--backend native] [--epochs 20] [--samples 2000]
 *
 * Prints one JSON object: the samples/s of every epoch, their median, minimum, maximum and
 * interquartile range, the load average before and after, and the machine.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createBackend } from '../src/kernels/index.js';
import { cd1Rbm, cd1Rows } from './cd1-setup.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine, median } from './machine.js';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    epochs: { type: 'string', default: '20' },
    samples: { type: 'string', default: '2000' },
  },
});
const epochs = Number(a.epochs);
const rows = Number(a.samples);
const backend = createBackend(a.backend);
await backend.ready();
const x = cd1Rows(rows, 784);
const rbm = await cd1Rbm(backend, { nHidden: 500, batchSize: 100 }, x, 100);
const load1Before = loadavg()[0]!;
const rates: number[] = [];
for (let e = 0; e < epochs; e++) {
  const t0 = performance.now();
  await rbm.fit(x, { epochs: 1 });
  rates.push(rows / ((performance.now() - t0) / 1000));
}
const sorted = [...rates].sort((p, q) => p - q);
const quantile = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
console.log(
  JSON.stringify(
    {
      bench: 'cd1-epochs',
      backend: backend.info.description,
      epochs,
      samples: rows,
      samples_per_s: {
        median: median(rates),
        min: sorted[0],
        max: sorted.at(-1),
        iqr: [quantile(0.25), quantile(0.75)],
        epochs: rates.map(Math.round),
      },
      load1: [load1Before, loadavg()[0]],
      machine: { ...machine(), vector: cpuVectorFlags() },
    },
    null,
    2,
  ),
);
rbm.dispose();
backend.dispose();
