import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { loadIdx, loadIdxDataset, readIdxHeader } from '../../src/data/index.js';
import { DatasetError } from '../../src/errors.js';
import { idxBytes, tempDir, writeFile } from './idx-writer.js';

const dir = tempDir();
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function expectDatasetError(t: import('ava').ExecutionContext, fn: () => unknown, code: string, file: string, ...parts: string[]): void {
  const err = t.throws(fn, { instanceOf: DatasetError });
  t.is(err?.code, code);
  t.true(err?.message.includes(path.basename(file)), err?.message);
  for (const p of parts) t.true(err?.message.includes(p), `${err?.message} should contain ${p}`);
}

const PIXELS = [0, 1, 2, 255, 10, 20, 30, 40, 128, 64, 32, 16];

for (const gz of [false, true]) {
  test(`ubyte images decode exactly (${gz ? 'gzip' : 'plain'})`, (t) => {
    const p = writeFile(dir, `img-${gz}.idx`, idxBytes('ubyte', [3, 2, 2], PIXELS), gz);
    const a = loadIdx(p);
    t.is(a.type, 'ubyte');
    t.deepEqual(a.shape, [3, 2, 2]);
    t.true(a.data instanceof Uint8Array);
    t.deepEqual(Array.from(a.data), PIXELS);
  });
}

test('every IDX element type decodes from big-endian', (t) => {
  const cases = [
    { type: 'byte', values: [-128, -1, 0, 127], ctor: Int8Array },
    { type: 'short', values: [-32768, -2, 258, 32767], ctor: Int16Array },
    { type: 'int', values: [-2147483648, -3, 16909060, 2147483647], ctor: Int32Array },
    { type: 'float', values: [-1.5, 0.25, 3.140000104904175, 1e-30], ctor: Float32Array },
    { type: 'double', values: [-1.5, 0.1, Math.PI, 1e300], ctor: Float64Array },
  ] as const;
  for (const c of cases) {
    const p = writeFile(dir, `t-${c.type}.idx`, idxBytes(c.type, [2, 2], c.values));
    const a = loadIdx(p);
    t.is(a.type, c.type);
    t.deepEqual(a.shape, [2, 2]);
    t.true(a.data instanceof c.ctor, c.type);
    t.deepEqual(Array.from(a.data), Array.from(c.ctor.from(c.values)), c.type);
  }
});

test('limit reads only the first items, also from a large gzip file', (t) => {
  const n = 2000;
  const values: number[] = [];
  for (let i = 0; i < n * 784; i++) values.push((i * 2654435761) >>> 24);
  const bytes = idxBytes('ubyte', [n, 28, 28], values);
  for (const gz of [false, true]) {
    const p = writeFile(dir, `big-${gz}.idx`, bytes, gz);
    const a = loadIdx(p, { limit: 3 });
    t.deepEqual(a.shape, [3, 28, 28]);
    t.deepEqual(Array.from(a.data), values.slice(0, 3 * 784));
    t.deepEqual(readIdxHeader(p), { type: 'ubyte', shape: [n, 28, 28], dataOffset: 16 });
  }
});

test('wrong magic number: EMAGIC naming the file and byte 0', (t) => {
  const bytes = idxBytes('ubyte', [2], [1, 2]);
  bytes[1] = 0x08;
  const p = writeFile(dir, 'magic.idx', bytes);
  expectDatasetError(t, () => loadIdx(p), 'EMAGIC', p, 'byte 0', '0x0008');
});

test('unsupported type code: ETYPE at byte 2', (t) => {
  const bytes = idxBytes('ubyte', [2], [1, 2]);
  bytes[2] = 0x07;
  const p = writeFile(dir, 'type.idx', bytes);
  expectDatasetError(t, () => loadIdx(p), 'ETYPE', p, '0x07', 'byte 2');
});

for (const gz of [false, true]) {
  test(`truncated data: ETRUNCATED names the incomplete item (${gz ? 'gzip' : 'plain'})`, (t) => {
    const full = idxBytes('short', [3, 2], [1, 2, 3, 4, 5, 6]);
    const p = writeFile(dir, `trunc-${gz}.idx`, full.subarray(0, full.length - 3), gz);
    // header 12 bytes, items of 4 bytes: the file ends at byte 21, inside item 2
    expectDatasetError(t, () => loadIdx(p), 'ETRUNCATED', p, 'item 2', 'byte 21', '24 bytes');
  });
}

