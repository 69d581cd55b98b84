export { Rbm } from './rbm.js';
export type { BatchInfo, FitOptions, RbmParameters, SampleOptions } from './rbm.js';
export type { EpochMetrics, HiddenUnits, LearningRateSchedule, RbmOptions, ResolvedRbmOptions, VisibleUnits } from './options.js';
export { MODEL_FORMAT_VERSION, MODEL_FORMAT_VERSIONS_READ, MODEL_MAGIC, readModelFile, writeModelFile } from './model-file.js';
export type { ModelFile, ModelHeader, NamedTensor, WriteOptions } from './model-file.js';
