/**
 * The wire fuzzer shared by `bench/fuzz-wire.ts` (1M+ mutations per wire) and its fast version
 * in `test/adversary/async-fuzz-wire.test.ts`. Seeded: the same seed gives the same mutations.
 *
 * Every mutated frame list goes through a decoder (`decode` of src/sync/wire.ts, `decodeRound`
 * of src/sync/rounds-wire.ts). Outcomes:
 * - refused: the decoder threw a WireFormatError (counted by code);
 * - round-trip: the decoder returned a message, and re-encoding that message reproduces the
 *   mutated bytes exactly (for the rounds wire, whose fields frame is JSON, the fields must
 *   re-parse to the same object): the mutation produced another well-formed message and the
 *   decoder hid nothing (a mutation that changed nothing lands here too);
 * - accepted (a failure): the decoder returned a message that re-encodes to other bytes, or that
 *   the encoder refuses — the decoder ignored or altered part of what it was given;
 * - crash (a failure): anything else thrown.
 * The async wire carries a CRC-32 over every byte, so a byte-level mutation that is not re-sealed
 * must be refused; half of its mutations re-seal the CRC to exercise the structural checks
 * behind it. The rounds wire has no checksum (CURVE gives integrity): its mutations that still
 * decode must round-trip.
 */
import { WireFormatError } from '../src/errors.js';
import { decodeRound, encodeRound } from '../src/sync/rounds-wire.js';
import type { RoundKindName } from '../src/sync/rounds-wire.js';
import {
  checksum,
  decode,
  encodeDelta,
  encodeDeltaFrames,
  encodeHeartbeat,
  encodeSnapshotRequest,
  encodeSnapshotResponse,
  sparseFrame,
} from '../src/sync/wire.js';
import type { Envelope, Message } from '../src/sync/wire.js';

/** A small deterministic generator (mulberry32). */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** Counts of one fuzzing run over one wire. */
export interface FuzzReport {
  readonly wire: 'async' | 'rounds';
  mutations: number;
  refused: number;
  roundTrip: number;
  accepted: number;
  crashes: number;
  byCode: Record<string, number>;
  /** The first few failures, for the record. */
  examples: string[];
}

const ENV: Envelope = { runId: 'fuzz', fingerprint: 'ab'.repeat(32), senderId: 'cd'.repeat(16), timestamp: 1_700_000_000_000 };

/** A valid async-wire message of every kind and encoding, chosen by `rng`. */
export function asyncSample(rng: Rng): Buffer[] {
  const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 4);
  switch (rng.int(6)) {
    case 0:
      return encodeDelta(ENV, {
        layer: rng.int(4),
        sequence: 5,
        baseSequence: 2,
        tensors: [values(6), values(3)],
        shapes: [
          [2, 3],
          [1, 3],
        ],
      });
    case 1:
      return encodeDelta(ENV, { layer: 1, sequence: 9, baseSequence: 0, tensors: [values(4)], shapes: [[2, 2]], float16: true });
    case 2:
      return encodeDeltaFrames(ENV, {
        layer: 0,
        sequence: 3,
        baseSequence: 1,
        payload: [sparseFrame(Uint32Array.from([1, 4, 7]), values(3))],
        shapes: [[3, 3]],
        sparse: true,
      });
    case 3:
      return encodeHeartbeat(ENV, {
        lastSequence: 12,
        self: { pub: 'tcp://10.0.0.1:5555', router: 'tcp://10.0.0.1:5556', publicKey: null },
        peers: [{ pub: 'tcp://10.0.0.2:5555', router: 'tcp://10.0.0.2:5556', publicKey: null }],
        progress: { epoch: 1, batches: 20, samples: 2000 },
        weightFingerprint: [0.25, -1.5],
      });
    case 4:
      return encodeSnapshotRequest(ENV, { requestId: 7, layers: rng.int(2) === 0 ? [] : [0, 2] });
    default:
      return encodeSnapshotResponse(ENV, {
        requestId: 7,
        layers: [
          {
            layer: 0,
            tensors: [values(4), values(2)],
            shapes: [
              [2, 2],
              [1, 2],
            ],
          },
        ],
        sequences: new Map([['ef'.repeat(16), 42]]),
        float16: rng.int(2) === 0,
      });
  }
}

const ROUND_KINDS: readonly RoundKindName[] = ['hello', 'heartbeat', 'contribution', 'result', 'chunk', 'snapshot', 'bye'];

/** A valid rounds-wire message, chosen by `rng`. */
export function roundsSample(rng: Rng): Buffer[] {
  const kind = rng.pick(ROUND_KINDS);
  const payload =
    kind === 'contribution' || kind === 'result' || kind === 'chunk'
      ? [Buffer.from(Float64Array.from([1, 2]).buffer), Buffer.from(Float32Array.from([0.5, -1, 3]).buffer)]
      : [];
  const meta = { view: rng.int(5), members: [{ id: '12'.repeat(16), endpoint: 'tcp://10.0.0.1:6000', publicKey: null }], note: 'x' };
  return encodeRound(
    { kind, runId: 'fuzz', sender: '34'.repeat(16), instance: rng.int(2 ** 32), view: rng.int(9), round: rng.int(100) - 1 },
    meta,
    payload,
  );
}

