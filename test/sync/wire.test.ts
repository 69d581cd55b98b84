import test from 'ava';
import { InvalidDataError, InvalidOptionError, ShapeMismatchError, WireFormatError } from '../../src/errors.js';
import { Random } from '../../src/random.js';
import { crc32, crc32Portable } from '../../src/sync/crc32.js';
import {
  decodeFloat16,
  decodeFloat16Into,
  encodeFloat16,
  float16FromFloat32,
  fromFloat16Bits,
  roundToFloat16,
  toFloat16Bits,
} from '../../src/sync/float16.js';
import {
  WIRE_VERSION,
  checksum,
  decode,
  encodeDelta,
  encodeDeltaFrames,
  encodeHeartbeat,
  encodeSnapshotRequest,
  encodeSnapshotResponse,
  sparseFrame,
} from '../../src/sync/wire.js';
import type { DeltaMessage, Envelope, HeartbeatMessage, SnapshotRequestMessage, SnapshotResponseMessage } from '../../src/sync/wire.js';
import { z85Decode, z85Encode } from '../../src/sync/z85.js';

const env: Envelope = {
  runId: 'ab-1',
  fingerprint: '00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978',
  senderId: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
  timestamp: 1.5,
};
const KEY_A = 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7';
const KEY_B = 'Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID';

/** Bit-at-a-time CRC-32, the textbook definition (independent of the slicing-by-8 code). */
function crcRef(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function flip(b: Uint8Array, i: number, mask: number): void {
  b[i] = b[i]! ^ mask;
}

function reseal(frames: Buffer[]): Buffer[] {
  frames[1]!.writeUInt32LE(checksum(frames), 100);
  return frames;
}

function codeOf(frames: readonly Uint8Array[]): string {
  try {
    decode(frames);
  } catch (err) {
    if (err instanceof WireFormatError) return err.code;
    throw err;
  }
  return 'ok';
}

function sampleDelta(float16 = false): Buffer[] {
  return encodeDelta(env, {
    layer: 258,
    sequence: 2 ** 32 + 5,
    baseSequence: 7,
    tensors: [new Float32Array([1, -2, 0.5, 3.25, -0, 1e-40]), new Float32Array([7, 8, 9])],
    shapes: [
      [2, 3],
      [1, 3],
    ],
    float16,
  });
}

function sampleHeartbeat(): Buffer[] {
  return encodeHeartbeat(env, {
    lastSequence: 42,
    self: { pub: 'tcp://10.0.0.1:5555', router: 'tcp://10.0.0.1:5556', publicKey: KEY_A },
    peers: [
      { pub: 'tcp://10.0.0.2:5555', router: 'tcp://10.0.0.2:5556', publicKey: KEY_B },
      { pub: 'ipc:///tmp/x.sock', router: 'ipc:///tmp/y.sock', publicKey: null },
    ],
    progress: { epoch: 3, batches: 1200, samples: 120000 },
    weightFingerprint: [0.25, -1e300, Number.MIN_VALUE],
  });
}

function sampleRequest(): Buffer[] {
  return encodeSnapshotRequest(env, { requestId: 9, layers: [0, 2, 65535] });
}

function sampleResponse(float16 = false): Buffer[] {
  return encodeSnapshotResponse(env, {
    requestId: 9,
    layers: [
      {
        layer: 0,
        tensors: [new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6])],
        shapes: [
          [2, 2],
          [1, 2],
        ],
      },
      { layer: 4, tensors: [new Float32Array([-1.5])], shapes: [[1, 1]] },
    ],
    sequences: new Map([
      ['0123456789abcdef0123456789abcdef', 17],
      ['ffffffffffffffffffffffffffffffff', 2 ** 53 - 1],
    ]),
    float16,
  });
}

// --- CRC-32, float16, Z85 -------------------------------------------------------------------

test('crc32 gives the standard check value and matches the bitwise definition at any offset', (t) => {
  t.is(crc32(Buffer.from('123456789', 'ascii')), 0xcbf43926);
  t.is(crc32(new Uint8Array(0)), 0);
  t.is(crc32(new Uint8Array(new ArrayBuffer(0)), 0x1234), 0x1234, 'an empty frame leaves the CRC alone');
  const rng = new Random(7);
  const big = new Uint8Array(300);
  for (let i = 0; i < big.length; i++) big[i] = rng.nextUint32() & 0xff;
  for (let start = 0; start < 9; start++) {
    for (const end of [start, start + 1, start + 7, start + 8, start + 17, 300]) {
      const view = big.subarray(start, end);
      t.is(crc32(view), crcRef(view), `subarray(${start}, ${end})`);
      t.is(crc32(big, 0, start, end), crcRef(view));
    }
  }
  const mid = 131;
  t.is(crc32(big.subarray(mid), crc32(big.subarray(0, mid))), crcRef(big), 'incremental');
  // The portable implementation (used where zlib.crc32 is missing) agrees with the reference.
  t.is(crc32Portable(Buffer.from('123456789', 'ascii')), 0xcbf43926);
  for (let start = 0; start < 9; start++) {
    for (const end of [start, start + 1, start + 7, start + 8, start + 17, 300])
      t.is(crc32Portable(big, 0, start, end), crcRef(big.subarray(start, end)));
  }
  t.is(crc32Portable(big.subarray(mid), crc32Portable(big.subarray(0, mid))), crcRef(big));
});

