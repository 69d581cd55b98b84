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
