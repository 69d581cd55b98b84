/**
 * The model fingerprint peers compare before accepting each other's deltas.
 */
import { createHash } from 'node:crypto';

/**
 * SHA-256 (64 lowercase hex) of a canonical JSON form of `architecture` (object keys sorted),
 * e.g. `modelFingerprint({ layers: [784, 500, 250], visible: 'bernoulli' })`. Two peers get
 * the same fingerprint exactly when their descriptions are equal as JSON values.
 */
export function modelFingerprint(architecture: unknown): string {
  return createHash('sha256').update(canonical(architecture)).digest('hex');
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