test('float16: the fast paths (aligned, unaligned, roundToFloat16) agree with the scalar conversion', (t) => {
  const rng = new Random(11);
  const src = new Float32Array(4099);
  for (let i = 0; i < src.length; i++) {
    const u = rng.nextUint32();
    src[i] = (u & 1 ? -1 : 1) * 2 ** (((u >>> 1) % 60) - 40) * (1 + ((u >>> 8) % 1000) / 1000);
  }
  src[0] = 65519.99;
  src[1] = 65520;
  src[2] = 2 ** -25;
  src[3] = -0;
  let bad = 0;
  for (const off of [0, 1]) {
    const bytes = new Uint8Array(2 * src.length + 2);
    encodeFloat16(src, bytes, off);
    for (let i = 0; i < src.length; i++) if ((bytes[off + 2 * i]! | (bytes[off + 2 * i + 1]! << 8)) !== toFloat16Bits(src[i]!)) bad++;
    const back = decodeFloat16(bytes, src.length, off);
    for (let i = 0; i < src.length; i++) if (!Object.is(back[i], Math.fround(fromFloat16Bits(toFloat16Bits(src[i]!))))) bad++;
  }
  const rounded = roundToFloat16(src, new Float32Array(src.length));
  for (let i = 0; i < src.length; i++) if (!Object.is(rounded[i], Math.fround(fromFloat16Bits(toFloat16Bits(src[i]!))))) bad++;
  t.is(bad, 0);
  t.is(rounded[1], Infinity);
});

test('float16: every binary16 value round-trips exactly, NaNs stay NaN', (t) => {
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    const x = fromFloat16Bits(h);
    const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN16) {
      if (!Number.isNaN(x) || (toFloat16Bits(x) & 0x7fff) <= 0x7c00) bad++;
    } else if (toFloat16Bits(x) !== h) bad++;
  }
  t.is(bad, 0);
});

test('float16: values between neighbours round to nearest, ties to even', (t) => {
  let bad = 0;
  // Finite positive neighbours h, h+1 (including subnormals and the step into Inf at 0x7bff).
  for (let h = 0; h < 0x7c00; h++) {
    const lo = fromFloat16Bits(h);
    const hi = h + 1 === 0x7c00 ? 65536 : fromFloat16Bits(h + 1); // one step past 65504
    const mid = (lo + hi) / 2; // exactly representable in float32 (12 significant bits)
    const even = h % 2 === 0 ? h : h + 1;
    const below = mid - (hi - lo) / 8;
    const above = mid + (hi - lo) / 8;
    if (toFloat16Bits(mid) !== even) bad++;
    if (toFloat16Bits(below) !== h) bad++;
    if (toFloat16Bits(above) !== h + 1) bad++;
    if (toFloat16Bits(-mid) !== (even | 0x8000)) bad++;
  }
  t.is(bad, 0);
});

test('float16: named values', (t) => {
  t.is(toFloat16Bits(65504), 0x7bff);
  t.is(toFloat16Bits(65519.99), 0x7bff);
  t.is(toFloat16Bits(65520), 0x7c00, 'the tie above the largest finite goes to Inf');
  t.is(toFloat16Bits(1e10), 0x7c00);
  t.is(toFloat16Bits(-Infinity), 0xfc00);
  t.is(toFloat16Bits(2 ** -24), 0x0001);
  t.is(toFloat16Bits(2 ** -25), 0x0000, 'half of the smallest subnormal ties to even (0)');
  t.is(toFloat16Bits(3 * 2 ** -26), 0x0001);
  t.is(toFloat16Bits(2 ** -14), 0x0400);
  t.is(toFloat16Bits(-0), 0x8000);
  t.is(toFloat16Bits(1e-30), 0);
  t.is(toFloat16Bits(1), 0x3c00);
  t.is(toFloat16Bits(1 + 2 ** -11), 0x3c00, 'tie to even');
  t.is(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02, 'tie to even (up)');
  t.true(Number.isNaN(fromFloat16Bits(toFloat16Bits(Number.NaN))));
  t.is(fromFloat16Bits(0xc000), -2);
  t.is(fromFloat16Bits(0x0001), 2 ** -24);
  t.true(Object.is(fromFloat16Bits(0x8000), -0));
  const src = new Float32Array([1, -2, 0.1, 65504]);
  const bytes = new Uint8Array(9);
  encodeFloat16(src, bytes, 1);
  t.deepEqual([...bytes.subarray(1, 5)], [0x00, 0x3c, 0x00, 0xc0]);
  t.deepEqual([...decodeFloat16(bytes, 4, 1)], [1, -2, Math.fround(fromFloat16Bits(0x2e66)), 65504]);
});

/** Round to nearest binary16, ties to even, by shifting the significand: the textbook integer method. */
function halfRef(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let q = m >>> shift;
    const r = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (r > half || (r === half && (q & 1) === 1)) q++;
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const r = mant & 0x1fff;
  if (r > 0x1000 || (r === 0x1000 && (q & 1) === 1)) q++;
  return sign | q;
}

test('float16: the branch-free conversion equals the textbook one on every exponent and rounding case', (t) => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let bad = 0;
  let checked = 0;
  const check = (bits: number): void => {
    u[0] = bits;
    checked++;
    if (float16FromFloat32(bits, f[0]!) !== halfRef(bits)) bad++;
  };
  // Every sign, exponent and top mantissa bits, with the low 13 bits just below, at and above a tie.
  for (let top = 0; top < 0x10000; top++)
    for (const low of [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x7fff, 0xffff]) check(((top << 16) | low) >>> 0);
  const rng = new Random(5);
  for (let i = 0; i < 200_000; i++) check(rng.nextUint32());
  t.is(bad, 0, `${bad} of ${checked} patterns differ`);
});

test('z85 matches the RFC 32 test vector', (t) => {
  const bytes = new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
  t.is(z85Encode(bytes), 'HelloWorld');
  t.deepEqual(z85Decode('HelloWorld'), bytes);
  t.is(z85Decode('Hello'.slice(0, 4)), undefined);
  t.is(z85Decode('"ello'), undefined);
  t.is(z85Decode('#####'), undefined, 'above 2^32 - 1');
});

// --- Round trips -----------------------------------------------------------------------------

