/**
 * IEEE binary16 conversions used by the wire format. They live in `src/float16.ts`, shared with the
 * host kernels (`src/kernels/host/`), so that neither `sync` nor `kernels` imports the other.
 */
export * from '../float16.js';
