// The peer flags of `train` (src/cli/peer-options.ts): every bad flag is one InvalidOptionError
// naming it, and good flags resolve to the PeerGroup options with the documented defaults.
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolvePeerArgs, parseShard } from '../../src/cli/peer-options.js';
import { InvalidOptionError } from '../../src/errors.js';
import { generateKeyPair, writeKeyPair } from '../../src/sync/keys.js';

const refused = async (t: import('ava').ExecutionContext, args: Parameters<typeof resolvePeerArgs>[0], message: RegExp): Promise<void> => {
  const err = await t.throwsAsync(resolvePeerArgs(args), { instanceOf: InvalidOptionError });
  t.regex(err!.message, message);
};

test('without --bind training is local, and any other peer flag is refused naming it', async (t) => {
  t.is(await resolvePeerArgs({}), undefined);
  await refused(t, { shard: '1/2' }, /^--shard needs --bind/);
});

test('bad endpoints, seeds, keys and timings are each refused naming the flag', async (t) => {
  const bind = 'tcp://127.0.0.1:5000';
  await refused(t, { bind: 'tcp://127.0.0.1:70000', plaintext: true }, /^--bind must be tcp:\/\/host:port/);
  await refused(t, { bind: 'tcp://0.0.0.0:5000', plaintext: true }, /add --advertise tcp:\/\/<this machine's address>:5000/);
  await refused(t, { bind, plaintext: true, peers: ' , ' }, /^--peers must list at least one tcp:\/\/host:port, got/);
  await refused(t, { bind, plaintext: true, peers: 'udp://x:1' }, /^--peers: Seed peer 'udp:\/\/x:1' must be an endpoint/);
  await refused(t, { bind, peers: 'tcp://h:1', keys: '/nonexistent-dir-11a' }, /needs the peer's public key/);
  await refused(t, { bind, plaintext: true, keys: 'k' }, /^--plaintext runs without keys; drop --keys/);
  await refused(t, { bind }, /^--bind needs --keys <dir>/);
  await refused(t, { bind, keys: '/nonexistent-dir-11a' }, /^--keys: '\/nonexistent-dir-11a' is not a directory/);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-options-'));
  try {
    await t.throwsAsync(resolvePeerArgs({ bind, keys: empty }));
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
  await refused(t, { bind, plaintext: true, 'run-id': 'a b' }, /^--run-id must be 1-16 characters/);
  await refused(t, { bind, plaintext: true, 'heartbeat-ms': 5 }, /^--heartbeat-ms must be an integer in \[10, 60000\], got 5/);
  await refused(t, { bind, plaintext: true, 'heartbeat-ms': 100, 'peer-timeout-ms': 150 }, /at least twice --heartbeat-ms \(100\)/);
  await refused(t, { bind, plaintext: true, shard: '2/3' }, /^--shard 2\/3 runs 3 peers: name at least one other with --peers/);
  await refused(t, { bind, plaintext: true, shard: '1/2', peers: 'tcp://a:1,tcp://b:2' }, /more than --shard 1\/2 leaves \(1\)/);
  const two = { bind, plaintext: true, peers: 'tcp://a:1' };
  await refused(t, { ...two, 'min-peers': 3 }, /^--min-peers must be an integer in \[1, 2\] \(the peers of this run\), got 3\.$/);
  await refused(t, { ...two, 'min-peers': 0 }, /^--min-peers must be an integer in \[1, 2\]/);
  await refused(t, { ...two, 'min-peers': 1.5 }, /^--min-peers must be an integer in \[1, 2\]/);
  await refused(t, { 'min-peers': 2 }, /^--min-peers needs --bind/);
});

test('--min-peers resolves to the group option minPeers (absent without the flag)', async (t) => {
  const three = { bind: 'tcp://127.0.0.1:5000', plaintext: true, peers: 'tcp://127.0.0.1:5001,tcp://127.0.0.1:5002' };
  t.is((await resolvePeerArgs({ ...three, 'min-peers': 2 }))!.group.minPeers, 2);
  t.is((await resolvePeerArgs({ ...three, 'min-peers': 3 }))!.group.minPeers, 3);
  t.false('minPeers' in (await resolvePeerArgs(three))!.group);
});

test('plaintext flags resolve to the group options with the default timings', async (t) => {
  const config = await resolvePeerArgs({
    bind: 'tcp://127.0.0.1:5000',
    plaintext: true,
    peers: 'tcp://127.0.0.1:5001, tcp://127.0.0.1:5002',
    shard: '3/3',
  });
  t.deepEqual(config, {
    group: {
      runId: 'dbn',
      mesh: { bind: 'tcp://127.0.0.1:5000', plaintext: true },
      peers: [
        { endpoint: 'tcp://127.0.0.1:5001', publicKey: null },
        { endpoint: 'tcp://127.0.0.1:5002', publicKey: null },
      ],
      expectedPeers: 3,
      heartbeatMs: 500,
      peerTimeoutMs: 5000,
      startTimeoutMs: 120_000,
    },
    shard: { index: 2, count: 3 },
  });
  t.deepEqual(parseShard(' 2 / 4 '), { index: 1, count: 4 });
  t.throws(() => parseShard('0/2'), { instanceOf: InvalidOptionError, message: /--shard must be i\/n/ });
});

test("CURVE flags read the key pair and the allowlist, which must hold every seed's key", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-options-'));
  try {
    const own = generateKeyPair();
    const friend = generateKeyPair();
    const stranger = generateKeyPair();
    await writeKeyPair(dir, own);
    fs.mkdirSync(path.join(dir, 'peers'));
    fs.writeFileSync(path.join(dir, 'peers', 'friend.pub'), `${friend.publicKey}\n`);
    const bind = 'tcp://127.0.0.1:5000';
    await refused(
      t,
      { bind, keys: dir, peers: 'tcp://127.0.0.1:5002#' + stranger.publicKey },
      /^--peers: the key of 'tcp:\/\/127.0.0.1:5002' is not in the allowlist/,
    );
    await refused(t, { bind, keys: dir, allowlist: path.join(dir, 'missing') }, /^--allowlist: no such file or directory/);
    const config = await resolvePeerArgs({ bind, keys: dir, peers: 'tcp://127.0.0.1:5001#' + friend.publicKey });
    t.deepEqual(config?.group.mesh, { bind, keys: own, allowlist: [friend.publicKey] });
    t.deepEqual(config?.group.peers, [{ endpoint: 'tcp://127.0.0.1:5001', publicKey: friend.publicKey }]);
    t.is(config?.group.expectedPeers, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
