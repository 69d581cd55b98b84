/**
 * The dbn-node sync wire format: pure encode/decode of ZeroMQ multipart messages, no sockets.
 *
 * Every message is `[topic, header, ...body, ...payload]`:
 *
 * Frame 0, topic (ASCII): `dbn/<runId>/<layer>` for DELTA (layer in decimal, no leading zeros),
 * `dbn/<runId>/ctl` for every other kind. A SUB subscribed to `dbn/<runId>/` receives one run.
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
 *   (UTF-8 JSON ≤ 64 KiB: `{"self":Addr,"peers":[Addr…],"progress":{"epoch","batches","samples"}}`,
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
 */
import { InvalidDataError, InvalidOptionError, ShapeMismatchError, WireFormatError } from '../errors.js';
import type { WireFormatErrorCode } from '../errors.js';
import { crc32 } from './crc32.js';
import { decodeFloat16Into, encodeFloat16 } from './float16.js';
import { isZ85Key } from './z85.js';

/** The wire-format version this build speaks; see the rules at the top of `wire.ts`. */
export const WIRE_VERSION = 2;

/** The four header magic bytes, `DBNS`. */
export const WIRE_MAGIC = Buffer.from('DBNS', 'ascii');

/** Message kinds (header byte 6). */
export const Kind = { DELTA: 1, HEARTBEAT: 2, SNAPSHOT_REQUEST: 3, SNAPSHOT_RESPONSE: 4 } as const;

/** Header flag bits (header byte 7). */
export const Flag = { F16: 1, UNAVAILABLE: 2, SPARSE: 4 } as const;

/** Size of the fixed part of the header, before the per-tensor shapes. */
export const HEADER_BYTES = 104;

/** Largest number of elements one tensor may have (2^28, 1 GiB as float32). */
export const MAX_TENSOR_ELEMENTS = 2 ** 28;

/** Largest heartbeat info frame, in bytes. */
export const MAX_INFO_BYTES = 65536;

/** Largest number of addresses in a heartbeat's peer list. */
export const MAX_GOSSIP_PEERS = 1024;

/** Largest weight fingerprint, in float64 values. */
export const MAX_WEIGHT_FINGERPRINT = 64;

const OFF = {
  magic: 0,
  version: 4,
  kind: 6,
  flags: 7,
  runId: 8,
  fingerprint: 24,
  sender: 56,
  sequence: 72,
  base: 80,
  timestamp: 88,
  layer: 96,
  count: 98,
  crc: 100,
} as const;

const RUN_ID_RE = /^[A-Za-z0-9._-]{1,16}$/;
const HEX32_RE = /^[0-9a-f]{32}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const ENDPOINT_RE = /^(tcp|ipc|inproc):\/\/[\x21-\x22\x24-\x7e]{1,240}$/;

/** A tensor's shape: `[rows, cols]`; a bias vector is `[1, n]`. */
export type Shape = readonly [rows: number, cols: number];

/** What every message carries besides its kind-specific content. */
export interface Envelope {
  /** Run id: 1–16 characters of `[A-Za-z0-9._-]`. */
  readonly runId: string;
  /** Model fingerprint: 64 lowercase hex characters (32 bytes). */
  readonly fingerprint: string;
  /** Sender id: 32 lowercase hex characters (16 bytes). */
  readonly senderId: string;
  /** Milliseconds since the Unix epoch; `Date.now()` when absent. */
  readonly timestamp?: number;
}

/** Where a peer can be reached. */
export interface PeerAddress {
  /** The peer's PUB endpoint, e.g. `tcp://10.0.0.2:5555`. */
  readonly pub: string;
  /** The peer's ROUTER (snapshot/announce) endpoint. */
  readonly router: string;
  /** The peer's CURVE public key (Z85), or `null` for a plaintext peer. */
  readonly publicKey: string | null;
}

/** Training progress reported in heartbeats. */
export interface Progress {
  readonly epoch: number;
  readonly batches: number;
  readonly samples: number;
}

/** The tensors of one layer. */
export interface LayerTensors {
  readonly layer: number;
  /** One array per tensor, `tensors[i].length === shapes[i][0] * shapes[i][1]`, row-major. */
  readonly tensors: readonly Float32Array[];
  readonly shapes: readonly Shape[];
}

interface DecodedBase {
  readonly runId: string;
  readonly fingerprint: string;
  readonly senderId: string;
  readonly timestamp: number;
}

/**
 * The nonzero entries of one tensor: `values[j]` is element `indices[j]` (row-major), indices
 * strictly increasing; every other element is zero.
 */
