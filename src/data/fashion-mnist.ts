/** Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from the IDX files of the Debian package `dataset-fashion-mnist`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatasetError } from '../errors.js';
import { validateOptions } from '../validate.js';
import type { Dataset } from './dataset.js';
import { loadIdxDataset } from './idx.js';

/** Where `apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The standard file names of Fashion-MNIST (the same as MNIST's). */
export const FASHION_MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

/** The names of the 10 Fashion-MNIST classes, by label. */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Finds `name` (or the same name without `.gz`) in `dir`. */
function locate(dir: string, name: string): string {
  for (const candidate of [name, name.replace(/\.gz$/, '')]) {
    const p = path.join(dir, candidate);
    if (fs.existsSync(p)) return p;
  }
  throw new DatasetError(
    `${path.join(dir, name)}: no such file; Fashion-MNIST is expected in ${dir} (the Debian package dataset-fashion-mnist provides it: apt-get install dataset-fashion-mnist).`,
    'ENOENT',
    path.join(dir, name),
  );
}

/**
 * Loads Fashion-MNIST: `train` (60,000 rows) and `test` (10,000 rows), each with `x` of shape
 * `[rows, 784]` (28×28 pixels scaled to [0, 1]) and labels `0 … 9` (see
 * {@link FASHION_MNIST_CLASS_NAMES}). Plain (un-gzipped) files are used when the `.gz` ones are absent.
 * With `limit`, only the first `limit` rows of each part are read.
 *
 * Throws {@link DatasetError} `'ENOENT'` naming the missing file and the Debian package that provides it.
 */
export function loadFashionMnist(
  dir: string = FASHION_MNIST_DIR,
  options: { readonly limit?: number } = {},
): { train: Dataset; test: Dataset } {
  validateOptions('loadFashionMnist', { limit: { kind: 'integer', min: 0 } }, options);
  const f = FASHION_MNIST_FILES;
  const files = [f.trainImages, f.trainLabels, f.testImages, f.testLabels].map((n) => locate(dir, n));
  const opts = options.limit !== undefined ? { limit: options.limit } : {};
  const load = (images: string, labels: string, part: string): Dataset => {
    const ds = loadIdxDataset(images, labels, opts);
    return { ...ds, classes: 10, source: `fashion-mnist ${part} (${images})` };
  };
  return {
    train: load(files[0]!, files[1]!, 'train'),
    test: load(files[2]!, files[3]!, 'test'),
  };
}
