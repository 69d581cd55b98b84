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
export { PeerTrainer, sameSequences } from './peer-training.js';
export type { JoinResult, PeerLink, PeerTrainingOptions, PeerTrainingReport, PeerTrainingStats } from './peer-training.js';
export { DeltaGuard } from './delta-guard.js';
export type { DeltaGuardOptions, DeltaKind, DeltaRejection, GuardVerdict, TensorShape } from './delta-guard.js';
export { FINGERPRINT_FORMAT, encodeFingerprint, fingerprintDivergence, readFingerprintHeader, sampleIndices, samplesPerGroup } from './peer-fingerprint.js';
export { AssociativeMemory } from './associative.js';
export type { AssociativeOptions, ChainOptions, FeatureSamples } from './associative.js';
export type { AssociativeTrainOptions } from './associative-train.js';
export { associativeLogLikelihood, estimateAssociativeLogPartition } from './associative-ais.js';
export type { AssociativeAisResult } from './associative-ais.js';
export type { GenerateRequest } from './generate.js';
