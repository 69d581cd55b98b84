/**
 * The weight fingerprint peers put in their heartbeats (`Peer.setWeightFingerprint`, at most 64
 * float64 values, opaque to sync) and the divergence measured between two of them.
 *
 * Layout: `[FORMAT, stage, epochs, groups, settled, …samples]`. `stage` is what the peer is doing
 * (see {@link PeerTrainer}: `0…L−1` pretraining RBM `i`, `L` fine-tuning, `L+1` finished),
 * `epochs` the epochs it has completed in that stage, `groups` the number of sample blocks that
 * follow, `settled` one more than the last stage whose barrier it has passed with every live
 * peer's deltas applied (0: none), so the samples of a settled peer are final for that stage. Each
 * block holds the values of one parameter group's weights at fixed, evenly spread indices (the
 * same on every peer, since peers share the architecture): a few dozen of a layer's weights are
 * enough to see two copies drift apart, at no cost to the training step.
 */

/** Version of the layout; a peer ignores fingerprints of another format. */
export const FINGERPRINT_FORMAT = 2;

/** Header values before the sample blocks. */
export const FINGERPRINT_HEADER = 5;

/** Largest fingerprint the heartbeat carries. */
export const FINGERPRINT_MAX = 64;

/** The stage and progress a fingerprint reports. */
export interface FingerprintHeader {
  readonly stage: number;
  readonly epochs: number;
  readonly groups: number;
  /** The last stage whose barrier the peer passed with everything applied, or −1. */
  readonly settled: number;
}

/** Samples per group when `groups` groups share the fingerprint (at least 1). */
export function samplesPerGroup(groups: number): number {
  return Math.max(1, Math.floor((FINGERPRINT_MAX - FINGERPRINT_HEADER) / Math.max(1, groups)));
}

/**
 * The `count` fixed indices into a tensor of `length` values: evenly spread with a stride
 * coprime to nothing in particular, so rows and columns both vary. Same on every peer.
 */
export function sampleIndices(length: number, count: number): Uint32Array {
  const out = new Uint32Array(Math.min(count, length));
  for (let j = 0; j < out.length; j++) out[j] = Math.floor(((j + 0.5) * length) / out.length + j * 7919) % length;
  return out;
}

/** Reads the values of `tensor` at `indices` into `out` at `offset`. */
export function takeSamples(tensor: Float32Array, indices: Uint32Array, out: Float64Array, offset: number): void {
  for (let j = 0; j < indices.length; j++) out[offset + j] = tensor[indices[j]!]!;
}

/** Builds a fingerprint from sample blocks (each `samplesPerGroup(blocks.length)` long, or shorter). */
export function encodeFingerprint(
  header: { readonly stage: number; readonly epochs: number; readonly settled?: number },
  blocks: readonly Float64Array[],
): Float64Array {
  const per = samplesPerGroup(blocks.length);
  const n = Math.min(blocks.length, FINGERPRINT_MAX - FINGERPRINT_HEADER);
  const out = new Float64Array(Math.min(FINGERPRINT_MAX, FINGERPRINT_HEADER + n * per));
  out[0] = FINGERPRINT_FORMAT;
  out[1] = header.stage;
  out[2] = header.epochs;
  out[3] = n;
  out[4] = (header.settled ?? -1) + 1;
  for (let g = 0; g < n; g++) {
    const b = blocks[g]!;
    for (let j = 0; j < per && j < b.length; j++) out[FINGERPRINT_HEADER + g * per + j] = b[j]!;
  }
  return out;
}

/** The header of a fingerprint, or undefined when it is not one of ours. */
export function readFingerprintHeader(fp: ArrayLike<number>): FingerprintHeader | undefined {
  if (fp.length < FINGERPRINT_HEADER || fp[0] !== FINGERPRINT_FORMAT) return undefined;
  const stage = fp[1]!;
  const epochs = fp[2]!;
  const groups = fp[3]!;
  const settled = fp[4]!;
  if (![stage, epochs, groups, settled].every((v) => Number.isSafeInteger(v) && v >= 0)) return undefined;
  return { stage, epochs, groups, settled: settled - 1 };
}

/**
 * Relative divergence of two fingerprints: for each sample block, the RMS of the differences
 * divided by the RMS of the values (the larger of the two sides); the largest over blocks.
 * `undefined` when the two are not comparable (another format, stage or layout).
 */
export function fingerprintDivergence(a: ArrayLike<number>, b: ArrayLike<number>): number | undefined {
  const ha = readFingerprintHeader(a);
  const hb = readFingerprintHeader(b);
  if (ha === undefined || hb === undefined || ha.stage !== hb.stage || ha.groups !== hb.groups || a.length !== b.length) return undefined;
  const per = samplesPerGroup(ha.groups);
  let worst = 0;
  for (let g = 0; g < ha.groups; g++) {
    let d2 = 0;
    let a2 = 0;
    let b2 = 0;
    for (let j = FINGERPRINT_HEADER + g * per; j < Math.min(a.length, FINGERPRINT_HEADER + (g + 1) * per); j++) {
      const x = a[j]!;
      const y = b[j]!;
      d2 += (x - y) * (x - y);
      a2 += x * x;
      b2 += y * y;
    }
    const scale = Math.max(a2, b2);
    if (scale > 0) worst = Math.max(worst, Math.sqrt(d2 / scale));
  }
  return worst;
}
