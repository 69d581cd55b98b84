/**
 * How a model was trained, stored in its metadata (`metadata.training`) so that `evaluate` scores
 * the rows held out at training time — not a split rebuilt from its own flags — and can tell when
 * the rows it is asked to score include rows the model trained on.
 */
import { createHash } from 'node:crypto';
import type { HostMatrix } from '../validate.js';

/** The record of the data a model was trained on. */
export interface TrainingRecord {
  /** `--data` as given: 'digits', 'fashion' or a file path (resolved to an absolute path). */
  readonly data: string;
  /** IDX labels file (`--labels`), absolute. */
  readonly labelsFile?: string;
  /** CSV label column (`--label`). */
  readonly label?: string;
  /** CSV delimiter (`--delimiter`). */
  readonly delimiter?: string;
  /** CSV feature columns, in the model's input order. */
  readonly featureNames?: readonly string[];
  /** Text class labels: class `i` is `classNames[i]`. */
  readonly classNames?: readonly string[];
  /** `--limit`: only the first N rows were used. */
  readonly limit?: number;
  /** Share of rows held out (`--test-fraction`). */
  readonly testFraction: number;
  /** Seed of the shuffled split. */
  readonly splitSeed: number;
  /** Rows before the split (after `--limit`). */
  readonly rows: number;
  readonly trainRows: number;
  readonly testRows: number;
  /** SHA-256 of the training rows' raw (unscaled) float32 features, in training order. */
  readonly trainContentHash: string;
  /** 32-bit fingerprints of every training row's raw features, sorted, as base64 of a little-endian u32 array. */
  readonly trainRowFingerprints: string;
  /** Feature scaling fitted on the training rows. */
  readonly scale: 'none' | 'minmax' | 'standardize';
}

/** SHA-256 (hex) of the float32 bytes of `x`. */
export function contentHash(x: HostMatrix): string {
  return createHash('sha256')
    .update(new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength))
    .digest('hex');
}

/** A 32-bit fingerprint of every row of `x` (murmur3-style mixing of its float32 bit patterns). */
export function rowFingerprints(x: HostMatrix): Uint32Array {
  const words = new Uint32Array(x.data.buffer, x.data.byteOffset, x.data.length);
  const out = new Uint32Array(x.rows);
  for (let r = 0; r < x.rows; r++) {
    let h = 0x9747b28c ^ x.cols;
    for (let k = r * x.cols, end = k + x.cols; k < end; k++) {
      let w = Math.imul(words[k]!, 0xcc9e2d51);
      w = (w << 15) | (w >>> 17);
      h ^= Math.imul(w, 0x1b873593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    out[r] = h >>> 0;
  }
  return out;
}

/** Sorted fingerprints as base64 (little-endian u32). */
export function encodeFingerprints(f: Uint32Array): string {
  const sorted = Uint32Array.from(f).sort();
  const bytes = Buffer.alloc(sorted.length * 4);
  for (let i = 0; i < sorted.length; i++) bytes.writeUInt32LE(sorted[i]!, i * 4);
  return bytes.toString('base64');
}

/** How many rows of `x` have the fingerprint of a training row (identical rows always do; others with probability ~ trainRows / 2^32). */
export function countTrainingRows(x: HostMatrix, record: TrainingRecord): number {
  const bytes = Buffer.from(record.trainRowFingerprints, 'base64');
  const seen = new Set<number>();
  for (let i = 0; i + 4 <= bytes.length; i += 4) seen.add(bytes.readUInt32LE(i));
  let n = 0;
  for (const f of rowFingerprints(x)) if (seen.has(f)) n++;
  return n;
}

/** The record in a model's metadata, if it has a well-formed one. */
export function trainingRecordOf(metadata: Record<string, unknown>): TrainingRecord | undefined {
  const r = metadata['training'];
  if (typeof r !== 'object' || r === null) return undefined;
  const t = r as Partial<TrainingRecord>;
  const ok =
    typeof t.data === 'string' &&
    typeof t.testFraction === 'number' &&
    typeof t.splitSeed === 'number' &&
    typeof t.trainContentHash === 'string' &&
    typeof t.trainRowFingerprints === 'string';
  return ok ? (r as TrainingRecord) : undefined;
}
