/**
 * Where a CD-1 epoch's time goes: `Rbm.fit` (784→500 unless told, batch 100, Rbm's defaults, learning rate
 * 0.05) on one backend whose every call is timed, summed by kernel (products by output shape).
 *
 *   npx tsx bench/cd1-profile.ts [--backend native] [--samples 10000] [--visible 784] [--hidden 500]
 *
 * Prints one JSON object: per kernel the milliseconds and calls (a method that calls another
 * counts once, as itself), the epoch's milliseconds, the
 * time outside backend calls (the JavaScript loop, and time the process was not scheduled), the
 * machine.
 */
import { parseArgs } from 'node:util';
import type { Backend, GemmOptions, Tensor } from '../src/kernels/backend.js';
import { createBackend } from '../src/kernels/index.js';
import { cd1Rbm, cd1Rows } from './cd1-setup.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine } from './machine.js';
import { kernelTable, timeBackendCalls } from './timed-backend.js';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    samples: { type: 'string', default: '10000' },
    visible: { type: 'string', default: '784' },
    hidden: { type: 'string', default: '500' },
  },
});
const nv = Number(a.visible);
const nh = Number(a.hidden);
const rows = Number(a.samples);
const backend = createBackend(a.backend);
await backend.ready();

/** Kernel name, with the output shape for the products. */
function key(name: string, args: unknown[]): string {
  const out = args[0] as Tensor;
  if (name === 'gemm') return `gemm ${out.rows}x${out.cols}${((args[3] as GemmOptions | undefined)?.beta ?? 0) === 0 ? '' : ' beta=1'}`;
  if (name === 'linearSigmoid') return `linearSigmoid ${out.rows}x${out.cols}`;
  return name;
}
const spent = timeBackendCalls(backend, key);

const x = cd1Rows(rows, nv);
const rbm = await cd1Rbm(backend as Backend, { nHidden: nh, batchSize: 100 }, x, 100);
spent.clear();
const t0 = performance.now();
await rbm.fit(x, { epochs: 1 });
const epochMs = performance.now() - t0;
const { kernels, insideMs: inside } = kernelTable(spent);
console.log(
  JSON.stringify(
    {
      bench: 'cd1-profile',
      backend: backend.info.description,
      samples: rows,
      epoch_ms: epochMs,
      samples_per_s: (rows / epochMs) * 1000,
      outside_backend_ms: epochMs - inside,
      kernels,
      machine: { ...machine(), vector: cpuVectorFlags() },
    },
    null,
    2,
  ),
);
rbm.dispose();
backend.dispose();