export interface SparseTensor {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** A decoded DELTA: the change of one layer's parameters. */
export interface DeltaMessage extends DecodedBase, LayerTensors {
  readonly kind: 'delta';
  readonly sequence: number;
  readonly baseSequence: number;
  /** The payload travelled as binary16 (values are already widened to float32). */
  readonly float16: boolean;
  /**
   * The dense tensors. For a SPARSE delta they are built on first access (then kept): a
   * receiver that can add {@link sparse} entries directly saves the allocation.
   */
  readonly tensors: Float32Array[];
  /** The entries of a SPARSE delta, one per tensor; absent for a dense one. */
  readonly sparse?: readonly SparseTensor[];
  readonly shapes: Shape[];
  /**
   * `Σ v²` over every value of every tensor (float64), computed by {@link decode} in the pass
   * that checks the values are finite; a receiver's norm check need not read the tensors again.
   */
  readonly sumSquares: number;
}

/** A decoded HEARTBEAT: membership, progress and a weight fingerprint. */
export interface HeartbeatMessage extends DecodedBase {
  readonly kind: 'heartbeat';
  /** The sender's last DELTA sequence (0 if none yet). */
  readonly lastSequence: number;
  readonly self: PeerAddress;
  readonly peers: PeerAddress[];
  readonly progress: Progress;
  /** Opaque to sync; length 0–64. */
  readonly weightFingerprint: Float64Array;
}

/** A decoded SNAPSHOT_REQUEST. */
export interface SnapshotRequestMessage extends DecodedBase {
  readonly kind: 'snapshot-request';
  readonly requestId: number;
  /** Requested layers, strictly increasing; empty means all. */
  readonly layers: number[];
}

/** A decoded SNAPSHOT_RESPONSE: full weights plus the per-sender sequences they reflect. */
export interface SnapshotResponseMessage extends DecodedBase {
  readonly kind: 'snapshot-response';
  readonly requestId: number;
  /** False when the peer had no snapshot to give (then `layers` and `sequences` are empty). */
  readonly available: boolean;
  readonly float16: boolean;
  readonly layers: LayerTensors[];
  /** Sender id → the last sequence of that sender reflected in the weights. */
  readonly sequences: Map<string, number>;
}

/** Any decoded message, discriminated by `kind`. */
export type Message = DeltaMessage | HeartbeatMessage | SnapshotRequestMessage | SnapshotResponseMessage;

// ---------------------------------------------------------------------------------------------
// Encoding

/** The topic of a DELTA of `layer` in `runId`. */
export function deltaTopic(runId: string, layer: number): string {
  return `dbn/${runId}/${layer}`;
}

/** The topic of every non-DELTA message of `runId`. */
export function controlTopic(runId: string): string {
  return `dbn/${runId}/ctl`;
}

/** The subscription prefix that receives every message of `runId`. */
export function runPrefix(runId: string): string {
  return `dbn/${runId}/`;
}

/**
 * Encodes a DELTA. Copies every tensor into fresh buffers (the caller may reuse its arrays).
 * @param delta.tensors one Float32Array per parameter tensor, `rows·cols` values each, finite.
 * @returns `[topic, header, ...payload]`.
 */
export function encodeDelta(
  env: Envelope,
  delta: {
    readonly layer: number;
    readonly sequence: number;
    readonly baseSequence: number;
    readonly tensors: readonly Float32Array[];
    readonly shapes: readonly Shape[];
    readonly float16?: boolean;
  },
): Buffer[] {
  const where = 'encodeDelta';
  checkDeltaNumbers(delta, where);
  const f16 = delta.float16 === true;
  checkTensors(delta.tensors, delta.shapes, where, 1, f16);
  return deltaFrames(env, delta, f16 ? Flag.F16 : 0, delta.tensors.map((t) => payload(t, f16)), where);
}

/** `[topic, header, ...payload]` of a DELTA whose numbers and payload were checked, sealed. */
function deltaFrames(
  env: Envelope,
  delta: { readonly layer: number; readonly sequence: number; readonly baseSequence: number; readonly shapes: readonly Shape[] },
  flags: number,
  payload: readonly Buffer[],
  where: string,
): Buffer[] {
  const header = makeHeader(env, Kind.DELTA, flags, delta.shapes, where);
  writeSeq(header, OFF.sequence, delta.sequence);
  writeSeq(header, OFF.base, delta.baseSequence);
  header.writeUInt16LE(delta.layer, OFF.layer);
  const frames = [Buffer.from(deltaTopic(env.runId, delta.layer), 'ascii'), header, ...payload];
  seal(frames);
  return frames;
}

/**
 * Encodes a DELTA whose payload frames the caller has already written in the wire encoding —
 * float32 little-endian, or binary16 little-endian with `float16` — e.g. straight from a fused
 * loop over the weights, which saves a copy (and, with float16, a second conversion). The
 * frames are sent as they are, not copied: do not write to them afterwards (ZeroMQ may still
 * be reading them). Checks each frame's length against its shape and, in one pass over the
 * bits, that every value is finite (an {@link InvalidDataError} names the first one that is not).
 * @param delta.payload one frame per tensor, `rows·cols·(float16 ? 2 : 4)` bytes.
 * @returns `[topic, header, ...payload]`.
 */
export function encodeDeltaFrames(
  env: Envelope,
  delta: {
    readonly layer: number;
    readonly sequence: number;
    readonly baseSequence: number;
    readonly payload: readonly Buffer[];
    readonly shapes: readonly Shape[];
    readonly float16?: boolean;
    /**
     * The frames are SPARSE (see the top of this file; build them with {@link sparseFrame}):
     * their layout, indices and values are checked (values skip the check with `finiteChecked`).
     */
    readonly sparse?: boolean;
    /**
     * The caller has established that every value is finite (a finite float64 sum of their
     * squares proves it for float32; for binary16, no value with an all-ones exponent): the
     * per-value scan is skipped. Lengths and shapes are still checked.
     */
    readonly finiteChecked?: boolean;
  },
): Buffer[] {
  const where = 'encodeDeltaFrames';
  checkDeltaNumbers(delta, where);
  const f16 = delta.float16 === true;
  const sparse = delta.sparse === true;
  if (f16 && sparse) throw new InvalidOptionError(`Options 'float16' and 'sparse' passed to '${where}' cannot be combined.`);
  const { payload, shapes } = delta;
  if (!Array.isArray(payload) || !Array.isArray(shapes)) throw new ShapeMismatchError(`Arguments 'payload' and 'shapes' passed to '${where}' must be arrays.`);
  if (payload.length !== shapes.length || payload.length < 1 || payload.length > 0xffff) {
    throw new ShapeMismatchError(`Arguments 'payload' (${payload.length}) and 'shapes' (${shapes.length}) passed to '${where}' must have the same length, 1 to 65535.`);
  }
  for (let i = 0; i < payload.length; i++) {
    const p = payload[i];
    const n = checkShape(shapes[i], i, where);
    if (!Buffer.isBuffer(p)) throw new ShapeMismatchError(`Argument 'payload[${i}]' passed to '${where}' must be a Buffer.`);
    if (sparse) {
      const read = readSparseChecked(p, n, delta.finiteChecked !== true);
      if ('problem' in read) throw new InvalidDataError(`Argument 'payload[${i}]' passed to '${where}' is not a valid sparse frame for shape ${shapes[i]![0]}x${shapes[i]![1]}: ${read.problem[1]}`);
      continue;
    }
    if (p.length !== n * (f16 ? 2 : 4)) {
      throw new ShapeMismatchError(`Argument 'payload[${i}]' passed to '${where}' has ${p.length} bytes; shape ${shapes[i]![0]}x${shapes[i]![1]} as ${f16 ? 'float16' : 'float32'} needs ${n * (f16 ? 2 : 4)}.`);
    }
    const bad = delta.finiteChecked === true ? -1 : f16 ? firstNonFiniteHalf(p) : firstNonFiniteFloat(p);
    if (bad >= 0) {
      throw new InvalidDataError(`Argument 'payload[${i}]' passed to '${where}' must hold finite values; element ${bad} is not (bits 0x${(f16 ? u16(p, 2 * bad) : u32(p, 4 * bad)).toString(16)}).`);
    }
  }
  return deltaFrames(env, delta, f16 ? Flag.F16 : sparse ? Flag.SPARSE : 0, payload, where);
}

/**
 * A SPARSE payload frame holding `values[j]` at element `indices[j]`, j < `count` (default: all):
 * `count` u32 indices, then `count` float32 values, little-endian. Checked when it is encoded
 * ({@link encodeDeltaFrames} with `sparse`).
 */
export function sparseFrame(indices: Uint32Array, values: Float32Array, count = indices.length): Buffer {
  if (!Number.isSafeInteger(count) || count < 0 || count > indices.length || count > values.length) {
    throw new ShapeMismatchError(`Argument 'count' passed to 'sparseFrame' must be an integer from 0 to the arrays' lengths (${indices.length}, ${values.length}), got ${count}.`);
  }
  const frame = Buffer.allocUnsafe(8 * count);
  if (LITTLE_ENDIAN && frame.byteOffset % 4 === 0) {
    new Uint32Array(frame.buffer, frame.byteOffset, count).set(indices.subarray(0, count));
    new Float32Array(frame.buffer, frame.byteOffset + 4 * count, count).set(values.subarray(0, count));
  } else {
    for (let j = 0; j < count; j++) {
      frame.writeUInt32LE(indices[j]!, 4 * j);
      frame.writeFloatLE(values[j]!, 4 * (count + j));
    }
  }
  return frame;
}

/**
 * A SPARSE frame for a tensor of `n` elements, read and checked: its entries and `Σ v²` (NaN
 * without `values`, whose finiteness is then not checked), or what is wrong with it (a wire
 * error code and a sentence).
 */
function readSparseChecked(
  frame: Uint8Array,
  n: number,
  values: boolean,
): { readonly tensor: SparseTensor; readonly sumSquares: number } | { readonly problem: [WireFormatErrorCode, string] } {
  if (frame.length % 8 !== 0 || frame.length / 8 > n) return { problem: ['ELENGTH', `${frame.length} bytes; a multiple of 8 up to ${8 * n} expected.`] };
  const tensor = readSparse(frame);
  const ix = tensor.indices;
  let prev = -1;
  for (let j = 0; j < ix.length; j++) {
    const k = ix[j]!;
    if (k <= prev || k >= n) return { problem: ['EINDEX', `index ${k} at entry ${j} is ${k >= n ? `beyond the ${n} elements` : 'not above the one before'}.`] };
    prev = k;
  }
  if (!values) return { tensor, sumSquares: Number.NaN };
  const sumSquares = sumOfSquares(tensor.values);
  if (!Number.isFinite(sumSquares)) {
    const j = tensor.values.findIndex((v) => !Number.isFinite(v));
    return { problem: ['ENONFINITE', `entry ${j} (element ${ix[j]}) holds ${tensor.values[j]}.`] };
  }
  return { tensor, sumSquares };
}

/** Views (or, unaligned or big-endian, copies) of a SPARSE frame's indices and values. */
function readSparse(frame: Uint8Array): SparseTensor {
  const m = frame.length >>> 3;
  if (LITTLE_ENDIAN && frame.byteOffset % 4 === 0) {
    return { indices: new Uint32Array(frame.buffer, frame.byteOffset, m), values: new Float32Array(frame.buffer, frame.byteOffset + 4 * m, m) };
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const indices = new Uint32Array(m);
  const values = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    indices[j] = view.getUint32(4 * j, true);
    values[j] = view.getFloat32(4 * (m + j), true);
  }
  return { indices, values };
}

/** The dense form of a sparse tensor of `n` elements. */
function densify(s: SparseTensor, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let j = 0; j < s.indices.length; j++) out[s.indices[j]!] = s.values[j]!;
  return out;
}

