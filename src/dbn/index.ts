export { Dbn } from './dbn.js';
export type { ClassifierGradients, ClassifierParameters, PretrainHistory } from './dbn.js';
export type {
  CheckpointOptions,
  DbnOptions,
  Evaluation,
  FineTuneBatchInfo,
  FineTuneMetrics,
  FineTuneOptions,
  FineTuneResult,
  GenerateOptions,
  LabelledData,
  LayerOptions,
  PretrainOptions,
  ResolvedDbnOptions,
} from './options.js';
export type { DenseParameters, HiddenActivation } from './network.js';
export { averageLogLikelihood, baseRateBias, betaSchedule, estimateLogPartition } from './ais.js';
export type { AisOptions, AisResult } from './ais.js';
export { AssociativeMemory } from './associative.js';
export type { AssociativeOptions, ChainOptions, FeatureSamples } from './associative.js';
export type { AssociativeTrainOptions } from './associative-train.js';
export { associativeLogLikelihood, estimateAssociativeLogPartition } from './associative-ais.js';
export type { AssociativeAisResult } from './associative-ais.js';
export type { GenerateRequest, GenerativeStack } from './generate.js';
export { autoLabelStrength, DEFAULT_LABEL_STRENGTH } from './generate.js';
export { AUTO_LABEL_STRENGTH, chooseLabelStrength } from './label-strength.js';
export type { AutoStrengthOptions, StrengthChoice } from './label-strength.js';
export type { Collective, RoundPosition, ResumePoint } from '../rbm/collective.js';
