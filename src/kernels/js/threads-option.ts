/**
 * The thread count of the js backend's matrix products (`JsBackendOptions.threads`): the option,
 * else the `DBN_JS_THREADS` environment variable, else `os.availableParallelism()`.
 */
import { availableParallelism } from 'node:os';
import { InvalidOptionError } from '../../errors.js';

/** Upper bound on the count, far above any core count, so a typo cannot start thousands of workers. */
const MAX_THREADS = 256;

/**
 * @param option - `JsBackendOptions.threads`, if given.
 * @param env - the `DBN_JS_THREADS` environment variable, if set.
 * @throws {@link InvalidOptionError} when either is not an integer in [1, 256].
 */
export function resolveThreads(option: number | undefined, env: string | undefined): number {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 1 || option > MAX_THREADS) {
      throw new InvalidOptionError(
        `The 'threads' option of createJsBackend must be an integer in [1, ${MAX_THREADS}]. Got ${String(option)}.`,
      );
    }
    return option;
  }
  if (env !== undefined && env.trim() !== '') {
    const value = Number(env);
    if (!/^\s*\d+\s*$/.test(env) || value < 1 || value > MAX_THREADS) {
      throw new InvalidOptionError(
        `The DBN_JS_THREADS environment variable must be an integer in [1, ${MAX_THREADS}]. Got ${JSON.stringify(env)}.`,
      );
    }
    return value;
  }
  return Math.min(MAX_THREADS, availableParallelism());
}
