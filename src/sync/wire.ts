/**
 * The dbn-node sync wire format: pure encode/decode of ZeroMQ multipart messages, no sockets.
 *
 * Every message is `[topic, header, ...body, ...payload]`:
 *
 * Frame 0, topic (ASCII): `dbn/<runId>/<layer>` for DELTA (layer in decimal, no leading zeros),
 * `dbn/<runId>/ctl` for every other kind. A SUB subscribed to `dbn/<runId>/` receives one run.
 *
 * At most {@link MAX_MESSAGE_FRAMES} frames (n ≤ {@link MAX_TENSORS_PER_MESSAGE} = 256 tensors per
 * message, since version 3); a longer frame list is refused (EFRAMES) before any byte is read.
 *
 * Frame 1, header, little-endian, 104 + 8·n bytes:
 *
 * | offset | bytes | field                                                                      |
 * |-------:|------:|----------------------------------------------------------------------------|
 * |      0 |     4 | magic `DBNS`                                                               |
 * |      4 |     2 | version u16 = {@link WIRE_VERSION}                                         |
 * |      6 |     1 | kind u8: 1 DELTA, 2 HEARTBEAT, 3 SNAPSHOT_REQUEST, 4 SNAPSHOT_RESPONSE     |
 * |      7 |     1 | flags u8: bit 0 F16 (payload is binary16), bit 1 UNAVAILABLE, bit 2 SPARSE |
 * |      8 |    16 | run id: 1–16 chars of `[A-Za-z0-9._-]`, NUL-padded                         |
 * |     24 |    32 | model fingerprint (opaque, e.g. SHA-256 of the architecture)               |
 * |     56 |    16 | sender id                                                                  |
 * |     72 |     8 | sequence u64 (≤ 2^53 − 1)                                                  |
 * |     80 |     8 | base sequence u64 (≤ 2^53 − 1)                                             |
 * |     88 |     8 | timestamp f64, ms since the Unix epoch, finite, ≥ 0                        |
 * |     96 |     2 | layer u16                                                                  |
 * |     98 |     2 | tensor count n u16                                                         |
 * |    100 |     4 | CRC-32 (IEEE) of every frame except this field, see below                  |
 * |    104 |   8·n | per tensor: rows u32, cols u32 (both ≥ 1, rows·cols ≤ 2^28)                |
 *
 * The CRC runs over, for each frame in order, its length as u32 LE followed by its bytes; for
 * the header, bytes 100–103 are skipped (the length still counts them). Any flipped, moved,
 * truncated or extended byte in any frame is therefore detected (ECRC) unless a structural
 * check catches it first.
 *
 * Per kind (fields not listed must be zero, else EFIELD):
 * - DELTA: n ≥ 1; sequence ≥ 1 = the sender's message counter (one counter across all layers,
 *   consecutive 1, 2, 3 …); base sequence < sequence = the sender's previous DELTA of the same
 *   layer (0 if none); layer. Frames: n payload frames.
 * - HEARTBEAT: n = 0; sequence = the sender's last DELTA sequence (0 if none). Frames: info
 *   (UTF-8 JSON ≤ 64 KiB as `JSON.stringify` writes it: `{"self":Addr,"peers":[Addr…],"progress":{"epoch","batches","samples"}}`,
 *   `Addr = {"pub": endpoint, "router": endpoint, "key": z85 | null}`, unknown members ignored),
 *   then the weight fingerprint (0–64 float64 LE, opaque to sync).
 * - SNAPSHOT_REQUEST: n = 0; sequence = request id ≥ 1. Frames: requested layers (u16 LE each,
 *   strictly increasing; empty = all layers).
 * - SNAPSHOT_RESPONSE: sequence = the request id it answers. Frames: index, then n payload
 *   frames. Index: u16 L, L × (layer u16, tensors u16) with layers strictly increasing and
 *   tensors summing to n, u32 S, S × (sender id 16 bytes, sequence u64) with distinct senders.
 *   With UNAVAILABLE (the peer has no snapshot to give) n = L = S = 0.
 * - Payload frames: rows·cols float32 LE (4 bytes each), or binary16 LE with F16 (DELTA and
 *   SNAPSHOT_RESPONSE only); every value finite (ENONFINITE).
 * - SPARSE (DELTA only, not with F16): each payload frame holds `m` entries of its tensor, the
 *   others being zero: `m` element indices (u32 LE, row-major, strictly increasing, each
 *   < rows·cols: else EINDEX), then their `m` values (float32 LE, finite). The frame has 8·m
 *   bytes, 0 ≤ m ≤ rows·cols. (A peer sending only the largest entries of its change, the rest
 *   carried to its next delta.)
 *
 * Versioning: {@link WIRE_VERSION} is bumped whenever the meaning of any byte changes (header
 * layout, a kind's frames, a body encoding, the CRC coverage, a new kind or flag). Receivers
 * accept exactly their own version (EVERSION), so all peers of a run must speak the same one.
 * New optional members of the heartbeat JSON do not bump it (receivers ignore unknown
 * members). Each bump is recorded in CHANGELOG.md in the same entry as the layout change.
 *
 * Encoders validate what the caller hands them and throw {@link InvalidOptionError},
 * {@link ShapeMismatchError} or {@link InvalidDataError}; {@link decode} throws only
 * {@link WireFormatError}, with one code per way a frame can be wrong.
 *
 * The code: `wire/format.ts` (constants, types, CRC), `wire/values.ts` (payload numerics),
 * `wire/encode.ts` (encoders), `wire/decode.ts` (one table entry per kind). The prose spec is
 * docs/wire-format.md. This module re-exports the public API.
 */ export {
  Flag,
  HEADER_BYTES,
  Kind,
  MAX_GOSSIP_PEERS,
  MAX_INFO_BYTES,
  MAX_MESSAGE_FRAMES,
  MAX_TENSORS_PER_MESSAGE,
  MAX_TENSOR_ELEMENTS,
  MAX_WEIGHT_FINGERPRINT,
  WIRE_MAGIC,
  WIRE_VERSION,
  checksum,
  controlTopic,
  deltaTopic,
  isEndpoint,
  runPrefix,
} from './wire/format.js';
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
} from './wire/format.js';
export {
  encodeDelta,
  encodeDeltaFrames,
  encodeHeartbeat,
  encodeSnapshotRequest,
  encodeSnapshotResponse,
  readdressSnapshotResponse,
  sparseFrame,
} from './wire/encode.js';
export { decode } from './wire/decode.js';
