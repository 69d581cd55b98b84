/**
 * What the native backend's fused kernels are worth in a CD-1 epoch: `Rbm.fit` (784→500, batch 100,
 * Rbm's defaults, learning rate 0.05) on the native backend as it is, and on a native backend with
 * the fused kernels hidden (`cdGradient`, `linearSigmoidSample`, `linearSigmoidError`,
 * `firstInvalid`: the separate calls and the TypeScript data check instead), in one process, epochs
 * alternating. Reports samples per wall second and per CPU second (user + system of the process:
 * steadier than wall time where other work shares the cores) — medians over rounds, and the
 * per-round paired ratios.
 *
 *   npx tsx bench/cd1-fusion.ts [--rounds 7] [--samples 10000] [--hide cdGradient,linearSigmoidSample,linearSigmoidError,firstInvalid]
 *
 * Prints one JSON object with the machine (CPU, AVX-512 or not, load).
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createNativeBackend } from '../src/kernels/native/index.js';
import type { Rbm } from '../src/rbm/index.js';
import { cd1Rbm, cd1Rows } from './cd1-setup.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine, median } from './machine.js';

const { values: a } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    samples: { type: 'string', default: '10000' },
    hide: { type: 'string', default: 'cdGradient,linearSigmoidSample,linearSigmoidError,firstInvalid' },
  },
});
const nv = 784;
const nh = 500;
const rows = Number(a.samples);
const x = cd1Rows(rows, nv);

async function model(hidden: readonly string[]): Promise<Rbm> {
  const backend = createNativeBackend();
  for (const name of hidden) (backend as unknown as Record<string, unknown>)[name] = undefined;
  return cd1Rbm(backend, { nHidden: nh, batchSize: 100 }, x, 1000);
}

const contenders = [
  { name: 'fused', rbm: await model([]), wall: [] as number[], cpu: [] as number[] },
  { name: 'separate', rbm: await model(a.hide.split(',').filter((s) => s !== '')), wall: [] as number[], cpu: [] as number[] },
];
const loads: number[] = [];
for (let round = 0; round < Number(a.rounds); round++) {
  loads.push(loadavg()[0]!);
  // the order alternates, so neither side always meets what the other left in the caches
  for (const c of round % 2 === 0 ? contenders : [...contenders].reverse()) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await c.rbm.fit(x, { epochs: 1 });
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    c.wall.push(rows / wallS);
    c.cpu.push(rows / ((cpu.user + cpu.system) / 1e6));
  }
}
const [fused, separate] = contenders as [(typeof contenders)[0], (typeof contenders)[0]];
const paired = (k: 'wall' | 'cpu'): number[] => fused[k].map((v, i) => v / separate[k][i]!);
console.log(
  JSON.stringify(
    {
      bench: 'cd1-fusion',
      samples: rows,
      hidden: a.hide,
      description: fused.rbm.backend.info.description,
      samples_per_wall_s: { fused: median(fused.wall), separate: median(separate.wall) },
      samples_per_cpu_s: { fused: median(fused.cpu), separate: median(separate.cpu) },
      fused_over_separate_paired_median: { wall: median(paired('wall')), cpu: median(paired('cpu')) },
      runs: { fused: { wall: fused.wall, cpu: fused.cpu }, separate: { wall: separate.wall, cpu: separate.cpu } },
      load: loads,
      machine: { ...machine(), vector: cpuVectorFlags() },
    },
    null,
    2,
  ),
);
for (const c of contenders) {
  c.rbm.dispose();
  c.rbm.backend.dispose();
}
