import test from 'ava';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { classCounts, loadBundledDigits } from '../../src/data/index.js';

test('the bundled digits: 10,000 real MNIST images with plausible statistics', (t) => {
  const ds = loadBundledDigits();
  t.is(ds.x.rows, 10000);
  t.is(ds.x.cols, 784);
  t.is(ds.classes, 10);
  let sum = 0;
  let outside = 0;
  let offGrid = 0;
  for (const v of ds.x.data) {
    sum += v;
    if (!(v >= 0 && v <= 1)) outside++;
    if (Math.fround(Math.round(v * 255) / 255) !== v) offGrid++;
  }
  t.is(outside, 0);
  t.is(offGrid, 0, 'every pixel is k/255');
  const mean = sum / ds.x.data.length;
  t.true(mean >= 0.1 && mean <= 0.15, `mean pixel ${mean}`);
  const counts = classCounts(ds.y as Int32Array, 10);
  t.is(
    counts.reduce((a, b) => a + b, 0),
    10000,
  );
  for (const [d, c] of counts.entries()) t.true(c >= 800, `digit ${d}: ${c} images`);
});

test('the bundled digits come in a fixed round-robin order and match the package files', (t) => {
  const ds = loadBundledDigits();
  for (let i = 0; i < 8630; i++) if (ds.y![i] !== i % 10) return t.fail(`row ${i} has label ${ds.y![i]}`);
  // row 13 is the second image of digit 3 in the package's own file
  const dir = path.dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  const three = (JSON.parse(fs.readFileSync(path.join(dir, 'src', 'digits', '3.json'), 'utf8')) as { data: number[] }).data;
  let maxDiff = 0;
  for (let j = 0; j < 784; j++) maxDiff = Math.max(maxDiff, Math.abs(ds.x.data[13 * 784 + j]! - three[784 + j]!));
  t.true(maxDiff <= 0.0005 + 1e-7, `max difference ${maxDiff}`);
  t.true(
    ds.x.data.subarray(13 * 784, 14 * 784).some((v) => v > 0.5),
    'the image has ink',
  );
  return undefined;
});

test('every call returns a fresh copy of the cached digits', (t) => {
  const a = loadBundledDigits();
  const first = a.x.data[300]!;
  a.x.data[300] = 42;
  a.y![0] = 7;
  const b = loadBundledDigits();
  t.is(b.x.data[300], first);
  t.is(b.y![0], 0);
});