/**
 * Encodes a HEARTBEAT.
 * @param hb.weightFingerprint 0–64 numbers, opaque to sync.
 * @returns `[topic, header, info, weightFingerprint]`.
 */
export function encodeHeartbeat(
  env: Envelope,
  hb: {
    readonly lastSequence: number;
    readonly self: PeerAddress;
    readonly peers: readonly PeerAddress[];
    readonly progress: Progress;
    readonly weightFingerprint: ArrayLike<number>;
  },
): Buffer[] {
  const where = 'encodeHeartbeat';
  checkSeq(hb.lastSequence, 'lastSequence', where, 0);
  checkAddress(hb.self, 'self', where);
  if (hb.peers.length > MAX_GOSSIP_PEERS) {
    throw new InvalidOptionError(`Argument 'peers' passed to '${where}' may list at most ${MAX_GOSSIP_PEERS} peers, got ${hb.peers.length}.`);
  }
  hb.peers.forEach((p, i) => checkAddress(p, `peers[${i}]`, where));
  for (const k of ['epoch', 'batches', 'samples'] as const) {
    const v = hb.progress[k];
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new InvalidOptionError(`Argument 'progress.${k}' passed to '${where}' must be a non-negative integer, got ${String(v)}.`);
    }
  }
  if (hb.weightFingerprint.length > MAX_WEIGHT_FINGERPRINT) {
    throw new InvalidOptionError(
      `Argument 'weightFingerprint' passed to '${where}' may hold at most ${MAX_WEIGHT_FINGERPRINT} numbers, got ${hb.weightFingerprint.length}.`,
    );
  }
  const addr = (a: PeerAddress): object => ({ pub: a.pub, router: a.router, key: a.publicKey });
  const info = Buffer.from(
    JSON.stringify({
      self: addr(hb.self),
      peers: hb.peers.map(addr),
      progress: { epoch: hb.progress.epoch, batches: hb.progress.batches, samples: hb.progress.samples },
    }),
    'utf8',
  );
  if (info.length > MAX_INFO_BYTES) {
    throw new InvalidOptionError(`The heartbeat info passed to '${where}' encodes to ${info.length} bytes, more than ${MAX_INFO_BYTES}.`);
  }
  const wf = Buffer.alloc(hb.weightFingerprint.length * 8);
  for (let i = 0; i < hb.weightFingerprint.length; i++) wf.writeDoubleLE(hb.weightFingerprint[i]!, i * 8);
  const header = makeHeader(env, Kind.HEARTBEAT, 0, [], where);
  writeSeq(header, OFF.sequence, hb.lastSequence);
  const frames = [Buffer.from(controlTopic(env.runId), 'ascii'), header, info, wf];
  seal(frames);
  return frames;
}

