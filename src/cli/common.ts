/** Option groups and helpers shared by the CLI commands. */
import * as fs from 'node:fs';
import type { Argv } from 'yargs';
import { InvalidOptionError } from '../errors.js';
import type { Backend } from '../kernels/backend.js';
import { createGpuBackend } from '../kernels/gpu/index.js';
import { createBackend, defaultBackend } from '../kernels/index.js';

/** Flags every command has. */
export interface GlobalArgs {
  readonly debug: boolean;
  readonly quiet: boolean;
}

/** Flags of the compute group. */
export interface ComputeArgs {
  readonly backend: string;
  readonly seed: number;
}

/** Adds `--backend` and `--seed`. */
export function computeOptions<T>(y: Argv<T>): Argv<T & ComputeArgs> {
  return y
    .option('backend', {
      type: 'string',
      default: 'auto',
      describe:
        "'auto' (native when its BLAS addon loads, else js), 'native', 'js', 'gpu' or 'gpu:<mode>' (gpu, headlessgl, webgpu, webasm, cpu)",
      group: 'Compute:',
    })
    .option('seed', {
      type: 'number',
      default: 1,
      describe: 'seed of every random choice (same seed + same backend → same bits)',
      group: 'Compute:',
    }) as unknown as Argv<T & ComputeArgs>;
}

/** Creates the backend a `--backend` value names, and a line saying what runs; `debug` lets the GPU drivers log. */
export async function openBackend(name: string, debug = false): Promise<{ backend: Backend; line: string }> {
  let backend: Backend;
  let line: string;
  if (name === 'auto') {
    const c = defaultBackend();
    backend = c.backend;
    line = c.reason;
  } else if (name === 'gpu' || name.startsWith('gpu:')) {
    const mode = name === 'gpu' ? 'auto' : name.slice(4);
    const modes = ['auto', 'gpu', 'headlessgl', 'webgpu', 'webasm', 'cpu'];
    if (!modes.includes(mode)) throw new InvalidOptionError(`--backend gpu:<mode> takes one of ${modes.join(', ')}; got '${mode}'.`);
    backend = createGpuBackend({ mode: mode as 'auto', driverLogs: debug });
    line = backend.info.description;
  } else {
    backend = createBackend(name);
    line = backend.info.description;
  }
  await backend.ready();
  return { backend, line: `backend: ${line}` };
}

/** Checks `--seed`. */
export function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidOptionError(`--seed must be an integer >= 0, got ${seed}.`);
}

/** Parses a positive-integer list like "500,500". */
export function parseIntList(flag: string, text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const out = parts.map(Number);
  if (parts.length === 0 || out.some((v) => !Number.isSafeInteger(v) || v < 1)) {
    throw new InvalidOptionError(`${flag} must be a comma-separated list of positive integers (e.g. 500,500), got '${text}'.`);
  }
  return out;
}

/** Throws unless `file` exists and is a file. */
export function requireFile(flag: string, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new InvalidOptionError(`${flag}: no such file '${file}'.`);
  }
  if (!st.isFile()) throw new InvalidOptionError(`${flag}: '${file}' is not a file.`);
}

/** Throws unless `file` may be written: absent, or `force`. */
export function checkWritable(flag: string, file: string, force: boolean): void {
  if (!force && fs.existsSync(file)) throw new InvalidOptionError(`${flag}: '${file}' exists; pass --force to overwrite it.`);
}

/** The side of a square image with `n` pixels, if `n` is a perfect square. */
export function squareSide(n: number): number | undefined {
  const s = Math.round(Math.sqrt(n));
  return s * s === n ? s : undefined;
}

/**
 * Reads a `--config` file: JSON only (an object of options). Anything else — YAML, JavaScript,
 * a JSON array — is refused with an {@link InvalidOptionError} naming the file, never evaluated.
 */
export function parseJsonConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidOptionError(`--config: cannot read '${file}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new InvalidOptionError(
      `--config: '${file}' is not JSON (${(err as Error).message.replace(/\s+/g, ' ')}); --config takes a JSON object of options, e.g. {"layers": "64,32", "epochs": 10}.`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(
      `--config: '${file}' holds ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}; --config takes a JSON object of options.`,
    );
  }
  return value as Record<string, unknown>;
}

/** The `version` field of the package's own package.json (two levels above both src/cli and dist/cli). */
export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
