/**
 * dbn-node: deep belief networks (stacked restricted Boltzmann machines) for Node.js, with
 * BLAS/GPU kernels behind one backend interface, and serverless peer-to-peer training over
 * ZeroMQ. Importing this module starts no GPU, loads no native addon and opens no socket.
 *
 * @example
 * ```ts
 * import { Rbm, defaultBackend, loadBundledDigits } from 'dbn-node';
 * const { backend } = defaultBackend();
 * const digits = loadBundledDigits();
 * const rbm = new Rbm({ nVisible: 784, nHidden: 500, backend, seed: 1 });
 * await rbm.fit(digits.x, { epochs: 5 });
 * ```
 *
 * @module dbn-node
 */

// errors
export {
  BackendUnavailableError,
  DatasetError,
  DbnError,
  InvalidDataError,
  InvalidOptionError,
  ModelFileError,
  NotFittedError,
  ShapeMismatchError,
  SyncError,
  WireFormatError,
} from './errors.js';
export type { DatasetErrorCode, ModelFileErrorCode, WireFormatErrorCode } from './errors.js';
export { MissingPackageError, optionalPackages } from './optional.js';
export type { OptionalPackage, OptionalPackageName } from './optional.js';

// shared
export { Random } from './random.js';
export type { RandomSource } from './random.js';
export type { HostMatrix, MatrixInput } from './validate.js';

// kernels
export { backendFactories, createBackend, defaultBackend } from './kernels/index.js';
export type { Backend, BackendChoice, BackendInfo, GemmOptions, MomentumStepOptions, Tensor } from './kernels/index.js';
export type { CdGradientArgs, DeltaStepArgs, DeltaStepResult, RbmTensors, SparseSelectArgs } from './kernels/backend.js';
export { createJsBackend } from './kernels/js/index.js';
export type { JsBackendOptions } from './kernels/js/index.js';
export type { GemmKernelKind } from './kernels/js/gemm.js';
export { createNativeBackend } from './kernels/native/index.js';
export { createGpuBackend, gpuModes } from './kernels/gpu/index.js';
export type { GpuBackendOptions, GpuMode } from './kernels/gpu/index.js';

// models
export * from './rbm/index.js';
export { PLAN_STEP } from './rbm/collective.js';
export type { Collective, ResumePoint, RoundPosition } from './rbm/collective.js';
export {
  AssociativeMemory,
  DEFAULT_LABEL_STRENGTH,
  Dbn,
  averageLogLikelihood,
  baseRateBias,
  betaSchedule,
  estimateLogPartition,
} from './dbn/index.js';
export type { AssociativeOptions, AssociativeTrainOptions, ChainOptions, FeatureSamples, GenerateRequest } from './dbn/index.js';
export { AUTO_LABEL_STRENGTH, autoLabelStrength, chooseLabelStrength } from './dbn/index.js';
export type { AutoStrengthOptions, GenerativeStack, StrengthChoice } from './dbn/index.js';
export type {
  AisOptions,
  AisResult,
  CheckpointOptions,
  ClassifierGradients,
  ClassifierParameters,
  DbnOptions,
  DenseParameters,
  Evaluation,
  FineTuneBatchInfo,
  FineTuneMetrics,
  FineTuneOptions,
  FineTuneResult,
  GenerateOptions,
  HiddenActivation,
  LabelledData,
  LayerOptions,
  PretrainHistory,
  PretrainOptions,
  ResolvedDbnOptions,
} from './dbn/index.js';

// data
export * from './data/index.js';

// metrics
export * from './metrics/index.js';

// peer training: synchronous rounds over ZeroMQ (PeerGroup, enterRun), and the asynchronous mode
// (PeerTrainer). The wire formats, delta guard and fingerprint internals are in the
// 'dbn-node/sync' subpath (src/sync-entry.ts).
export { MAX_PEERS, PeerGroup, PeerTrainer, enterRun, modelBytes, runFingerprint } from './distributed/index.js';
export type {
  GroupEvent,
  GroupStats,
  JoinResult,
  PeerGroupOptions,
  PeerLink,
  PeerTrainingOptions,
  PeerTrainingReport,
  PeerTrainingStats,
  RunEntry,
  StartResult,
} from './distributed/index.js';
export type { AsyncMode, DeltaEncoding, LockstepMode, MergeRule } from './distributed/index.js';
export { hostKernelsFor, TypeScriptHostKernels } from './kernels/host/host-kernels.js';
export type { HostKernelFault, HostKernels } from './kernels/host/host-kernels.js';
export { REFUSAL_REASONS, RunStats, fingerprintDivergence, fingerprintOf } from './distributed/stats.js';
export type {
  DivergenceListener,
  EpochPoint,
  ParamFingerprint,
  PeerRecord,
  RefusalReason,
  SelfReport,
  Traffic,
} from './distributed/stats.js';
export { Peer, parseSeed } from './sync/index.js';
export type {
  PeerEvents,
  PeerInfo,
  PeerOptions,
  PeerStats,
  ReceivedSnapshot,
  Rejection,
  SenderStats,
  Snapshot,
  SnapshotProvider,
} from './sync/index.js';
export {
  PUBLIC_KEY_FILE,
  SECRET_KEY_FILE,
  generateKeyPair,
  modelFingerprint,
  publicKeyFromSecret,
  readAllowlist,
  readKeyPair,
  writeKeyPair,
} from './sync/index.js';
export type { KeyPair } from './sync/index.js';
export { ContributionGuard, HARD_ELEMENT_CAP, SUM, aggregateChunks, checkAggregation } from './distributed/index.js';
export type { AggregateRule, AggregationOptions, GuardOptions } from './distributed/index.js';
