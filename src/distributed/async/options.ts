/**
 * Options, counters and reports of {@link PeerTrainer}. The mode and its encoding are a
 * discriminated union, so a combination that would make the result depend on timing (lockstep
 * rounds with binary16 or sparse deltas, anti-entropy, time-based publication) cannot be written.
 */
import { InvalidOptionError } from '../../errors.js';
import { type Constraints, validateOptions } from '../../validate.js';
import type { DeltaGuardOptions, DeltaRejection } from './delta-guard.js';

/** How a published delta is encoded on the wire. */
export type DeltaEncoding =
  /** Every entry as float32. */
  | { readonly kind: 'float32' }
  /** Every entry as binary16 with error feedback (the last delta of a stage goes as float32). */
  | { readonly kind: 'float16' }
  /**
   * About `fraction` (in (0, 1)) of each tensor's entries, those of largest magnitude, as a
   * SPARSE delta; the rest stays in `cur − base` and goes out later (error feedback); the last
   * delta of a stage goes whole, as float32.
   */
  | { readonly kind: 'sparse'; readonly fraction: number };

/** How the peers' changes combine (see docs/async-peer-training.md, "Merge rule"). */
export type MergeRule = 'sum' | 'average';

/** Asynchronous merging: remote deltas are added as they arrive (for peers of very different speed). */
export interface AsyncMode {
  readonly kind: 'async';
  /** Default `'average'`: each peer publishes 1/K of its change and keeps only that share (K = live trainers + 1). */
  readonly merge?: MergeRule;
  /** Default `{ kind: 'float32' }`. */
  readonly encoding?: DeltaEncoding;
  /** Also publish once this many milliseconds passed since the last publication. Default: off. */
  readonly publishMs?: number;
  /** Period of the anti-entropy round (snapshot + average); 0 turns it off. Default 10000. */
  readonly antiEntropyMs?: number;
  /** After three anti-entropy rounds whose snapshots reflected other sequences, average anyway and adopt them. Default false. */
  readonly antiEntropyForce?: boolean;
  /** Wait for the live peers at the end of every RBM layer (always at the end of pretraining and fine-tuning). Default true. */
  readonly layerBarrier?: boolean;
  /** Divergence a barrier repairs with anti-entropy rounds. Default 0.05. */
  readonly divergenceBound?: number;
  /** Deltas for a layer this peer is not training: `'apply'` them (layers stay identical) or `'drop'` them. Default `'apply'`. */
  readonly otherLayers?: 'apply' | 'drop';
  /** Accepted deltas that may wait to be applied; the oldest beyond are dropped (counted). Default 1000. */
  readonly maxPending?: number;
}

/**
 * Synchronous rounds with reproducible results: every publication point is a round; a peer
 * publishes its change (float32, even when zero), waits for the round's delta of every live
 * trainer, and loads `base + Σ deltas` (times `1/K` with `'average'`) summed in an order fixed
 * by the deltas' contents, so every peer holds the same bits after every round. Waits longer
 * than `barrierTimeoutMs`, a lost or refused delta, are a `SyncError` (`ETIMEDOUT`,
 * `ELOCKSTEP`). Needs every peer from the start (no join from a snapshot).
 */
export interface LockstepMode {
  readonly kind: 'lockstep';
  /** Default `'average'`. */
  readonly merge?: MergeRule;
}

/** Options of {@link PeerTrainer}. */
export interface PeerTrainingOptions {
  /** Default `{ kind: 'async' }`. */
  readonly mode?: AsyncMode | LockstepMode;
  /** Publish after this many minibatches. Default 10. */
  readonly publishEvery?: number;
  /** How long a snapshot request (join, anti-entropy) may take. Default 5000. */
  readonly snapshotTimeoutMs?: number;
  /** Longest wait at a barrier (async: then training goes on, counted) or for a round (lockstep: then `ETIMEDOUT`). Default 120000. */
  readonly barrierTimeoutMs?: number;
  /** Barriers (and lockstep rounds) also wait until this many other live peers are there. Default 0. */
  readonly minPeers?: number;
  /** The bounds remote deltas are judged against (see `DeltaGuard` in `dbn-node/sync`). */
  readonly guard?: DeltaGuardOptions;
  /** Least time between two `'sync'` reports. Default 1000. */
  readonly reportEveryMs?: number;
  /** Receives reports: periodic `'sync'`, and one per join, barrier, anti-entropy round, rejection, peer change. */
  readonly onReport?: (report: PeerTrainingReport) => void;
}