/**
 * Encodes a SNAPSHOT_REQUEST.
 * @param req.layers the layers wanted, strictly increasing; empty for all.
 * @returns `[topic, header, layers]`.
 */
export function encodeSnapshotRequest(env: Envelope, req: { readonly requestId: number; readonly layers: readonly number[] }): Buffer[] {
  const where = 'encodeSnapshotRequest';
  checkSeq(req.requestId, 'requestId', where, 1);
  const layers = Buffer.alloc(req.layers.length * 2);
  req.layers.forEach((l, i) => {
    checkU16(l, `layers[${i}]`, where);
    if (i > 0 && l <= req.layers[i - 1]!) {
      throw new InvalidOptionError(`Argument 'layers' passed to '${where}' must be strictly increasing; layers[${i}] is ${l}.`);
    }
    layers.writeUInt16LE(l, i * 2);
  });
  const header = makeHeader(env, Kind.SNAPSHOT_REQUEST, 0, [], where);
  writeSeq(header, OFF.sequence, req.requestId);
  const frames = [Buffer.from(controlTopic(env.runId), 'ascii'), header, layers];
  seal(frames);
  return frames;
}

/**
 * Encodes a SNAPSHOT_RESPONSE. With `available: false` the layers and sequences must be empty.
 * @param res.layers every tensor of every layer sent, layers strictly increasing.
 * @param res.sequences sender id (32 hex) → last sequence reflected in the weights.
 * @returns `[topic, header, index, ...payload]`.
 */
export function encodeSnapshotResponse(
  env: Envelope,
  res: {
    readonly requestId: number;
    readonly available?: boolean;
    readonly layers: readonly LayerTensors[];
    readonly sequences: ReadonlyMap<string, number>;
    readonly float16?: boolean;
  },
): Buffer[] {
  const where = 'encodeSnapshotResponse';
  checkSeq(res.requestId, 'requestId', where, 0);
  const available = res.available !== false;
  const f16 = res.float16 === true;
  if (!available && (res.layers.length > 0 || res.sequences.size > 0)) {
    throw new InvalidOptionError(`An unavailable response passed to '${where}' must have no layers and no sequences.`);
  }
  if (res.layers.length > 0xffff) throw new InvalidOptionError(`Argument 'layers' passed to '${where}' holds more than 65535 layers.`);
  const shapes: Shape[] = [];
  const tensors: Float32Array[] = [];
  res.layers.forEach((l, i) => {
    checkU16(l.layer, `layers[${i}].layer`, where);
    if (i > 0 && l.layer <= res.layers[i - 1]!.layer) {
      throw new InvalidOptionError(`Argument 'layers' passed to '${where}' must be sorted by strictly increasing layer; layers[${i}] is ${l.layer}.`);
    }
    checkTensors(l.tensors, l.shapes, `${where}' (layer ${l.layer})`, 1, f16);
    shapes.push(...l.shapes);
    tensors.push(...l.tensors);
  });
  if (tensors.length > 0xffff) throw new InvalidOptionError(`A snapshot passed to '${where}' holds more than 65535 tensors.`);
  const index = Buffer.alloc(2 + 4 * res.layers.length + 4 + 24 * res.sequences.size);
  let o = index.writeUInt16LE(res.layers.length, 0);
  for (const l of res.layers) {
    o = index.writeUInt16LE(l.layer, o);
    o = index.writeUInt16LE(l.tensors.length, o);
  }
  o = index.writeUInt32LE(res.sequences.size, o);
  for (const [sender, seq] of res.sequences) {
    if (!HEX32_RE.test(sender)) throw new InvalidOptionError(`Sender id '${sender}' passed to '${where}' must be 32 lowercase hex characters.`);
    checkSeq(seq, `sequences.get('${sender}')`, where, 0);
    index.write(sender, o, 16, 'hex');
    writeSeq(index, o + 16, seq);
    o += 24;
  }
  const header = makeHeader(env, Kind.SNAPSHOT_RESPONSE, (f16 ? Flag.F16 : 0) | (available ? 0 : Flag.UNAVAILABLE), shapes, where);
  writeSeq(header, OFF.sequence, res.requestId);
  const frames = [Buffer.from(controlTopic(env.runId), 'ascii'), header, index, ...tensors.map((t) => payload(t, f16))];
  seal(frames);
  return frames;
}

/**
 * An encoded SNAPSHOT_RESPONSE answering `requestId` instead: a fresh header, the other frames
 * shared (not copied), the CRC recomputed. Lets a server answer many requests from one encoding.
 */
export function readdressSnapshotResponse(frames: readonly Buffer[], requestId: number): Buffer[] {
  checkSeq(requestId, 'requestId', 'readdressSnapshotResponse', 0);
  const header = Buffer.from(frames[1]!);
  writeSeq(header, OFF.sequence, requestId);
  const out = [frames[0]!, header, ...frames.slice(2)];
  seal(out);
  return out;
}

function makeHeader(env: Envelope, kind: number, flags: number, shapes: readonly Shape[], where: string): Buffer {
  checkEnvelope(env, where);
  const h = Buffer.alloc(HEADER_BYTES + 8 * shapes.length);
  WIRE_MAGIC.copy(h, OFF.magic);
  h.writeUInt16LE(WIRE_VERSION, OFF.version);
  h.writeUInt8(kind, OFF.kind);
  h.writeUInt8(flags, OFF.flags);
  h.write(env.runId, OFF.runId, 16, 'ascii');
  h.write(env.fingerprint, OFF.fingerprint, 32, 'hex');
  h.write(env.senderId, OFF.sender, 16, 'hex');
  h.writeDoubleLE(env.timestamp ?? Date.now(), OFF.timestamp);
  h.writeUInt16LE(shapes.length, OFF.count);
  shapes.forEach(([r, c], i) => {
    h.writeUInt32LE(r, HEADER_BYTES + 8 * i);
    h.writeUInt32LE(c, HEADER_BYTES + 8 * i + 4);
  });
  return h;
}

function payload(t: Float32Array, f16: boolean): Buffer {
  // allocUnsafe: every byte is written below (no zero-fill pass over megabyte deltas).
  if (f16) {
    const b = Buffer.allocUnsafe(t.length * 2);
    encodeFloat16(t, b);
    return b;
  }
  const b = Buffer.allocUnsafe(t.length * 4);
  if (LITTLE_ENDIAN) b.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  else for (let i = 0; i < t.length; i++) b.writeFloatLE(t[i]!, i * 4);
  return b;
}

