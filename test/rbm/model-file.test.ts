import test from 'ava';
import { spawnSync } from 'node:child_process';
import fsCjs, * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelFileError } from '../../src/errors.js';
import { Rbm } from '../../src/rbm/index.js';
import { crc32 } from 'node:zlib';
import { encodeModelFile, parseModelFile, readModelFile, writeModelFile } from '../../src/rbm/model-file.js';
import { cpuBackends } from '../helpers/backends.js';
import { asVersion1, reseal } from '../helpers/model-bytes.js';

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
  t.is(buf.readUInt32LE(4), 2);
  const hlen = buf.readUInt32LE(8);
  const header = JSON.parse(buf.toString('utf8', 12, 12 + hlen));
  t.deepEqual(header, {
    kind: 'test',
    note: 'x',
    tensors: [
      { name: 'a', rows: 2, cols: 3 },
      { name: 'b', rows: 1, cols: 1 },
    ],
  });
  const start = 12 + hlen + ((4 - ((12 + hlen) % 4)) % 4);
  t.is(start % 4, 0);
  t.is(buf.length, start + 7 * 4 + 4);
  t.is(buf.readFloatLE(start + 4 * 5), 6);
  t.is(buf.readFloatLE(start + 4 * 6), -0.5);
  t.is(buf.readUInt32LE(buf.length - 4), crc32(buf.subarray(0, buf.length - 4)), 'the trailer is the CRC-32 of every byte before it');
  const mf = parseModelFile(buf, 'mem');
  t.is(mf.version, 2);
  t.is(mf.checksum, buf.readUInt32LE(buf.length - 4));
  t.deepEqual(mf.tensors.get('a')!.data, tensors[0]!.data);
});

test('every way a file can be wrong has its own code', (t) => {
  const buf = good();
  const hlen = buf.readUInt32LE(8);
  const cases: [string, Buffer, string, RegExp][] = [
    ['short', buf.subarray(0, 8), 'ETRUNCATED', /shorter than the 12-byte preamble/],
    ['magic', Buffer.concat([Buffer.from('PNG!'), buf.subarray(4)]), 'EMAGIC', /magic is "PNG!"/],
    [
      'version',
      (() => {
        const b = Buffer.from(buf);
        b.writeUInt32LE(9, 4);
        return b;
      })(),
      'EVERSION',
      /version 9/,
    ],
    ['header length', reseal((b) => b.writeUInt32LE(1e6, 8), buf), 'ETRUNCATED', /header claims/],
    ['json', reseal((b) => b.write('}', 12), buf), 'EHEADER', /not valid JSON/],
    ['truncated payload', buf.subarray(0, buf.length - 4), 'ETRUNCATED', /tensor 'b'/],
    ['trailing bytes', Buffer.concat([buf, Buffer.alloc(4)]), 'ESIZE', /4 bytes after the last tensor/],
    ['nan', reseal((b) => b.writeFloatLE(Number.NaN, b.length - 8), buf), 'ENONFINITE', /tensor 'a' holds NaN at row 1, column 2/],
    [
      'flipped payload bit',
      (() => {
        const b = Buffer.from(buf);
        b[b.length - 6]! ^= 0x10;
        return b;
      })(),
      'ECHECKSUM',
      /checksum mismatch: the file stores CRC-32 0x[0-9a-f]{8}, its bytes give 0x[0-9a-f]{8}/,
    ],
    [
      'flipped checksum bit',
      (() => {
        const b = Buffer.from(buf);
        b[b.length - 1]! ^= 0x01;
        return b;
      })(),
      'ECHECKSUM',
      /checksum mismatch/,
    ],
    [
      'no kind',
      (() => {
        const json = Buffer.from(JSON.stringify({ tensors: [] }));
        const b = Buffer.alloc(12 + json.length + 4);
        b.write('DBNM', 0, 'latin1');
        b.writeUInt32LE(2, 4);
        b.writeUInt32LE(json.length, 8);
        json.copy(b, 12);
        b.writeUInt32LE(crc32(b.subarray(0, b.length - 4)), b.length - 4);
        return b;
      })(),
      'EHEADER',
      /string "kind"/,
    ],
  ];
  for (const [what, bytes, code, re] of cases) {
    const err = t.throws(() => parseModelFile(bytes, `${what}.rbm`), { instanceOf: ModelFileError }, what);
    t.is(err!.code, code, what);
    t.regex(err!.message, re, what);
    t.true(err!.message.startsWith(`${what}.rbm: `), what);
  }
  t.is(hlen > 0, true);
  t.throws(() => parseModelFile(buf, 'k.rbm', 'rbm'), {
    instanceOf: ModelFileError,
    code: 'EKIND',
    message: /holds a 'test' model, expected 'rbm'/,
  });
  t.throws(() => readModelFile(path.join(dir, 'missing.rbm')), { instanceOf: ModelFileError, code: 'ENOENT' });
});