test('a delta round-trips with exact values, sender and sequences', (t) => {
  const m = decode(sampleDelta()) as DeltaMessage;
  t.is(m.kind, 'delta');
  t.is(m.runId, 'ab-1');
  t.is(m.fingerprint, env.fingerprint);
  t.is(m.senderId, env.senderId);
  t.is(m.timestamp, 1.5);
  t.is(m.layer, 258);
  t.is(m.sequence, 2 ** 32 + 5);
  t.is(m.baseSequence, 7);
  t.false(m.float16);
  t.deepEqual(m.shapes, [
    [2, 3],
    [1, 3],
  ]);
  t.deepEqual([...m.tensors[0]!], [1, -2, 0.5, 3.25, -0, Math.fround(1e-40)]);
  t.true(Object.is(m.tensors[0]![4], -0));
  t.deepEqual([...m.tensors[1]!], [7, 8, 9]);
});

test('a float16 delta round-trips to the rounded values', (t) => {
  const frames = sampleDelta(true);
  t.is(frames[2]!.length, 12);
  const m = decode(frames) as DeltaMessage;
  t.true(m.float16);
  t.deepEqual([...m.tensors[0]!], [1, -2, 0.5, 3.25, -0, 0]);
  t.deepEqual([...m.tensors[1]!], [7, 8, 9]);
});

test('a heartbeat round-trips', (t) => {
  const m = decode(sampleHeartbeat()) as HeartbeatMessage;
  t.is(m.kind, 'heartbeat');
  t.is(m.lastSequence, 42);
  t.deepEqual(m.self, { pub: 'tcp://10.0.0.1:5555', router: 'tcp://10.0.0.1:5556', publicKey: KEY_A });
  t.deepEqual(m.peers, [
    { pub: 'tcp://10.0.0.2:5555', router: 'tcp://10.0.0.2:5556', publicKey: KEY_B },
    { pub: 'ipc:///tmp/x.sock', router: 'ipc:///tmp/y.sock', publicKey: null },
  ]);
  t.deepEqual(m.progress, { epoch: 3, batches: 1200, samples: 120000 });
  t.deepEqual([...m.weightFingerprint], [0.25, -1e300, Number.MIN_VALUE]);
  t.is(m.senderId, env.senderId);
});

test('snapshot requests and responses round-trip', (t) => {
  const q = decode(sampleRequest()) as SnapshotRequestMessage;
  t.is(q.kind, 'snapshot-request');
  t.is(q.requestId, 9);
  t.deepEqual(q.layers, [0, 2, 65535]);

  const r = decode(sampleResponse()) as SnapshotResponseMessage;
  t.is(r.kind, 'snapshot-response');
  t.is(r.requestId, 9);
  t.true(r.available);
  t.is(r.layers.length, 2);
  t.is(r.layers[0]!.layer, 0);
  t.deepEqual(r.layers[0]!.shapes, [
    [2, 2],
    [1, 2],
  ]);
  t.deepEqual(
    r.layers[0]!.tensors.map((x) => [...x]),
    [
      [1, 2, 3, 4],
      [5, 6],
    ],
  );
  t.is(r.layers[1]!.layer, 4);
  t.deepEqual([...r.layers[1]!.tensors[0]!], [-1.5]);
  t.deepEqual(
    [...r.sequences],
    [
      ['0123456789abcdef0123456789abcdef', 17],
      ['ffffffffffffffffffffffffffffffff', 2 ** 53 - 1],
    ],
  );

  const u = decode(
    encodeSnapshotResponse(env, { requestId: 3, available: false, layers: [], sequences: new Map() }),
  ) as SnapshotResponseMessage;
  t.false(u.available);
  t.is(u.layers.length, 0);
  t.is(u.sequences.size, 0);
  t.true((decode(sampleResponse(true)) as SnapshotResponseMessage).float16);
});

test('decoded tensors are copies, even from frames at odd byte offsets', (t) => {
  const frames = sampleDelta();
  const odd = frames.map((f) => {
    const b = Buffer.alloc(f.length + 1);
    f.copy(b, 1);
    return b.subarray(1);
  });
  t.is(odd[2]!.byteOffset % 4 === 0, false);
  const m = decode(odd) as DeltaMessage;
  t.deepEqual([...m.tensors[1]!], [7, 8, 9]);
  odd[3]!.fill(0);
  t.deepEqual([...m.tensors[1]!], [7, 8, 9]);
});

test('encoding copies the caller’s arrays', (t) => {
  const w = new Float32Array([1, 2]);
  const frames = encodeDelta(env, { layer: 0, sequence: 1, baseSequence: 0, tensors: [w], shapes: [[1, 2]] });
  w[0] = 99;
  t.deepEqual([...(decode(frames) as DeltaMessage).tensors[0]!], [1, 2]);
});

// --- Byte layout -----------------------------------------------------------------------------

test('a decoded delta carries the sum of squares of its values', (t) => {
  for (const float16 of [false, true]) {
    const m = decode(sampleDelta(float16)) as DeltaMessage;
    let sq = 0;
    for (const x of m.tensors) for (const v of x) sq += v * v;
    t.is(m.sumSquares, sq);
  }
  const bits = new Uint16Array([0x3c00, 0x7c00, 0x0001]);
  const out = new Float32Array(3);
  t.is(decodeFloat16Into(new Uint8Array(bits.buffer), out), Infinity, 'not finite when a value is not');
});

test('encodeDeltaFrames sends caller-written payloads: the same bytes as encodeDelta', (t) => {
  const tensors = [Float32Array.from({ length: 6 }, (_, i) => (i - 2.5) / 7), Float32Array.from([1e-6, -3])];
  const shapes: [number, number][] = [
    [2, 3],
    [1, 2],
  ];
  const delta = { layer: 3, sequence: 9, baseSequence: 4 };
  for (const float16 of [false, true]) {
    const payload = tensors.map((x) => {
      const b = Buffer.alloc(x.length * (float16 ? 2 : 4));
      if (float16) encodeFloat16(x, b);
      else x.forEach((v, i) => b.writeFloatLE(v, 4 * i));
      return b;
    });
    const frames = encodeDeltaFrames(env, { ...delta, payload, shapes, float16 });
    t.deepEqual(frames, encodeDelta(env, { ...delta, tensors, shapes, float16 }));
    t.is(frames[2], payload[0], 'the payload frames go out as they are');
    const m = decode(frames) as DeltaMessage;
    t.is(m.float16, float16);
    t.deepEqual(m.shapes, shapes);
  }
});