/** Counters and state of a {@link PeerTrainer} (a fresh object on every call). */
export interface PeerTrainingStats {
  readonly senderId: string;
  /** `'async'` or `'lockstep'`. */
  readonly mode: 'async' | 'lockstep';
  /** `0…L−1` pretraining that RBM, `L` fine-tuning, `L+1` finished. */
  readonly stage: number;
  /** Epochs completed in the stage. */
  readonly epochs: number;
  /** Minibatches trained by this peer. */
  readonly batches: number;
  /** Publication points reached (deltas published or not). */
  readonly syncs: number;
  readonly published: number;
  /** Publications refused by a full send queue (the change stays in the next delta). */
  readonly publishRefused: number;
  /** Remote deltas added to the weights. */
  readonly applied: number;
  readonly rejected: Readonly<Record<DeltaRejection, number>>;
  /** Merges undone by the check after merging (the weights kept their last good state). */
  readonly rolledBack: number;
  /** Remote deltas dropped by `otherLayers: 'drop'`. */
  readonly droppedOtherLayer: number;
  /** Accepted deltas dropped because more than `maxPending` waited. */
  readonly droppedOverflow: number;
  readonly pending: number;
  /** Bytes of the DELTA messages published, and what they would have taken as float32. */
  readonly bytes: { readonly sent: number; readonly float32: number };
  /** `bytes.float32 / bytes.sent` (1 for float32). */
  readonly compressionRatio: number;
  readonly antiEntropy: {
    readonly rounds: number;
    readonly averaged: number;
    readonly skipped: number;
    readonly forced: number;
    readonly failed: number;
  };
  /** Largest relative divergence between this peer's weight fingerprint and a live peer's at the same stage, or null. */
  readonly divergence: number | null;
  /** Live peers whose fingerprint was comparable. */
  readonly peersCompared: number;
  readonly barrierTimeouts: number;
  /** Lockstep rounds: completed, empty ones published to fill a round other peers made, milliseconds waiting for the others. */
  readonly lockstep: { readonly rounds: number; readonly padded: number; readonly waitMs: number };
  /** Milliseconds spent in publication points (reading, diffing, encoding, merging, writing). */
  readonly syncMs: number;
  /** Milliseconds spent receiving deltas: the guard here plus the transport's decoding (`transport.decodeMs`). */
  readonly receiveMs: number;
  /** The transport's counters (`Peer.stats()`). */
  readonly transport: {
    readonly delivered: number;
    readonly gaps: number;
    readonly duplicates: number;
    readonly stale: number;
    readonly rejectedKeys: number;
    readonly handshakeFailures: number;
    readonly decodeMs: number;
  };
}

/** A report handed to {@link PeerTrainingOptions.onReport}. */
export interface PeerTrainingReport extends PeerTrainingStats {
  readonly event: 'sync' | 'join' | 'barrier' | 'anti-entropy' | 'rejected' | 'peer-joined' | 'peer-lost' | 'finish';
  readonly detail?: string;
}

/** What {@link PeerTrainer.join} did. */
export interface JoinResult {
  /** Weights were taken from a live peer's snapshot. */
  readonly snapshot: boolean;
  readonly from?: string;
  /** The stage and epochs the peer adopted (from the most advanced live peer). */
  readonly stage: number;
  readonly epochs: number;
  /** Live peers when the join ended. */
  readonly peers: number;
}

/** The settings common to both modes, resolved. */
export interface CommonSettings {
  readonly publishEvery: number;
  readonly snapshotTimeoutMs: number;
  readonly barrierTimeoutMs: number;
  readonly minPeers: number;
  readonly reportEveryMs: number;
  readonly merge: MergeRule;
}

/** {@link AsyncMode}, resolved. */
export interface AsyncSettings {
  readonly kind: 'async';
  readonly encoding: DeltaEncoding;
  readonly publishMs: number | undefined;
  readonly antiEntropyMs: number;
  readonly antiEntropyForce: boolean;
  readonly layerBarrier: boolean;
  readonly divergenceBound: number;
  readonly otherLayers: 'apply' | 'drop';
  readonly maxPending: number;
}

/** The mode, resolved. */
export type ModeSettings = AsyncSettings | { readonly kind: 'lockstep' };

const COMMON: Constraints = {
  mode: { kind: 'object' },
  publishEvery: { kind: 'integer', min: 1, max: 1_000_000 },
  snapshotTimeoutMs: { kind: 'integer', min: 1, max: 3_600_000 },
  barrierTimeoutMs: { kind: 'integer', min: 0, max: 86_400_000 },
  minPeers: { kind: 'integer', min: 0, max: 1_000_000 },
  guard: { kind: 'object' },
  reportEveryMs: { kind: 'integer', min: 0, max: 86_400_000 },
  onReport: { kind: 'function' },
};

