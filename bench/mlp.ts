/**
 * The independent judge of bench/generation.ts: a 784-H-10 MLP in plain TypeScript (float64),
 * sharing no code or weights with the DBN, and a cache of its trained weights so that repeated
 * bench runs on the same split need not retrain it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Random } from '../src/random.js';
import type { HostMatrix } from '../src/validate.js';

/** A 784-H-10 MLP (ReLU, softmax), float64, trained by minibatch SGD with momentum. Nothing shared with the DBN. */
export class Mlp {
  readonly w1: Float64Array;
  readonly b1: Float64Array;
  readonly w2: Float64Array;
  readonly b2: Float64Array;
  constructor(
    readonly nIn: number,
    readonly nHid: number,
    readonly nOut: number,
    rng: Random,
  ) {
    const he = (n: number, fanIn: number): Float64Array => Float64Array.from(rng.fillNormal(new Float32Array(n), Math.sqrt(2 / fanIn)));
    this.w1 = he(nIn * nHid, nIn);
    this.b1 = new Float64Array(nHid);
    this.w2 = he(nHid * nOut, nHid);
    this.b2 = new Float64Array(nOut);
  }

  /** Hidden activations and class probabilities of row `x`. */
  forward(x: Float32Array, hid: Float64Array, out: Float64Array): void {
    hid.set(this.b1);
    for (let i = 0; i < this.nIn; i++) {
      const v = x[i]!;
      if (v === 0) continue;
      const o = i * this.nHid;
      for (let j = 0; j < this.nHid; j++) hid[j]! += v * this.w1[o + j]!;
    }
    for (let j = 0; j < this.nHid; j++) if (hid[j]! < 0) hid[j] = 0;
    out.set(this.b2);
    for (let j = 0; j < this.nHid; j++) {
      const h = hid[j]!;
      if (h === 0) continue;
      for (let k = 0; k < this.nOut; k++) out[k]! += h * this.w2[j * this.nOut + k]!;
    }
    let max = -Infinity;
    for (let k = 0; k < this.nOut; k++) max = Math.max(max, out[k]!);
    let s = 0;
    for (let k = 0; k < this.nOut; k++) s += out[k] = Math.exp(out[k]! - max);
    for (let k = 0; k < this.nOut; k++) out[k]! /= s;
  }

  /** `epochs` of minibatch SGD on `x` (`rows × nIn`) and `y`; `onEpoch` after each. */
  fit(x: HostMatrix, y: Int32Array, epochs: number, rng: Random, onEpoch: (epoch: number) => void = () => undefined): void {
    const batch = 50;
    const lr = 0.05;
    const mom = 0.9;
    const params = [this.w1, this.b1, this.w2, this.b2];
    const grads = params.map((p) => new Float64Array(p.length));
    const vel = params.map((p) => new Float64Array(p.length));
    const hid = new Float64Array(this.nHid);
    const out = new Float64Array(this.nOut);
    const dh = new Float64Array(this.nHid);
    for (let e = 0; e < epochs; e++) {
      const order = rng.permutation(x.rows);
      for (let s = 0; s < x.rows; s += batch) {
        for (const g of grads) g.fill(0);
        const n = Math.min(batch, x.rows - s);
        for (let b = 0; b < n; b++) {
          const r = order[s + b]!;
          const row = x.data.subarray(r * x.cols, (r + 1) * x.cols);
          this.forward(row, hid, out);
          out[y[r]!]! -= 1;
          dh.fill(0);
          for (let j = 0; j < this.nHid; j++) {
            if (hid[j] === 0) continue;
            for (let k = 0; k < this.nOut; k++) {
              grads[2]![j * this.nOut + k]! += hid[j]! * out[k]!;
              dh[j]! += this.w2[j * this.nOut + k]! * out[k]!;
            }
          }
          for (let k = 0; k < this.nOut; k++) grads[3]![k]! += out[k]!;
          for (let i = 0; i < this.nIn; i++) {
            const v = row[i]!;
            if (v === 0) continue;
            for (let j = 0; j < this.nHid; j++) grads[0]![i * this.nHid + j]! += v * dh[j]!;
          }
          for (let j = 0; j < this.nHid; j++) grads[1]![j]! += dh[j]!;
        }
        for (const [p, param] of params.entries()) {
          const g = grads[p]!;
          const v = vel[p]!;
          for (let i = 0; i < param.length; i++) {
            v[i] = mom * v[i]! - (lr / n) * g[i]!;
            param[i]! += v[i]!;
          }
        }
      }
      onEpoch(e);
    }
  }

  predict(x: HostMatrix): Int32Array {
    const hid = new Float64Array(this.nHid);
    const out = new Float64Array(this.nOut);
    const pred = new Int32Array(x.rows);
    for (let r = 0; r < x.rows; r++) {
      this.forward(x.data.subarray(r * x.cols, (r + 1) * x.cols), hid, out);
      let best = 0;
      for (let k = 1; k < this.nOut; k++) if (out[k]! > out[best]!) best = k;
      pred[r] = best;
    }
    return pred;
  }

  accuracy(x: HostMatrix, y: Int32Array): number {
    const p = this.predict(x);
    let right = 0;
    for (let r = 0; r < y.length; r++) if (p[r] === y[r]) right++;
    return right / y.length;
  }
}

/**
 * An MLP trained on `train` (or loaded from `cache` if that file holds one of the same shape and
 * the same `key` — the seed, epochs and data size that made it); saved to `cache` after training.
 */
export function trainedMlp(
  train: { x: HostMatrix; y: Int32Array },
  o: { hidden: number; epochs: number; seed: number; cache?: string | undefined; onEpoch?: (mlp: Mlp, epoch: number) => void },
): Mlp {
  const rng = new Random(o.seed);
  const mlp = new Mlp(train.x.cols, o.hidden, 10, rng);
  const key = `${o.seed}/${o.epochs}/${train.x.rows}x${train.x.cols}/${o.hidden}`;
  const params = [mlp.w1, mlp.b1, mlp.w2, mlp.b2];
  if (o.cache !== undefined && existsSync(o.cache)) {
    const saved = JSON.parse(readFileSync(o.cache, 'utf8')) as { key: string; params: number[][] };
    if (saved.key === key) {
      params.forEach((p, i) => p.set(saved.params[i]!));
      return mlp;
    }
  }
  mlp.fit(train.x, train.y, o.epochs, rng, (e) => o.onEpoch?.(mlp, e));
  if (o.cache !== undefined) writeFileSync(o.cache, JSON.stringify({ key, params: params.map((p) => Array.from(p)) }));
  return mlp;
}
