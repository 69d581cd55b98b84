import test from 'ava';
import { ShapeMismatchError, WireFormatError } from '../../src/errors.js';
import {
  MAX_MESSAGE_FRAMES,
  MAX_TENSORS_PER_MESSAGE,
  WIRE_VERSION,
  checksum,
  decode,
  encodeDelta,
  encodeHeartbeat,
  encodeSnapshotResponse,
} from '../../src/sync/wire.js';

const env = { runId: 'lim', fingerprint: 'ab'.repeat(32), senderId: 'cd'.repeat(16), timestamp: 0 };

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return err instanceof WireFormatError ? err.code : `not a WireFormatError: ${String(err)}`;
  }
  return undefined;
};

test('version 3 bounds a message to 256 tensors and 260 frames', (t) => {
  t.is(WIRE_VERSION, 3);
  t.is(MAX_TENSORS_PER_MESSAGE, 256);
  t.is(MAX_MESSAGE_FRAMES, 260);
});

test('a frame list longer than MAX_MESSAGE_FRAMES is refused before any frame is read', (t) => {
  // Frames that are not even buffers: only the count can have been looked at.
  const frames = Array.from({ length: MAX_MESSAGE_FRAMES + 1 }, () => 'x') as unknown as Uint8Array[];
  const err = t.throws(() => decode(frames), { instanceOf: WireFormatError });
  t.is(err?.code, 'EFRAMES');
  t.regex(err!.message, /at most 260 frames/);
});

test('the encoders refuse more tensors than one message may carry; 256 round-trip', (t) => {
  const tensors = (k: number): Float32Array[] => Array.from({ length: k }, (_, i) => new Float32Array([i]));
  const shapes = (k: number): Array<[number, number]> => Array.from({ length: k }, () => [1, 1]);
  t.throws(() => encodeDelta(env, { layer: 0, sequence: 1, baseSequence: 0, tensors: tensors(257), shapes: shapes(257) }), {
    instanceOf: ShapeMismatchError,
  });
  const frames = encodeDelta(env, { layer: 0, sequence: 1, baseSequence: 0, tensors: tensors(256), shapes: shapes(256) });
  t.is(frames.length, 258);
  const msg = decode(frames);
  t.is(msg.kind, 'delta');
  t.deepEqual(msg.kind === 'delta' ? [...msg.tensors[255]!] : [], [255]);
  t.throws(() =>
    encodeSnapshotResponse(env, { requestId: 1, layers: [{ layer: 0, tensors: tensors(257), shapes: shapes(257) }], sequences: new Map() }),
  );
});

test('a header that counts more than 256 tensors is refused (EFIELD) even with matching frames and CRC', (t) => {
  const n = 257;
  const header = Buffer.alloc(104 + 8 * n);
  const ok = encodeDelta(env, { layer: 0, sequence: 1, baseSequence: 0, tensors: [new Float32Array([1])], shapes: [[1, 1]] });
  ok[1]!.copy(header, 0, 0, 104);
  header.writeUInt16LE(n, 98);
  for (let i = 0; i < n; i++) {
    header.writeUInt32LE(1, 104 + 8 * i);
    header.writeUInt32LE(1, 108 + 8 * i);
  }
  const frames = [ok[0]!, header, ...Array.from({ length: n }, () => Buffer.alloc(4))];
  header.writeUInt32LE(checksum(frames), 100);
  t.is(
    codeOf(() => decode(frames)),
    'EFIELD',
  );
});

test('a heartbeat info that is not in JSON.stringify form is refused, even with a valid CRC', (t) => {
  const hb = encodeHeartbeat(env, {
    lastSequence: 0,
    self: { pub: 'tcp://10.0.0.1:5555', router: 'tcp://10.0.0.1:5556', publicKey: null },
    peers: [],
    progress: { epoch: 1, batches: 2, samples: 20 },
    weightFingerprint: [],
  });
  t.is(decode(hb).kind, 'heartbeat');
  const text = hb[2]!.toString('utf8');
  for (const variant of [
    text.replace('"samples":20', '"samples":2e1'),
    text.replace('"epoch":1', '"epoch": 1'),
    text.replace('"batches":2', '"batches":2.0'),
  ]) {
    t.not(variant, text);
    const frames = [hb[0]!, Buffer.from(hb[1]!), Buffer.from(variant, 'utf8'), hb[3]!];
    frames[1]!.writeUInt32LE(checksum(frames), 100);
    t.is(
      codeOf(() => decode(frames)),
      'EFIELD',
      variant,
    );
  }
});
