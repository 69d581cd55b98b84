/** Datasets: loaders (IDX, CSV, bundled MNIST digits, Fashion-MNIST), scaling, splits and shards. */
export type { Dataset } from './dataset.js';
export { checkDataset, classCounts, oneHot, sliceDataset, subset, take } from './dataset.js';
export type { IdxArray, IdxDatasetOptions, IdxHeader, IdxType } from './idx.js';
export { loadIdx, loadIdxDataset, readIdxHeader } from './idx.js';
export { FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_DIR, FASHION_MNIST_FILES, loadFashionMnist } from './fashion-mnist.js';
export { DIGIT_PIXELS, loadBundledDigits } from './bundled-digits.js';
export type { CsvDataset, CsvOptions } from './csv.js';
export { loadCsv, parseCsv } from './csv.js';
export type { MinMaxScalerJson, MinMaxScalerOptions, StandardizerJson } from './scalers.js';
export { MinMaxScaler, Standardizer } from './scalers.js';
export type { ShardMode, SplitOptions } from './split.js';
export { shard, timeOrderedSplit, trainTestSplit } from './split.js';
export type { LabelsLike, MatrixLike, NdArrayLike, NumericArray, RowsColsMatrix, ShapedArray } from './matrix.js';
export { toLabels, toMatrix } from './matrix.js';
