import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FASHION_MNIST_DIR, FASHION_MNIST_FILES, loadFashionMnist, readIdxHeader } from '../../src/data/index.js';
import { DatasetError } from '../../src/errors.js';

const present = Object.values(FASHION_MNIST_FILES).every((f) => fs.existsSync(path.join(FASHION_MNIST_DIR, f)));
if (!present)
  console.log(`Skipping the Fashion-MNIST file tests: no files in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist).`);
const withFiles = present ? test : test.skip;

withFiles('Fashion-MNIST headers declare 60,000 + 10,000 images of 28×28', (t) => {
  const h = (f: string): number[] => readIdxHeader(path.join(FASHION_MNIST_DIR, f)).shape;
  t.deepEqual(h(FASHION_MNIST_FILES.trainImages), [60000, 28, 28]);
  t.deepEqual(h(FASHION_MNIST_FILES.trainLabels), [60000]);
  t.deepEqual(h(FASHION_MNIST_FILES.testImages), [10000, 28, 28]);
  t.deepEqual(h(FASHION_MNIST_FILES.testLabels), [10000]);
});

withFiles('the first Fashion-MNIST items load with their published labels', (t) => {
  const { train, test: testPart } = loadFashionMnist(FASHION_MNIST_DIR, { limit: 10 });
  t.is(train.x.rows, 10);
  t.is(train.x.cols, 784);
  t.is(train.classes, 10);
  t.deepEqual(Array.from(train.y!), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  t.deepEqual(Array.from(testPart.y!), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  t.true(train.x.data.every((v) => v >= 0 && v <= 1));
  t.true(train.x.data.some((v) => v === 1) && train.x.data.some((v) => v === 0));
});

test('a missing Fashion-MNIST directory names the Debian package', (t) => {
  const err = t.throws(() => loadFashionMnist('/nonexistent/fashion'), { instanceOf: DatasetError });
  t.is(err?.code, 'ENOENT');
  t.true(err?.message.includes('/nonexistent/fashion/train-images-idx3-ubyte.gz'));
  t.true(err?.message.includes('apt-get install dataset-fashion-mnist'));
});
