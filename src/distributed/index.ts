/**
 * Peer training: several replicas of one model train as one, over ZeroMQ, with no server.
 * Synchronous data-parallel rounds ({@link PeerGroup}, a `Collective` for `Dbn.pretrain` and
 * `Dbn.fineTune`), a start barrier, view changes when a peer is lost, and joins from snapshots.
 */
export { MAX_PEERS, PeerGroup } from './group.js';
export type { GroupEvent, GroupStats, PeerGroupOptions } from './group.js';
export type { StartResult } from './join.js';
export { enterRun, modelBytes, runFingerprint } from './trainer.js';
export type { RunEntry } from './trainer.js';
// The asynchronous mode (deltas applied as they arrive), for peers of very different speed.
export { PeerTrainer, sameSequences } from './async/peer-training.js';
export type {
  AsyncMode,
  DeltaEncoding,
  JoinResult,
  LockstepMode,
  MergeRule,
  PeerLink,
  PeerTrainingOptions,
  PeerTrainingReport,
  PeerTrainingStats,
} from './async/peer-training.js';
export { DeltaGuard, mergedWeightsSound } from './async/delta-guard.js';
export type { DeltaGuardOptions, DeltaKind, DeltaOrigin, DeltaRejection, GuardVerdict, TensorShape } from './async/delta-guard.js';
export {
  FINGERPRINT_FORMAT,
  encodeFingerprint,
  fingerprintDivergence,
  readFingerprintHeader,
  sampleIndices,
  samplesPerGroup,
} from './async/peer-fingerprint.js';
// Byzantine-robust aggregation and the contribution guard of the rounds.
export { AGGREGATE_KINDS, SUM, aggregateChunks, checkAggregation, krumSelection } from './robust.js';
export type { AggregateRule, AggregationOptions } from './robust.js';
export { ContributionGuard, HARD_ELEMENT_CAP } from './contribution-guard.js';
export type { GuardOptions } from './contribution-guard.js';
export { reportingRounds } from './round-reports.js';
