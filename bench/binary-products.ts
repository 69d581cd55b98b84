/**
 * The native backend's products with a 0/1 left factor (CD's binary data, sampled states), which it
 * computes as sums of rows when at most a quarter of the entries are 1 (src/kernels/native/binary_rows.cc),
 * and, for a·wᵀ (CD's reconstruction hs·Wᵀ), from tables at every density (binary_tables.cc): time per
 * product at each density next to the same product with a dense factor (uniform values), for CD-1's
 * shapes (784→500: v·W, vᵀ·h and the reconstruction h·Wᵀ; 500→784 as h·W would be if W were stored the
 * other way) and a 500→2000 layer. Medians of 7 repeats of 50 products, after 20 warm-up ones.
 *
 *   npx tsx bench/binary-products.ts [--densities 0.05,0.13,0.2,0.25,0.3,0.5]
 *
 * Prints one JSON object: the machine and, per shape, microseconds per product by density and dense.
 * For a·b at densities above the bound the backend runs the dense product: those columns read as "dense".
 */
import { parseArgs } from 'node:util';
import { createNativeBackend } from '../src/kernels/native/index.js';
import { Random } from '../src/random.js';
import { machine, median } from './machine.js';

const { values } = parseArgs({ options: { densities: { type: 'string', default: '0.05,0.13,0.2,0.25,0.3,0.5' } } });
const densities = values.densities.split(',').map(Number);
const b = createNativeBackend();
const r = new Random(3);
type Layout = 'a·b' | 'aᵀ·b' | 'a·bᵀ';
// [m, n, k, layout]: op(a) m×k, op(b) k×n
const shapes: Array<[number, number, number, Layout]> = [
  [100, 500, 784, 'a·b'],
  [784, 500, 100, 'aᵀ·b'],
  [100, 784, 500, 'a·b'],
  [100, 784, 500, 'a·bᵀ'],
  [100, 2000, 500, 'a·b'],
  [500, 2000, 100, 'aᵀ·b'],
  [100, 500, 2000, 'a·bᵀ'],
];

/** Microseconds per gemm(c, a, w) with `a` filled by `value` (0/1 at a density, or uniform). */
function time(m: number, n: number, k: number, layout: Layout, value: (u: number) => number): number {
  const opts = { transA: layout === 'aᵀ·b', transB: layout === 'a·bᵀ' };
  const w = opts.transB ? b.alloc(n, k) : b.alloc(k, n);
  b.write(w, r.fillUniform(new Float32Array(k * n)));
  const c = b.alloc(m, n);
  const a = opts.transA ? b.alloc(k, m) : b.alloc(m, k);
  b.write(a, r.fillUniform(new Float32Array(m * k)).map(value));
  for (let i = 0; i < 20; i++) b.gemm(c, a, w, opts);
  const runs: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) b.gemm(c, a, w, opts);
    runs.push(((performance.now() - t0) / 50) * 1000);
  }
  for (const t of [w, c, a]) b.free(t);
  return Math.round(median(runs));
}

const results = shapes.map(([m, n, k, layout]) => {
  const us: Record<string, number> = {};
  for (const d of densities) us[String(d)] = time(m, n, k, layout, (u) => (u < d ? 1 : 0));
  us['dense'] = time(m, n, k, layout, (u) => u);
  const product = layout === 'aᵀ·b' ? `(${k}x${m})ᵀ·${k}x${n}` : layout === 'a·bᵀ' ? `${m}x${k}·(${n}x${k})ᵀ` : `${m}x${k}·${k}x${n}`;
  return { product, microseconds: us };
});
console.log(JSON.stringify({ machine: machine(), backend: b.info.description, results }, null, 2));
b.dispose();
