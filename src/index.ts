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

// shared
export { Random } from './random.js';
export type { RandomSource } from './random.js';
export type { HostMatrix, MatrixInput } from './validate.js';

// kernels
export { backendFactories, createBackend, defaultBackend } from './kernels/index.js';
export type { Backend, BackendChoice, BackendInfo, GemmOptions, MomentumStepOptions, Tensor } from './kernels/index.js';
export { createJsBackend } from './kernels/js/index.js';
export { createNativeBackend } from './kernels/native/index.js';
export { createGpuBackend, gpuModes } from './kernels/gpu/index.js';
export type { GpuBackendOptions, GpuMode } from './kernels/gpu/index.js';

// models
export * from './rbm/index.js';
export * from './dbn/index.js';

// data
export * from './data/index.js';

// metrics
export * from './metrics/index.js';

// peer-to-peer sync
export * from './sync/index.js';

// peer training (synchronous rounds over ZeroMQ; the asynchronous mode)
export * from './distributed/index.js';
