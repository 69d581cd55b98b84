/**
 * Encoders of the async wire format: each validates what the caller hands it and throws
 * {@link InvalidOptionError}, {@link ShapeMismatchError} or {@link InvalidDataError}.
 */
import { InvalidDataError, InvalidOptionError, ShapeMismatchError } from '../../errors.js';
import {
  Flag,
  HEADER_BYTES,
  HEX32_RE,
  HEX64_RE,
  Kind,
  MAX_GOSSIP_PEERS,
  MAX_INFO_BYTES,
  MAX_TENSOR_ELEMENTS,
  MAX_TENSORS_PER_MESSAGE,
  MAX_WEIGHT_FINGERPRINT,
  OFF,
  RUN_ID_RE,
  WIRE_MAGIC,
  WIRE_VERSION,
  controlTopic,
  deltaTopic,
  isEndpoint,
  seal,
  u16,
  u32,
  writeSeq,
} from './format.js';
import type { Envelope, LayerTensors, PeerAddress, Progress, Shape } from './format.js';
import { LITTLE_ENDIAN } from './format.js';
import { isZ85Key } from '../z85.js';
import { allFinite, firstNonFiniteFloat, firstNonFiniteHalf, payload, readSparseChecked } from './values.js';

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
  return deltaFrames(
    env,
    delta,
    f16 ? Flag.F16 : 0,
    delta.tensors.map((t) => payload(t, f16)),
    where,
  );
}

/** `[topic, header, ...payload]` of a DELTA whose numbers and payload were checked, sealed. */
export function deltaFrames(
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
  if (!Array.isArray(payload) || !Array.isArray(shapes))
    throw new ShapeMismatchError(`Arguments 'payload' and 'shapes' passed to '${where}' must be arrays.`);
  if (payload.length !== shapes.length || payload.length < 1 || payload.length > MAX_TENSORS_PER_MESSAGE) {
    throw new ShapeMismatchError(
      `Arguments 'payload' (${payload.length}) and 'shapes' (${shapes.length}) passed to '${where}' must have the same length, 1 to ${MAX_TENSORS_PER_MESSAGE}.`,
    );
  }
  for (let i = 0; i < payload.length; i++) {
    const p = payload[i];
    const n = checkShape(shapes[i], i, where);
    if (!Buffer.isBuffer(p)) throw new ShapeMismatchError(`Argument 'payload[${i}]' passed to '${where}' must be a Buffer.`);
    if (sparse) {
      const read = readSparseChecked(p, n, delta.finiteChecked !== true);
      if ('problem' in read)
        throw new InvalidDataError(
          `Argument 'payload[${i}]' passed to '${where}' is not a valid sparse frame for shape ${shapes[i]![0]}x${shapes[i]![1]}: ${read.problem[1]}`,
        );
      continue;
    }
    if (p.length !== n * (f16 ? 2 : 4)) {
      throw new ShapeMismatchError(
        `Argument 'payload[${i}]' passed to '${where}' has ${p.length} bytes; shape ${shapes[i]![0]}x${shapes[i]![1]} as ${f16 ? 'float16' : 'float32'} needs ${n * (f16 ? 2 : 4)}.`,
      );
    }
    const bad = delta.finiteChecked === true ? -1 : f16 ? firstNonFiniteHalf(p) : firstNonFiniteFloat(p);
    if (bad >= 0) {
      throw new InvalidDataError(
        `Argument 'payload[${i}]' passed to '${where}' must hold finite values; element ${bad} is not (bits 0x${(f16 ? u16(p, 2 * bad) : u32(p, 4 * bad)).toString(16)}).`,
      );
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
    throw new ShapeMismatchError(
      `Argument 'count' passed to 'sparseFrame' must be an integer from 0 to the arrays' lengths (${indices.length}, ${values.length}), got ${count}.`,
    );
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
    throw new InvalidOptionError(
      `Argument 'peers' passed to '${where}' may list at most ${MAX_GOSSIP_PEERS} peers, got ${hb.peers.length}.`,
    );
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
      throw new InvalidOptionError(
        `Argument 'layers' passed to '${where}' must be sorted by strictly increasing layer; layers[${i}] is ${l.layer}.`,
      );
    }
    checkTensors(l.tensors, l.shapes, `${where}' (layer ${l.layer})`, 1, f16);
    shapes.push(...l.shapes);
    tensors.push(...l.tensors);
  });
  if (tensors.length > MAX_TENSORS_PER_MESSAGE)
    throw new InvalidOptionError(
      `A snapshot passed to '${where}' holds ${tensors.length} tensors, more than the ${MAX_TENSORS_PER_MESSAGE} one message may carry.`,
    );
  const index = Buffer.alloc(2 + 4 * res.layers.length + 4 + 24 * res.sequences.size);
  let o = index.writeUInt16LE(res.layers.length, 0);
  for (const l of res.layers) {
    o = index.writeUInt16LE(l.layer, o);
    o = index.writeUInt16LE(l.tensors.length, o);
  }
  o = index.writeUInt32LE(res.sequences.size, o);
  for (const [sender, seq] of res.sequences) {
    if (!HEX32_RE.test(sender))
      throw new InvalidOptionError(`Sender id '${sender}' passed to '${where}' must be 32 lowercase hex characters.`);
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

export function makeHeader(env: Envelope, kind: number, flags: number, shapes: readonly Shape[], where: string): Buffer {
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

export function checkEnvelope(env: Envelope, where: string): void {
  if (typeof env.runId !== 'string' || !RUN_ID_RE.test(env.runId)) {
    throw new InvalidOptionError(
      `The run id passed to '${where}' must be 1–16 characters of [A-Za-z0-9._-], got ${JSON.stringify(env.runId)}.`,
    );
  }
  if (typeof env.fingerprint !== 'string' || !HEX64_RE.test(env.fingerprint)) {
    throw new InvalidOptionError(`The model fingerprint passed to '${where}' must be 64 lowercase hex characters.`);
  }
  if (typeof env.senderId !== 'string' || !HEX32_RE.test(env.senderId)) {
    throw new InvalidOptionError(
      `The sender id passed to '${where}' must be 32 lowercase hex characters, got ${JSON.stringify(env.senderId)}.`,
    );
  }
  if (env.timestamp !== undefined && !(Number.isFinite(env.timestamp) && env.timestamp >= 0)) {
    throw new InvalidOptionError(`The timestamp passed to '${where}' must be a finite number ≥ 0, got ${env.timestamp}.`);
  }
}

export function checkU16(v: number, arg: string, where: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new InvalidOptionError(`Argument '${arg}' passed to '${where}' must be an integer in [0, 65535], got ${v}.`);
  }
}

export function checkSeq(v: number, arg: string, where: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new InvalidOptionError(`Argument '${arg}' passed to '${where}' must be an integer in [${min}, 2^53 - 1], got ${v}.`);
  }
}

