/**
 * Argument checks of the host-array kernels ({@link HostKernels}), shared by every
 * implementation (TypeScript here, the native addon's wrapper), so that each fault is one error
 * with one `code` whatever backend runs: a caller can rely on the code, not on the backend.
 */
import { ShapeMismatchError } from '../../errors.js';
import type { DeltaStepArgs, SparseSelectArgs } from '../backend.js';

/**
 * The `code` of the {@link ShapeMismatchError} each fault of a host kernel's arguments raises:
 * - `'EHOSTLENGTH'`: an array's length is not the length of `cur`;
 * - `'EHOSTOUTPUT'`: not exactly one of `delta` and `half` was given to `deltaStep`;
 * - `'EHOSTSHARE'`: `share` is not in (0, 1];
 * - `'EHOSTFRACTION'`: `fraction` is not in (0, 1);
 * - `'EHOSTCAPACITY'`: `indices` or `values` cannot hold `cur.length` entries;
 * - `'EHOSTSAMPLE'`: `sample` is empty while `cur` is not;
 * - `'EHOSTBYTES'`: a frame size that is not an integer from 0 to 2^32.
 */
export type HostKernelFault =
  | 'EHOSTLENGTH'
  | 'EHOSTOUTPUT'
  | 'EHOSTSHARE'
  | 'EHOSTFRACTION'
  | 'EHOSTCAPACITY'
  | 'EHOSTSAMPLE'
  | 'EHOSTBYTES';

/** A {@link ShapeMismatchError} whose `code` names the fault (see {@link HostKernelFault}). */
export function hostKernelError(fault: HostKernelFault, message: string): ShapeMismatchError {
  return new ShapeMismatchError(message, fault);
}

function expectLength(op: string, name: string, array: { readonly length: number }, n: number): void {
  if (array.length !== n)
    throw hostKernelError(
      'EHOSTLENGTH',
      `Argument '${name}' passed to '${op}' must have ${n} elements (the length of 'cur'), got ${array.length}.`,
    );
}

/** Throws the fault of `args` for `op` (e.g. `'native.deltaStep'`), if any. */
export function checkDeltaStepArgs(op: string, args: DeltaStepArgs): void {
  const n = args.cur.length;
  if ((args.delta === undefined) === (args.half === undefined)) {
    throw hostKernelError('EHOSTOUTPUT', `Exactly one of 'delta' and 'half' must be passed to '${op}'.`);
  }
  if (!(args.share > 0 && args.share <= 1))
    throw hostKernelError('EHOSTSHARE', `Argument 'share' passed to '${op}' must be in (0, 1], got ${args.share}.`);
  expectLength(op, 'base', args.base, n);
  expectLength(op, 'baseNext', args.baseNext, n);
  expectLength(op, 'curNext', args.curNext, n);
  if (args.delta !== undefined) expectLength(op, 'delta', args.delta, n);
  if (args.half !== undefined) expectLength(op, 'half', args.half, n);
  const remote = args.remote ?? [];
  for (let j = 0; j < remote.length; j++) expectLength(op, `remote[${j}]`, remote[j]!, n);
}

/** Throws the fault of `args` for `op` (e.g. `'native.sparseSelect'`), if any. */
export function checkSparseSelectArgs(op: string, args: SparseSelectArgs): void {
  const n = args.cur.length;
  if (!(args.fraction > 0 && args.fraction < 1))
    throw hostKernelError('EHOSTFRACTION', `Argument 'fraction' passed to '${op}' must be in (0, 1), got ${args.fraction}.`);
  if (!(args.share > 0 && args.share <= 1))
    throw hostKernelError('EHOSTSHARE', `Argument 'share' passed to '${op}' must be in (0, 1], got ${args.share}.`);
  expectLength(op, 'base', args.base, n);
  if (args.indices.length < n || args.values.length < n) {
    throw hostKernelError(
      'EHOSTCAPACITY',
      `Arguments 'indices' and 'values' passed to '${op}' need room for ${n} entries, got ${args.indices.length} and ${args.values.length}.`,
    );
  }
  if (n > 0 && args.sample.length === 0) throw hostKernelError('EHOSTSAMPLE', `Argument 'sample' passed to '${op}' must not be empty.`);
}

/** Throws unless `bytes` is a frame size a host kernel can allocate. */
export function checkFrameBytes(op: string, bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > 2 ** 32)
    throw hostKernelError('EHOSTBYTES', `Argument 'bytes' passed to '${op}' must be an integer from 0 to 2^32, got ${bytes}.`);
}
