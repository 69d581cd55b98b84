/** The CPU backends that start on this machine, for tests that run once per backend. */
import { BackendUnavailableError } from '../../src/errors.js';
import type { Backend } from '../../src/kernels/backend.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { createNativeBackend } from '../../src/kernels/native/index.js';

export interface NamedBackend {
  readonly name: string;
  readonly make: () => Backend;
}

const candidates: NamedBackend[] = [
  { name: 'js', make: createJsBackend },
  { name: 'native', make: createNativeBackend },
];

/** Backends that start here; the others are listed with the reason in `unavailable`. */
export const cpuBackends: NamedBackend[] = [];
export const unavailable: { name: string; reason: string }[] = [];
for (const c of candidates) {
  try {
    c.make().dispose();
    cpuBackends.push(c);
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    unavailable.push({ name: c.name, reason: err.reason });
  }
}