test('encodeDeltaFrames checks lengths and finiteness of what it is handed', (t) => {
  const shapes: [number, number][] = [[1, 3]];
  const d = { layer: 0, sequence: 1, baseSequence: 0, shapes };
  const f32 = (...v: number[]): Buffer => {
    const b = Buffer.alloc(4 * v.length);
    v.forEach((x, i) => b.writeFloatLE(x, 4 * i));
    return b;
  };
  t.throws(() => encodeDeltaFrames(env, { ...d, payload: [Buffer.alloc(8)] }), {
    instanceOf: ShapeMismatchError,
    message: /has 8 bytes; shape 1x3 as float32 needs 12/,
  });
  t.throws(() => encodeDeltaFrames(env, { ...d, payload: [Buffer.alloc(12)], float16: true }), {
    instanceOf: ShapeMismatchError,
    message: /needs 6/,
  });
  t.throws(() => encodeDeltaFrames(env, { ...d, payload: [] }), { instanceOf: ShapeMismatchError });
  t.throws(() => encodeDeltaFrames(env, { ...d, payload: [new Uint8Array(12) as Buffer] }), {
    instanceOf: ShapeMismatchError,
    message: /must be a Buffer/,
  });
  t.throws(() => encodeDeltaFrames(env, { ...d, baseSequence: 1, payload: [f32(1, 2, 3)] }), { instanceOf: InvalidOptionError });
  for (const bad of [Number.NaN, Infinity, -Infinity]) {
    t.throws(() => encodeDeltaFrames(env, { ...d, payload: [f32(1, bad, 3)] }), {
      instanceOf: InvalidDataError,
      message: /element 1 is not/,
    });
  }
  // Binary16: an all-ones exponent in either half of a word, and in an odd last element.
  for (const [bits, at] of [
    [[0x3c00, 0x7c00, 0x3c00], 1],
    [[0x7e01, 0, 0], 0],
    [[0, 0, 0xfc00], 2],
  ] as const) {
    const b = Buffer.from(new Uint16Array(bits).buffer);
    t.throws(() => encodeDeltaFrames(env, { ...d, payload: [b], float16: true }), {
      instanceOf: InvalidDataError,
      message: new RegExp(`element ${at} is not`),
    });
  }
  // The largest finite values pass.
  t.notThrows(() =>
    encodeDeltaFrames(env, { ...d, payload: [Buffer.from(new Uint16Array([0x7bff, 0xfbff, 0x0001]).buffer)], float16: true }),
  );
  t.notThrows(() => encodeDeltaFrames(env, { ...d, payload: [f32(3.4028234663852886e38, -1e-45, 0)] }));
  // At an odd byte offset the check still reads every value.
  const odd = Buffer.alloc(13).subarray(1);
  odd.writeFloatLE(1, 0);
  odd.writeFloatLE(Number.NaN, 4);
  t.throws(() => encodeDeltaFrames(env, { ...d, payload: [odd] }), { instanceOf: InvalidDataError, message: /element 1/ });
});

test('the delta header is laid out byte by byte as documented', (t) => {
  const frames = sampleDelta();
  t.is(frames.length, 4);
  t.is(frames[0]!.toString('latin1'), 'dbn/ab-1/258');
  const hex = (s: string): number[] => s.match(/../g)!.map((b) => parseInt(b, 16));
  const expected = [
    ...[0x44, 0x42, 0x4e, 0x53], // 'DBNS'
    ...[WIRE_VERSION, 0], // version
    1, // kind DELTA
    0, // flags
    ...[0x61, 0x62, 0x2d, 0x31, ...new Array<number>(12).fill(0)], // 'ab-1' NUL-padded
    ...hex(env.fingerprint),
    ...hex(env.senderId),
    ...[5, 0, 0, 0, 1, 0, 0, 0], // sequence 2^32 + 5
    ...[7, 0, 0, 0, 0, 0, 0, 0], // base sequence 7
    ...[0, 0, 0, 0, 0, 0, 0xf8, 0x3f], // 1.5 as float64 LE
    ...[0x02, 0x01], // layer 258
    ...[2, 0], // 2 tensors
    ...[0, 0, 0, 0], // CRC, checked below
    ...[2, 0, 0, 0, 3, 0, 0, 0], // 2 x 3
    ...[1, 0, 0, 0, 3, 0, 0, 0], // 1 x 3
  ];
  const header = [...frames[1]!];
  t.is(header.length, 120);
  t.deepEqual([...header.slice(0, 100), 0, 0, 0, 0, ...header.slice(104)], expected);
  t.deepEqual([...frames[2]!.subarray(0, 12)], [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f]); // 1, -2, 0.5
  // CRC: for each frame its u32 LE length then its bytes, the CRC field itself skipped.
  let c = 0;
  frames.forEach((f, i) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(f.length);
    c = crcRef(len, c);
    c = i === 1 ? crcRef(f.subarray(104), crcRef(f.subarray(0, 100), c)) : crcRef(f, c);
  });
  t.is(frames[1]!.readUInt32LE(100), c);
});

// --- Each error code -------------------------------------------------------------------------

