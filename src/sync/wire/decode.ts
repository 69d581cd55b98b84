/**
 * The decoder of the async wire format, driven by a table with one entry per message kind: its
 * body frames, the flags it allows, how many tensors it may carry, the checks of its body
 * lengths and header numbers, and the function that builds the message. {@link decode} runs the
 * checks every kind shares (frame count first, before any byte is read; magic, version, kind,
 * flags, shapes, payload lengths, CRC, run id, timestamp, topic), then the kind's own.
 */
import { isZ85Key } from '../z85.js';
import {
  Flag,
  HEADER_BYTES,
  Kind,
  LITTLE_ENDIAN,
  MAX_GOSSIP_PEERS,
  MAX_INFO_BYTES,
  MAX_MESSAGE_FRAMES,
  MAX_TENSORS_PER_MESSAGE,
  MAX_TENSOR_ELEMENTS,
  MAX_WEIGHT_FINGERPRINT,
  OFF,
  RUN_ID_RE,
  WIRE_MAGIC,
  WIRE_VERSION,
  checksum,
  controlTopic,
  deltaTopic,
  fail,
  hex,
  isEndpoint,
  seq,
  u16,
  u32,
} from './format.js';
import type { DeltaMessage, LayerTensors, Message, PeerAddress, Progress, Shape, SparseTensor } from './format.js';
import { densify, readSparseChecked, readTensor, sumOfSquares } from './values.js';

/** What every kind's builder receives: the header's fields, checked, and the frames. */
interface Parsed {
  readonly frames: readonly Uint8Array[];
  readonly body: readonly Uint8Array[];
  /** Index of the first payload frame. */
  readonly firstPayload: number;
  readonly flags: number;
  readonly shapes: Shape[];
  readonly sequence: number;
  readonly base: number;
  readonly layer: number;
  readonly envelope: { readonly runId: string; readonly fingerprint: string; readonly senderId: string; readonly timestamp: number };
}

/** One message kind's entry in {@link KINDS}. */
interface KindCodec {
  /** Frames between the header and the payload frames. */
  readonly bodyFrames: number;
  readonly allowedFlags: number;
  /** Tensors the kind carries: none, at least one, or any number (0 with UNAVAILABLE). */
  readonly tensors: 'none' | 'some' | 'any';
  /** Checks the body frames' lengths (before the CRC is computed). */
  checkBody(body: readonly Uint8Array[], flags: number): void;
  /** Checks the header numbers that depend on the kind. */
  checkNumbers(sequence: number, base: number, layer: number): void;
  build(p: Parsed): Message;
}

const noBody = (): void => undefined;

function numbersOfControl(sequence: number, base: number, layer: number, minSequence = 0): void {
  if (base !== 0 || layer !== 0) fail('EFIELD', 'A control message must have base sequence 0 and layer 0.');
  if (sequence < minSequence) fail('EFIELD', `A snapshot request id must be ≥ ${minSequence}.`);
}

/** One entry per kind: see the top of this file and the layout in `src/sync/wire.ts`. */
const KINDS: ReadonlyMap<number, KindCodec> = new Map<number, KindCodec>([
  [
    Kind.DELTA,
    {
      bodyFrames: 0,
      allowedFlags: Flag.F16 | Flag.SPARSE,
      tensors: 'some',
      checkBody: noBody,
      checkNumbers: (sequence, base) => {
        if (sequence < 1 || base >= sequence)
          fail('EFIELD', `A delta needs 1 ≤ sequence and base sequence < sequence, got ${sequence} and ${base}.`);
      },
      build: buildDelta,
    },
  ],
  [
    Kind.HEARTBEAT,
    {
      bodyFrames: 2,
      allowedFlags: 0,
      tensors: 'none',
      checkBody: ([info, wf]) => {
        if (info!.length > MAX_INFO_BYTES)
          fail('ELENGTH', `The heartbeat info has ${info!.length} bytes, at most ${MAX_INFO_BYTES} allowed.`);
        if (wf!.length % 8 !== 0 || wf!.length > 8 * MAX_WEIGHT_FINGERPRINT)
          fail('ELENGTH', `The weight fingerprint has ${wf!.length} bytes; a multiple of 8 up to ${8 * MAX_WEIGHT_FINGERPRINT} expected.`);
      },
      checkNumbers: (sequence, base, layer) => numbersOfControl(sequence, base, layer),
      build: buildHeartbeat,
    },
  ],
  [
    Kind.SNAPSHOT_REQUEST,
    {
      bodyFrames: 1,
      allowedFlags: 0,
      tensors: 'none',
      checkBody: ([layers]) => {
        if (layers!.length % 2 !== 0) fail('ELENGTH', `The requested-layers frame has ${layers!.length} bytes; a multiple of 2 expected.`);
      },
      checkNumbers: (sequence, base, layer) => numbersOfControl(sequence, base, layer, 1),
      build: buildSnapshotRequest,
    },
  ],
  [
    Kind.SNAPSHOT_RESPONSE,
    {
      bodyFrames: 1,
      allowedFlags: Flag.F16 | Flag.UNAVAILABLE,
      tensors: 'any',
      checkBody: ([ix]) => checkSnapshotIndex(ix!),
      checkNumbers: (sequence, base, layer) => numbersOfControl(sequence, base, layer),
      build: buildSnapshotResponse,
    },
  ],
]);

