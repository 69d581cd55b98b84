/**
 * CD-1 throughput of a 784→500 Bernoulli RBM, batch 100: `Rbm` with its defaults (momentum 0.5
 * in the first epochs, weight decay 0.0002) on every backend that starts, next to the numpy
 * yardstick (../shared/bench/ref_rbm.py) run twice per round — the plain step (no momentum, no
 * decay) and the same algorithm as the library (`--momentum 0.5 --weight-decay 0.0002`) — and
 * the machine's product throughput for CD-1's five products on the native backend alone.
 * Rounds are interleaved (plain numpy, same-algorithm numpy, products, each backend), so a
 * machine shared with other work slows every contender alike; figures are medians over rounds.
 * numpy runs with OpenBLAS's default threads and with 1 (`--ref-threads`): where other work
 * shares the cores its spinning threads can be several times slower, so each ratio is taken
 * against the faster setting.
 *
 *   npx tsx bench/cd1.ts [--rounds 3] [--samples 10000] [--slow-samples 2000] [--visible 784] [--hidden 500]
 *                        [--batch 100] [--backends native,js,gpu:auto] [--ref-threads default,1] [--no-ref]
 *
 * Prints one JSON object: the machine (CPU, AVX-512 or not, load), per backend the median
 * samples/s and GFLOP/s (5 products of batch·visible·hidden per CD-1 step, 2 flops each — the
 * yardstick's count), the numpy medians, both ratios, the products' GFLOP/s (dense factors) and the step's share
 * of it — which passes 1 on the native backend, whose products over the 0/1 data are sums of rows and
 * whose reconstruction from the 0/1 hidden samples is table lookups (src/kernels/native/binary_tables.cc).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BackendUnavailableError } from '../src/errors.js';
import type { Backend, Tensor } from '../src/kernels/backend.js';
import { createBackend } from '../src/kernels/index.js';
import { createGpuBackend } from '../src/kernels/gpu/index.js';
import { Random } from '../src/random.js';
import type { Rbm } from '../src/rbm/index.js';
import { CD1_LEARNING_RATE, cd1Rbm, cd1Rows } from './cd1-setup.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine, median } from './machine.js';

const { values: a } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    samples: { type: 'string', default: '10000' },
    'slow-samples': { type: 'string', default: '2000' },
    visible: { type: 'string', default: '784' },
    hidden: { type: 'string', default: '500' },
    batch: { type: 'string', default: '100' },
    backends: { type: 'string', default: 'native,js,gpu:auto' },
    'ref-threads': { type: 'string', default: 'default,1' },
    'no-ref': { type: 'boolean', default: false },
  },
});
const nv = Number(a.visible);
const nh = Number(a.hidden);
const batch = Number(a.batch);
const rounds = Number(a.rounds);
/** The `Rbm` defaults the same-algorithm yardstick runs: momentum of the first epochs, weight decay. */
const MOMENTUM = 0.5;
const WEIGHT_DECAY = 0.0002;
const flopsPerSample = 5 * 2 * nv * nh;

function make(name: string): Backend {
  if (name.startsWith('gpu:')) return createGpuBackend({ mode: name.slice(4) as 'auto' });
  return createBackend(name);
}

/** A backend with its model, trained one epoch per round; the first epoch is a warm-up. */
interface Contender {
  readonly name: string;
  readonly backend: Backend;
  readonly rbm: Rbm;
  readonly x: { rows: number; cols: number; data: Float32Array };
  readonly rates: number[];
  err: number;
}

interface Unavailable {
  readonly backend: string;
  readonly unavailable: string;
}

async function start(name: string): Promise<Contender | Unavailable> {
  let backend: Backend;
  try {
    backend = make(name);
    await backend.ready();
  } catch (err) {
    if (err instanceof BackendUnavailableError) return { backend: name, unavailable: err.reason };
    throw err;
  }
  const samples = Number(name.startsWith('native') ? a.samples : a['slow-samples']);
  const x = cd1Rows(samples, nv);
  const rbm = await cd1Rbm(backend, { nHidden: nh, batchSize: batch }, x, batch);
  return { name, backend, rbm, x, rates: [], err: Number.NaN };
}

