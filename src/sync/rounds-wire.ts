/**
 * The wire format of synchronous peer training (the "rounds" protocol), pure: no sockets.
 *
 * A message is a ZeroMQ multipart message:
 *
 * | frame | contents |
 * |---|---|
 * | 0 | fixed 56-byte header, little-endian (below) |
 * | 1 | UTF-8 JSON object: the kind's fields ({@link MAX_META_BYTES} at most) |
 * | 2 … | binary payload: float64 scalars then float32 tensors (`contribution`: a chunk; `result`), a chunk's sum (`chunk`), or the model bytes (`snapshot`, `finished`) |
 *
 * Header: `magic 'DBNR'` (4) · `version` u8 · `kind` u8 · `reserved` u16 (0) · `runId` 16 bytes
 * (ASCII, zero-padded) · `sender` 16 bytes (the sender id) · `instance` u32 (random per process
 * start) · `view` u32 (the sender's view number) · `round` f64 (a safe integer ≥ −1).
 *
 * Every length and field is checked before use; each way a message can be wrong raises a
 * {@link WireFormatError} with its own code.
 */
import { WireFormatError } from '../errors.js';

/** Version of this wire format. */
export const ROUNDS_WIRE_VERSION = 2;
/** Bytes of frame 0. */
export const HEADER_BYTES = 56;
/** Largest JSON frame accepted. */
export const MAX_META_BYTES = 64 * 1024;
/** Most payload frames a message may carry. */
export const MAX_PAYLOAD_FRAMES = 64;

const MAGIC = 'DBNR';
const RUN_ID_RE = /^[A-Za-z0-9._-]{1,16}$/;

/** Message kinds. */
export const RoundKind = {
  hello: 1,
  heartbeat: 2,
  contribution: 3,
  resultRequest: 4,
  result: 5,
  recover: 6,
  state: 7,
  newView: 8,
  join: 9,
  snapshot: 10,
  finished: 11,
  bye: 12,
  chunk: 13,
  /** Sent on this peer's own (key-authenticated) connection to a claimed sender: prove you sent what arrived on a connection. */
  challenge: 14,
  /** The answer to a `challenge`, on the prover's own connection (binds that connection to its id). */
  proof: 15,
} as const;
/** A message kind's name. */
export type RoundKindName = keyof typeof RoundKind;
const KIND_NAMES = new Map<number, RoundKindName>(Object.entries(RoundKind).map(([k, v]) => [v, k as RoundKindName]));

/** Fields of frame 0. */
export interface RoundHeader {
  readonly kind: RoundKindName;
  readonly runId: string;
  /** 32 lowercase hex. */
  readonly sender: string;
  readonly instance: number;
  readonly view: number;
  readonly round: number;
}

/** A decoded message: the header, the JSON fields (checked by the protocol per kind) and the payload frames. */
export interface RoundMessage extends RoundHeader {
  readonly meta: Record<string, unknown>;
  readonly payload: readonly Buffer[];
}

/** Encodes a message; `payload` buffers are sent as they are (callers pass copies they will not mutate). */
export function encodeRound(h: RoundHeader, meta: Record<string, unknown>, payload: readonly Buffer[] = []): Buffer[] {
  if (!RUN_ID_RE.test(h.runId))
    throw new WireFormatError('EFIELD', `The run id must be 1–16 characters of [A-Za-z0-9._-], got ${JSON.stringify(h.runId)}.`);
  const head = Buffer.alloc(HEADER_BYTES);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt8(ROUNDS_WIRE_VERSION, 4);
  head.writeUInt8(RoundKind[h.kind], 5);
  head.write(h.runId, 8, 16, 'latin1');
  Buffer.from(h.sender, 'hex').copy(head, 24);
  head.writeUInt32LE(h.instance >>> 0, 40);
  head.writeUInt32LE(h.view >>> 0, 44);
  head.writeDoubleLE(h.round, 48);
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  if (json.length > MAX_META_BYTES)
    throw new WireFormatError('EFIELD', `A '${h.kind}' message's fields take ${json.length} bytes, more than ${MAX_META_BYTES}.`);
  return [head, json, ...payload];
}