/**
 * Decodes a multipart message. Checks every length before use, copies every payload (the
 * returned arrays never alias `frames`), and throws {@link WireFormatError} — never anything
 * else — when a frame is wrong: EFRAMES (frame count or type), ETRUNCATED, EMAGIC, EVERSION,
 * EKIND, ELENGTH (a frame longer or shorter than its header says), ESHAPE, ECRC, EFIELD (a
 * header or body field out of range), ETOPIC (topic ≠ the one the header implies), ENONFINITE,
 * EINDEX (a SPARSE index out of order or range).
 */
export function decode(frames: readonly Uint8Array[]): Message {
  checkFrameList(frames);
  const h = frames[1]!;
  const { codec, kind, flags, n } = readFixedHeader(h);
  const expectedFrames = 2 + codec.bodyFrames + n;
  if (frames.length !== expectedFrames)
    fail('EFRAMES', `Kind ${kind} with ${n} tensors needs ${expectedFrames} frames, got ${frames.length}.`);
  const firstPayload = 2 + codec.bodyFrames;
  const shapes = readShapes(h, n, frames, firstPayload, flags);
  const body = frames.slice(2, firstPayload);
  codec.checkBody(body, flags);
  const stored = u32(h, OFF.crc);
  const actual = checksum(frames);
  if (stored !== actual) fail('ECRC', `Checksum mismatch: header says 0x${stored.toString(16)}, frames give 0x${actual.toString(16)}.`);
  const runId = readRunId(h);
  const timestamp = Buffer.from(h.buffer, h.byteOffset, h.length).readDoubleLE(OFF.timestamp);
  if (!(Number.isFinite(timestamp) && timestamp >= 0)) fail('EFIELD', `The timestamp ${timestamp} is not a finite number ≥ 0.`);
  const sequence = seq(h, OFF.sequence, 'sequence');
  const base = seq(h, OFF.base, 'base sequence');
  const layer = u16(h, OFF.layer);
  codec.checkNumbers(sequence, base, layer);
  const expectedTopic = kind === Kind.DELTA ? deltaTopic(runId, layer) : controlTopic(runId);
  const topic = frames[0]!;
  if (
    topic.length !== expectedTopic.length ||
    Buffer.from(topic.buffer, topic.byteOffset, topic.length).toString('latin1') !== expectedTopic
  ) {
    fail('ETOPIC', `The topic does not match the header; '${expectedTopic}' expected.`);
  }
  const envelope = { runId, fingerprint: hex(h, OFF.fingerprint, 32), senderId: hex(h, OFF.sender, 16), timestamp };
  return codec.build({ frames, body, firstPayload, flags, shapes, sequence, base, layer, envelope });
}

