/**
 * The js backend's options read from the environment too: the thread count of its matrix products
 * (`JsBackendOptions.threads`: the option, else `DBN_JS_THREADS`, else `os.availableParallelism()`)
 * and its fused multiply-add (`JsBackendOptions.fma`: the option, else `DBN_JS_FMA`, else on).
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

/**
 * Whether the js backend's WebAssembly products use the fused multiply-add (`JsBackendOptions.fma`):
 * the option, else the `DBN_JS_FMA` environment variable (`1` or `0`), else yes.
 *
 * @throws {@link InvalidOptionError} when the option is not a boolean or the variable not `0`/`1`.
 */
export function resolveFma(option: unknown, env: string | undefined): boolean {
  if (option !== undefined) {
    if (typeof option !== 'boolean')
      throw new InvalidOptionError(`The 'fma' option of createJsBackend must be true or false. Got ${String(option)}.`);
    return option;
  }
  if (env !== undefined && env.trim() !== '') {
    if (env.trim() !== '0' && env.trim() !== '1') {
      throw new InvalidOptionError(`The DBN_JS_FMA environment variable must be 0 or 1. Got ${JSON.stringify(env)}.`);
    }
    return env.trim() === '1';
  }
  return true;
}
