/**
 * The GPU drivers' own logging. Mesa, EGL and libwayland write to the process's stderr when they
 * probe for displays and devices (e.g. `error: XDG_RUNTIME_DIR is invalid or not set in the
 * environment.` from libwayland, printed once per Vulkan or EGL probe without a Wayland session),
 * which buries a program's own output and says nothing about dbn-node's choice of mode (that is in
 * `info.description`). {@link quietDriverLogs} sets the variables that silence them, only where
 * the user has not set them, before the first driver loads; `--debug` (or
 * `createGpuBackend({ driverLogs: true })`) leaves the environment as it is.
 *
 * Dawn (the `webgpu` package) prints its adapter warnings from native code with no switch to turn
 * them off; the CLI holds them back by relaying its own stderr (`src/cli/quiet-gpu.ts`,
 * `dawn-log.ts`), and so does `npm test`. A program using the library sees them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

let runtimeDir: string | undefined;

/**
 * Sets, in `env` (default `process.env`, which the drivers read), the variables that keep the
 * drivers quiet, each only when it is unset:
 * - `EGL_LOG_LEVEL=fatal` (Mesa's EGL warnings);
 * - `XDG_RUNTIME_DIR` to a private empty folder (mode 0700, removed at exit), so libwayland finds
 *   no Wayland socket there without complaining that the variable is missing.
 *
 * Returns the names it set. Calling it again changes nothing.
 */
export function quietDriverLogs(env: NodeJS.ProcessEnv = process.env): string[] {
  const set: string[] = [];
  if (env['EGL_LOG_LEVEL'] === undefined) {
    env['EGL_LOG_LEVEL'] = 'fatal';
    set.push('EGL_LOG_LEVEL');
  }
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg === undefined || !xdg.startsWith('/')) {
    env['XDG_RUNTIME_DIR'] = privateRuntimeDir();
    set.push('XDG_RUNTIME_DIR');
  }
  return set;
}

function privateRuntimeDir(): string {
  if (runtimeDir === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-node-runtime-'));
    fs.chmodSync(dir, 0o700);
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    runtimeDir = dir;
  }
  return runtimeDir;
}
