/**
 * Sender identity under CURVE: a sender id is bound to the CURVE public key of its holder.
 *
 * A sender id is 16 bytes: the first 8 are the first 8 bytes of SHA-256(`dbn-sender/` ‖ raw
 * 32-byte public key), the last 8 are random per process (a restarted peer gets a fresh id and a
 * fresh sequence). A receiver knows the key of every connection a delta, heartbeat or snapshot
 * arrives on — it chose that server key when connecting, and the CURVE handshake proves the
 * other side holds it — and refuses a message whose sender id does not carry that key's prefix.
 * Speaking for another key means finding a 64-bit SHA-256 prefix of an allowlisted key
 * (a second preimage, about 2^64 hashes per attempt).
 */
import { createHash, randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../errors.js';
import { isZ85Key, z85Decode } from './z85.js';

/** Hex characters of a sender id that come from the key. */
export const KEY_PREFIX_HEX = 16;

/** The 32-byte key of a Z85 string; InvalidOptionError when it is not one. */
export function rawKey(key: string): Uint8Array {
  const raw = isZ85Key(key) ? z85Decode(key) : undefined;
  if (raw === undefined) throw new InvalidOptionError(`'${key}' is not a 40-character Z85 key.`);
  return raw;
}

/** The 16 hex characters every sender id of `publicKey` (Z85) starts with. */
export function keyPrefix(publicKey: string): string {
  return createHash('sha256').update('dbn-sender/').update(rawKey(publicKey)).digest('hex').slice(0, KEY_PREFIX_HEX);
}

/** A fresh sender id for the holder of `publicKey` (Z85): its key prefix and 8 random bytes. */
export function senderIdFor(publicKey: string): string {
  return keyPrefix(publicKey) + randomBytes(8).toString('hex');
}

/** True when `senderId` may speak for `publicKey`. */
export function senderMatchesKey(senderId: string, publicKey: string): boolean {
  return senderId.startsWith(keyPrefix(publicKey));
}

/**
 * Checks sender ids against connection keys, caching each key's prefix (the allowlist is
 * small; the cache holds one entry per key seen).
 */
export class KeyBinding {
  private readonly prefixes = new Map<string, string>();

  /** True when `senderId` may speak on a connection whose peer holds `publicKey`. */
  allows(senderId: string, publicKey: string): boolean {
    let prefix = this.prefixes.get(publicKey);
    if (prefix === undefined) {
      prefix = keyPrefix(publicKey);
      this.prefixes.set(publicKey, prefix);
    }
    return senderId.startsWith(prefix);
  }
}