test('truncated header and empty file', (t) => {
  const p = writeFile(dir, 'head.idx', idxBytes('ubyte', [5, 5], []).subarray(0, 9));
  expectDatasetError(t, () => loadIdx(p), 'ETRUNCATED', p, 'header');
  const e = writeFile(dir, 'empty.idx', new Uint8Array(0));
  expectDatasetError(t, () => loadIdx(e), 'EEMPTY', e);
});

test('trailing bytes after the declared data: ESIZE', (t) => {
  const p = writeFile(dir, 'long.idx', Buffer.concat([idxBytes('ubyte', [2], [1, 2]), Buffer.from([9])]));
  expectDatasetError(t, () => loadIdx(p), 'ESIZE', p, '1 unexpected byte');
});

test('gzip that fails to inflate: EGZIP', (t) => {
  const good = zlib.gzipSync(idxBytes('ubyte', [100], new Array(100).fill(7)));
  const corrupt = Buffer.from(good);
  for (let i = 10; i < corrupt.length - 8; i++) corrupt[i] = corrupt[i]! ^ 0x5a;
  const p = writeFile(dir, 'corrupt.idx.gz', corrupt);
  expectDatasetError(t, () => loadIdx(p), 'EGZIP', p, 'inflate');
  const cut = writeFile(dir, 'cut.idx.gz', good.subarray(0, good.length - 12));
  expectDatasetError(t, () => loadIdx(cut), 'EGZIP', cut);
});

test('missing file: ENOENT', (t) => {
  const p = path.join(dir, 'nope.idx');
  expectDatasetError(t, () => loadIdx(p), 'ENOENT', p);
});

test('loadIdxDataset scales ubyte pixels by 1/255 and reads labels', (t) => {
  for (const gz of [false, true]) {
    const img = writeFile(dir, `ds-img-${gz}`, idxBytes('ubyte', [3, 2, 2], PIXELS), gz);
    const lab = writeFile(dir, `ds-lab-${gz}`, idxBytes('ubyte', [3], [4, 0, 2]), gz);
    const ds = loadIdxDataset(img, lab);
    t.is(ds.x.rows, 3);
    t.is(ds.x.cols, 4);
    t.deepEqual(
      Array.from(ds.x.data),
      PIXELS.map((v) => Math.fround(v / 255)),
    );
    t.deepEqual(Array.from(ds.y!), [4, 0, 2]);
    t.true(ds.y instanceof Int32Array);
    t.is(ds.classes, 5);
    const two = loadIdxDataset(img, lab, { limit: 2, scale: 1 });
    t.deepEqual(Array.from(two.x.data), PIXELS.slice(0, 8));
    t.deepEqual(Array.from(two.y!), [4, 0]);
  }
});

test('loadIdxDataset: label count ≠ image count is ESHAPE naming both files', (t) => {
  const img = writeFile(dir, 'cm-img', idxBytes('ubyte', [3, 2, 2], PIXELS));
  const lab = writeFile(dir, 'cm-lab', idxBytes('ubyte', [2], [1, 2]));
  expectDatasetError(t, () => loadIdxDataset(img, lab), 'ESHAPE', lab, '2 label(s)', '3 image(s)', 'cm-img');
  const lab2d = writeFile(dir, 'cm-lab2d', idxBytes('ubyte', [3, 1], [1, 2, 3]));
  expectDatasetError(t, () => loadIdxDataset(img, lab2d), 'ESHAPE', lab2d, '1-D');
  const labf = writeFile(dir, 'cm-labf', idxBytes('float', [3], [1, 2, 3]));
  expectDatasetError(t, () => loadIdxDataset(img, labf), 'ELABEL', labf, 'integer type');
  const labneg = writeFile(dir, 'cm-labneg', idxBytes('byte', [3], [1, -2, 3]));
  expectDatasetError(t, () => loadIdxDataset(img, labneg), 'ELABEL', labneg, 'label 1 is -2');
});

test('loadIdxDataset: float images keep their values; NaN is ENONFINITE', (t) => {
  const img = writeFile(dir, 'f-img', idxBytes('float', [2, 2], [0.5, -1, 2, 3]));
  t.deepEqual(Array.from(loadIdxDataset(img).x.data), [0.5, -1, 2, 3]);
  const nan = writeFile(dir, 'f-nan', idxBytes('float', [2, 2], [0.5, -1, Number.NaN, 3]));
  expectDatasetError(t, () => loadIdxDataset(nan), 'ENONFINITE', nan, 'item 1, element 0');
});
