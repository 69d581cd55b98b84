/**
 * CD-1 throughput of a 784→500 Bernoulli RBM, batch 100, on every backend that starts, next to
 * the numpy yardstick (../shared/bench/ref_rbm.py) run in the same process tree, same machine.
 *
 *   npx tsx bench/cd1.ts [--repeats 3] [--samples 10000] [--slow-samples 2000] [--visible 784] [--hidden 500]
 *                        [--batch 100] [--backends native,js,gpu:webasm] [--no-ref]
 *
 * Prints one JSON object: per backend the median samples/s and GFLOP/s (5 GEMMs of
 * batch·visible·hidden per CD-1 step, 2 flops each — the yardstick's count), the numpy
 * reference's median, and the ratio native / numpy.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BackendUnavailableError } from '../src/errors.js';
import type { Backend } from '../src/kernels/backend.js';
import { createBackend } from '../src/kernels/index.js';
import { createGpuBackend } from '../src/kernels/gpu/index.js';
import { Random } from '../src/random.js';
import { Rbm } from '../src/rbm/index.js';
import { machine, median } from './machine.js';

const { values: a } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    samples: { type: 'string', default: '10000' },
    'slow-samples': { type: 'string', default: '2000' },
    visible: { type: 'string', default: '784' },
    hidden: { type: 'string', default: '500' },
    batch: { type: 'string', default: '100' },
    backends: { type: 'string', default: 'native,js,gpu:auto' },
    'no-ref': { type: 'boolean', default: false },
  },
});
const nv = Number(a.visible);
const nh = Number(a.hidden);
const batch = Number(a.batch);
const repeats = Number(a.repeats);

function make(name: string): Backend {
  if (name.startsWith('gpu:')) return createGpuBackend({ mode: name.slice(4) as 'auto' });
  return createBackend(name);
}

function data(rows: number): { rows: number; cols: number; data: Float32Array } {
  const r = new Random(0);
  const d = new Float32Array(rows * nv);
  for (let i = 0; i < d.length; i++) d[i] = r.uniform() < 0.13 ? 1 : 0;
  return { rows, cols: nv, data: d };
}

async function runBackend(name: string): Promise<Record<string, unknown>> {
  let backend: Backend;
  try {
    backend = make(name);
    await backend.ready();
  } catch (err) {
    if (err instanceof BackendUnavailableError) return { backend: name, unavailable: err.reason };
    throw err;
  }
  const slow = !name.startsWith('native');
  const samples = Number(slow ? a['slow-samples'] : a.samples);
  const x = data(samples);
  const rbm = new Rbm({ nVisible: nv, nHidden: nh, backend, seed: 0, batchSize: batch, shuffle: false, monitorSize: 0, learningRate: 0.05 });
  await rbm.fit({ rows: batch, cols: nv, data: x.data.subarray(0, batch * nv) }, { epochs: 1 }); // warm-up
  const rates: number[] = [];
  let err = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const h = await rbm.fit(x, { epochs: 1 });
    const dt = (performance.now() - t0) / 1000;
    rates.push(samples / dt);
    err = h[0]!.reconstructionError;
  }
  const sps = median(rates);
  const out = {
    backend: name,
    description: backend.info.description,
    ...(backend.info.mode === undefined ? {} : { mode: backend.info.mode }),
    samples,
    samples_per_s: sps,
    gflops: (sps * 5 * 2 * nv * nh) / 1e9,
    runs: rates,
    recon_mse: err,
  };
  rbm.dispose();
  backend.dispose();
  return out;
}

function runRef(): Record<string, unknown> | undefined {
  if (a['no-ref']) return undefined;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const script = [path.join(here, '../../shared/bench/ref_rbm.py'), path.join(here, '../shared/bench/ref_rbm.py')].find((p) => fs.existsSync(p));
  if (script === undefined) return { unavailable: 'ref_rbm.py not found beside the repository (../shared/bench)' };
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const p = spawnSync('python3', [script, '--visible', String(nv), '--hidden', String(nh), '--batch', String(batch), '--samples', a.samples], { encoding: 'utf8' });
    if (p.status !== 0) return { unavailable: `ref_rbm.py failed: ${p.stderr.trim().split('\n').pop()}` };
    rates.push((JSON.parse(p.stdout) as { samples_per_s: number }).samples_per_s);
  }
  const sps = median(rates);
  return { samples_per_s: sps, gflops: (sps * 5 * 2 * nv * nh) / 1e9, runs: rates };
}

const ref = runRef();
const results: Record<string, unknown>[] = [];
for (const name of a.backends.split(',')) results.push(await runBackend(name));
const ref2 = runRef();
const native = results.find((r) => r['backend'] === 'native' && typeof r['samples_per_s'] === 'number');
const refRates = [ref, ref2].flatMap((r) => (r !== undefined && Array.isArray(r['runs']) ? (r['runs'] as number[]) : []));
const refMedian = refRates.length > 0 ? median(refRates) : undefined;
console.log(JSON.stringify({
  bench: 'cd1',
  shape: { visible: nv, hidden: nh, batch },
  machine: machine(),
  numpy_ref: refMedian === undefined ? ref : { samples_per_s: refMedian, gflops: (refMedian * 10 * nv * nh) / 1e9, runs: refRates },
  backends: results,
  native_over_numpy: native !== undefined && refMedian !== undefined ? (native['samples_per_s'] as number) / refMedian : null,
}, null, 2));
