// The js backend's WebAssembly packing (packAFrom, packBFrom: the module's packPanels, transpose4
// and scale4 for whole tiles and panels, packA/packB for the rest) against the TypeScript packA and
// packB, bit for bit, over strides, alphas, tile edges and offsets.
import test, { type ExecutionContext } from 'ava';
import { packAFrom, packBFrom } from '../../src/kernels/js/gemm-block.js';
import type { PackKernels } from '../../src/kernels/js/gemm-block.js';
import { packA, packB } from '../../src/kernels/js/gemm.js';
import { createWasmMacroKernel, wasmGemmSupport } from '../../src/kernels/js/wasm-gemm.js';
import { Random } from '../../src/random.js';

/** Values with ±0, ±∞, subnormals and ordinary numbers (no NaN: only its payload could differ). */
function values(rng: Random, n: number): Float32Array {
  const special = [0, -0, Infinity, -Infinity, 1e-40, -3e-39, 3.4e38];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 17 === 5 ? special[i % special.length]! : rng.uniform() * 8 - 4;
  return out;
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** The first index where the two differ in bits, or −1. */
function firstDifference(got: Float32Array, want: Float32Array): number {
  const [g, w] = [bits(got), bits(want)];
  return g.findIndex((x, i) => x !== w[i]);
}

/** A heap of the module (one instance, its own memory) and where the raw matrix and the packed output go in it. */
function heap(): { f32: Float32Array; kernels: PackKernels } {
  const support = wasmGemmSupport();
  if (!('module' in support)) throw new Error(support.reason);
  const h = createWasmMacroKernel(support.module).get(1 << 22);
  return { f32: h.f32, kernels: h as unknown as PackKernels };
}

const RAW = 1 << 18; // float offset of the raw matrix in the heap
const OUT = 1 << 16; // float offset of the packed output

/**
 * Runs `pack` (writing `want.length` floats at `OUT`, a sentinel after them) and asserts it wrote
 * `want`'s bits and nothing past them.
 */
function packsAlike(t: ExecutionContext, f32: Float32Array, want: Float32Array, pack: () => void, label: string, what: string): void {
  f32.fill(7, OUT, OUT + want.length + 8);
  pack();
  const at = firstDifference(f32.subarray(OUT, OUT + want.length), want);
  t.is(at, -1, `${label}: element ${at}`);
  t.is(f32[OUT + want.length], 7, `nothing written past the packed ${what}`);
}

test('packAFrom gives the bits of packA: row-major and transposed A, alpha 1 and others, whole and partial tiles', (t) => {
  const { f32, kernels } = heap();
  const rng = new Random(5);
  const [m, k] = [23, 37];
  const a = values(rng, m * k);
  f32.set(a, RAW);
  let cases = 0;
  for (const trans of [false, true]) {
    const [aRow, aCol] = trans ? [1, m] : [k, 1];
    for (const alpha of [1, -0.01, 1 / 3]) {
      for (const [i0, mc] of [
        [0, 4],
        [0, 23],
        [3, 9],
        [8, 12],
        [19, 4],
      ] as const) {
        for (const [p0, kc] of [
          [0, 1],
          [0, 37],
          [2, 3],
          [5, 4],
          [7, 29],
        ] as const) {
          const len = Math.ceil(mc / 4) * 4 * kc;
          const want = new Float32Array(len);
          packA(want, 0, 4, a, aRow, aCol, alpha, i0, mc, p0, kc);
          const pack = (): void => packAFrom(kernels, f32, OUT, 4, RAW, m * k, [aRow, aCol, alpha], [i0, mc, p0, kc], packA);
          packsAlike(t, f32, want, pack, `trans ${trans}, alpha ${alpha}, rows ${i0}+${mc}, k ${p0}+${kc}`, 'tiles');
          cases++;
        }
      }
    }
  }
  t.is(cases, 150);
});

test('packBFrom gives the bits of packB: columns adjacent (b) and rows adjacent (bᵀ), whole and partial panels', (t) => {
  const { f32, kernels } = heap();
  const rng = new Random(6);
  const [k, n] = [41, 45];
  const b = values(rng, k * n);
  f32.set(b, RAW);
  let cases = 0;
  for (const trans of [false, true]) {
    const [bRow, bCol] = trans ? [1, k] : [n, 1];
    for (const [j0, nc] of [
      [0, 8],
      [0, 45],
      [5, 13],
      [16, 24],
      [40, 5],
    ] as const) {
      for (const [p0, kc] of [
        [0, 1],
        [0, 41],
        [3, 3],
        [6, 4],
        [9, 30],
      ] as const) {
        const len = Math.ceil(nc / 8) * 8 * kc;
        const want = new Float32Array(len);
        packB(want, 0, 8, b, bRow, bCol, p0, kc, j0, nc);
        const pack = (): void => packBFrom(kernels, f32, OUT, 8, RAW, k * n, [bRow, bCol], [p0, kc, j0, nc], packB);
        packsAlike(t, f32, want, pack, `trans ${trans}, columns ${j0}+${nc}, k ${p0}+${kc}`, 'panels');
        cases++;
      }
    }
  }
  t.is(cases, 50);
});

test('a packed transposed tile holds the hand-placed elements (4 × 5 block: transpose4 with its one-element tail)', (t) => {
  const { f32, kernels } = heap();
  // rows r = 0..3 of 5 elements, element p of row r = 10·r + p
  for (let r = 0; r < 4; r++) for (let p = 0; p < 5; p++) f32[RAW + r * 5 + p] = 10 * r + p;
  kernels.transpose4(OUT * 4, RAW * 4, 20, 5, 16);
  t.deepEqual(Array.from(f32.subarray(OUT, OUT + 20)), [0, 10, 20, 30, 1, 11, 21, 31, 2, 12, 22, 32, 3, 13, 23, 33, 4, 14, 24, 34]);
  // scale4: groups of four 12 bytes apart, times 0.5
  for (let i = 0; i < 12; i++) f32[RAW + i] = i;
  kernels.scale4(OUT * 4, RAW * 4, 12, 3, 0.5);
  t.deepEqual(Array.from(f32.subarray(OUT, OUT + 12)), [0, 0.5, 1, 1.5, 1.5, 2, 2.5, 3, 3, 3.5, 4, 4.5]);
});