test('each way a frame can be wrong has its code', (t) => {
  const d = (): Buffer[] => sampleDelta();
  const cases: Array<[string, () => Uint8Array[]]> = [
    ['EFRAMES', () => d().slice(0, 1)],
    ['EFRAMES', () => d().slice(0, 3)],
    ['EFRAMES', () => [...d(), Buffer.alloc(12)]],
    ['EFRAMES', () => [d()[0]!, d()[1]!, 'x' as unknown as Buffer, d()[3]!]],
    ['ETRUNCATED', () => [d()[0]!, d()[1]!.subarray(0, 103)]],
    ['ETRUNCATED', () => [d()[0]!, d()[1]!.subarray(0, 112), d()[2]!, d()[3]!]],
    ['ELENGTH', () => [d()[0]!, Buffer.concat([d()[1]!, Buffer.alloc(8)]), d()[2]!, d()[3]!]],
    [
      'EMAGIC',
      () => {
        const f = d();
        f[1]![0] = 0x45;
        return f;
      },
    ],
    [
      'EVERSION',
      () => {
        const f = d();
        f[1]!.writeUInt16LE(WIRE_VERSION + 1, 4);
        return f;
      },
    ],
    [
      'EKIND',
      () => {
        const f = d();
        f[1]![6] = 5;
        return f;
      },
    ],
    [
      'EKIND',
      () => {
        const f = d();
        f[1]![6] = 0;
        return f;
      },
    ],
    [
      'EFIELD',
      () => {
        const f = d();
        f[1]![7] = 0x08;
        return f;
      },
    ], // unknown flag
    [
      'EFIELD',
      () => {
        const f = sampleHeartbeat();
        f[1]![7] = 1;
        return f;
      },
    ], // F16 on a heartbeat
    [
      'ESHAPE',
      () => {
        const f = d();
        f[1]!.writeUInt32LE(0, 104);
        return f;
      },
    ],
    [
      'ESHAPE',
      () => {
        const f = d();
        f[1]!.writeUInt32LE(0xffffffff, 104);
        return f;
      },
    ],
    [
      'ELENGTH',
      () => {
        const f = d();
        f[2] = f[2]!.subarray(0, 20);
        return f;
      },
    ],
    [
      'ELENGTH',
      () => {
        const f = d();
        f[3] = Buffer.concat([f[3]!, Buffer.alloc(4)]);
        return f;
      },
    ],
    [
      'ECRC',
      () => {
        const f = d();
        flip(f[2]!, 5, 1);
        return f;
      },
    ],
    [
      'ECRC',
      () => {
        const f = d();
        flip(f[1]!, 60, 0x80);
        return f;
      },
    ],
    [
      'ECRC',
      () => {
        const f = d();
        f[0] = Buffer.from('dbn/ab-1/259');
        return f;
      },
    ],
    [
      'ETOPIC',
      () => {
        const f = d();
        f[0] = Buffer.from('dbn/ab-1/259');
        return reseal(f);
      },
    ],
    [
      'ETOPIC',
      () => {
        const f = sampleHeartbeat();
        f[0] = Buffer.from('dbn/ab-2/ctl');
        return reseal(f);
      },
    ],
    [
      'ENONFINITE',
      () => {
        const f = d();
        f[2]!.writeFloatLE(Number.NaN, 8);
        return reseal(f);
      },
    ],
    [
      'ENONFINITE',
      () => {
        const f = sampleDelta(true);
        f[3]!.writeUInt16LE(0x7c00, 2);
        return reseal(f);
      },
    ],
    [
      'EFIELD',
      () => {
        const f = d();
        f[1]!.writeUInt32LE(0x00200000, 76);
        return reseal(f);
      },
    ], // sequence > 2^53 - 1
    [
      'EFIELD',
      () => {
        const f = d();
        f[1]!.writeUInt32LE(6, 72);
        f[1]!.writeUInt32LE(0, 76);
        f[1]!.writeUInt32LE(6, 80);
        return reseal(f);
      },
    ], // base ≥ sequence
    [
      'EFIELD',
      () => {
        const f = d();
        f[1]!.writeDoubleLE(Number.NaN, 88);
        return reseal(f);
      },
    ],
    [
      'EFIELD',
      () => {
        const f = d();
        f[1]![8] = 0x20;
        return reseal(f);
      },
    ], // space in run id
    [
      'EFIELD',
      () => {
        const f = d();
        f[1]![20] = 0x41;
        return reseal(f);
      },
    ], // bytes after the NUL padding
    [
      'EFIELD',
      () => {
        const f = sampleHeartbeat();
        f[2] = Buffer.from('{"self":1}');
        return reseal(f);
      },
    ],
    [
      'EFIELD',
      () => {
        const f = sampleHeartbeat();
        f[2] = Buffer.from('not json');
        return reseal(f);
      },
    ],
    [
      'EFIELD',
      () => {
        const f = sampleHeartbeat();
        f[2] = Buffer.from([0xff, 0xfe]);
        return reseal(f);
      },
    ],
    [
      'ELENGTH',
      () => {
        const f = sampleHeartbeat();
        f[3] = Buffer.alloc(12);
        return reseal(f);
      },
    ],
    [
      'ELENGTH',
      () => {
        const f = sampleHeartbeat();
        f[2] = Buffer.alloc(70000, 0x20);
        return reseal(f);
      },
    ],
    [
      'EFIELD',
      () => {
        const f = sampleRequest();
        f[2]!.writeUInt16LE(0, 2);
        return reseal(f);
      },
    ], // layers 0, 0, 65535
    [
      'EFIELD',
      () => {
        const f = sampleRequest();
        f[1]!.writeUInt16LE(1, 96);
        return reseal(f);
      },
    ], // layer on a request
    [
      'ELENGTH',
      () => {
        const f = sampleRequest();
        f[2] = f[2]!.subarray(0, 5);
        return reseal(f);
      },
    ],
    [
      'ETRUNCATED',
      () => {
        const f = sampleResponse();
        f[2] = f[2]!.subarray(0, 30);
        return reseal(f);
      },
    ],
    [
      'ELENGTH',
      () => {
        const f = sampleResponse();
        f[2] = Buffer.concat([f[2]!, Buffer.alloc(1)]);
        return reseal(f);
      },
    ],
    [
      'EFIELD',
      () => {
        const f = sampleResponse();
        f[2]!.writeUInt16LE(1, 4);
        return reseal(f);
      },
    ], // layer 0 claims 1 of 3 tensors
    [
      'EFIELD',
      () => {
        const f = sampleResponse();
        f[2]!.writeUInt16LE(0, 6);
        return reseal(f);
      },
    ], // layers not increasing
  ];
  for (const [code, make] of cases) t.is(codeOf(make()), code, `${code}: ${make.toString().slice(6, 110)}`);
  t.is(codeOf('nope' as unknown as Uint8Array[]), 'EFRAMES');
  const err = t.throws(() => decode([Buffer.from('x'), Buffer.alloc(3)]), { instanceOf: WireFormatError });
  t.is(err?.code, 'ETRUNCATED');
  t.regex(err?.message ?? '', /3 bytes, at least 104/);
});

