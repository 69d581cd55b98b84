/** Small data sets and helpers shared by the DBN tests. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Random } from '../../src/random.js';
import type { HostMatrix } from '../../src/validate.js';

/** Binary rows made from `classes` random prototypes with `noise` bit flips; labels = prototype index. */
export function prototypes(rows: number, cols: number, classes: number, seed: number, noise = 0.05): { x: HostMatrix; y: Int32Array } {
  const r = new Random(seed);
  const protos = Array.from({ length: classes }, () => Array.from({ length: cols }, () => (r.uniform() < 0.5 ? 1 : 0)));
  const data = new Float32Array(rows * cols);
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const c = i % classes;
    y[i] = c;
    const p = protos[c]!;
    for (let j = 0; j < cols; j++) data[i * cols + j] = r.uniform() < noise ? 1 - p[j]! : p[j]!;
  }
  return { x: { rows, cols, data }, y };
}

export function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-dbn-')), name);
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = a.length === b.length ? 0 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < Math.min(a.length, b.length); i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
