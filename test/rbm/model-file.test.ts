import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelFileError } from '../../src/errors.js';
import { Rbm } from '../../src/rbm/index.js';
import { parseModelFile, readModelFile, writeModelFile } from '../../src/rbm/model-file.js';
import { cpuBackends } from '../helpers/backends.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-mf-'));
const tensors = [
  { name: 'a', rows: 2, cols: 3, data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
  { name: 'b', rows: 1, cols: 1, data: Float32Array.from([-0.5]) },
];

function good(): Buffer {
  const f = path.join(dir, `good-${Math.random()}.bin`);
  writeModelFile(f, { kind: 'test', note: 'x' }, tensors);
  return fs.readFileSync(f);
}

test('the byte layout is the documented one and round-trips', (t) => {
  const buf = good();
  t.is(buf.toString('latin1', 0, 4), 'DBNM');
  t.is(buf.readUInt32LE(4), 1);
  const hlen = buf.readUInt32LE(8);
  const header = JSON.parse(buf.toString('utf8', 12, 12 + hlen));
  t.deepEqual(header, { kind: 'test', note: 'x', tensors: [{ name: 'a', rows: 2, cols: 3 }, { name: 'b', rows: 1, cols: 1 }] });
  const start = 12 + hlen + ((4 - ((12 + hlen) % 4)) % 4);
  t.is(start % 4, 0);
  t.is(buf.length, start + 7 * 4);
  t.is(buf.readFloatLE(start + 4 * 5), 6);
  t.is(buf.readFloatLE(start + 4 * 6), -0.5);
  const mf = parseModelFile(buf, 'mem');
  t.deepEqual(mf.tensors.get('a')!.data, tensors[0]!.data);
});

test('every way a file can be wrong has its own code', (t) => {
  const buf = good();
  const hlen = buf.readUInt32LE(8);
  const cases: [string, Buffer, string, RegExp][] = [
    ['short', buf.subarray(0, 8), 'ETRUNCATED', /shorter than the 12-byte preamble/],
    ['magic', Buffer.concat([Buffer.from('PNG!'), buf.subarray(4)]), 'EMAGIC', /magic is "PNG!"/],
    ['version', (() => { const b = Buffer.from(buf); b.writeUInt32LE(9, 4); return b; })(), 'EVERSION', /version 9/],
    ['header length', (() => { const b = Buffer.from(buf); b.writeUInt32LE(1e6, 8); return b; })(), 'ETRUNCATED', /header claims/],
    ['json', (() => { const b = Buffer.from(buf); b.write('}', 12); return b; })(), 'EHEADER', /not valid JSON/],
    ['truncated payload', buf.subarray(0, buf.length - 4), 'ETRUNCATED', /tensor 'b'/],
    ['trailing bytes', Buffer.concat([buf, Buffer.alloc(4)]), 'ESIZE', /4 bytes after the last tensor/],
    ['nan', (() => { const b = Buffer.from(buf); b.writeFloatLE(Number.NaN, b.length - 8); return b; })(), 'ENONFINITE', /tensor 'a' holds NaN at row 1, column 2/],
    ['no kind', (() => {
      const json = Buffer.from(JSON.stringify({ tensors: [] }));
      const b = Buffer.alloc(12 + json.length); b.write('DBNM', 0, 'latin1'); b.writeUInt32LE(1, 4); b.writeUInt32LE(json.length, 8); json.copy(b, 12); return b;
    })(), 'EHEADER', /string "kind"/],
  ];
  for (const [what, bytes, code, re] of cases) {
    const err = t.throws(() => parseModelFile(bytes, `${what}.rbm`), { instanceOf: ModelFileError }, what);
    t.is(err!.code, code, what);
    t.regex(err!.message, re, what);
    t.true(err!.message.startsWith(`${what}.rbm: `), what);
  }
  t.is(hlen > 0, true);
  t.throws(() => parseModelFile(buf, 'k.rbm', 'rbm'), { instanceOf: ModelFileError, code: 'EKIND', message: /holds a 'test' model, expected 'rbm'/ });
  t.throws(() => readModelFile(path.join(dir, 'missing.rbm')), { instanceOf: ModelFileError, code: 'ENOENT' });
});

test('writes are atomic and never overwrite without asking', (t) => {
  const f = path.join(dir, 'keep.bin');
  writeModelFile(f, { kind: 'test' }, tensors);
  const before = fs.readFileSync(f);
  t.throws(() => writeModelFile(f, { kind: 'test' }, []), { instanceOf: ModelFileError, code: 'EEXIST' });
  t.deepEqual(fs.readFileSync(f), before);
  t.throws(() => writeModelFile(path.join(dir, 'nodir', 'x.bin'), { kind: 'test' }, tensors), { instanceOf: ModelFileError, code: 'EIO' });
  t.throws(() => writeModelFile(f, { kind: 'test' }, [{ name: 'z', rows: 2, cols: 2, data: new Float32Array(3) }], { overwrite: true }), { instanceOf: ModelFileError, code: 'ESIZE' });
  t.deepEqual(fs.readFileSync(f), before, 'a failed write leaves the old file intact');
  writeModelFile(f, { kind: 'test2' }, [], { overwrite: true });
  t.is(readModelFile(f).header.kind, 'test2');
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp files left behind');
});

test('Rbm.load rejects a file with wrong tensor shapes or bad options', (t) => {
  const [{ make }] = cpuBackends as [typeof cpuBackends[0]];
  const backend = make();
  const f1 = path.join(dir, 'shape.rbm');
  writeModelFile(f1, { kind: 'rbm', options: { nVisible: 3, nHidden: 2 } }, [
    { name: 'weights', rows: 2, cols: 3, data: new Float32Array(6) },
    { name: 'visibleBias', rows: 1, cols: 3, data: new Float32Array(3) },
    { name: 'hiddenBias', rows: 1, cols: 2, data: new Float32Array(2) },
  ]);
  t.throws(() => Rbm.load(f1, { backend }), { instanceOf: ModelFileError, code: 'ESIZE', message: /'weights' is 2x3, expected 3x2/ });
  const f2 = path.join(dir, 'opts.rbm');
  writeModelFile(f2, { kind: 'rbm', options: { nVisible: -3, nHidden: 2 } }, []);
  t.throws(() => Rbm.load(f2, { backend }), { instanceOf: ModelFileError, code: 'EHEADER', message: /'nVisible'/ });
  const f3 = path.join(dir, 'missing-tensor.rbm');
  writeModelFile(f3, { kind: 'rbm', options: { nVisible: 3, nHidden: 2 } }, []);
  t.throws(() => Rbm.load(f3, { backend }), { instanceOf: ModelFileError, code: 'EHEADER', message: /missing tensor 'weights'/ });
  backend.dispose();
});