test('encoders reject bad input with typed errors', (t) => {
  const delta =
    (over: object): (() => unknown) =>
    () =>
      encodeDelta(env, { layer: 0, sequence: 1, baseSequence: 0, tensors: [new Float32Array([1, 2])], shapes: [[1, 2]], ...over });
  t.throws(delta({ tensors: [new Float32Array([1, Number.NaN])] }), { instanceOf: InvalidDataError, message: /element 1 is NaN/ });
  t.throws(delta({ tensors: [new Float32Array([1, 70000])], float16: true }), {
    instanceOf: InvalidDataError,
    message: /overflows float16/,
  });
  t.throws(delta({ shapes: [[2, 2]] }), { instanceOf: ShapeMismatchError, message: /has 2 values, but shape 2x2 needs 4/ });
  t.throws(delta({ shapes: [] }), { instanceOf: ShapeMismatchError });
  t.throws(delta({ tensors: [], shapes: [] }), { instanceOf: ShapeMismatchError });
  t.throws(delta({ tensors: [[1, 2]] }), { instanceOf: ShapeMismatchError, message: /Float32Array/ });
  t.throws(delta({ sequence: 0 }), { instanceOf: InvalidOptionError, message: /'sequence'/ });
  t.throws(delta({ sequence: 3, baseSequence: 3 }), { instanceOf: InvalidOptionError, message: /less than 'sequence'/ });
  t.throws(delta({ layer: 70000 }), { instanceOf: InvalidOptionError, message: /'layer'/ });
  t.throws(
    () =>
      encodeDelta({ ...env, runId: 'a/b' }, { layer: 0, sequence: 1, baseSequence: 0, tensors: [new Float32Array(1)], shapes: [[1, 1]] }),
    {
      instanceOf: InvalidOptionError,
      message: /run id/,
    },
  );
  t.throws(
    () =>
      encodeDelta(
        { ...env, senderId: 'XYZ' },
        { layer: 0, sequence: 1, baseSequence: 0, tensors: [new Float32Array(1)], shapes: [[1, 1]] },
      ),
    {
      instanceOf: InvalidOptionError,
      message: /sender id/,
    },
  );
  t.throws(() => encodeSnapshotRequest(env, { requestId: 1, layers: [2, 1] }), {
    instanceOf: InvalidOptionError,
    message: /strictly increasing/,
  });
  t.throws(
    () =>
      encodeHeartbeat(env, {
        lastSequence: 0,
        self: { pub: 'tcp://a:1#x', router: 'tcp://a:2', publicKey: null },
        peers: [],
        progress: { epoch: 0, batches: 0, samples: 0 },
        weightFingerprint: [],
      }),
    { instanceOf: InvalidOptionError, message: /'self'/ },
  );
});

// --- SPARSE deltas ---------------------------------------------------------------------------

/** A 2×3 tensor with entries 1 → −2.5 and 4 → 0.75, and a 1×2 one with none. */
function sampleSparse(): Buffer[] {
  return encodeDeltaFrames(env, {
    layer: 3,
    sequence: 9,
    baseSequence: 4,
    payload: [sparseFrame(new Uint32Array([1, 4]), new Float32Array([-2.5, 0.75])), sparseFrame(new Uint32Array(0), new Float32Array(0))],
    shapes: [
      [2, 3],
      [1, 2],
    ],
    sparse: true,
  });
}

test('sparse delta: round trip of entries, dense tensors with zeros elsewhere, Σ v² of the entries', (t) => {
  const frames = sampleSparse();
  t.is(frames[1]![7], 4, 'header flags: SPARSE only');
  t.is(frames[2]!.length, 16, '2 indices + 2 values');
  t.deepEqual(
    [...frames[2]!],
    [1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0x20, 0xc0, 0, 0, 0x40, 0x3f],
    'u32 LE indices, then float32 LE −2.5 and 0.75',
  );
  const m = decode(frames) as DeltaMessage;
  t.is(m.kind, 'delta');
  t.is(m.float16, false);
  t.deepEqual([...m.sparse![0]!.indices], [1, 4]);
  t.deepEqual([...m.sparse![0]!.values], [-2.5, 0.75]);
  t.is(m.sparse![1]!.indices.length, 0);
  t.is(m.sumSquares, 6.25 + 0.5625);
  t.deepEqual([...m.tensors[0]!], [0, -2.5, 0, 0, 0.75, 0]);
  t.deepEqual([...m.tensors[1]!], [0, 0]);
  t.is(m.tensors, m.tensors, 'the dense tensors are built once');
});

/** `sampleSparse` with payload frame 0 replaced by `frame`, resealed. */
function withSparseFrame(frame: Buffer): Buffer[] {
  const f = sampleSparse();
  f[2] = frame;
  return reseal(f);
}

