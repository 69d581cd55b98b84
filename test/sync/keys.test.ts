import anyTest from 'ava';
import type { TestFn } from 'ava';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SyncError } from '../../src/errors.js';
import { modelFingerprint } from '../../src/sync/fingerprint.js';
import { generateKeyPair, publicKeyFromSecret, readAllowlist, readKeyPair, writeKeyPair } from '../../src/sync/keys.js';

const test = anyTest as TestFn<{ dir: string }>;

test.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'dbn-keys-'));
});

test.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true });
});

test('a generated key pair is consistent and survives a write/read round trip', async (t) => {
  const pair = generateKeyPair();
  t.is(pair.publicKey.length, 40);
  t.is(publicKeyFromSecret(pair.secretKey), pair.publicKey);
  const dir = join(t.context.dir, 'node-a');
  await writeKeyPair(dir, pair);
  t.deepEqual(await readKeyPair(dir), pair);
  t.is((await stat(join(dir, 'curve.key'))).mode & 0o777, 0o600);
  t.is((await readFile(join(dir, 'curve.pub'), 'utf8')).trim(), pair.publicKey);
  t.deepEqual((await readdir(dir)).sort(), ['curve.key', 'curve.pub'], 'no temporary files left behind');
});

test('an existing key is never overwritten without force', async (t) => {
  const first = generateKeyPair();
  const second = generateKeyPair();
  await writeKeyPair(t.context.dir, first);
  await t.throwsAsync(writeKeyPair(t.context.dir, second), { instanceOf: SyncError, message: /already exists; pass force/ });
  t.deepEqual(await readKeyPair(t.context.dir), first);
  await writeKeyPair(t.context.dir, second, { force: true });
  t.deepEqual(await readKeyPair(t.context.dir), second);
  t.is((await stat(join(t.context.dir, 'curve.key'))).mode & 0o777, 0o600);
});

test('reading refuses unsafe or inconsistent keys', async (t) => {
  const pair = generateKeyPair();
  await writeKeyPair(t.context.dir, pair);
  await chmod(join(t.context.dir, 'curve.key'), 0o644);
  const perm = await t.throwsAsync(readKeyPair(t.context.dir), { instanceOf: SyncError });
  t.is(perm?.code, 'EKEYPERM');
  await chmod(join(t.context.dir, 'curve.key'), 0o600);
  await writeFile(join(t.context.dir, 'curve.pub'), `${generateKeyPair().publicKey}\n`);
  const mismatch = await t.throwsAsync(readKeyPair(t.context.dir), { instanceOf: SyncError });
  t.is(mismatch?.code, 'EKEYMISMATCH');
  const missing = await t.throwsAsync(readKeyPair(join(t.context.dir, 'nope')), { instanceOf: SyncError });
  t.is(missing?.code, 'ENOENT');
  await writeFile(join(t.context.dir, 'curve.pub'), 'not a key\n');
  await t.throwsAsync(readKeyPair(t.context.dir), {
    instanceOf: SyncError,
    message: /curve\.pub:1: expected a 40-character Z85 public key/,
  });
});

test('allowlists are read from a file (with comments) or a directory of .pub files', async (t) => {
  const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
  const file = join(t.context.dir, 'allow.txt');
  await writeFile(file, `# peers of the mnist run\n\n${a.publicKey} node-a\n  ${b.publicKey}\n${a.publicKey}\n`);
  t.deepEqual(await readAllowlist(file), [a.publicKey, b.publicKey]);

  const dir = join(t.context.dir, 'allowed');
  await mkdir(dir);
  await writeFile(join(dir, 'b.pub'), `${b.publicKey}\n`);
  await writeFile(join(dir, 'c.pub'), `${c.publicKey}\n`);
  await writeFile(join(dir, 'notes.txt'), 'ignored');
  t.deepEqual(await readAllowlist(dir), [b.publicKey, c.publicKey]);

  await writeFile(file, `${a.publicKey}\nbogus line\n`);
  await t.throwsAsync(readAllowlist(file), { instanceOf: SyncError, message: /allow\.txt:2/ });
  const missing = await t.throwsAsync(readAllowlist(join(t.context.dir, 'none')), { instanceOf: SyncError });
  t.is(missing?.code, 'ENOENT');
});

test('modelFingerprint hashes canonical JSON (key order does not matter)', (t) => {
  // SHA-256 of the text {"a":1,"b":[2,3]} (from sha256sum).
  const expected = 'efbd0040190fb0871831e606c581f8a66db79d8e2bb836745a70051306956070';
  t.is(modelFingerprint({ b: [2, 3], a: 1 }), expected);
  t.is(modelFingerprint({ a: 1, b: [2, 3], c: undefined }), expected);
  t.not(modelFingerprint({ layers: [784, 500] }), modelFingerprint({ layers: [784, 501] }));
  t.regex(modelFingerprint([1, 'x', null]), /^[0-9a-f]{64}$/);
});

test('a key directory or curve.key that group or others can reach is refused, naming the path and the chmod', async (t) => {
  const dir = join(t.context.dir, 'keys');
  await writeKeyPair(dir, generateKeyPair());
  t.is((await stat(dir)).mode & 0o777, 0o700);
  for (const mode of [0o777, 0o770, 0o750, 0o705]) {
    await chmod(dir, mode);
    const err = await t.throwsAsync(readKeyPair(dir), { instanceOf: SyncError });
    t.is(err?.code, 'EKEYPERM');
    t.is(
      err?.message,
      `${dir}: the key directory has mode 0${mode.toString(8)}, so group or others can read or write it; run chmod 700 ${dir}`,
    );
  }
  await chmod(dir, 0o700);
  await chmod(join(dir, 'curve.key'), 0o640);
  await t.throwsAsync(readKeyPair(dir), {
    instanceOf: SyncError,
    code: 'EKEYPERM',
    message: new RegExp(`the secret key has mode 0640.*run chmod 600 ${join(dir, 'curve.key')}$`),
  });
  await chmod(join(dir, 'curve.key'), 0o600);
  t.is((await readKeyPair(dir)).publicKey.length, 40);

  const open = join(t.context.dir, 'shared');
  await mkdir(open);
  await chmod(open, 0o777);
  await t.throwsAsync(writeKeyPair(open, generateKeyPair()), { instanceOf: SyncError, code: 'EKEYPERM', message: /run chmod 700/ });
  t.deepEqual(await readdir(open), [], 'nothing written into a directory others can reach');
});

test('an allowlist that group or others can write is refused', async (t) => {
  const a = generateKeyPair();
  const dir = join(t.context.dir, 'peers');
  await mkdir(dir);
  await writeFile(join(dir, 'a.pub'), `${a.publicKey}\n`);
  t.deepEqual(await readAllowlist(dir), [a.publicKey]);
  await chmod(dir, 0o777);
  await t.throwsAsync(readAllowlist(dir), {
    instanceOf: SyncError,
    code: 'EKEYPERM',
    message: new RegExp(`${dir}: the allowlist directory has mode 0777.*chmod go-w`),
  });
  await chmod(dir, 0o755);
  await chmod(join(dir, 'a.pub'), 0o666);
  await t.throwsAsync(readAllowlist(dir), {
    instanceOf: SyncError,
    code: 'EKEYPERM',
    message: /a\.pub: the allowed public key has mode 0666/,
  });
  const file = join(t.context.dir, 'allow.txt');
  await writeFile(file, `${a.publicKey}\n`);
  await chmod(file, 0o620);
  await t.throwsAsync(readAllowlist(file), { instanceOf: SyncError, code: 'EKEYPERM' });
});