/** Computes and writes the CRC of an encoded message into its header. */
function seal(frames: Buffer[]): void {
  frames[1]!.writeUInt32LE(checksum(frames), OFF.crc);
}

/**
 * The CRC-32 a message's header must carry, computed over `frames` as laid out at the top of
 * this file. Exported so tests can craft frames that are wrong in one field only.
 */
export function checksum(frames: readonly Uint8Array[]): number {
  const len = new Uint8Array(4);
  let crc = 0;
  frames.forEach((f, i) => {
    const n = f.length;
    len[0] = n & 0xff;
    len[1] = (n >>> 8) & 0xff;
    len[2] = (n >>> 16) & 0xff;
    len[3] = n >>> 24;
    crc = crc32(len, crc);
    if (i === 1) {
      crc = crc32(f, crc, 0, Math.min(OFF.crc, n));
      if (n > OFF.crc + 4) crc = crc32(f, crc, OFF.crc + 4, n);
    } else {
      crc = crc32(f, crc);
    }
  });
  return crc;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkEnvelope(env: Envelope, where: string): void {
  if (typeof env.runId !== 'string' || !RUN_ID_RE.test(env.runId)) {
    throw new InvalidOptionError(`The run id passed to '${where}' must be 1–16 characters of [A-Za-z0-9._-], got ${JSON.stringify(env.runId)}.`);
  }
  if (typeof env.fingerprint !== 'string' || !HEX64_RE.test(env.fingerprint)) {
    throw new InvalidOptionError(`The model fingerprint passed to '${where}' must be 64 lowercase hex characters.`);
  }
  if (typeof env.senderId !== 'string' || !HEX32_RE.test(env.senderId)) {
    throw new InvalidOptionError(`The sender id passed to '${where}' must be 32 lowercase hex characters, got ${JSON.stringify(env.senderId)}.`);
  }
  if (env.timestamp !== undefined && !(Number.isFinite(env.timestamp) && env.timestamp >= 0)) {
    throw new InvalidOptionError(`The timestamp passed to '${where}' must be a finite number ≥ 0, got ${env.timestamp}.`);
  }
}

function checkU16(v: number, arg: string, where: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new InvalidOptionError(`Argument '${arg}' passed to '${where}' must be an integer in [0, 65535], got ${v}.`);
  }
}

function checkSeq(v: number, arg: string, where: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new InvalidOptionError(`Argument '${arg}' passed to '${where}' must be an integer in [${min}, 2^53 - 1], got ${v}.`);
  }
}

function checkTensors(tensors: readonly Float32Array[], shapes: readonly Shape[], where: string, min: number, f16: boolean): void {
  if (!Array.isArray(tensors) || !Array.isArray(shapes)) {
    throw new ShapeMismatchError(`Arguments 'tensors' and 'shapes' passed to '${where}' must be arrays.`);
  }
  if (tensors.length !== shapes.length) {
    throw new ShapeMismatchError(`Arguments 'tensors' (${tensors.length}) and 'shapes' (${shapes.length}) passed to '${where}' must have the same length.`);
  }
  if (tensors.length < min || tensors.length > 0xffff) {
    throw new ShapeMismatchError(`Argument 'tensors' passed to '${where}' must hold between ${min} and 65535 tensors, got ${tensors.length}.`);
  }
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const n = checkShape(shapes[i], i, where);
    if (!(t instanceof Float32Array)) throw new ShapeMismatchError(`Argument 'tensors[${i}]' passed to '${where}' must be a Float32Array.`);
    if (t.length !== n) {
      throw new ShapeMismatchError(`Argument 'tensors[${i}]' passed to '${where}' has ${t.length} values, but shape ${shapes[i]![0]}x${shapes[i]![1]} needs ${n}.`);
    }
    // A float32 rounds to binary16 infinity exactly when its magnitude is at least 65520.
    if (!allFinite(t, f16 ? 65520 : Infinity)) {
      for (let k = 0; k < t.length; k++) {
        const v = t[k]!;
        if (!Number.isFinite(v) || (f16 && Math.abs(v) >= 65520)) {
          const what = Number.isFinite(v) ? `${v}, which overflows float16` : String(v);
          throw new InvalidDataError(`Argument 'tensors[${i}]' passed to '${where}' must hold finite values; element ${k} is ${what}.`);
        }
      }
    }
  }
}

/** Checks a delta's layer, sequence and base sequence (`base < sequence`). */
function checkDeltaNumbers(delta: { readonly layer: number; readonly sequence: number; readonly baseSequence: number }, where: string): void {
  checkU16(delta.layer, 'layer', where);
  checkSeq(delta.sequence, 'sequence', where, 1);
  checkSeq(delta.baseSequence, 'baseSequence', where, 0);
  if (delta.baseSequence >= delta.sequence) {
    throw new InvalidOptionError(`Argument 'baseSequence' passed to '${where}' must be less than 'sequence' (${delta.sequence}), got ${delta.baseSequence}.`);
  }
}

/** Checks one `[rows, cols]` shape; returns `rows·cols`. */
function checkShape(s: Shape | undefined, i: number, where: string): number {
  if (!Array.isArray(s) || s.length !== 2 || !s.every((d) => Number.isInteger(d) && d >= 1 && d <= 0xffffffff)) {
    throw new ShapeMismatchError(`Argument 'shapes[${i}]' passed to '${where}' must be [rows, cols] with positive integers.`);
  }
  const [r, c] = s;
  if (r * c > MAX_TENSOR_ELEMENTS) {
    throw new ShapeMismatchError(`Tensor ${i} passed to '${where}' has ${r}x${c} elements, more than ${MAX_TENSOR_ELEMENTS}.`);
  }
  return r * c;
}

/** True when every value of `t` is finite with a magnitude below `limit`. */
function allFinite(t: Float32Array, limit: number): boolean {
  // v·0 is 0 for a finite v and NaN otherwise; a running maximum of |v| catches the limit.
  let z = 0;
  let m = 0;
  for (let k = 0; k < t.length; k++) {
    const v = t[k]!;
    z += v * 0;
    const a = Math.abs(v);
    m = a > m ? a : m;
  }
  return z === 0 && m < limit;
}

