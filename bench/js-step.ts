/**
 * The js backend's CD-1 step by thread count: `Rbm` with its defaults (784→500, batch 100, learning
 * rate 0.05, as in `bench/cd1.ts`) on `createJsBackend({ threads })` for each count, rounds
 * interleaved so that other work on a shared machine slows every count alike.
 *
 *   npx tsx bench/js-step.ts [--threads 1,2] [--rounds 5] [--samples 2000]
 *
 * Prints one JSON object: per thread count the median wall-clock GFLOP/s (5 products of
 * batch·784·500, 2 flops each, per step) and the median GFLOP per CPU-second of this process
 * (all threads counted: equal to the wall figure for one thread on an idle core; for n threads,
 * n × that would be perfect scaling), each round's figures and the load average before it, and
 * the machine.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createJsBackend } from '../src/kernels/js/index.js';
import { cd1Rbm, cd1Rows } from './cd1-setup.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine, median } from './machine.js';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '5' },
    samples: { type: 'string', default: '2000' },
  },
});
const counts = args.threads.split(',').map(Number);
const rounds = Number(args.rounds);
const samples = Number(args.samples);
const nv = 784;
const nh = 500;
const batch = 100;
const flopsPerSample = 5 * 2 * nv * nh;

const x = cd1Rows(samples, nv);

interface Run {
  readonly gflops: number;
  readonly cpuGflops: number;
  readonly load1: number;
}
const runs = new Map<number, Run[]>(counts.map((c) => [c, []]));
const descriptions = new Map<number, string>();

for (let r = 0; r < rounds; r++) {
  for (const threads of counts) {
    const backend = createJsBackend({ threads });
    descriptions.set(threads, backend.info.description);
    const rbm = await cd1Rbm(backend, { nHidden: nh, batchSize: batch }, x, batch);
    const load1 = loadavg()[0]!;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await rbm.fit(x, { epochs: 1 });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    runs
      .get(threads)!
      .push({ gflops: (samples * flopsPerSample) / seconds / 1e9, cpuGflops: (samples * flopsPerSample) / cpuSeconds / 1e9, load1 });
    rbm.dispose();
    backend.dispose();
  }
}

console.log(
  JSON.stringify(
    {
      bench: 'js-step',
      samples,
      rounds,
      results: counts.map((threads) => {
        const rs = runs.get(threads)!;
        return {
          threads,
          description: descriptions.get(threads),
          gflops: median(rs.map((x) => x.gflops)),
          cpuGflops: median(rs.map((x) => x.cpuGflops)),
          samplesPerSecond: (median(rs.map((x) => x.gflops)) * 1e9) / flopsPerSample,
          runs: rs,
        };
      }),
      machine: { ...machine(), vector: cpuVectorFlags() },
    },
    null,
    2,
  ),
);
