/**
 * A small seeded generator (xoshiro128**, seeded through splitmix32): one seed gives the same
 * stream on every platform, so one generator drives every backend and runs are reproducible.
 */

/** What models draw random numbers from: {@link Random}, or anything with the same methods. */
export interface RandomSource {
  /** Fills `out` with uniforms in [0, 1); returns `out`. */
  fillUniform(out: Float32Array): Float32Array;
  /** Fills `out` with normals of mean 0 and standard deviation `std` (default 1); returns `out`. */
  fillNormal(out: Float32Array, std?: number): Float32Array;
  /** A uniformly random permutation of `0 … n − 1`. */
  permutation(n: number): Uint32Array;
  /** A uniform integer in [0, n). */
  int(n: number): number;
  /** The generator's state, to checkpoint and resume a stream exactly. */
  getState(): [number, number, number, number];
  /** Restores a state from {@link RandomSource.getState}. */
  setState(state: readonly [number, number, number, number]): void;
}

/** A seeded pseudo-random generator. */
export class Random implements RandomSource {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = Number.NaN;
  private readonly scratch = new Uint32Array(4);

  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 4294967296);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 24 random bits (exactly representable in float32). */
  uniform(): number {
    return (this.nextUint32() >>> 8) * 5.9604644775390625e-8;
  }

  /** Fills `out` with uniforms in [0, 1); returns `out`. */
  fillUniform(out: Float32Array): Float32Array {
    // nextUint32 inlined with the state in locals (the same bits as `uniform()` calls; ~3× faster,
    // this fill being a tenth of a CD-1 step on the fast backends).
    let s0 = this.s0,
      s1 = this.s1,
      s2 = this.s2,
      s3 = this.s3;
    for (let i = 0; i < out.length; i++) {
      const x = Math.imul(s1, 5);
      const r = Math.imul((x << 7) | (x >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = (r >>> 8) * 5.9604644775390625e-8;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return out;
  }

  /**
   * Lets `kernel` draw uniforms from this generator elsewhere (e.g. a backend's
   * `fillUniform`): hands it the state as four words, which it advances in place, and takes the
   * advanced state back (the normal deviate kept for the next {@link normal} call stays).
   */
  drawWith(kernel: (state: Uint32Array) => void): void {
    const st = this.scratch;
    st[0] = this.s0;
    st[1] = this.s1;
    st[2] = this.s2;
    st[3] = this.s3;
    kernel(st);
    this.s0 = st[0]! | 0;
    this.s1 = st[1]! | 0;
    this.s2 = st[2]! | 0;
    this.s3 = st[3]! | 0;
  }

  /** A standard normal deviate (Box–Muller, the second value is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = Number.NaN;
      return s;
    }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fills `out` with standard normals; returns `out`. */
  fillNormal(out: Float32Array, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal() * std;
    return out;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n) % n;
  }

  /** Shuffles `a` in place (Fisher–Yates); returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(((this.nextUint32() >>> 0) / 4294967296) * (i + 1));
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** The generator's state, to checkpoint and resume a stream exactly. */
  getState(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** Restores a state from {@link getState}. */
  setState(state: readonly [number, number, number, number]): void {
    [this.s0, this.s1, this.s2, this.s3] = state.map((v) => v | 0) as [number, number, number, number];
    this.spare = Number.NaN;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