/** The index of the first non-finite float32 in `b` (little-endian, length a multiple of 4), or −1. */
function firstNonFiniteFloat(b: Buffer): number {
  const n = b.length >>> 2;
  if (LITTLE_ENDIAN && (b.byteOffset & 3) === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, n);
    // An all-ones exponent (Infinity, NaN) carries into bit 31: OR the sums, test the sign once.
    let acc = 0;
    for (let k = 0; k < n; k++) acc |= (w[k]! & 0x7f800000) + 0x00800000;
    if (acc >= 0) return -1;
  }
  for (let k = 0; k < n; k++) if ((u32(b, 4 * k) & 0x7f800000) === 0x7f800000) return k;
  return -1;
}

/** The index of the first non-finite binary16 in `b` (little-endian, even length), or −1. */
function firstNonFiniteHalf(b: Buffer): number {
  const n = b.length >>> 1;
  if (LITTLE_ENDIAN && (b.byteOffset & 3) === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, n >>> 1);
    // Two halves per word: an all-ones exponent carries into bit 15 or bit 31 of its half.
    let acc = 0;
    for (let k = 0; k < w.length; k++) acc |= (w[k]! & 0x7c007c00) + 0x04000400;
    if ((acc & 0x80008000) === 0 && ((n & 1) === 0 || (u16(b, 2 * (n - 1)) & 0x7c00) !== 0x7c00)) return -1;
  }
  for (let k = 0; k < n; k++) if ((u16(b, 2 * k) & 0x7c00) === 0x7c00) return k;
  return -1;
}

function checkAddress(a: PeerAddress, arg: string, where: string): void {
  if (typeof a !== 'object' || a === null || !isEndpoint(a.pub) || !isEndpoint(a.router)) {
    throw new InvalidOptionError(`Argument '${arg}' passed to '${where}' must have 'pub' and 'router' endpoints like 'tcp://host:port'.`);
  }
  if (a.publicKey !== null && !isZ85Key(a.publicKey)) {
    throw new InvalidOptionError(`Argument '${arg}.publicKey' passed to '${where}' must be a 40-character Z85 key or null.`);
  }
}

/** True for a ZeroMQ endpoint that may travel in a heartbeat (`tcp://`, `ipc://`, `inproc://`, no `#`). */
export function isEndpoint(s: unknown): s is string {
  return typeof s === 'string' && ENDPOINT_RE.test(s);
}

function writeSeq(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v % 4294967296, off);
  b.writeUInt32LE(Math.floor(v / 4294967296), off + 4);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function fail(code: WireFormatErrorCode, message: string): never {
  throw new WireFormatError(code, message);
}

function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function seq(b: Uint8Array, o: number, field: string): number {
  const hi = u32(b, o + 4);
  if (hi > 0x1fffff) fail('EFIELD', `The ${field} exceeds 2^53 - 1.`);
  return hi * 4294967296 + u32(b, o);
}

function hex(b: Uint8Array, o: number, n: number): string {
  return Buffer.from(b.buffer, b.byteOffset + o, n).toString('hex');
}

const BODY_FRAMES: Record<number, number> = {
  [Kind.DELTA]: 0,
  [Kind.HEARTBEAT]: 2,
  [Kind.SNAPSHOT_REQUEST]: 1,
  [Kind.SNAPSHOT_RESPONSE]: 1,
};

/**
 * Decodes a multipart message. Checks every length before use, copies every payload (the
 * returned arrays never alias `frames`), and throws {@link WireFormatError} — never anything
 * else — when a frame is wrong: EFRAMES (frame count or type), ETRUNCATED, EMAGIC, EVERSION,
 * EKIND, ELENGTH (a frame longer or shorter than its header says), ESHAPE, ECRC, EFIELD (a
 * header or body field out of range), ETOPIC (topic ≠ the one the header implies), ENONFINITE.
 */