/** The frame list: an array of byte buffers, 2 to MAX_MESSAGE_FRAMES long (checked before any byte is read). */
function checkFrameList(frames: readonly Uint8Array[]): void {
  if (!Array.isArray(frames) || frames.length < 2) {
    fail('EFRAMES', `A message needs at least 2 frames (topic, header), got ${Array.isArray(frames) ? frames.length : typeof frames}.`);
  }
  if (frames.length > MAX_MESSAGE_FRAMES) fail('EFRAMES', `A message has at most ${MAX_MESSAGE_FRAMES} frames, got ${frames.length}.`);
  for (let i = 0; i < frames.length; i++) {
    if (!(frames[i] instanceof Uint8Array)) fail('EFRAMES', `Frame ${i} is not a byte buffer.`);
  }
}

function readFixedHeader(h: Uint8Array): { codec: KindCodec; kind: number; flags: number; n: number } {
  if (h.length < HEADER_BYTES) fail('ETRUNCATED', `The header has ${h.length} bytes, at least ${HEADER_BYTES} expected.`);
  for (let i = 0; i < 4; i++) {
    if (h[OFF.magic + i] !== WIRE_MAGIC[i]) fail('EMAGIC', `The header does not start with 'DBNS'.`);
  }
  const version = u16(h, OFF.version);
  if (version !== WIRE_VERSION) fail('EVERSION', `Wire version ${version} is not supported; this peer speaks version ${WIRE_VERSION}.`);
  const kind = h[OFF.kind]!;
  const codec = KINDS.get(kind);
  if (codec === undefined) fail('EKIND', `Unknown message kind ${kind}.`);
  const flags = h[OFF.flags]!;
  if ((flags & ~codec.allowedFlags) !== 0 || (flags & (Flag.F16 | Flag.SPARSE)) === (Flag.F16 | Flag.SPARSE))
    fail('EFIELD', `Flags 0x${flags.toString(16)} are not valid for kind ${kind}.`);
  const n = u16(h, OFF.count);
  if (h.length !== HEADER_BYTES + 8 * n)
    fail(
      h.length < HEADER_BYTES + 8 * n ? 'ETRUNCATED' : 'ELENGTH',
      `The header has ${h.length} bytes, ${HEADER_BYTES + 8 * n} expected for ${n} tensors.`,
    );
  if (n > MAX_TENSORS_PER_MESSAGE) fail('EFIELD', `A message carries at most ${MAX_TENSORS_PER_MESSAGE} tensors, got ${n}.`);
  if (codec.tensors === 'some' && n === 0) fail('EFIELD', 'A delta must carry at least one tensor.');
  if (codec.tensors === 'none' && n !== 0) fail('EFIELD', `Kind ${kind} carries no tensors, got ${n}.`);
  if ((flags & Flag.UNAVAILABLE) !== 0 && n !== 0) fail('EFIELD', `An unavailable snapshot response carries no tensors, got ${n}.`);
  return { codec, kind, flags, n };
}

/** The `n` shapes of the header, each checked against the length of its payload frame. */
function readShapes(h: Uint8Array, n: number, frames: readonly Uint8Array[], firstPayload: number, flags: number): Shape[] {
  const f16 = (flags & Flag.F16) !== 0;
  const sparse = (flags & Flag.SPARSE) !== 0;
  const bytesPer = f16 ? 2 : 4;
  const shapes: Shape[] = [];
  for (let i = 0; i < n; i++) {
    const r = u32(h, HEADER_BYTES + 8 * i);
    const c = u32(h, HEADER_BYTES + 8 * i + 4);
    if (r === 0 || c === 0 || r * c > MAX_TENSOR_ELEMENTS)
      fail('ESHAPE', `Tensor ${i} has shape ${r}x${c}; rows and cols must be ≥ 1 with at most ${MAX_TENSOR_ELEMENTS} elements.`);
    const got = frames[firstPayload + i]!.length;
    if (sparse) {
      if (got % 8 !== 0 || got > 8 * r * c)
        fail('ELENGTH', `Sparse payload ${i} has ${got} bytes; a multiple of 8 up to ${8 * r * c} expected for ${r}x${c}.`);
    } else if (got !== r * c * bytesPer)
      fail('ELENGTH', `Payload ${i} has ${got} bytes, ${r * c * bytesPer} expected for ${r}x${c} ${f16 ? 'float16' : 'float32'}.`);
    shapes.push([r, c]);
  }
  return shapes;
}