test('writes are atomic and never overwrite without asking', (t) => {
  const f = path.join(dir, 'keep.bin');
  writeModelFile(f, { kind: 'test' }, tensors);
  const before = fs.readFileSync(f);
  t.throws(() => writeModelFile(f, { kind: 'test' }, []), { instanceOf: ModelFileError, code: 'EEXIST' });
  t.deepEqual(fs.readFileSync(f), before);
  t.throws(() => writeModelFile(path.join(dir, 'nodir', 'x.bin'), { kind: 'test' }, tensors), { instanceOf: ModelFileError, code: 'EIO' });
  t.throws(() => writeModelFile(f, { kind: 'test' }, [{ name: 'z', rows: 2, cols: 2, data: new Float32Array(3) }], { overwrite: true }), {
    instanceOf: ModelFileError,
    code: 'ESIZE',
  });
  t.deepEqual(fs.readFileSync(f), before, 'a failed write leaves the old file intact');
  writeModelFile(f, { kind: 'test2' }, [], { overwrite: true });
  t.is(readModelFile(f).header.kind, 'test2');
  t.deepEqual(
    fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temp files left behind',
  );
});

test('Rbm.load rejects a file with wrong tensor shapes or bad options', (t) => {
  const [{ make }] = cpuBackends as [(typeof cpuBackends)[0]];
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

test('every single-bit flip anywhere in a version-2 file is refused', (t) => {
  const buf = good();
  let refused = 0;
  for (let bit = 0; bit < buf.length * 8; bit++) {
    const b = Buffer.from(buf);
    b[bit >> 3]! ^= 1 << (bit & 7);
    try {
      parseModelFile(b, 'flip.rbm');
    } catch (err) {
      if (err instanceof ModelFileError) refused++;
      else throw err;
    }
  }
  t.is(refused, buf.length * 8);
});

test('version-1 files (no checksum) still load', (t) => {
  const v1 = asVersion1(good());
  t.is(v1.readUInt32LE(4), 1);
  const mf = parseModelFile(v1, 'v1.rbm');
  t.is(mf.version, 1);
  t.is(mf.checksum, undefined);
  t.deepEqual(mf.tensors.get('a')!.data, tensors[0]!.data);
  t.deepEqual(mf.header.kind, 'test');
  t.throws(() => parseModelFile(Buffer.concat([v1, Buffer.alloc(4)]), 'v1.rbm'), { instanceOf: ModelFileError, code: 'ESIZE' });
});

test('header fields are checked for type and range, and counts against tensor shapes', (t) => {
  const rbm = (extra: Record<string, unknown>, nv = 3): Buffer =>
    encodeModelFile({ kind: 'rbm', options: { nVisible: nv, nHidden: 2 }, ...extra }, [
      { name: 'weights', rows: 3, cols: 2, data: new Float32Array(6) },
      { name: 'visibleBias', rows: 1, cols: 3, data: new Float32Array(3) },
      { name: 'hiddenBias', rows: 1, cols: 2, data: new Float32Array(2) },
    ]);
  t.is(parseModelFile(rbm({ epochsTrained: 4, updates: 12, fitted: true }), 'ok.rbm').header.kind, 'rbm');
  const cases: [string, Buffer, string, RegExp][] = [
    ['negative epochs', rbm({ epochsTrained: -1000 }), 'EHEADER', /"epochsTrained" must be an integer in \[0, 1000000000\], got -1000/],
    ['huge epochs', rbm({ epochsTrained: 1.5e300 }), 'EHEADER', /"epochsTrained" must be an integer in \[0, 1000000000\], got 1\.5e\+300/],
    ['fractional epochs', rbm({ epochsTrained: 1.5 }), 'EHEADER', /"epochsTrained"/],
    ['updates as text', rbm({ updates: '7' }), 'EHEADER', /"updates" must be an integer/],
    ['fitted as number', rbm({ fitted: 1 }), 'EHEADER', /"fitted" must be a boolean/],
    ['bad rng', rbm({ state: { rng: [1, 2, 3] } }), 'EHEADER', /"state\.rng" must be 4 unsigned 32-bit integers/],
    ['count against shape', rbm({}, 4), 'ESIZE', /tensor 'weights' is 3x2, expected 4x2/],
    ['metadata list', rbm({ metadata: ['x'] }), 'EHEADER', /"metadata" must be a JSON object/],
    ['library number', rbm({ library: 5 }), 'EHEADER', /"library" must be a string/],
    [
      'dbn layers as a number',
      encodeModelFile({ kind: 'dbn', options: { nVisible: 3, layers: [{ nHidden: 2 }] }, layers: 5 }, []),
      'EHEADER',
      /one "layers" entry per layer \(1\)/,
    ],
    [
      'dbn options.layers as a number',
      encodeModelFile({ kind: 'dbn', options: { nVisible: 3, layers: 5 }, layers: [] }, []),
      'EHEADER',
      /"options" object with a "layers" list/,
    ],
    [
      'dbn layer chain',
      encodeModelFile(
        { kind: 'dbn', options: { nVisible: 4, layers: [{ nHidden: 2 }] }, layers: [{ options: { nVisible: 3, nHidden: 2 } }] },
        [
          { name: 'layer0.weights', rows: 3, cols: 2, data: new Float32Array(6) },
          { name: 'layer0.visibleBias', rows: 1, cols: 3, data: new Float32Array(3) },
          { name: 'layer0.hiddenBias', rows: 1, cols: 2, data: new Float32Array(2) },
        ],
      ),
      'EHEADER',
      /layer 0 has 3 visible units, but the DBN input has 4/,
    ],
  ];
  for (const [what, bytes, code, re] of cases) {
    const err = t.throws(() => parseModelFile(bytes, `${what}.rbm`), { instanceOf: ModelFileError }, what);
    t.is(err?.code, code, `${what}: ${err?.message}`);
    t.regex(err?.message ?? '', re, what);
  }
});

test('save refuses non-finite weights and leaves the good file as it was', (t) => {
  const backend = cpuBackends[0]!.make();
  const f = path.join(dir, 'nan.rbm');
  const rbm = new Rbm({ nVisible: 3, nHidden: 2, backend });
  rbm.save(f);
  const before = fs.readFileSync(f);
  const w = new Float32Array(6);
  w[4] = Number.NaN;
  rbm.writeParametersTrusted(w, new Float32Array(3), new Float32Array(2));
  t.throws(() => rbm.save(f, { overwrite: true }), {
    instanceOf: ModelFileError,
    code: 'ENONFINITE',
    message: /refusing to save: tensor 'weights' holds NaN at row 2, column 0; the existing file is left as it was/,
  });
  t.deepEqual(fs.readFileSync(f), before);
  t.throws(() => rbm.save(path.join(dir, 'nan-new.rbm')), {
    instanceOf: ModelFileError,
    code: 'ENONFINITE',
    message: /nothing was written/,
  });
  t.false(fs.existsSync(path.join(dir, 'nan-new.rbm')));
  rbm.dispose();
  backend.dispose();
});

test('a save fsyncs the file, renames it into place, then fsyncs the directory', (t) => {
  const sub = fs.mkdtempSync(path.join(dir, 'sync-'));
  const f = path.join(sub, 'm.bin');
  const events: string[] = [];
  const fds = new Map<number, string>();
  const real = { openSync: fsCjs.openSync, fsyncSync: fsCjs.fsyncSync, renameSync: fsCjs.renameSync, linkSync: fsCjs.linkSync };
  fsCjs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (real.openSync as (...a: unknown[]) => number)(p, ...rest);
    fds.set(fd, path.resolve(String(p)) === sub ? 'dir' : 'file');
    return fd;
  }) as typeof fs.openSync;
  fsCjs.fsyncSync = ((fd: number) => {
    events.push(`fsync ${fds.get(fd)}`);
    real.fsyncSync(fd);
  }) as typeof fs.fsyncSync;
  fsCjs.renameSync = ((a: fs.PathLike, b: fs.PathLike) => {
    events.push('rename');
    real.renameSync(a, b);
  }) as typeof fs.renameSync;
  fsCjs.linkSync = ((a: fs.PathLike, b: fs.PathLike) => {
    events.push('link');
    real.linkSync(a, b);
  }) as typeof fs.linkSync;
  syncBuiltinESMExports();
  try {
    writeModelFile(f, { kind: 'test' }, tensors);
    writeModelFile(f, { kind: 'test' }, tensors, { overwrite: true });
  } finally {
    Object.assign(fsCjs, real);
    syncBuiltinESMExports();
  }
  t.deepEqual(events, ['fsync file', 'link', 'fsync dir', 'fsync file', 'rename', 'fsync dir']);
  t.is(readModelFile(f).header.kind, 'test');
});

test("a temp file left by a killed save is removed by the next save; a live writer's is kept", (t) => {
  const sub = fs.mkdtempSync(path.join(dir, 'stale-'));
  const f = path.join(sub, 'model.dbn');
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const stale = path.join(sub, `.model.dbn.${dead}.0badf00d.tmp`);
  const live = path.join(sub, `.model.dbn.${process.ppid}.0badf00d.tmp`);
  const other = path.join(sub, `.other.dbn.${dead}.0badf00d.tmp`);
  for (const p of [stale, live, other]) fs.writeFileSync(p, 'half a model');
  writeModelFile(f, { kind: 'test' }, tensors);
  t.false(fs.existsSync(stale), "the dead writer's temp file is gone");
  t.true(fs.existsSync(live), "a live process's temp file is kept");
  t.true(fs.existsSync(other), "another file's temp file is not touched");
  t.is(readModelFile(f).header.kind, 'test');
});
