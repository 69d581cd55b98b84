/** The mutable state a {@link PeerTrainer} shares with its merge strategy: counters and the group being trained. */
import type { DeltaRejection } from './delta-guard.js';

/** The counters behind {@link PeerTrainingStats}. */
export interface Counters {
  syncs: number;
  published: number;
  publishRefused: number;
  applied: number;
  readonly rejected: Record<DeltaRejection, number>;
  rolledBack: number;
  droppedOtherLayer: number;
  droppedOverflow: number;
  bytesSent: number;
  bytesFloat32: number;
  readonly antiEntropy: { rounds: number; averaged: number; skipped: number; forced: number; failed: number };
  barrierTimeouts: number;
  syncMs: number;
  receiveMs: number;
  rounds: number;
  padded: number;
  roundWaitMs: number;
}

export function newCounters(): Counters {
  return {
    syncs: 0,
    published: 0,
    publishRefused: 0,
    applied: 0,
    rejected: { layer: 0, shape: 0, nonfinite: 0, cap: 0, norm: 0, rate: 0 },
    rolledBack: 0,
    droppedOtherLayer: 0,
    droppedOverflow: 0,
    bytesSent: 0,
    bytesFloat32: 0,
    antiEntropy: { rounds: 0, averaged: 0, skipped: 0, forced: 0, failed: 0 },
    barrierTimeouts: 0,
    syncMs: 0,
    receiveMs: 0,
    rounds: 0,
    padded: 0,
    roundWaitMs: 0,
  };
}

/** The parameter group being trained, with the host buffers its publication points reuse. */
export interface GroupState {
  readonly id: number;
  /** What the other peers hold of this group (this peer's published work plus the merged deltas). */
  base: Float32Array[];
  /** Where a publication point writes the next `base` (swapped with it once the delta is out). */
  next: Float32Array[];
  /** Where a publication point writes the weights to load. */
  readonly curNext: Float32Array[];
  /** Where a publication point reads the weights now (reused: a publication allocates nothing). */
  readonly cur: Float32Array[];
  /** Scratch of a lockstep round's sum. */
  readonly sum: Float32Array[];
  /** The sum of several sparse remote deltas merged at once (allocated on first need). */
  accumulated?: Float32Array[];
  /** Sparse publication scratch: the chosen entries' indices and values, per tensor (allocated on first need). */
  sparseIndices?: Uint32Array[];
  sparseValues?: Float32Array[];
  sample?: Float64Array;
}

/** A group state whose `base` is `base` (taken, not copied). */
export function newGroupState(id: number, base: Float32Array[]): GroupState {
  const alloc = (): Float32Array[] => base.map((t) => new Float32Array(t.length));
  return { id, base, next: alloc(), curNext: alloc(), cur: alloc(), sum: alloc() };
}

/** Bytes of a DELTA message's header and checksum beyond its payload frames (for the byte counters). */
export function deltaOverhead(tensors: number): number {
  return 104 + 8 * tensors + 16;
}
