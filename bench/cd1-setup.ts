/**
 * The workload every CD-1 bench times (`cd1.ts`, `cd1-profile.ts`, `cd1-fusion.ts`, `js-step.ts`):
 * binary rows with 13 % ones (generator seed 0), and an `Rbm` with its defaults for everything the
 * comparison is about (momentum, weight decay, k = 1, Bernoulli units) but no monitor and no
 * shuffling, learning rate 0.05, warmed up on the first rows.
 */
import type { Backend } from '../src/kernels/backend.js';
import { Random } from '../src/random.js';
import { Rbm } from '../src/rbm/index.js';

/** The learning rate of the benches' `Rbm` (the numpy yardstick's too). */
export const CD1_LEARNING_RATE = 0.05;

export interface Cd1Rows {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** `rows` binary rows of `nVisible` units, 13 % ones. */
export function cd1Rows(rows: number, nVisible: number): Cd1Rows {
  const random = new Random(0);
  const data = new Float32Array(rows * nVisible);
  for (let i = 0; i < data.length; i++) data[i] = random.uniform() < 0.13 ? 1 : 0;
  return { rows, cols: nVisible, data };
}

/** The bench's `Rbm` on `backend`, trained one epoch on the first `warmUpRows` rows of `x`. */
export async function cd1Rbm(
  backend: Backend,
  shape: { readonly nHidden: number; readonly batchSize: number },
  x: Cd1Rows,
  warmUpRows: number,
): Promise<Rbm> {
  const rbm = new Rbm({
    nVisible: x.cols,
    nHidden: shape.nHidden,
    backend,
    seed: 0,
    batchSize: shape.batchSize,
    shuffle: false,
    monitorSize: 0,
    learningRate: CD1_LEARNING_RATE,
  });
  await rbm.fit({ rows: warmUpRows, cols: x.cols, data: x.data.subarray(0, warmUpRows * x.cols) }, { epochs: 1 });
  return rbm;
}