export function decode(frames: readonly Uint8Array[]): Message {
  if (!Array.isArray(frames) || frames.length < 2) {
    fail('EFRAMES', `A message needs at least 2 frames (topic, header), got ${Array.isArray(frames) ? frames.length : typeof frames}.`);
  }
  for (let i = 0; i < frames.length; i++) {
    if (!(frames[i] instanceof Uint8Array)) fail('EFRAMES', `Frame ${i} is not a byte buffer.`);
  }
  const topic = frames[0]!;
  const h = frames[1]!;
  if (h.length < HEADER_BYTES) fail('ETRUNCATED', `The header has ${h.length} bytes, at least ${HEADER_BYTES} expected.`);
  for (let i = 0; i < 4; i++) {
    if (h[OFF.magic + i] !== WIRE_MAGIC[i]) fail('EMAGIC', `The header does not start with 'DBNS'.`);
  }
  const version = u16(h, OFF.version);
  if (version !== WIRE_VERSION) fail('EVERSION', `Wire version ${version} is not supported; this peer speaks version ${WIRE_VERSION}.`);
  const kind = h[OFF.kind]!;
  const bodyFrames = BODY_FRAMES[kind];
  if (bodyFrames === undefined) fail('EKIND', `Unknown message kind ${kind}.`);
  const flags = h[OFF.flags]!;
  const allowedFlags = kind === Kind.DELTA ? Flag.F16 | Flag.SPARSE : kind === Kind.SNAPSHOT_RESPONSE ? Flag.F16 | Flag.UNAVAILABLE : 0;
  if ((flags & ~allowedFlags) !== 0 || (flags & (Flag.F16 | Flag.SPARSE)) === (Flag.F16 | Flag.SPARSE)) fail('EFIELD', `Flags 0x${flags.toString(16)} are not valid for kind ${kind}.`);
  const f16 = (flags & Flag.F16) !== 0;
  const sparse = (flags & Flag.SPARSE) !== 0;
  const n = u16(h, OFF.count);
  if (h.length < HEADER_BYTES + 8 * n) fail('ETRUNCATED', `The header has ${h.length} bytes, ${HEADER_BYTES + 8 * n} expected for ${n} tensors.`);
  if (h.length > HEADER_BYTES + 8 * n) fail('ELENGTH', `The header has ${h.length} bytes, ${HEADER_BYTES + 8 * n} expected for ${n} tensors.`);
  if (kind === Kind.DELTA && n === 0) fail('EFIELD', 'A delta must carry at least one tensor.');
  if ((kind === Kind.HEARTBEAT || kind === Kind.SNAPSHOT_REQUEST) && n !== 0) fail('EFIELD', `Kind ${kind} carries no tensors, got ${n}.`);
  const unavailable = (flags & Flag.UNAVAILABLE) !== 0;
  if (unavailable && n !== 0) fail('EFIELD', `An unavailable snapshot response carries no tensors, got ${n}.`);
  const expectedFrames = 2 + bodyFrames + n;
  if (frames.length !== expectedFrames) fail('EFRAMES', `Kind ${kind} with ${n} tensors needs ${expectedFrames} frames, got ${frames.length}.`);

  const bytesPer = f16 ? 2 : 4;
  const shapes: Shape[] = [];
  for (let i = 0; i < n; i++) {
    const r = u32(h, HEADER_BYTES + 8 * i);
    const c = u32(h, HEADER_BYTES + 8 * i + 4);
    if (r === 0 || c === 0 || r * c > MAX_TENSOR_ELEMENTS) fail('ESHAPE', `Tensor ${i} has shape ${r}x${c}; rows and cols must be ≥ 1 with at most ${MAX_TENSOR_ELEMENTS} elements.`);
    const got = frames[2 + bodyFrames + i]!.length;
    if (sparse) {
      if (got % 8 !== 0 || got > 8 * r * c) fail('ELENGTH', `Sparse payload ${i} has ${got} bytes; a multiple of 8 up to ${8 * r * c} expected for ${r}x${c}.`);
    } else if (got !== r * c * bytesPer) fail('ELENGTH', `Payload ${i} has ${got} bytes, ${r * c * bytesPer} expected for ${r}x${c} ${f16 ? 'float16' : 'float32'}.`);
    shapes.push([r, c]);
  }
  const body = frames.slice(2, 2 + bodyFrames);
  if (kind === Kind.HEARTBEAT) {
    if (body[0]!.length > MAX_INFO_BYTES) fail('ELENGTH', `The heartbeat info has ${body[0]!.length} bytes, at most ${MAX_INFO_BYTES} allowed.`);
    const wf = body[1]!.length;
    if (wf % 8 !== 0 || wf > 8 * MAX_WEIGHT_FINGERPRINT) fail('ELENGTH', `The weight fingerprint has ${wf} bytes; a multiple of 8 up to ${8 * MAX_WEIGHT_FINGERPRINT} expected.`);
  } else if (kind === Kind.SNAPSHOT_REQUEST) {
    if (body[0]!.length % 2 !== 0) fail('ELENGTH', `The requested-layers frame has ${body[0]!.length} bytes; a multiple of 2 expected.`);
  } else if (kind === Kind.SNAPSHOT_RESPONSE) {
    const ix = body[0]!;
    if (ix.length < 2) fail('ETRUNCATED', 'The snapshot index is shorter than 2 bytes.');
    const L = u16(ix, 0);
    if (ix.length < 2 + 4 * L + 4) fail('ETRUNCATED', `The snapshot index is too short for ${L} layers.`);
    const S = u32(ix, 2 + 4 * L);
    const want = 2 + 4 * L + 4 + 24 * S;
    if (ix.length !== want) fail(ix.length < want ? 'ETRUNCATED' : 'ELENGTH', `The snapshot index has ${ix.length} bytes, ${want} expected.`);
  }

  const stored = u32(h, OFF.crc);
  const actual = checksum(frames);
  if (stored !== actual) fail('ECRC', `Checksum mismatch: header says 0x${stored.toString(16)}, frames give 0x${actual.toString(16)}.`);

  let runLen = 0;
  while (runLen < 16 && h[OFF.runId + runLen] !== 0) runLen++;
  for (let i = runLen; i < 16; i++) if (h[OFF.runId + i] !== 0) fail('EFIELD', 'The run id has bytes after its NUL padding.');
  const runId = Buffer.from(h.buffer, h.byteOffset + OFF.runId, runLen).toString('latin1');
  if (!RUN_ID_RE.test(runId)) fail('EFIELD', `The run id ${JSON.stringify(runId)} is not 1–16 characters of [A-Za-z0-9._-].`);
  const timestamp = Buffer.from(h.buffer, h.byteOffset, h.length).readDoubleLE(OFF.timestamp);
  if (!(Number.isFinite(timestamp) && timestamp >= 0)) fail('EFIELD', `The timestamp ${timestamp} is not a finite number ≥ 0.`);
  const sequence = seq(h, OFF.sequence, 'sequence');
  const base = seq(h, OFF.base, 'base sequence');
  const layer = u16(h, OFF.layer);
  if (kind !== Kind.DELTA && (base !== 0 || layer !== 0)) fail('EFIELD', `Kind ${kind} must have base sequence 0 and layer 0.`);
  if (kind === Kind.DELTA && (sequence < 1 || base >= sequence)) fail('EFIELD', `A delta needs 1 ≤ sequence and base sequence < sequence, got ${sequence} and ${base}.`);
  if (kind === Kind.SNAPSHOT_REQUEST && sequence < 1) fail('EFIELD', 'A snapshot request id must be ≥ 1.');

  const expectedTopic = kind === Kind.DELTA ? deltaTopic(runId, layer) : controlTopic(runId);
  if (topic.length !== expectedTopic.length || Buffer.from(topic.buffer, topic.byteOffset, topic.length).toString('latin1') !== expectedTopic) {
    fail('ETOPIC', `The topic does not match the header; '${expectedTopic}' expected.`);
  }

  const base_ = { runId, fingerprint: hex(h, OFF.fingerprint, 32), senderId: hex(h, OFF.sender, 16), timestamp };
  let sumSquares = 0;
  const readPayloads = (first: number): Float32Array[] =>
    shapes.map(([r, c], i) => {
      const frame = frames[first + i]!;
      // A little-endian machine views an aligned float32 payload in place (the received frame is
      // this message's own memory); otherwise the values are copied or widened from binary16.
      const inPlace = !f16 && LITTLE_ENDIAN && frame.byteOffset % 4 === 0;
      const t = inPlace ? new Float32Array(frame.buffer, frame.byteOffset, r * c) : new Float32Array(r * c);
      // Σ v² is finite exactly when every v is (float32 squares cannot overflow a double).
      const sq = inPlace ? sumOfSquares(t) : readTensor(frame, t, f16);
      if (!Number.isFinite(sq)) {
        const k = t.findIndex((v) => !Number.isFinite(v));
        fail('ENONFINITE', `Payload ${i} holds ${t[k]} at element ${k}.`);
      }
      sumSquares += sq;
      return t;
    });

  switch (kind) {
    case Kind.DELTA: {
      if (sparse) return sparseDelta(frames, shapes, { kind: 'delta', ...base_, layer, sequence, baseSequence: base, float16: false });
      const tensors = readPayloads(2);
      return { kind: 'delta', ...base_, layer, sequence, baseSequence: base, float16: f16, shapes, tensors, sumSquares };
    }
    case Kind.HEARTBEAT: {
      const info = parseInfo(body[0]!);
      const wfBytes = body[1]!;
      const copy = new Uint8Array(wfBytes);
      const view = new DataView(copy.buffer);
      const weightFingerprint = new Float64Array(copy.length / 8);
      for (let i = 0; i < weightFingerprint.length; i++) weightFingerprint[i] = view.getFloat64(i * 8, true);
      return { kind: 'heartbeat', ...base_, lastSequence: sequence, ...info, weightFingerprint };
    }
    case Kind.SNAPSHOT_REQUEST: {
      const lb = body[0]!;
      const layers: number[] = [];
      for (let o = 0; o < lb.length; o += 2) {
        const l = u16(lb, o);
        if (layers.length > 0 && l <= layers[layers.length - 1]!) fail('EFIELD', 'Requested layers are not strictly increasing.');
        layers.push(l);
      }
      return { kind: 'snapshot-request', ...base_, requestId: sequence, layers };
    }
    default: {
      const ix = body[0]!;
      const L = u16(ix, 0);
      const S = u32(ix, 2 + 4 * L);
      if (unavailable && (L !== 0 || S !== 0)) fail('EFIELD', 'An unavailable snapshot response must have an empty index.');
      const tensors = readPayloads(3);
      const layers: LayerTensors[] = [];
      let t = 0;
      for (let i = 0; i < L; i++) {
        const layer_ = u16(ix, 2 + 4 * i);
        const count = u16(ix, 4 + 4 * i);
        if (i > 0 && layer_ <= layers[i - 1]!.layer) fail('EFIELD', 'Snapshot layers are not strictly increasing.');
        if (count === 0 || t + count > n) fail('EFIELD', `Snapshot layer ${layer_} claims ${count} tensors, which do not fit the ${n} in the header.`);
        layers.push({ layer: layer_, tensors: tensors.slice(t, t + count), shapes: shapes.slice(t, t + count) });
        t += count;
      }
      if (t !== n) fail('EFIELD', `The snapshot index accounts for ${t} tensors, the header for ${n}.`);
      const sequences = new Map<string, number>();
      for (let i = 0, o = 2 + 4 * L + 4; i < S; i++, o += 24) {
        const sender = hex(ix, o, 16);
        if (sequences.has(sender)) fail('EFIELD', `Sender ${sender} appears twice in the snapshot sequences.`);
        sequences.set(sender, seq(ix, o + 16, 'snapshot sequence'));
      }
      return { kind: 'snapshot-response', ...base_, requestId: sequence, available: !unavailable, float16: f16, layers, sequences };
    }
  }
}

