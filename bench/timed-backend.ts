/** Every call of a backend timed, for the profiles (`bench/cd1-profile.ts`, `bench/dbn-profile.ts`). */
import type { Backend } from '../src/kernels/backend.js';

/** Milliseconds and calls per key. */
export type KernelTimes = Map<string, { ms: number; calls: number }>;

/**
 * Wraps every method of `backend` (in place) so that each call adds its wall time to the returned
 * map under `key(name, args)`. A method that calls another is timed once, as itself.
 */
export function timeBackendCalls(backend: Backend, key: (name: string, args: unknown[]) => string): KernelTimes {
  const spent: KernelTimes = new Map();
  const timed = backend as unknown as Record<string, unknown>;
  let depth = 0;
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(backend))) {
    const f = timed[name];
    if (name === 'constructor' || typeof f !== 'function') continue;
    timed[name] = (...args: unknown[]): unknown => {
      if (depth > 0) return (f as (...x: unknown[]) => unknown).apply(backend, args);
      const t0 = performance.now();
      depth++;
      let r: unknown;
      try {
        r = (f as (...x: unknown[]) => unknown).apply(backend, args);
      } finally {
        depth--;
      }
      const k = key(name, args);
      const s = spent.get(k) ?? { ms: 0, calls: 0 };
      s.ms += performance.now() - t0;
      s.calls++;
      spent.set(k, s);
      return r;
    };
  }
  return spent;
}

/** The kernels by time spent, largest first, and the milliseconds inside backend calls in all. */
export function kernelTable(spent: KernelTimes): { kernels: { kernel: string; ms: number; calls: number }[]; insideMs: number } {
  const kernels = [...spent].sort((x, y) => y[1].ms - x[1].ms).map(([k, v]) => ({ kernel: k, ms: v.ms, calls: v.calls }));
  return { kernels, insideMs: kernels.reduce((s, k) => s + k.ms, 0) };
}