test('sparse delta: each malformed payload gets its code', (t) => {
  const raw = (idx: number[], vals: number[]): Buffer => {
    const b = Buffer.alloc(8 * idx.length);
    idx.forEach((k, j) => b.writeUInt32LE(k, 4 * j));
    vals.forEach((v, j) => b.writeFloatLE(v, 4 * (idx.length + j)));
    return b;
  };
  t.is(codeOf(withSparseFrame(raw([4, 1], [1, 2]))), 'EINDEX', 'indices not increasing');
  t.is(codeOf(withSparseFrame(raw([2, 2], [1, 2]))), 'EINDEX', 'an index twice');
  t.is(codeOf(withSparseFrame(raw([1, 6], [1, 2]))), 'EINDEX', 'index beyond the 6 elements');
  t.is(codeOf(withSparseFrame(raw([0, 1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1, 1]))), 'ELENGTH', 'more entries than elements');
  t.is(codeOf(withSparseFrame(Buffer.alloc(12))), 'ELENGTH', 'not a multiple of 8 bytes');
  t.is(codeOf(withSparseFrame(raw([1, 4], [Number.NaN, 1]))), 'ENONFINITE');
  t.is(codeOf(withSparseFrame(raw([1, 4], [1, Number.POSITIVE_INFINITY]))), 'ENONFINITE');
  t.is(codeOf(withSparseFrame(raw([0, 5], [1, 2]))), 'ok', 'the first and last elements are valid indices');
  const both = sampleSparse();
  both[1]![7] = 4 | 1;
  t.is(codeOf(reseal(both)), 'EFIELD', 'SPARSE with F16');
  const hb = sampleHeartbeat();
  hb[1]![7] = 4;
  t.is(codeOf(reseal(hb)), 'EFIELD', 'SPARSE on a heartbeat');
  const resp = sampleResponse();
  resp[1]![7] = 4;
  t.is(codeOf(reseal(resp)), 'EFIELD', 'SPARSE on a snapshot response');
});

test('sparse delta: the encoder checks the frames it is handed', (t) => {
  const enc = (payload: Buffer[], extra: { float16?: boolean; finiteChecked?: boolean } = {}): Buffer[] =>
    encodeDeltaFrames(env, { layer: 0, sequence: 1, baseSequence: 0, payload, shapes: [[2, 3]], sparse: true, ...extra });
  t.throws(() => enc([sparseFrame(new Uint32Array([3, 3]), new Float32Array([1, 2]))]), {
    instanceOf: InvalidDataError,
    message: /payload\[0\].*index 3 at entry 1/,
  });
  t.throws(() => enc([sparseFrame(new Uint32Array([6]), new Float32Array([1]))]), {
    instanceOf: InvalidDataError,
    message: /beyond the 6 elements/,
  });
  t.throws(() => enc([Buffer.alloc(4)]), { instanceOf: InvalidDataError, message: /multiple of 8/ });
  t.throws(() => enc([sparseFrame(new Uint32Array([0]), new Float32Array([Number.NaN]))]), {
    instanceOf: InvalidDataError,
    message: /NaN/,
  });
  t.notThrows(
    () => enc([sparseFrame(new Uint32Array([0]), new Float32Array([Number.NaN]))], { finiteChecked: true }),
    'finiteChecked skips the value scan only',
  );
  t.throws(() => enc([sparseFrame(new Uint32Array([0]), new Float32Array([1]))], { float16: true }), {
    instanceOf: InvalidOptionError,
    message: /'float16' and 'sparse'/,
  });
  t.throws(() => sparseFrame(new Uint32Array(2), new Float32Array(1)), { instanceOf: ShapeMismatchError, message: /'count'/ });
  t.is(sparseFrame(new Uint32Array([5, 7, 9]), new Float32Array([1, 2, 3]), 2).length, 16, 'count takes the first entries');
});

// --- Fuzz ------------------------------------------------------------------------------------

function randomFrames(rng: Random): Buffer[] {
  const k = rng.int(7);
  if (k === 6) {
    const n = 1 + rng.int(3);
    const shapes: Array<[number, number]> = [];
    const payload: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const r = 1 + rng.int(4);
      const c = 1 + rng.int(5);
      shapes.push([r, c]);
      const idx: number[] = [];
      for (let e = 0; e < r * c; e++) if (rng.uniform() < 0.4) idx.push(e);
      payload.push(sparseFrame(Uint32Array.from(idx), rng.fillNormal(new Float32Array(idx.length))));
    }
    const sequence = 1 + rng.int(1000);
    return encodeDeltaFrames(env, { layer: rng.int(5), sequence, baseSequence: rng.int(sequence), payload, shapes, sparse: true });
  }
  if (k === 0 || k === 1) {
    const n = 1 + rng.int(3);
    const tensors: Float32Array[] = [];
    const shapes: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) {
      const r = 1 + rng.int(4);
      const c = 1 + rng.int(5);
      shapes.push([r, c]);
      tensors.push(rng.fillNormal(new Float32Array(r * c)));
    }
    const sequence = 1 + rng.int(1000);
    return encodeDelta(env, { layer: rng.int(5), sequence, baseSequence: rng.int(sequence), tensors, shapes, float16: k === 1 });
  }
  if (k === 2) return sampleHeartbeat();
  if (k === 3) return sampleRequest();
  if (k === 4) return sampleResponse(rng.uniform() < 0.5);
  return encodeSnapshotResponse(env, { requestId: 1 + rng.int(9), available: false, layers: [], sequences: new Map() });
}

