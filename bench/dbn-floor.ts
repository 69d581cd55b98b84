/**
 * The products' floor of `bench/dbn-pretrain.ts`: the time its dense products alone take when
 * each runs at the speed it has in a tight loop. Every CD-1 minibatch of a V×H layer makes five
 * products of `batch·V·H` multiply-adds (two forward, one reconstruction, two for the weight
 * gradient), and the transform between layers one per 1,000-row chunk; this bench times each
 * shape with the backend's `gemm` (the shapes interleaved, `--rounds` rounds of `--calls` calls,
 * median per call), multiplies by the calls a pretraining makes, and sums.
 *
 *   npx tsx bench/dbn-floor.ts [--backend native] [--rows 60000] [--layers 784,500,500,2000] [--rounds 5] [--calls 40] [--ones 0.27]
 *
 * The reconstruction's left factor is the sampled hidden states, 0/1 (`--ones`: their share of
 * ones, 24–29 % in the pretraining), which the native backend multiplies from tables instead of
 * densely; each reconstruction is timed both ways. `dense_floor_s` sums every product dense: no
 * implementation that computes them densely with this BLAS at its loop speed can pretrain faster,
 * and `bench/dbn-pretrain.ts`'s numpy time divided by it bounds the speedup a dense implementation
 * could report. `floor_s` takes the reconstructions with their 0/1 factor (the products as the
 * backend makes them in the pretraining). Prints one JSON object with the machine.
 */
import { parseArgs } from 'node:util';
import type { Backend, GemmOptions, Tensor } from '../src/kernels/backend.js';
import { createBackend } from '../src/kernels/index.js';
import { Random } from '../src/random.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine, median } from './machine.js';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    rows: { type: 'string', default: '60000' },
    layers: { type: 'string', default: '784,500,500,2000' },
    batch: { type: 'string', default: '100' },
    chunk: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    calls: { type: 'string', default: '40' },
    ones: { type: 'string', default: '0.27' },
  },
});
const rows = Number(a.rows);
const layers = a.layers.split(',').map(Number);
const batch = Number(a.batch);
const chunk = Number(a.chunk);
const rounds = Number(a.rounds);
const calls = Number(a.calls);
const ones = Number(a.ones);
if (!(ones >= 0 && ones <= 1)) throw new Error(`--ones must be a share in [0, 1], got ${a.ones}`);
for (const [name, v] of Object.entries({ rows, batch, chunk, rounds, calls }))
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${String(v)}`);
if (layers.length < 2 || !layers.every((n) => Number.isSafeInteger(n) && n >= 1))
  throw new Error(`--layers must be two or more positive integers, got ${a.layers}`);

/** One product shape of the pretraining: `out (m×n) = op(a) · op(b)`, made `count` times. */
interface Product {
  readonly what: string;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly opts: GemmOptions;
  readonly count: number;
  /** The left factor: 0/1 with `ones` of them 1 (the sampled hidden states), or dense uniform values. */
  readonly binary: boolean;
}

const batches = Math.ceil(rows / batch);
const products: Product[] = [];
for (let l = 0; l + 1 < layers.length; l++) {
  const v = layers[l]!;
  const h = layers[l + 1]!;
  products.push(
    { what: `layer ${l} forward (2 per minibatch)`, m: batch, k: v, n: h, opts: {}, count: 2 * batches, binary: false },
    { what: `layer ${l} reconstruction, 0/1 factor`, m: batch, k: h, n: v, opts: { transB: true }, count: batches, binary: true },
    { what: `layer ${l} reconstruction, dense factor`, m: batch, k: h, n: v, opts: { transB: true }, count: batches, binary: false },
    {
      what: `layer ${l} weight gradient (2 per minibatch)`,
      m: v,
      k: batch,
      n: h,
      opts: { transA: true },
      count: 2 * batches,
      binary: false,
    },
  );
  if (l + 2 < layers.length)
    products.push({
      what: `transform through layer ${l}`,
      m: chunk,
      k: v,
      n: h,
      opts: {},
      count: Math.ceil(rows / chunk),
      binary: false,
    });
}

const backend: Backend = createBackend(a.backend);
await backend.ready();

const random = new Random(1);

function randomTensor(r: number, c: number, binary = false): Tensor {
  const t = backend.alloc(r, c);
  const values = random.fillUniform(new Float32Array(r * c));
  backend.write(t, binary ? values.map((u) => (u < ones ? 1 : 0)) : values);
  return t;
}

const operands = products.map((p) => ({
  out: backend.alloc(p.m, p.n),
  a: p.opts.transA === true ? randomTensor(p.k, p.m) : randomTensor(p.m, p.k, p.binary),
  b: p.opts.transB === true ? randomTensor(p.n, p.k) : randomTensor(p.k, p.n),
}));

const perCall: number[][] = products.map(() => []);
for (let r = -1; r < rounds; r++) {
  products.forEach((p, i) => {
    const o = operands[i]!;
    for (let c = 0; c < calls; c++) {
      const t0 = performance.now();
      backend.gemm(o.out, o.a, o.b, p.opts);
      // Round -1 warms up (OpenBLAS's buffers, the pool's threads, the caches).
      if (r >= 0) perCall[i]!.push(performance.now() - t0);
    }
  });
}

const shapes = products.map((p, i) => {
  const ms = median(perCall[i]!);
  const gflop = (2 * p.m * p.k * p.n) / 1e9;
  return {
    what: p.what,
    shape: `${p.opts.transA === true ? `(${p.k}x${p.m})ᵀ` : `${p.m}x${p.k}`}·${p.opts.transB === true ? `(${p.n}x${p.k})ᵀ` : `${p.k}x${p.n}`}`,
    calls: p.count,
    median_us: Math.round(ms * 1000),
    gflops: Number((gflop / (ms / 1000)).toFixed(1)),
    total_s: Number(((ms * p.count) / 1000).toFixed(3)),
  };
});
// The reconstruction is timed with both factors: the floor counts the 0/1 one, the dense floor the other.
const sum = (keep: (p: Product) => boolean): number => shapes.reduce((s, x, i) => s + (keep(products[i]!) ? x.total_s : 0), 0);
const floorS = sum((p) => p.binary || p.opts.transB !== true);
const denseFloorS = sum((p) => !p.binary);
const gflop = products.reduce((s, p) => s + (p.binary ? 0 : (2 * p.m * p.k * p.n * p.count) / 1e9), 0);
console.log(
  JSON.stringify(
    {
      bench: 'dbn-floor',
      backend: backend.info.description,
      layers,
      rows,
      batch,
      rounds,
      calls_per_round: calls,
      gflop: Number(gflop.toFixed(1)),
      floor_s: Number(floorS.toFixed(3)),
      dense_floor_s: Number(denseFloorS.toFixed(3)),
      dense_floor_gflops: Number((gflop / denseFloorS).toFixed(1)),
      shapes,
      machine: { ...machine(), vector: cpuVectorFlags() },
    },
    null,
    2,
  ),
);