function readRunId(h: Uint8Array): string {
  let runLen = 0;
  while (runLen < 16 && h[OFF.runId + runLen] !== 0) runLen++;
  for (let i = runLen; i < 16; i++) if (h[OFF.runId + i] !== 0) fail('EFIELD', 'The run id has bytes after its NUL padding.');
  const runId = Buffer.from(h.buffer, h.byteOffset + OFF.runId, runLen).toString('latin1');
  if (!RUN_ID_RE.test(runId)) fail('EFIELD', `The run id ${JSON.stringify(runId)} is not 1–16 characters of [A-Za-z0-9._-].`);
  return runId;
}

/** Dense payloads as float32 (viewed in place when aligned little-endian float32, else copied or widened); ENONFINITE on NaN/Inf. */
function readPayloads(p: Parsed): { tensors: Float32Array[]; sumSquares: number } {
  const f16 = (p.flags & Flag.F16) !== 0;
  let sumSquares = 0;
  const tensors = p.shapes.map(([r, c], i) => {
    const frame = p.frames[p.firstPayload + i]!;
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
  return { tensors, sumSquares };
}

function buildDelta(p: Parsed): DeltaMessage {
  const fields = { kind: 'delta', ...p.envelope, layer: p.layer, sequence: p.sequence, baseSequence: p.base } as const;
  if ((p.flags & Flag.SPARSE) !== 0) return sparseDelta(p, fields);
  const { tensors, sumSquares } = readPayloads(p);
  return { ...fields, float16: (p.flags & Flag.F16) !== 0, shapes: p.shapes, tensors, sumSquares };
}

function buildHeartbeat(p: Parsed): Message {
  const info = parseInfo(p.body[0]!);
  const copy = new Uint8Array(p.body[1]!);
  const view = new DataView(copy.buffer);
  const weightFingerprint = new Float64Array(copy.length / 8);
  for (let i = 0; i < weightFingerprint.length; i++) weightFingerprint[i] = view.getFloat64(i * 8, true);
  return { kind: 'heartbeat', ...p.envelope, lastSequence: p.sequence, ...info, weightFingerprint };
}

function buildSnapshotRequest(p: Parsed): Message {
  const lb = p.body[0]!;
  const layers: number[] = [];
  for (let o = 0; o < lb.length; o += 2) {
    const l = u16(lb, o);
    if (layers.length > 0 && l <= layers[layers.length - 1]!) fail('EFIELD', 'Requested layers are not strictly increasing.');
    layers.push(l);
  }
  return { kind: 'snapshot-request', ...p.envelope, requestId: p.sequence, layers };
}

/** The snapshot index: u16 L, L × (layer, tensors), u32 S, S × (sender 16 bytes, sequence u64). */
function checkSnapshotIndex(ix: Uint8Array): void {
  if (ix.length < 2) fail('ETRUNCATED', 'The snapshot index is shorter than 2 bytes.');
  const L = u16(ix, 0);
  if (ix.length < 2 + 4 * L + 4) fail('ETRUNCATED', `The snapshot index is too short for ${L} layers.`);
  const S = u32(ix, 2 + 4 * L);
  const want = 2 + 4 * L + 4 + 24 * S;
  if (ix.length !== want) fail(ix.length < want ? 'ETRUNCATED' : 'ELENGTH', `The snapshot index has ${ix.length} bytes, ${want} expected.`);
}

function buildSnapshotResponse(p: Parsed): Message {
  const ix = p.body[0]!;
  const unavailable = (p.flags & Flag.UNAVAILABLE) !== 0;
  const n = p.shapes.length;
  const L = u16(ix, 0);
  const S = u32(ix, 2 + 4 * L);
  if (unavailable && (L !== 0 || S !== 0)) fail('EFIELD', 'An unavailable snapshot response must have an empty index.');
  const { tensors } = readPayloads(p);
  const layers: LayerTensors[] = [];
  let t = 0;
  for (let i = 0; i < L; i++) {
    const layer = u16(ix, 2 + 4 * i);
    const count = u16(ix, 4 + 4 * i);
    if (i > 0 && layer <= layers[i - 1]!.layer) fail('EFIELD', 'Snapshot layers are not strictly increasing.');
    if (count === 0 || t + count > n)
      fail('EFIELD', `Snapshot layer ${layer} claims ${count} tensors, which do not fit the ${n} in the header.`);
    layers.push({ layer, tensors: tensors.slice(t, t + count), shapes: p.shapes.slice(t, t + count) });
    t += count;
  }
  if (t !== n) fail('EFIELD', `The snapshot index accounts for ${t} tensors, the header for ${n}.`);
  const sequences = new Map<string, number>();
  for (let i = 0, o = 2 + 4 * L + 4; i < S; i++, o += 24) {
    const sender = hex(ix, o, 16);
    if (sequences.has(sender)) fail('EFIELD', `Sender ${sender} appears twice in the snapshot sequences.`);
    sequences.set(sender, seq(ix, o + 16, 'snapshot sequence'));
  }
  return {
    kind: 'snapshot-response',
    ...p.envelope,
    requestId: p.sequence,
    available: !unavailable,
    float16: (p.flags & Flag.F16) !== 0,
    layers,
    sequences,
  };
}

/** A SPARSE delta's message: entries checked (EINDEX, ENONFINITE), dense tensors built on first access. */
function sparseDelta(p: Parsed, fields: Omit<DeltaMessage, 'shapes' | 'tensors' | 'sparse' | 'sumSquares' | 'float16'>): DeltaMessage {
  const sparse: SparseTensor[] = [];
  let sumSquares = 0;
  p.shapes.forEach(([r, c], i) => {
    const read = readSparseChecked(p.frames[p.firstPayload + i]!, r * c, true);
    if ('problem' in read) fail(read.problem[0], `Sparse payload ${i}: ${read.problem[1]}`);
    sumSquares += read.sumSquares;
    sparse.push(read.tensor);
  });
  let dense: Float32Array[] | undefined;
  const shapes = p.shapes;
  return {
    ...fields,
    float16: false,
    shapes,
    sparse,
    sumSquares,
    get tensors(): Float32Array[] {
      return (dense ??= sparse.map((s, i) => densify(s, shapes[i]![0] * shapes[i]![1])));
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseInfo(frame: Uint8Array): { self: PeerAddress; peers: PeerAddress[]; progress: Progress } {
  let json: unknown;
  let text = '';
  try {
    text = utf8.decode(frame);
    json = JSON.parse(text);
  } catch {
    fail('EFIELD', 'The heartbeat info is not UTF-8 JSON.');
  }
  // One encoding per value: no whitespace, no -0, 2e1 or 20.0, no escapes or duplicate members
  // that JSON.stringify would not write (unknown members stay allowed).
  if (JSON.stringify(json) !== text) fail('EFIELD', 'The heartbeat info is not JSON as JSON.stringify writes it.');
  if (!isObject(json)) fail('EFIELD', 'The heartbeat info is not a JSON object.');
  const self = parseAddress(json.self, 'self');
  if (!Array.isArray(json.peers) || json.peers.length > MAX_GOSSIP_PEERS)
    fail('EFIELD', `The heartbeat 'peers' is not an array of at most ${MAX_GOSSIP_PEERS} addresses.`);
  const peers = (json.peers as unknown[]).map((p, i) => parseAddress(p, `peers[${i}]`));
  const pr = json.progress;
  if (!isObject(pr)) fail('EFIELD', "The heartbeat 'progress' is not an object.");
  const num = (k: string): number => {
    const v = pr[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      fail('EFIELD', `The heartbeat 'progress.${k}' is not a non-negative integer.`);
    return v;
  };
  return { self, peers, progress: { epoch: num('epoch'), batches: num('batches'), samples: num('samples') } };
}

function parseAddress(a: unknown, where: string): PeerAddress {
  if (!isObject(a) || !isEndpoint(a.pub) || !isEndpoint(a.router))
    fail('EFIELD', `The heartbeat '${where}' needs 'pub' and 'router' endpoints.`);
  const key = a.key;
  if (key !== null && !isZ85Key(key)) fail('EFIELD', `The heartbeat '${where}.key' is neither a Z85 key nor null.`);
  return { pub: a.pub, router: a.router, publicKey: key };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