/** One random mutation of `frames` (a fresh list; frames copied before being changed). */
export function mutate(frames: readonly Buffer[], rng: Rng): Buffer[] {
  const out = frames.map((f) => f);
  const i = rng.int(out.length);
  const copy = (k: number): Buffer => (out[k] = Buffer.from(out[k]!));
  switch (rng.int(10)) {
    case 0: {
      const f = copy(i);
      const at = rng.int(f.length);
      if (f.length > 0) f[at] = f[at]! ^ (1 << rng.int(8));
      break;
    }
    case 1: {
      const f = copy(i);
      if (f.length > 0) f[rng.int(f.length)] = rng.int(256);
      break;
    }
    case 2: {
      const f = copy(i);
      const at = rng.int(Math.max(1, f.length - 3));
      const v = rng.pick([0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff, rng.int(2 ** 32)]);
      if (f.length >= at + 4) f.writeUInt32LE(v >>> 0, at);
      break;
    }
    case 3:
      out[i] = out[i]!.subarray(0, rng.int(out[i]!.length + 1));
      break;
    case 4:
      out[i] = Buffer.concat([out[i]!, Buffer.from(Array.from({ length: 1 + rng.int(8) }, () => rng.int(256)))]);
      break;
    case 5:
      out.splice(i, 1);
      break;
    case 6:
      out.splice(i, 0, Buffer.from(out[i]!));
      break;
    case 7: {
      const j = rng.int(out.length);
      [out[i], out[j]] = [out[j]!, out[i]!];
      break;
    }
    case 8:
      out.splice(i, 0, Buffer.from(Array.from({ length: rng.int(24) }, () => rng.int(256))));
      break;
    default:
      out[i] = Buffer.alloc(out[i]!.length);
  }
  return out;
}

/** Writes the CRC the async wire expects into frame 1, if it is long enough to hold one. */
export function reseal(frames: Buffer[]): void {
  const h = frames[1];
  if (h !== undefined && h.length >= 104) {
    frames[1] = Buffer.from(h);
    frames[1].writeUInt32LE(checksum(frames), 100);
  }
}

/** The async-wire frames of a decoded message, by the encoders. */
export function reencodeAsync(m: Message): Buffer[] {
  const env = { runId: m.runId, fingerprint: m.fingerprint, senderId: m.senderId, timestamp: m.timestamp };
  switch (m.kind) {
    case 'delta':
      if (m.sparse !== undefined) {
        const payload = m.sparse.map((s) => sparseFrame(s.indices, s.values));
        return encodeDeltaFrames(env, {
          layer: m.layer,
          sequence: m.sequence,
          baseSequence: m.baseSequence,
          payload,
          shapes: m.shapes,
          sparse: true,
        });
      }
      return encodeDelta(env, {
        layer: m.layer,
        sequence: m.sequence,
        baseSequence: m.baseSequence,
        tensors: m.tensors,
        shapes: m.shapes,
        float16: m.float16,
      });
    case 'heartbeat':
      return encodeHeartbeat(env, {
        lastSequence: m.lastSequence,
        self: m.self,
        peers: m.peers,
        progress: m.progress,
        weightFingerprint: m.weightFingerprint,
      });
    case 'snapshot-request':
      return encodeSnapshotRequest(env, { requestId: m.requestId, layers: m.layers });
    default:
      return encodeSnapshotResponse(env, {
        requestId: m.requestId,
        available: m.available,
        layers: m.layers,
        sequences: m.sequences,
        float16: m.float16,
      });
  }
}

function sameBytes(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (f, k) =>
        Buffer.compare(Buffer.from(f.buffer, f.byteOffset, f.length), Buffer.from(b[k]!.buffer, b[k]!.byteOffset, b[k]!.length)) === 0,
    )
  );
}

/** True when a decoded message re-encodes to exactly `mutated` (see the top of this file). */
function roundTrips(wire: 'async' | 'rounds', mutated: Buffer[]): boolean {
  if (wire === 'async') return sameBytes(reencodeAsync(decode(mutated)), mutated);
  const m = decodeRound(mutated);
  const again = encodeRound(m, m.meta, m.payload);
  return (
    sameBytes([again[0]!, ...again.slice(2)], [mutated[0]!, ...mutated.slice(2)]) &&
    again[1]!.toString('utf8') === JSON.stringify(JSON.parse(mutated[1]!.toString('utf8')))
  );
}

/** Runs `count` mutations through one wire's decoder; see the top of this file. */
export function fuzzWire(wire: 'async' | 'rounds', count: number, seed: number): FuzzReport {
  const rng = new Rng(seed);
  const report: FuzzReport = { wire, mutations: 0, refused: 0, roundTrip: 0, accepted: 0, crashes: 0, byCode: {}, examples: [] };
  const decodeOnly = wire === 'async' ? (f: Buffer[]): unknown => decode(f) : (f: Buffer[]): unknown => decodeRound(f);
  for (let k = 0; k < count; k++) {
    const original = wire === 'async' ? asyncSample(rng) : roundsSample(rng);
    const mutated = mutate(original, rng);
    if (wire === 'async' && rng.int(2) === 0) reseal(mutated);
    report.mutations++;
    try {
      decodeOnly(mutated);
    } catch (err) {
      if (err instanceof WireFormatError) {
        report.refused++;
        report.byCode[err.code] = (report.byCode[err.code] ?? 0) + 1;
      } else {
        report.crashes++;
        if (report.examples.length < 5) report.examples.push(`crash at ${k}: ${String(err)}`);
      }
      continue;
    }
    let ok: boolean;
    try {
      ok = roundTrips(wire, mutated);
    } catch (err) {
      ok = false;
      if (report.examples.length < 5) report.examples.push(`accepted at ${k}: the encoder refuses the decoded message (${String(err)})`);
    }
    if (ok) report.roundTrip++;
    else {
      report.accepted++;
      if (report.examples.length < 5)
        report.examples.push(`accepted at ${k}: frames ${mutated.map((f) => f.toString('hex').slice(0, 64)).join(' | ')}`);
    }
  }
  return report;
}