/** A SPARSE delta's message: entries checked (EINDEX, ENONFINITE), dense tensors built on first access. */
function sparseDelta(frames: readonly Uint8Array[], shapes: Shape[], fields: Omit<DeltaMessage, 'shapes' | 'tensors' | 'sparse' | 'sumSquares'>): DeltaMessage {
  const sparse: SparseTensor[] = [];
  let sumSquares = 0;
  shapes.forEach(([r, c], i) => {
    const frame = frames[2 + i]!;
    const read = readSparseChecked(frame, r * c, true);
    if ('problem' in read) fail(read.problem[0], `Sparse payload ${i}: ${read.problem[1]}`);
    sumSquares += read.sumSquares;
    sparse.push(read.tensor);
  });
  let dense: Float32Array[] | undefined;
  return {
    ...fields,
    shapes,
    sparse,
    sumSquares,
    get tensors(): Float32Array[] {
      return (dense ??= sparse.map((s, i) => densify(s, shapes[i]![0] * shapes[i]![1])));
    },
  };
}

/** Fills `out` from a payload frame (copying: the frame's byteOffset may not be a multiple of 4); returns Σ v². */
function readTensor(frame: Uint8Array, out: Float32Array, f16: boolean): number {
  if (f16) return decodeFloat16Into(frame, out);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(frame);
  else {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return sumOfSquares(out);
}

/**
 * `Σ v²` in float64 (not finite exactly when some `v` is not), in four interleaved partial sums
 * (measured twice as fast as one running sum on a 392,000-value delta: the additions no longer
 * wait on each other). The order is fixed, so the result is the same on every call.
 */
function sumOfSquares(t: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = t.length;
  const m = n - (n & 3);
  let i = 0;
  for (; i < m; i += 4) {
    const a = t[i]!;
    const b = t[i + 1]!;
    const c = t[i + 2]!;
    const d = t[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (; i < n; i++) {
    const v = t[i]!;
    s0 += v * v;
  }
  return s0 + s1 + (s2 + s3);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseInfo(frame: Uint8Array): { self: PeerAddress; peers: PeerAddress[]; progress: Progress } {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(frame));
  } catch {
    fail('EFIELD', 'The heartbeat info is not UTF-8 JSON.');
  }
  if (!isObject(json)) fail('EFIELD', 'The heartbeat info is not a JSON object.');
  const self = parseAddress(json.self, 'self');
  if (!Array.isArray(json.peers) || json.peers.length > MAX_GOSSIP_PEERS) fail('EFIELD', `The heartbeat 'peers' is not an array of at most ${MAX_GOSSIP_PEERS} addresses.`);
  const peers = (json.peers as unknown[]).map((p, i) => parseAddress(p, `peers[${i}]`));
  const pr = json.progress;
  if (!isObject(pr)) fail('EFIELD', "The heartbeat 'progress' is not an object.");
  const num = (k: string): number => {
    const v = pr[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail('EFIELD', `The heartbeat 'progress.${k}' is not a non-negative integer.`);
    return v;
  };
  return { self, peers, progress: { epoch: num('epoch'), batches: num('batches'), samples: num('samples') } };
}

function parseAddress(a: unknown, where: string): PeerAddress {
  if (!isObject(a) || !isEndpoint(a.pub) || !isEndpoint(a.router)) fail('EFIELD', `The heartbeat '${where}' needs 'pub' and 'router' endpoints.`);
  const key = a.key;
  if (key !== null && !isZ85Key(key)) fail('EFIELD', `The heartbeat '${where}.key' is neither a Z85 key nor null.`);
  return { pub: a.pub, router: a.router, publicKey: key };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
