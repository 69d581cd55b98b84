/**
 * The backend registry: factories by name (serves `--backend`), and {@link defaultBackend}, which
 * picks `native` when its addon loads and `js` otherwise, and says which and why. Nothing here
 * loads an addon or starts a GPU until a factory is called.
 */
import { BackendUnavailableError, InvalidOptionError } from '../errors.js';
import type { Backend } from './backend.js';
import { createJsBackend } from './js/index.js';
import { createNativeBackend } from './native/index.js';
import { createGpuBackend } from './gpu/index.js';

/** Factories of every backend, by registry name. A factory throws {@link BackendUnavailableError} when it cannot start. */
export const backendFactories: ReadonlyMap<string, () => Backend> = new Map<string, () => Backend>([
  ['native', () => createNativeBackend()],
  ['js', () => createJsBackend()],
  ['gpu', () => createGpuBackend()],
]);

/** Creates the backend registered under `name`. */
export function createBackend(name: string): Backend {
  const factory = backendFactories.get(name);
  if (factory === undefined) {
    throw new InvalidOptionError(
      `Unknown backend '${name}'. Expected one of ${[...backendFactories.keys()].map((k) => `'${k}'`).join(', ')}.`,
    );
  }
  return factory();
}

/** The result of {@link defaultBackend}: the backend, and why it was chosen. */
export interface BackendChoice {
  readonly backend: Backend;
  /** e.g. `"native (OpenBLAS …)"` or `"js: native unavailable (…)"`. */
  readonly reason: string;
}

/** Native when its addon loads, else the portable js backend; reports the choice. */
export function defaultBackend(): BackendChoice {
  try {
    const backend = createNativeBackend();
    return { backend, reason: backend.info.description };
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    const backend = createJsBackend();
    return { backend, reason: `${backend.info.description}: native unavailable (${err.reason})` };
  }
}

export type { Backend, BackendInfo, GemmOptions, MomentumStepOptions, Tensor } from './backend.js';
