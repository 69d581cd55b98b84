/**
 * The async wire format's constants, message types and byte-level helpers, shared by the
 * encoders (`encode.ts`) and the decoder (`decode.ts`). The layout is documented in
 * `src/sync/wire.ts` and docs/wire-format.md.
 */
import { WireFormatError } from '../../errors.js';
import type { WireFormatErrorCode } from '../../errors.js';
import { crc32 } from '../crc32.js';

/** The wire-format version this build speaks; see the rules at the top of `src/sync/wire.ts`. */
export const WIRE_VERSION = 3;

/** Most tensors one message carries (version 3): a message has at most 2 + 2 + this many frames. */
export const MAX_TENSORS_PER_MESSAGE = 256;

/**
 * Most frames a message may have. {@link decode} refuses a longer frame list before reading any
 * byte of it.
 */
export const MAX_MESSAGE_FRAMES = 4 + MAX_TENSORS_PER_MESSAGE;

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

export const OFF = {
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

export const RUN_ID_RE = /^[A-Za-z0-9._-]{1,16}$/;

export const HEX32_RE = /^[0-9a-f]{32}$/;

export const HEX64_RE = /^[0-9a-f]{64}$/;

export const ENDPOINT_RE = /^(tcp|ipc|inproc):\/\/[\x21-\x22\x24-\x7e]{1,240}$/;

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

export interface DecodedBase {
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

/** Computes and writes the CRC of an encoded message into its header. */
export function seal(frames: Buffer[]): void {
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

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** True for a ZeroMQ endpoint that may travel in a heartbeat (`tcp://`, `ipc://`, `inproc://`, no `#`). */
export function isEndpoint(s: unknown): s is string {
  return typeof s === 'string' && ENDPOINT_RE.test(s);
}

export function writeSeq(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v % 4294967296, off);
  b.writeUInt32LE(Math.floor(v / 4294967296), off + 4);
}

export function fail(code: WireFormatErrorCode, message: string): never {
  throw new WireFormatError(code, message);
}

export function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

export function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

export function seq(b: Uint8Array, o: number, field: string): number {
  const hi = u32(b, o + 4);
  if (hi > 0x1fffff) fail('EFIELD', `The ${field} exceeds 2^53 - 1.`);
  return hi * 4294967296 + u32(b, o);
}

export function hex(b: Uint8Array, o: number, n: number): string {
  return Buffer.from(b.buffer, b.byteOffset + o, n).toString('hex');
}
