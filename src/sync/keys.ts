/**
 * CURVE key files, SSH style. A key directory holds:
 * - `curve.pub`: the public key, one line of 40 Z85 characters (share it freely);
 * - `curve.key`: the secret key, one line, mode 0600 (never share it).
 *
 * An allowlist is either a file with one public key per line, or a directory whose `*.pub`
 * files each hold one (e.g. every peer's `curve.pub` copied in under a distinct name). A key
 * line is a 40-character Z85 key optionally followed by whitespace and a comment; blank lines
 * and lines starting with `#` that are not keys are comments.
 *
 * Permissions (not on Windows), like OpenSSH: the key directory and `curve.key` must not be
 * readable or writable by group or others (a writable directory lets anyone replace `curve.key`
 * or add a `peers/*.pub`); an allowlist file, directory or `*.pub` in it must not be writable by
 * them. Each refusal is a {@link SyncError} `EKEYPERM` naming the path and the `chmod` that fixes it.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { SyncError } from '../errors.js';
import { isZ85Key, z85Decode, z85Encode } from './z85.js';

/** A CURVE key pair, both keys as 40-character Z85 strings. */
export interface KeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

/** File name of the public key inside a key directory. */
export const PUBLIC_KEY_FILE = 'curve.pub';
/** File name of the secret key inside a key directory. */
export const SECRET_KEY_FILE = 'curve.key';

/** A fresh CURVE key pair (libzmq's `zmq_curve_keypair`). */
export function generateKeyPair(): KeyPair {
  if (zmq.capability.curve !== true) throw new SyncError('This zeromq build has no CURVE support.', 'ECURVE');
  const { publicKey, secretKey } = zmq.curveKeyPair();
  return { publicKey, secretKey };
}

// PKCS#8 / SPKI DER prefixes of a raw X25519 key (RFC 8410); CURVE keys are X25519 keys.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The Z85 public key belonging to the Z85 secret key `secretKey`. */
export function publicKeyFromSecret(secretKey: string): string {
  const raw = isZ85Key(secretKey) ? z85Decode(secretKey) : undefined;
  if (raw === undefined) throw new SyncError('A CURVE secret key must be 40 Z85 characters.', 'EKEY');
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(spki.length - 32));
}

/** Throws {@link SyncError} `EKEY` unless `pair` holds two Z85 keys that belong together. */
export function checkKeyPair(pair: KeyPair, where: string): void {
  if (!isZ85Key(pair.publicKey) || !isZ85Key(pair.secretKey)) {
    throw new SyncError(`${where}: a CURVE key pair needs 'publicKey' and 'secretKey' of 40 Z85 characters each.`, 'EKEY');
  }
  if (publicKeyFromSecret(pair.secretKey) !== pair.publicKey) {
    throw new SyncError(`${where}: the public key does not belong to the secret key.`, 'EKEYMISMATCH');
  }
}

/**
 * Writes `pair` to `dir/curve.pub` and `dir/curve.key` (mode 0600), creating `dir` (mode 0700)
 * if needed. Each file is written to a temporary name, synced, then moved into place, so a
 * reader never sees half a key. Refuses (SyncError `EEXIST`) to replace an existing key unless
 * `force` is set, and (`EKEYPERM`) to write into an existing directory that group or others can
 * read or write.
 */
export async function writeKeyPair(dir: string, pair: KeyPair, opts: { readonly force?: boolean } = {}): Promise<void> {
  checkKeyPair(pair, 'writeKeyPair');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await checkPrivate(dir, 'key directory', '700');
  const force = opts.force === true;
  if (!force) {
    for (const f of [SECRET_KEY_FILE, PUBLIC_KEY_FILE]) {
      if (await exists(join(dir, f))) {
        throw new SyncError(`${join(dir, f)} already exists; pass force to replace the key pair.`, 'EEXIST');
      }
    }
  }
  await writeAtomic(join(dir, SECRET_KEY_FILE), `${pair.secretKey}\n`, 0o600, force);
  await writeAtomic(join(dir, PUBLIC_KEY_FILE), `${pair.publicKey}\n`, 0o644, force);
}

