/** Number flags of the fraud example's commands (`main.ts`, `bank.ts`), each refused with an InvalidOptionError naming the flag. */
import { InvalidOptionError } from '../../src/index.js';

/** `--name v` as a finite number ≥ 0. */
export function nonNegative(name: string, v: string): number {
  const n = Number(v);
  if (!(n >= 0 && Number.isFinite(n)) || v.trim() === '') throw new InvalidOptionError(`--${name} must be a number >= 0, got '${v}'.`);
  return n;
}

/** `--name v` as an integer ≥ `min`, or `undefined` when the flag is absent. */
export function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidOptionError(`--${name} must be an integer >= ${min}, got '${v}'.`);
  return n;
}
