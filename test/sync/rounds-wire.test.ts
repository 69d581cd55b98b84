/** The rounds wire format: a round trip, and one typed error per way a message can be wrong. */
import test from 'ava';
import { WireFormatError } from '../../src/errors.js';
import { HEADER_BYTES, decodeArrays, decodeRound, encodeArrays, encodeRound, membersField } from '../../src/sync/rounds-wire.js';

const header = {
  kind: 'contribution' as const,
  runId: 'run-1',
  sender: '0123456789abcdef0123456789abcdef',
  instance: 77,
  view: 3,
  round: 41,
};

test('a contribution survives the round trip, header, fields and arrays, bit for bit', (t) => {
  const scalars = Float64Array.of(100, -0.5);
  const tensors = [Float32Array.of(1.5, -2, 3e-8), Float32Array.of(Number.MIN_VALUE, 7)];
  const frames = encodeRound(header, { stage: 1, epoch: 2, step: 3, admit: [] }, encodeArrays(scalars, tensors));
  t.is(frames[0]!.length, HEADER_BYTES);
  // A received buffer may start at any offset: decode from unaligned copies.
  const shifted = frames.map((f) => Buffer.concat([Buffer.alloc(1), f]).subarray(1));
  const m = decodeRound(shifted);
  t.like(m, header);
  t.deepEqual(m.meta, { stage: 1, epoch: 2, step: 3, admit: [] });
  const back = decodeArrays(m.payload, 2, [3, 2]);
  t.deepEqual([...back.scalars], [...scalars]);
  t.deepEqual([...back.tensors[0]!], [...tensors[0]!]);
  t.deepEqual([...back.tensors[1]!], [...tensors[1]!]);
});

test('malformed messages raise WireFormatError with the code of the fault', (t) => {
  const good = encodeRound(header, { a: 1 });
  const code = (frames: Buffer[]): string | undefined => t.throws(() => decodeRound(frames), { instanceOf: WireFormatError })?.code;
  t.is(code([good[0]!]), 'EFRAMES');
  t.is(code([good[0]!.subarray(0, 20), good[1]!]), 'ETRUNCATED');
  const magic = Buffer.from(good[0]!);
  magic.write('XXXX', 0, 'latin1');
  t.is(code([magic, good[1]!]), 'EMAGIC');
  const version = Buffer.from(good[0]!);
  version.writeUInt8(9, 4);
  t.is(code([version, good[1]!]), 'EVERSION');
  const kind = Buffer.from(good[0]!);
  kind.writeUInt8(200, 5);
  t.is(code([kind, good[1]!]), 'EKIND');
  const round = Buffer.from(good[0]!);
  round.writeDoubleLE(0.5, 48);
  t.is(code([round, good[1]!]), 'EFIELD');
  t.is(code([good[0]!, Buffer.from('not json')]), 'EFIELD');
  t.is(code([good[0]!, Buffer.from('[1,2]')]), 'EFIELD');
});

test('arrays of the wrong count or length, and malformed member lists, are refused', (t) => {
  const payload = encodeArrays(Float64Array.of(1), [new Float32Array(4)]);
  t.is(t.throws(() => decodeArrays(payload, 1, [5]), { instanceOf: WireFormatError })?.code, 'ELENGTH');
  t.is(t.throws(() => decodeArrays(payload, 2, [4]), { instanceOf: WireFormatError })?.code, 'ELENGTH');
  t.is(t.throws(() => decodeArrays(payload, 1, [4, 4]), { instanceOf: WireFormatError })?.code, 'ELENGTH');
  t.is(
    t.throws(() => membersField({ m: [{ id: 'xyz', endpoint: 'tcp://a:1', publicKey: null }] }, 'm', 4), { instanceOf: WireFormatError })
      ?.code,
    'EFIELD',
  );
  t.is(
    t.throws(() => membersField({ m: [{ id: 'ab'.repeat(16), endpoint: 'ipc:///tmp/x', publicKey: null }] }, 'm', 4), {
      instanceOf: WireFormatError,
    })?.code,
    'EFIELD',
  );
  t.is(t.throws(() => membersField({ m: new Array(5).fill({}) }, 'm', 4), { instanceOf: WireFormatError })?.code, 'EFIELD');
  t.deepEqual(membersField({ m: [{ id: 'ab'.repeat(16), endpoint: 'tcp://10.0.0.1:5555', publicKey: null }] }, 'm', 4), [
    { id: 'ab'.repeat(16), endpoint: 'tcp://10.0.0.1:5555', publicKey: null },
  ]);
});