async function round(c: Contender): Promise<void> {
  const t0 = performance.now();
  const h = await c.rbm.fit(c.x, { epochs: 1 });
  c.rates.push(c.x.rows / ((performance.now() - t0) / 1000));
  c.err = h[0]!.reconstructionError;
}

const refScript = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.join(here, '../../shared/bench/ref_rbm.py'), path.join(here, '../shared/bench/ref_rbm.py')].find((p) => fs.existsSync(p));
})();

/** One run of the numpy yardstick: samples/s, or why it did not run. */
function ref(sameAlgorithm: boolean, threads: string): number | string {
  if (refScript === undefined) return 'ref_rbm.py not found beside the repository (../shared/bench)';
  const args = [refScript, '--visible', String(nv), '--hidden', String(nh), '--batch', String(batch), '--samples', a.samples];
  if (sameAlgorithm) args.push('--momentum', String(MOMENTUM), '--weight-decay', String(WEIGHT_DECAY));
  const env = { ...process.env };
  if (threads === 'default') delete env['OPENBLAS_NUM_THREADS'];
  else env['OPENBLAS_NUM_THREADS'] = threads;
  const p = spawnSync('python3', args, { encoding: 'utf8', env });
  if (p.status !== 0) return `ref_rbm.py failed: ${p.stderr.trim().split('\n').pop()}`;
  return (JSON.parse(p.stdout) as { samples_per_s: number }).samples_per_s;
}

/**
 * GFLOP/s of CD-1's five products alone on `b` (the shapes and transposes of one step:
 * v·W, h·Wᵀ, v'·W, vᵀ·h, v'ᵀ·h' accumulated), over as many steps as `samples` rows make.
 */
function products(b: Backend, samples: number): number {
  const r = new Random(1);
  const t = (rows: number, cols: number): Tensor => {
    const x = b.alloc(rows, cols);
    b.write(x, r.fillUniform(new Float32Array(rows * cols)));
    return x;
  };
  const W = t(nv, nh);
  const v = t(batch, nv);
  const v1 = t(batch, nv);
  const h = t(batch, nh);
  const h1 = t(batch, nh);
  const pre = b.alloc(batch, nh);
  const vn = b.alloc(batch, nv);
  const gW = b.alloc(nv, nh);
  const step = (): void => {
    b.gemm(pre, v, W);
    b.gemm(vn, h, W, { transB: true });
    b.gemm(pre, v1, W);
    b.gemm(gW, v, h, { transA: true, alpha: 0.01 });
    b.gemm(gW, v1, h1, { transA: true, alpha: -0.01, beta: 1 });
  };
  for (let i = 0; i < 10; i++) step();
  const steps = Math.ceil(samples / batch);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const s = (performance.now() - t0) / 1000;
  for (const x of [W, v, v1, h, h1, pre, vn, gW]) b.free(x);
  return (steps * batch * flopsPerSample) / s / 1e9;
}

const started = await Promise.all(a.backends.split(',').map((n) => start(n)));
const contenders = started.filter((c): c is Contender => 'rbm' in c);
const productBackend = contenders.find((c) => c.name === 'native')?.backend;
const refThreads = a['ref-threads'].split(',');
/** numpy samples/s by algorithm and OpenBLAS thread setting. */
const refRates = new Map<string, number[]>();
const productRates: number[] = [];
const refProblems = new Set<string>();
const loads: number[] = [];
for (let r = 0; r < rounds; r++) {
  loads.push(loadavg()[0]!);
  if (!a['no-ref']) {
    for (const algo of [false, true]) {
      for (const threads of refThreads) {
        const v = ref(algo, threads);
        const key = `${algo ? 'same_algorithm' : 'plain'}, OpenBLAS threads: ${threads}`;
        if (typeof v === 'number') refRates.set(key, [...(refRates.get(key) ?? []), v]);
        else refProblems.add(v);
      }
    }
  }
  if (productBackend !== undefined) productRates.push(products(productBackend, Number(a.samples)));
  for (const c of contenders) await round(c);
}

const stat = (rates: number[]): Record<string, unknown> | null =>
  rates.length === 0 ? null : { samples_per_s: median(rates), gflops: (median(rates) * flopsPerSample) / 1e9, runs: rates };
