/**
 * One merge strategy per mode behind one small interface, so the trainer front end
 * ({@link PeerTrainer}) has no mode branches: {@link AsyncMerge} adds remote deltas as they
 * arrive; {@link LockstepMerge} makes synchronous rounds with the same bits on every peer.
 */
import type { DeltaMessage, ReceivedSnapshot } from '../../sync/index.js';
import type { DeltaKind } from './delta-guard.js';
import type { PublishContext } from './encodings.js';
import type { CommonSettings, PeerTrainingReport } from './options.js';
import type { RemotePeers, RemoteView } from './remote-peers.js';
import type { GroupState } from './state.js';

/** Where a minibatch falls in its epoch. */
export interface BatchPosition {
  readonly batch: number;
  readonly batches: number;
}

/** What a strategy may use of the trainer. */
export interface TrainerContext extends PublishContext {
  readonly peers: RemotePeers;
  readonly common: CommonSettings;
  isClosed(): boolean;
  /** The group being trained, or undefined between stages. */
  current(): GroupState | undefined;
  /** The group being trained or, between stages, the last one. */
  focus(): number | undefined;
  /** Enters group `id` unless it is the current one; counts a minibatch; returns the minibatches since the last publication point. */
  countBatch(id: number): number;
  /** Milliseconds since the last publication point. */
  sinceLastSync(): number;
  /** What every publication point ends with: counters, the snapshot block, the fingerprint, a report when due. */
  endSync(g: GroupState, t0: number): void;
  /** Samples group `id`'s weights into its fingerprint block. */
  refreshBlock(id: number, tensors: readonly Float32Array[]): void;
  publishFingerprint(): void;
  report(event: PeerTrainingReport['event'], detail?: string): void;
}

/** The mode-specific half of a {@link PeerTrainer}. */
export interface MergeStrategy {
  readonly kind: 'async' | 'lockstep';
  /** Whether a barrier waits at the end of every RBM layer (always at the end of pretraining and fine-tuning). */
  readonly layerBarrier: boolean;
  /**
   * Whether remote deltas are rate-limited per sender. Lockstep rounds bound the rate already
   * (one delta per sender and round), and a refusal there ends the run, so its outcome must not
   * depend on timing.
   */
  readonly rateLimited: boolean;
  /** Accepted deltas waiting to be merged. */
  readonly pending: number;
  /** What this peer puts in its heartbeats' `progress.samples` (lockstep: publication points per epoch). */
  readonly announced: number;
  /** A group is entered (its state is fresh). */
  enterGroup(g: GroupState): void;
  /** After a minibatch of group `id`: counts it, publishes and merges when due. */
  afterBatch(id: number, position: BatchPosition): Promise<void> | undefined;
  /** The last publication of stage `id` before it is left. */
  endStage(id: number): Promise<void>;
  /** A remote delta the guard accepted (its norm), or refused (why). */
  receive(msg: DeltaMessage, norm: number, kind: DeltaKind): void;
  refused(msg: DeltaMessage, why: string): void;
  /** Merges the queued deltas of every group (snapshots, barriers, a group's entry). */
  applyPending(): void;
  /** Forgets queued deltas a snapshot already reflects. */
  dropReflected(snapshot: ReceivedSnapshot): void;
  /** Throws unless this peer may join a run in which `best` has trained already (from a snapshot). */
  checkLateJoin(best: RemoteView): void;
  /** At each turn of the barrier after stage `done`: true when it did a round of work (turn again at once). */
  barrierTurn(done: number): Promise<boolean>;
  /** Every live peer is through the barrier: true to leave it, false to turn again (a repair ran). */
  barrierThrough(): Promise<boolean>;
  /** The barrier gave up waiting for `behind` peers. */
  barrierTimedOut(done: number, behind: number): void;
  /** Waits up to `ms` (or until something arrives) between barrier turns. */
  idle(ms: number): Promise<void>;
  /** Publishes what is not published yet, where the mode allows (Ctrl-C). */
  stop(): void;
  /** One anti-entropy round, where the mode has them; resolves with whether weights were averaged. */
  antiEntropy(opts: { readonly force?: boolean; readonly retry?: boolean }): Promise<boolean>;
  /** A heartbeat or lost peer changed the view. */
  peersChanged(): void;
  /** Stops timers. */
  close(): void;
}