export function checkTensors(tensors: readonly Float32Array[], shapes: readonly Shape[], where: string, min: number, f16: boolean): void {
  if (!Array.isArray(tensors) || !Array.isArray(shapes)) {
    throw new ShapeMismatchError(`Arguments 'tensors' and 'shapes' passed to '${where}' must be arrays.`);
  }
  if (tensors.length !== shapes.length) {
    throw new ShapeMismatchError(
      `Arguments 'tensors' (${tensors.length}) and 'shapes' (${shapes.length}) passed to '${where}' must have the same length.`,
    );
  }
  if (tensors.length < min || tensors.length > MAX_TENSORS_PER_MESSAGE) {
    throw new ShapeMismatchError(
      `Argument 'tensors' passed to '${where}' must hold between ${min} and ${MAX_TENSORS_PER_MESSAGE} tensors, got ${tensors.length}.`,
    );
  }
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const n = checkShape(shapes[i], i, where);
    if (!(t instanceof Float32Array)) throw new ShapeMismatchError(`Argument 'tensors[${i}]' passed to '${where}' must be a Float32Array.`);
    if (t.length !== n) {
      throw new ShapeMismatchError(
        `Argument 'tensors[${i}]' passed to '${where}' has ${t.length} values, but shape ${shapes[i]![0]}x${shapes[i]![1]} needs ${n}.`,
      );
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
export function checkDeltaNumbers(
  delta: { readonly layer: number; readonly sequence: number; readonly baseSequence: number },
  where: string,
): void {
  checkU16(delta.layer, 'layer', where);
  checkSeq(delta.sequence, 'sequence', where, 1);
  checkSeq(delta.baseSequence, 'baseSequence', where, 0);
  if (delta.baseSequence >= delta.sequence) {
    throw new InvalidOptionError(
      `Argument 'baseSequence' passed to '${where}' must be less than 'sequence' (${delta.sequence}), got ${delta.baseSequence}.`,
    );
  }
}

/** Checks one `[rows, cols]` shape; returns `rows·cols`. */
export function checkShape(s: Shape | undefined, i: number, where: string): number {
  if (!Array.isArray(s) || s.length !== 2 || !s.every((d) => Number.isInteger(d) && d >= 1 && d <= 0xffffffff)) {
    throw new ShapeMismatchError(`Argument 'shapes[${i}]' passed to '${where}' must be [rows, cols] with positive integers.`);
  }
  const [r, c] = s;
  if (r * c > MAX_TENSOR_ELEMENTS) {
    throw new ShapeMismatchError(`Tensor ${i} passed to '${where}' has ${r}x${c} elements, more than ${MAX_TENSOR_ELEMENTS}.`);
  }
  return r * c;
}

export function checkAddress(a: PeerAddress, arg: string, where: string): void {
  if (typeof a !== 'object' || a === null || !isEndpoint(a.pub) || !isEndpoint(a.router)) {
    throw new InvalidOptionError(`Argument '${arg}' passed to '${where}' must have 'pub' and 'router' endpoints like 'tcp://host:port'.`);
  }
  if (a.publicKey !== null && !isZ85Key(a.publicKey)) {
    throw new InvalidOptionError(`Argument '${arg}.publicKey' passed to '${where}' must be a 40-character Z85 key or null.`);
  }
}