const productGflops = productRates.length > 0 ? median(productRates) : undefined;
const results: Record<string, unknown>[] = started.map((c) => {
  if (!('rbm' in c)) return { ...c };
  const sps = median(c.rates);
  const gflops = (sps * flopsPerSample) / 1e9;
  return {
    backend: c.name,
    description: c.backend.info.description,
    ...(c.backend.info.mode === undefined ? {} : { mode: c.backend.info.mode }),
    samples: c.x.rows,
    samples_per_s: sps,
    gflops,
    runs: c.rates,
    recon_mse: c.err,
    ...(productGflops === undefined ? {} : { share_of_product_throughput: gflops / productGflops }),
  };
});
const native = results.find((r) => r['backend'] === 'native' && typeof r['samples_per_s'] === 'number');
const nativeRate = native?.['samples_per_s'] as number | undefined;
/** The faster thread setting of numpy for one algorithm: its median samples/s and which it was. */
function best(algo: string): { samples_per_s: number; setting: string } | undefined {
  const medians = [...refRates].filter(([k]) => k.startsWith(algo)).map(([k, v]) => ({ samples_per_s: median(v), setting: k }));
  return medians.length === 0 ? undefined : medians.reduce((x, y) => (y.samples_per_s > x.samples_per_s ? y : x));
}
/**
 * Paired ratios, one per round: native's samples/s over the faster numpy setting's in the same
 * round (the contenders of a round ran back to back, under about the same load).
 */
function pairedRatios(algo: string): number[] {
  const nativeRuns = contenders.find((c) => c.name === 'native')?.rates ?? [];
  const settings = [...refRates].filter(([k]) => k.startsWith(algo)).map(([, v]) => v);
  return nativeRuns.flatMap((r, i) => {
    const numpyBest = Math.max(...settings.map((v) => v[i] ?? Number.NaN));
    return Number.isFinite(numpyBest) ? [r / numpyBest] : [];
  });
}
const plainBest = best('plain');
const sameBest = best('same_algorithm');
console.log(
  JSON.stringify(
    {
      bench: 'cd1',
      shape: { visible: nv, hidden: nh, batch },
      rounds,
      machine: {
        ...machine(),
        vector: cpuVectorFlags(),
        shared: 'other processes may run: rounds interleaved, medians reported',
        load_1min_per_round: loads,
      },
      rbm: { learningRate: CD1_LEARNING_RATE, momentum: MOMENTUM, weightDecay: WEIGHT_DECAY, note: 'Rbm defaults except learningRate' },
      numpy: Object.fromEntries([...refRates].map(([k, v]) => [k, stat(v)])),
      numpy_plain_best: plainBest ?? null,
      numpy_same_algorithm_best: sameBest ?? null,
      ...(refProblems.size > 0 ? { numpy_problems: [...refProblems] } : {}),
      product_gflops: productGflops === undefined ? null : { median: productGflops, runs: productRates, backend: 'native' },
      backends: results,
      native_over_numpy_plain: nativeRate !== undefined && plainBest !== undefined ? nativeRate / plainBest.samples_per_s : null,
      native_over_numpy_same_algorithm: nativeRate !== undefined && sameBest !== undefined ? nativeRate / sameBest.samples_per_s : null,
      native_over_numpy_per_round: { plain: pairedRatios('plain'), same_algorithm: pairedRatios('same_algorithm') },
      native_over_numpy_per_round_median: {
        plain: pairedRatios('plain').length > 0 ? median(pairedRatios('plain')) : null,
        same_algorithm: pairedRatios('same_algorithm').length > 0 ? median(pairedRatios('same_algorithm')) : null,
      },
      native_share_of_product_throughput_per_round: (contenders.find((c) => c.name === 'native')?.rates ?? []).map(
        (r, i) => (r * flopsPerSample) / 1e9 / (productRates[i] ?? Number.NaN),
      ),
      native_share_of_product_throughput: native?.['share_of_product_throughput'] ?? null,
      share_note:
        'GFLOP/s and the share count five dense products per step; the native backend computes the two whose left factor is ' +
        'the 0/1 data (13 % ones) as sums of rows and the reconstruction from the 0/1 hidden samples from tables, so its share can pass 1',
    },
    null,
    2,
  ),
);
for (const c of contenders) {
  c.rbm.dispose();
  c.backend.dispose();
}
