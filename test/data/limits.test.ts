import test from 'ava';
import * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import zlibCjs, * as zlib from 'node:zlib';
import { loadIdx, loadIdxDataset, parseCsv, readIdxHeader } from '../../src/data/index.js';
import { MAX_CLASSES } from '../../src/data/limits.js';
import { DatasetError } from '../../src/errors.js';
import { idxBytes, tempDir, writeFile } from './idx-writer.js';

const dir = tempDir();
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `fn` while recording the length of every buffer `zlib.gunzipSync` returns. */
function inflatedSizes(fn: () => void): number[] {
  const real = zlibCjs.gunzipSync;
  const sizes: number[] = [];
  zlibCjs.gunzipSync = ((buf: zlib.InputType, opts?: zlib.ZlibOptions) => {
    const out = real(buf, opts);
    sizes.push(out.length);
    return out;
  }) as typeof zlib.gunzipSync;
  syncBuiltinESMExports();
  try {
    fn();
  } finally {
    zlibCjs.gunzipSync = real;
    syncBuiltinESMExports();
  }
  return sizes;
}

test.serial('a small .gz declaring 16 data bytes is refused without inflating what follows', (t) => {
  const declared = idxBytes('ubyte', [16], new Array<number>(16).fill(7));
  const bomb = zlib.gzipSync(Buffer.concat([declared, Buffer.alloc(64 << 20)]), { level: 9 });
  t.true(bomb.length < 128 << 10, `the bomb is ${bomb.length} bytes compressed`);
  const p = writeFile(dir, 'bomb.idx.gz', bomb);
  for (const opts of [{}, { limit: 4 }]) {
    let err: DatasetError | undefined;
    const sizes = inflatedSizes(() => {
      err = t.throws(() => loadIdx(p, opts), { instanceOf: DatasetError });
    });
    if (Object.keys(opts).length === 0) {
      t.is(err?.code, 'ESIZE');
      t.regex(err?.message ?? '', /inflates to more than the 24 bytes its header declares \(shape \[16\] of ubyte\); stopped after 25/);
    }
    t.true(Math.max(0, ...sizes) <= 1 << 20, `largest inflated buffer: ${Math.max(0, ...sizes)} bytes`);
  }
  const sizes = inflatedSizes(() => t.deepEqual(readIdxHeader(p).shape, [16]));
  t.true(Math.max(0, ...sizes) <= 1 << 20);
});

test('a gzip file holding exactly what it declares still loads, with or without limit', (t) => {
  const values = Array.from({ length: 6 * 5 }, (_, i) => i % 256);
  const p = writeFile(dir, 'ok.idx.gz', idxBytes('ubyte', [6, 5], values), true);
  t.deepEqual(Array.from(loadIdx(p).data), values);
  t.deepEqual(Array.from(loadIdx(p, { limit: 2 }).data), values.slice(0, 10));
  const extra = writeFile(dir, 'extra.idx.gz', Buffer.concat([idxBytes('ubyte', [6, 5], values), Buffer.alloc(3)]), true);
  t.throws(() => loadIdx(extra), { instanceOf: DatasetError, code: 'ESIZE' });
});

test('a dimension of 0 is refused, plain or gzip', (t) => {
  for (const gz of [false, true]) {
    for (const shape of [[5, 0], [0, 28, 28], [0]]) {
      const p = writeFile(dir, `zero-${shape.join('x')}-${gz}.idx`, idxBytes('ubyte', shape, []), gz);
      const err = t.throws(() => loadIdx(p), { instanceOf: DatasetError });
      t.is(err?.code, 'ESHAPE');
      t.regex(err?.message ?? '', new RegExp(`dimension ${shape.indexOf(0)} of shape \\[${shape.join(', ')}\\] is 0`));
      t.throws(() => readIdxHeader(p), { instanceOf: DatasetError, code: 'ESHAPE' });
    }
  }
});

test(`labels are capped at MAX_CLASSES (${MAX_CLASSES})`, (t) => {
  const img = writeFile(dir, 'img.idx', idxBytes('ubyte', [2, 1], [0, 255]));
  const huge = writeFile(dir, 'huge.idx', idxBytes('int', [2], [0, 2 ** 31 - 1]));
  const err = t.throws(() => loadIdxDataset(img, huge), { instanceOf: DatasetError });
  t.is(err?.code, 'ELABEL');
  t.regex(err?.message ?? '', /label 1 is 2147483647; expected a class index in \[0, 65536\) \(MAX_CLASSES\)/);
  t.throws(() => loadIdxDataset(img, writeFile(dir, 'cap.idx', idxBytes('int', [2], [0, MAX_CLASSES]))), {
    instanceOf: DatasetError,
    code: 'ELABEL',
  });
  const top = loadIdxDataset(img, writeFile(dir, 'top.idx', idxBytes('int', [2], [0, MAX_CLASSES - 1])));
  t.is(top.classes, MAX_CLASSES);
});

test(`CSV class labels are capped at MAX_CLASSES (${MAX_CLASSES})`, (t) => {
  const err = t.throws(() => parseCsv('a,y\n1,0\n2,2147483647\n', 'huge.csv', { label: 'y' }), { instanceOf: DatasetError });
  t.is(err?.code, 'ELABEL');
  t.regex(err?.message ?? '', /huge\.csv: line 3, column 'y': expected a class label below 65536 \(MAX_CLASSES\), got '2147483647'/);
  t.throws(() => parseCsv(`a,y\n1,${MAX_CLASSES}\n`, 'cap.csv', { label: 'y' }), { instanceOf: DatasetError, code: 'ELABEL' });
  t.is(parseCsv(`a,y\n1,0\n2,${MAX_CLASSES - 1}\n`, 'top.csv', { label: 'y' }).classes, MAX_CLASSES);
});

test(`CSV category labels are capped at MAX_CLASSES (${MAX_CLASSES}) too`, (t) => {
  const big = t.throws(() => parseCsv('a,y\n1,0\n2,999999999\n', 'cat.csv', { label: 'y', labelType: 'category' }), {
    instanceOf: DatasetError,
  });
  t.is(big?.code, 'ELABEL');
  t.regex(big?.message ?? '', /cat\.csv: column 'y' names 1000000000 classes; at most 65536 \(MAX_CLASSES\)/);
  const rows = Array.from({ length: MAX_CLASSES + 1 }, (_, i) => `${i},c${i}`).join('\n');
  t.throws(() => parseCsv(`a,y\n${rows}\n`, 'names.csv', { label: 'y', labelType: 'category' }), {
    instanceOf: DatasetError,
    code: 'ELABEL',
    message: /names 65537 classes/,
  });
  t.is(parseCsv('a,y\n1,cat\n2,dog\n', 'ok.csv', { label: 'y', labelType: 'category' }).classes, 2);
});
