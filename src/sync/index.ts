/**
 * The peer-to-peer sync layer: a pure wire format ({@link decode}, `encode*`) and a socket
 * wrapper ({@link Peer}). Importing this module opens no socket.
 */
export { CONTROL_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, Peer, parseSeed } from './peer.js';
export type {
  PeerEvents,
  PeerInfo,
  PeerOptions,
  PeerStats,
  ReceivedSnapshot,
  Rejection,
  SenderStats,
  Snapshot,
  SnapshotProvider,
} from './peer.js';
export {
  WIRE_VERSION,
  Kind,
  Flag,
  checksum,
  controlTopic,
  decode,
  deltaTopic,
  encodeDelta,
  encodeDeltaFrames,
  encodeHeartbeat,
  encodeSnapshotRequest,
  encodeSnapshotResponse,
  runPrefix,
  sparseFrame,
} from './wire.js';
export type {
  DeltaMessage,
  Envelope,
  HeartbeatMessage,
  LayerTensors,
  Message,
  PeerAddress,
  Progress,
  Shape,
  SnapshotRequestMessage,
  SnapshotResponseMessage,
  SparseTensor,
} from './wire.js';
export {
  fromFloat16Bits,
  toFloat16Bits,
  float16FromFloat32,
  float16Table,
  encodeFloat16,
  decodeFloat16,
  decodeFloat16Into,
  roundToFloat16,
} from './float16.js';
export { crc32 } from './crc32.js';
export {
  PUBLIC_KEY_FILE,
  SECRET_KEY_FILE,
  generateKeyPair,
  publicKeyFromSecret,
  readAllowlist,
  readKeyPair,
  writeKeyPair,
} from './keys.js';
export type { KeyPair } from './keys.js';
export { modelFingerprint } from './fingerprint.js';
export { keyPrefix, senderIdFor } from './identity.js';
export { MAX_MESSAGE_FRAMES, MAX_TENSORS_PER_MESSAGE } from './wire.js';