function mutate(frames: Buffer[], rng: Random): Buffer[] {
  const f = frames.map((b) => Buffer.from(b));
  const pick = (): number => rng.int(f.length);
  const steps = 1 + rng.int(2);
  for (let s = 0; s < steps; s++) {
    switch (rng.int(9)) {
      case 0: {
        // 1–3 bit flips anywhere
        const flips = 1 + rng.int(3);
        for (let j = 0; j < flips; j++) {
          const i = pick();
          if (f[i]!.length > 0) flip(f[i]!, rng.int(f[i]!.length), 1 << rng.int(8));
        }
        break;
      }
      case 1: {
        // bit flip in the header's fixed part (most fields live there)
        flip(f[1]!, rng.int(Math.min(f[1]!.length, 104)), 1 << rng.int(8));
        break;
      }
      case 2: {
        const i = pick();
        f[i] = f[i]!.subarray(0, rng.int(f[i]!.length + 1));
        break;
      }
      case 3: {
        const i = pick();
        const extra = Buffer.alloc(1 + rng.int(8));
        for (let j = 0; j < extra.length; j++) extra[j] = rng.int(256);
        f[i] = Buffer.concat([f[i]!, extra]);
        break;
      }
      case 4: {
        const i = pick();
        const j = pick();
        [f[i], f[j]] = [f[j]!, f[i]!];
        break;
      }
      case 5:
        f.splice(pick(), 1);
        break;
      case 6: {
        const i = pick();
        f.splice(i, 0, Buffer.from(f[i]!));
        break;
      }
      case 7: {
        // overwrite a random byte with a random value
        const i = pick();
        if (f[i]!.length > 0) f[i]![rng.int(f[i]!.length)] = rng.int(256);
        break;
      }
      default: {
        // move one byte from the end of a frame to the start of the next
        const i = rng.int(Math.max(1, f.length - 1));
        if (i + 1 < f.length && f[i]!.length > 0) {
          const last = f[i]!.subarray(f[i]!.length - 1);
          f[i + 1] = Buffer.concat([last, f[i + 1]!]);
          f[i] = f[i]!.subarray(0, f[i]!.length - 1);
        }
      }
    }
    if (f.length === 0) f.push(Buffer.alloc(0));
  }
  return f;
}

const sameFrames = (a: readonly Buffer[], b: readonly Buffer[]): boolean => a.length === b.length && a.every((x, i) => x.equals(b[i]!));

test('fuzz: mutated frames either decode to the original message or throw WireFormatError', (t) => {
  const rng = new Random(20240611);
  const outcomes: Record<string, number> = {};
  let unchanged = 0;
  for (let iter = 0; iter < 4000; iter++) {
    const original = randomFrames(rng);
    const expected = decode(original);
    const mutated = mutate(original, rng);
    let result: ReturnType<typeof decode> | undefined;
    try {
      result = decode(mutated);
    } catch (err) {
      if (!(err instanceof WireFormatError)) {
        t.fail(`iteration ${iter}: threw ${String(err)}`);
        return;
      }
      outcomes[err.code] = (outcomes[err.code] ?? 0) + 1;
      continue;
    }
    // Decoding succeeded: the mutation must have been a no-op (e.g. two equal frames swapped).
    if (!sameFrames(mutated, original)) {
      t.fail(`iteration ${iter}: a changed message decoded: ${JSON.stringify(result).slice(0, 200)}`);
      return;
    }
    t.deepEqual(result, expected);
    unchanged++;
  }
  t.log(JSON.stringify({ ...outcomes, unchanged }));
  t.true((outcomes.ECRC ?? 0) > 500, 'most corruption is caught by the checksum');
  t.true(Object.keys(outcomes).length >= 6);
});

test('fuzz: random byte soup never throws anything but WireFormatError', (t) => {
  const rng = new Random(99);
  const valid = sampleDelta();
  let errors = 0;
  for (let iter = 0; iter < 3000; iter++) {
    const n = rng.int(6);
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const len = rng.int(i === 1 ? 160 : 40);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = rng.int(256);
      // Often keep a valid prefix so the decoder gets past the magic and version checks.
      if (i === 1 && rng.uniform() < 0.7) valid[1]!.copy(b, 0, 0, Math.min(len, 8 + rng.int(100)));
      frames.push(b);
    }
    try {
      decode(frames);
      t.fail(`iteration ${iter}: random bytes decoded`);
      return;
    } catch (err) {
      if (!(err instanceof WireFormatError)) {
        t.fail(`iteration ${iter}: threw ${String(err)}`);
        return;
      }
      errors++;
    }
  }
  t.is(errors, 3000);
});

test('encodeDeltaFrames with finiteChecked skips the value scan (the caller vouches), and decode still refuses a non-finite payload', (t) => {
  const shapes: [number, number][] = [[1, 3]];
  const payload = Buffer.alloc(12);
  payload.writeFloatLE(1, 0);
  payload.writeFloatLE(Number.NaN, 4);
  payload.writeFloatLE(3, 8);
  const d = { layer: 0, sequence: 1, baseSequence: 0, shapes, payload: [payload] };
  t.throws(() => encodeDeltaFrames(env, d), { instanceOf: InvalidDataError });
  const frames = encodeDeltaFrames(env, { ...d, finiteChecked: true });
  // Lengths are still checked.
  t.throws(() => encodeDeltaFrames(env, { ...d, payload: [Buffer.alloc(8)], finiteChecked: true }), { instanceOf: ShapeMismatchError });
  const err = t.throws(() => decode(frames), { instanceOf: WireFormatError });
  t.is(err?.code, 'ENONFINITE');
});

test('decode views an aligned float32 payload in place and copies an unaligned one, with the same values', (t) => {
  const shapes: [number, number][] = [[2, 3]];
  const values = Float32Array.from([1.5, -2, 3.25, 0, 1e-3, -7]);
  const frames = encodeDelta(env, { layer: 0, sequence: 1, baseSequence: 0, tensors: [values], shapes });
  const aligned = decode(frames);
  // The same frames at an odd byte offset.
  const shifted = frames.map((f) => {
    const big = Buffer.alloc(f.length + 1);
    f.copy(big, 1);
    return big.subarray(1);
  });
  const unaligned = decode(shifted);
  if (aligned.kind !== 'delta' || unaligned.kind !== 'delta') return t.fail('not deltas');
  t.deepEqual(Array.from(aligned.tensors[0]!), Array.from(values));
  t.deepEqual(Array.from(unaligned.tensors[0]!), Array.from(values));
  t.is(aligned.sumSquares, unaligned.sumSquares);
  t.is(
    aligned.sumSquares,
    values.reduce((s, v) => s + v * v, 0),
  );
});