/**
 * Reads the key pair of `dir` and checks that the two keys belong together. Refuses a key
 * directory or a secret key file that group or others can read or write (SyncError `EKEYPERM`),
 * like OpenSSH.
 */
export async function readKeyPair(dir: string): Promise<KeyPair> {
  const secretPath = join(dir, SECRET_KEY_FILE);
  const publicPath = join(dir, PUBLIC_KEY_FILE);
  const secretKey = firstKey(await readText(secretPath), secretPath);
  const publicKey = firstKey(await readText(publicPath), publicPath);
  await checkPrivate(dir, 'key directory', '700');
  await checkPrivate(secretPath, 'secret key', '600');
  const pair = { publicKey, secretKey };
  checkKeyPair(pair, dir);
  return pair;
}

/**
 * Reads an allowlist of CURVE public keys: a file of key lines, or a directory whose `*.pub`
 * files are read in name order. Returns the distinct keys in order of appearance. Refuses
 * (`EKEYPERM`) an allowlist, or a `*.pub` in it, that group or others can write.
 */
export async function readAllowlist(path: string): Promise<string[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    throw new SyncError(`Cannot read the allowlist ${path}: ${(err as Error).message}`, 'ENOENT', { cause: err });
  }
  const keys: string[] = [];
  await checkNotWritable(path, isDir ? 'allowlist directory' : 'allowlist');
  if (isDir) {
    const names = (await readdir(path)).filter((n) => n.endsWith('.pub')).sort();
    for (const n of names) {
      await checkNotWritable(join(path, n), 'allowed public key');
      keys.push(...parseKeyLines(await readText(join(path, n)), join(path, n)));
    }
  } else {
    keys.push(...parseKeyLines(await readText(path), path));
  }
  return [...new Set(keys)];
}

/** Parses key lines (see the top of this file); `source` names the origin in errors. */
export function parseKeyLines(text: string, source: string): string[] {
  const keys: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    const token = trimmed.split(/\s+/, 1)[0]!;
    const shown = JSON.stringify(token.slice(0, 50));
    if (isZ85Key(token)) keys.push(token);
    else if (!trimmed.startsWith('#')) {
      throw new SyncError(`${source}:${i + 1}: expected a 40-character Z85 public key, got ${shown}.`, 'EKEY');
    }
  });
  return keys;
}

function firstKey(text: string, path: string): string {
  const keys = parseKeyLines(text, path);
  if (keys.length !== 1) throw new SyncError(`${path} must hold exactly one key, found ${keys.length}.`, 'EKEY');
  return keys[0]!;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EIO';
    throw new SyncError(`Cannot read ${path}: ${(err as Error).message}`, code, { cause: err });
  }
}

/** Throws `EKEYPERM` unless only the owner can read or write `path` (a no-op on Windows). */
async function checkPrivate(path: string, what: string, fix: '600' | '700'): Promise<void> {
  if (process.platform === 'win32') return;
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new SyncError(
      `${path}: the ${what} has mode 0${mode.toString(8)}, so group or others can read or write it; run chmod ${fix} ${path}`,
      'EKEYPERM',
    );
  }
}

/** Throws `EKEYPERM` if group or others can write `path` (a no-op on Windows). */
async function checkNotWritable(path: string, what: string): Promise<void> {
  if (process.platform === 'win32') return;
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o022) !== 0) {
    throw new SyncError(
      `${path}: the ${what} has mode 0${mode.toString(8)}, so group or others can change which keys are allowed; run chmod go-w ${path}`,
      'EKEYPERM',
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeAtomic(path: string, text: string, mode: number, overwrite: boolean): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, mode);
    if (overwrite) {
      await rename(tmp, path);
    } else {
      // link() fails if `path` exists, so a key written concurrently is never replaced.
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new SyncError(`${path} already exists; pass force to replace the key pair.`, 'EEXIST', { cause: err });
        }
        throw err;
      }
      await unlink(tmp);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
