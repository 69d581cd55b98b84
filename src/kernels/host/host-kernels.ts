/**
 * Host-array kernels that only peer training uses: one publication point over a parameter
 * tensor (`deltaStep`), the entries of a sparse delta (`sparseSelect`), and payload frames
 * (`frame`). They work on host copies of the parameters, not on backend tensors, so they sit
 * apart from {@link Backend}; a backend that has faster versions (native: C++ loops, F16C
 * conversion, recycled frames) overrides them through its optional `deltaStep`, `sparseSelect`
 * and `hostFrame` methods. Every implementation checks its arguments with the same functions
 * (`checks.ts`), so a fault raises the same error code on every backend.
 */
import type { Backend, DeltaStepArgs, DeltaStepResult, SparseSelectArgs } from '../backend.js';
import { checkFrameBytes } from './checks.js';
import { TypeScriptHostKernels } from './typescript.js';

/** The host-array kernels of peer training (see the module's documentation). */
export interface HostKernels {
  /** `'typescript'`, or the backend whose kernels override them (e.g. `'native'`). */
  readonly name: string;
  /** See {@link Backend.deltaStep} for the exact values it writes. */
  deltaStep(args: DeltaStepArgs): DeltaStepResult;
  /** See {@link Backend.sparseSelect} for the entries it selects. */
  sparseSelect(args: SparseSelectArgs): number;
  /** A host buffer of `bytes` uninitialized bytes, 4-byte aligned, to hand to a transport that keeps it. */
  frame(bytes: number): Buffer;
}

/**
 * The host kernels to use with `backend`: its own `deltaStep`, `sparseSelect` and `hostFrame`
 * where it has them, the TypeScript ones otherwise. `backend` undefined: TypeScript only.
 */
export function hostKernelsFor(backend?: Backend): HostKernels {
  const fallback = new TypeScriptHostKernels();
  if (backend === undefined) return fallback;
  const { deltaStep, sparseSelect, hostFrame } = backend;
  if (deltaStep === undefined && sparseSelect === undefined && hostFrame === undefined) return fallback;
  const name = backend.info.name;
  return {
    name,
    deltaStep: deltaStep === undefined ? (args) => fallback.deltaStep(args) : (args) => deltaStep.call(backend, args),
    sparseSelect: sparseSelect === undefined ? (args) => fallback.sparseSelect(args) : (args) => sparseSelect.call(backend, args),
    frame:
      hostFrame === undefined
        ? (bytes) => fallback.frame(bytes)
        : (bytes) => {
            checkFrameBytes(`${name}.frame`, bytes);
            return hostFrame.call(backend, bytes);
          },
  };
}

export { TypeScriptHostKernels } from './typescript.js';
export { checkDeltaStepArgs, checkSparseSelectArgs, hostKernelError, type HostKernelFault } from './checks.js';