/** Decodes and checks a message's framing and header (not the kind's fields). */
export function decodeRound(frames: readonly Buffer[]): RoundMessage {
  if (frames.length < 2) throw new WireFormatError('EFRAMES', `A rounds message has at least 2 frames, got ${frames.length}.`);
  if (frames.length > 2 + MAX_PAYLOAD_FRAMES)
    throw new WireFormatError('EFRAMES', `A rounds message has at most ${2 + MAX_PAYLOAD_FRAMES} frames, got ${frames.length}.`);
  const head = frames[0]!;
  if (head.length !== HEADER_BYTES)
    throw new WireFormatError('ETRUNCATED', `The header frame is ${head.length} bytes, expected ${HEADER_BYTES}.`);
  if (head.toString('latin1', 0, 4) !== MAGIC)
    throw new WireFormatError('EMAGIC', `Bad magic '${head.toString('latin1', 0, 4)}', expected '${MAGIC}'.`);
  const version = head.readUInt8(4);
  if (version !== ROUNDS_WIRE_VERSION)
    throw new WireFormatError('EVERSION', `Rounds wire version ${version} is not supported (this peer speaks ${ROUNDS_WIRE_VERSION}).`);
  const kind = KIND_NAMES.get(head.readUInt8(5));
  if (kind === undefined) throw new WireFormatError('EKIND', `Unknown message kind ${head.readUInt8(5)}.`);
  if (head.readUInt16LE(6) !== 0) throw new WireFormatError('EFIELD', `The reserved header field is ${head.readUInt16LE(6)}, not 0.`);
  const runBytes = head.subarray(8, 24);
  const end = runBytes.indexOf(0);
  const runId = runBytes.toString('latin1', 0, end < 0 ? 16 : end);
  // Every byte counts (nothing after the NUL padding, nothing the encoder would not write).
  if ((end >= 0 && runBytes.subarray(end).some((b) => b !== 0)) || !RUN_ID_RE.test(runId))
    throw new WireFormatError('EFIELD', 'The run id is not 1–16 characters of [A-Za-z0-9._-], NUL-padded.');
  const round = head.readDoubleLE(48);
  if (!Number.isSafeInteger(round) || round < -1) throw new WireFormatError('EFIELD', `The round ${round} is not an integer >= -1.`);
  const metaFrame = frames[1]!;
  if (metaFrame.length > MAX_META_BYTES)
    throw new WireFormatError('EFIELD', `The fields frame is ${metaFrame.length} bytes, more than ${MAX_META_BYTES}.`);
  let meta: unknown;
  try {
    meta = JSON.parse(metaFrame.toString('utf8'));
  } catch {
    throw new WireFormatError('EFIELD', `The fields frame of a '${kind}' message is not JSON.`);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta))
    throw new WireFormatError('EFIELD', `The fields of a '${kind}' message must be a JSON object.`);
  return {
    kind,
    runId,
    sender: head.toString('hex', 24, 40),
    instance: head.readUInt32LE(40),
    view: head.readUInt32LE(44),
    round,
    meta: meta as Record<string, unknown>,
    payload: frames.slice(2),
  };
}

/** The scalars and tensors of a contribution or result as payload frames (copies). */
export function encodeArrays(scalars: Float64Array, tensors: readonly Float32Array[]): Buffer[] {
  return [copyBytes(scalars), ...tensors.map(copyBytes)];
}

/**
 * Reads payload frames as `scalars` (float64) and tensors (float32) of exactly the lengths
 * expected, into fresh aligned arrays; `ESIZE` when a count or length differs.
 */
export function decodeArrays(
  payload: readonly Buffer[],
  scalarCount: number,
  tensorLengths: readonly number[],
): { scalars: Float64Array; tensors: Float32Array[] } {
  if (payload.length !== 1 + tensorLengths.length) {
    throw new WireFormatError(
      'ELENGTH',
      `Expected ${1 + tensorLengths.length} payload frames (scalars and ${tensorLengths.length} tensors), got ${payload.length}.`,
    );
  }
  const s = payload[0]!;
  if (s.length !== scalarCount * 8)
    throw new WireFormatError('ELENGTH', `The scalars frame is ${s.length} bytes, expected ${scalarCount * 8}.`);
  const scalars = new Float64Array(scalarCount);
  new Uint8Array(scalars.buffer).set(s);
  const tensors = tensorLengths.map((n, i) => {
    const f = payload[i + 1]!;
    if (f.length !== n * 4) throw new WireFormatError('ELENGTH', `Tensor frame ${i} is ${f.length} bytes, expected ${n * 4}.`);
    const t = new Float32Array(n);
    new Uint8Array(t.buffer).set(f);
    return t;
  });
  return { scalars, tensors };
}

function copyBytes(a: Float32Array | Float64Array): Buffer {
  return Buffer.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** The field `key` of `meta` as a safe integer in `[min, max]`, or a `WireFormatError`. */
export function intField(meta: Record<string, unknown>, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = meta[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new WireFormatError('EFIELD', `Field '${key}' must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}.`);
  return v;
}

/** The field `key` of `meta` as a string of at most `max` characters matching `re`. */
export function stringField(meta: Record<string, unknown>, key: string, re: RegExp, max = 512): string {
  const v = meta[key];
  if (typeof v !== 'string' || v.length > max || !re.test(v))
    throw new WireFormatError('EFIELD', `Field '${key}' is missing or malformed.`);
  return v;
}

/** A sender id: 32 lowercase hex. */
export const ID_RE = /^[0-9a-f]{32}$/;
/** A TCP endpoint `tcp://host:port`. */
export const ENDPOINT_RE = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]#\s]+):(\d{1,5})$/;

/** One member of a view as carried on the wire. */
export interface WireMember {
  readonly id: string;
  readonly endpoint: string;
  readonly publicKey: string | null;
}

/** The field `key` of `meta` as a list of at most `max` members. */
export function membersField(meta: Record<string, unknown>, key: string, max: number): WireMember[] {
  const v = meta[key];
  if (!Array.isArray(v) || v.length > max) throw new WireFormatError('EFIELD', `Field '${key}' must be a list of at most ${max} peers.`);
  return v.map((m: unknown) => {
    if (typeof m !== 'object' || m === null) throw new WireFormatError('EFIELD', `Field '${key}' holds a peer that is not an object.`);
    const r = m as Record<string, unknown>;
    const publicKey = r['publicKey'];
    if (publicKey !== null && (typeof publicKey !== 'string' || publicKey.length !== 40))
      throw new WireFormatError('EFIELD', `Field '${key}' holds a malformed public key.`);
    return { id: stringField(r, 'id', ID_RE, 32), endpoint: stringField(r, 'endpoint', ENDPOINT_RE, 300), publicKey };
  });
}
