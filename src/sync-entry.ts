/**
 * `dbn-node/sync`: the internals of peer-to-peer training, for tools that read or write the
 * wire format or check peers' messages themselves: the wire codec ({@link decode}, `encode*`,
 * {@link WIRE_VERSION}), float16 and CRC-32 helpers, the {@link DeltaGuard} that judges incoming
 * deltas, and the weight fingerprints peers compare. Applications that only train with peers
 * need the main entry point (`dbn-node`: {@link Peer}, {@link PeerTrainer}, the key functions).
 *
 * @example
 * ```ts
 * import { decode, WIRE_VERSION } from 'dbn-node/sync';
 * const message = decode(frames); // throws WireFormatError with a code when a frame is wrong
 * ```
 *
 * @module dbn-node/sync
 */
export * from './sync/index.js';
export {
  DeltaGuard,
  FINGERPRINT_FORMAT,
  encodeFingerprint,
  fingerprintDivergence,
  readFingerprintHeader,
  sameSequences,
  sampleIndices,
  samplesPerGroup,
} from './distributed/index.js';
export type { DeltaGuardOptions, DeltaKind, DeltaOrigin, DeltaRejection, GuardVerdict, TensorShape } from './distributed/index.js';
export type { GuardSettings } from './distributed/async/delta-guard.js';
export { WireFormatError } from './errors.js';
export type { WireFormatErrorCode } from './errors.js';
export type { FingerprintHeader } from './distributed/async/peer-fingerprint.js';
export { Mesh, senderIdOf } from './sync/mesh.js';
export type { MeshOptions } from './sync/mesh.js';
export * from './sync/rounds-wire.js';
export { PeerTrainer } from './distributed/index.js';
export type { JoinResult, PeerLink, PeerTrainingOptions, PeerTrainingReport, PeerTrainingStats } from './distributed/index.js';