const ASYNC: Constraints = {
  kind: { kind: 'enum', values: ['async'] },
  merge: { kind: 'enum', values: ['sum', 'average'] },
  encoding: { kind: 'object' },
  publishMs: { kind: 'integer', min: 1, max: 86_400_000 },
  antiEntropyMs: { kind: 'integer', min: 0, max: 86_400_000 },
  antiEntropyForce: { kind: 'boolean' },
  layerBarrier: { kind: 'boolean' },
  divergenceBound: { kind: 'number', min: 0, minOpen: true },
  otherLayers: { kind: 'enum', values: ['apply', 'drop'] },
  maxPending: { kind: 'integer', min: 1, max: 10_000_000 },
};

const LOCKSTEP: Constraints = {
  kind: { kind: 'enum', values: ['lockstep'] },
  merge: { kind: 'enum', values: ['sum', 'average'] },
};

const GUARD: Constraints = {
  weightFactor: { kind: 'number', min: 0, minOpen: true },
  weightFloor: { kind: 'number', min: 0, minOpen: true },
  normFactor: { kind: 'number', min: 1, minOpen: true },
  normWindow: { kind: 'integer', min: 1, max: 100_000 },
  normWarmup: { kind: 'integer', min: 1, max: 100_000 },
  rateFactor: { kind: 'number', min: 0, minOpen: true },
  rateWindowMs: { kind: 'integer', min: 1, max: 86_400_000 },
};

const ENCODINGS = ['float32', 'float16', 'sparse'];

function resolveEncoding(encoding: DeltaEncoding | undefined): DeltaEncoding {
  if (encoding === undefined) return { kind: 'float32' };
  const kind = (encoding as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !ENCODINGS.includes(kind)) {
    throw new InvalidOptionError(
      `The 'mode.encoding.kind' option of PeerTrainer must be one of ${ENCODINGS.map((e) => `'${e}'`).join(', ')}. Got ${String(kind)}.`,
    );
  }
  const fraction: Constraints =
    encoding.kind === 'sparse' ? { fraction: { kind: 'number', min: 0, minOpen: true, max: 1, maxOpen: true } } : {};
  validateOptions('PeerTrainer (mode.encoding)', { kind: { kind: 'string' }, ...fraction }, encoding);
  if (encoding.kind === 'sparse' && encoding.fraction === undefined)
    throw new InvalidOptionError("The 'mode.encoding.fraction' option of PeerTrainer is required with a sparse encoding.");
  return encoding;
}

function resolveMode(mode: AsyncMode | LockstepMode): ModeSettings {
  if (mode.kind === 'lockstep') {
    validateOptions('PeerTrainer (mode)', LOCKSTEP, mode);
    return { kind: 'lockstep' };
  }
  if (mode.kind !== 'async')
    throw new InvalidOptionError(
      `The 'mode.kind' option of PeerTrainer must be 'async' or 'lockstep'. Got ${String((mode as { kind?: unknown }).kind)}.`,
    );
  validateOptions('PeerTrainer (mode)', ASYNC, mode);
  return {
    kind: 'async',
    encoding: resolveEncoding(mode.encoding),
    publishMs: mode.publishMs,
    antiEntropyMs: mode.antiEntropyMs ?? 10_000,
    antiEntropyForce: mode.antiEntropyForce ?? false,
    layerBarrier: mode.layerBarrier ?? true,
    divergenceBound: mode.divergenceBound ?? 0.05,
    otherLayers: mode.otherLayers ?? 'apply',
    maxPending: mode.maxPending ?? 1000,
  };
}

/** Validates `options` (one {@link InvalidOptionError} naming the first fault) and fills in the defaults. */
export function resolveOptions(options: PeerTrainingOptions): { readonly common: CommonSettings; readonly mode: ModeSettings } {
  validateOptions('PeerTrainer', COMMON, options);
  if (options.guard !== undefined) validateOptions('PeerTrainer (guard)', GUARD, options.guard);
  const mode = options.mode ?? { kind: 'async' };
  return {
    common: {
      publishEvery: options.publishEvery ?? 10,
      snapshotTimeoutMs: options.snapshotTimeoutMs ?? 5000,
      barrierTimeoutMs: options.barrierTimeoutMs ?? 120_000,
      minPeers: options.minPeers ?? 0,
      reportEveryMs: options.reportEveryMs ?? 1000,
      merge: mode.merge ?? 'average',
    },
    mode: resolveMode(mode),
  };
}
