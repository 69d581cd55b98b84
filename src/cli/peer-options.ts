/**
 * The peer flags of `train` (`--bind`, `--peers`, `--keys`, `--shard` …): parsed and checked
 * into the options of a `PeerGroup`. Without `--bind` training is local and
 * every other peer flag is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import type { AggregateRule, AggregationOptions, PeerGroupOptions } from '../distributed/index.js';
import { InvalidOptionError } from '../errors.js';
import { parseSeed, readAllowlist, readKeyPair } from '../sync/index.js';
import type { KeyPair } from '../sync/index.js';

/** Flags of the peer group (all optional; defaults are applied by {@link resolvePeerArgs}). */
export interface PeerArgs {
  readonly bind?: string | undefined;
  readonly advertise?: string | undefined;
  readonly peers?: string | undefined;
  readonly keys?: string | undefined;
  readonly allowlist?: string | undefined;
  readonly plaintext?: boolean | undefined;
  readonly shard?: string | undefined;
  readonly 'run-id'?: string | undefined;
  readonly 'heartbeat-ms'?: number | undefined;
  readonly 'peer-timeout-ms'?: number | undefined;
  readonly 'start-timeout-ms'?: number | undefined;
  readonly aggregate?: string | undefined;
  readonly trim?: number | undefined;
  readonly 'clip-norm'?: number | undefined;
}

/** What the peer flags resolve to. */
export interface PeerConfig {
  /** Options of the `PeerGroup`, less the fingerprint and the frame limit (they depend on the model). */
  readonly group: Omit<PeerGroupOptions, 'fingerprint' | 'maxFrameBytes' | 'onEvent'>;
  /** 0-based shard index and count, when `--shard` was given. */
  readonly shard: { readonly index: number; readonly count: number } | undefined;
}

const G = 'Peers (training on several machines, no server; without --bind training is local):';

/** Adds the peer flags to `train`. */
export function peerOptions<T0>(y: Argv<T0>): Argv<T0 & PeerArgs> {
  return y
    .option('bind', { type: 'string', describe: 'run as a peer: endpoint to listen on, tcp://host:port', group: G })
    .option('advertise', { type: 'string', describe: 'the endpoint other peers dial (needed when --bind uses 0.0.0.0)', group: G })
    .option('peers', { type: 'string', describe: 'comma-separated other peers, tcp://host:port#<public key> (no #key with --plaintext)', group: G })
    .option('keys', { type: 'string', describe: 'key directory: curve.key + curve.pub (dbn-node keygen) and peers/*.pub, the public keys allowed in', group: G })
    .option('allowlist', { type: 'string', describe: 'allowed public keys: a file of keys or a directory of *.pub (default <keys>/peers)', group: G })
    .option('plaintext', { type: 'boolean', describe: 'no encryption and no authentication (anyone who reaches the port can read and send messages)', group: G })
    .option('shard', { type: 'string', describe: "train on shard i of n of the training rows, e.g. '2/3' (1-based); n peers start together", group: G })
    .option('run-id', { type: 'string', describe: 'name of the run (1-16 of [A-Za-z0-9._-]); messages of other runs are ignored (default dbn)', group: G })
    .option('heartbeat-ms', { type: 'number', describe: 'heartbeat period (default 500)', group: G })
    .option('peer-timeout-ms', { type: 'number', describe: 'a peer not heard for this long is dropped from the rounds; the others go on (default 5000)', group: G })
    .option('start-timeout-ms', { type: 'number', describe: 'longest wait for every peer at the start (default 120000)', group: G })
    .option('aggregate', { type: 'string', describe: 'how the peers\' gradients are combined: sum (default), trimmed-mean or median (robust to a lying peer; recommended between organisations, see docs/security.md)', group: G })
    .option('trim', { type: 'number', describe: 'with --aggregate trimmed-mean: values dropped at each end per coordinate (default 1)', group: G })
    .option('clip-norm', { type: 'number', describe: "clip each peer's part to this multiple of the median part norm before combining (e.g. 2)", group: G }) as unknown as Argv<T0 & PeerArgs>;
}

const PEER_ONLY: readonly (keyof PeerArgs)[] = ['advertise', 'peers', 'keys', 'allowlist', 'plaintext', 'shard', 'run-id', 'heartbeat-ms', 'peer-timeout-ms', 'start-timeout-ms', 'aggregate', 'trim', 'clip-norm'];

/** Parses `--shard i/n` (1-based) into a 0-based index and a count. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const i = m === null ? Number.NaN : Number(m[1]);
  const n = m === null ? Number.NaN : Number(m[2]);
  if (!Number.isSafeInteger(i) || !Number.isSafeInteger(n) || n < 1 || i < 1 || i > n) {
    throw new InvalidOptionError(`--shard must be i/n with 1 <= i <= n (e.g. 2/3 for the second of three shards), got '${text}'.`);
  }
  return { index: i - 1, count: n };
}

/**
 * Checks the peer flags and reads the key files. Resolves with `undefined` without `--bind`
 * (and refuses any other peer flag then). Every bad flag raises one {@link InvalidOptionError}
 * (or the key files' `SyncError`) naming it.
 */
export async function resolvePeerArgs(a: PeerArgs): Promise<PeerConfig | undefined> {
  if (a.bind === undefined) {
    const given = PEER_ONLY.filter((k) => a[k] !== undefined);
    if (given.length > 0) throw new InvalidOptionError(`--${given[0]} needs --bind (peer mode); without --bind training is local.`);
    return undefined;
  }
  const endpoint = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]#\s]+):(\d{1,5})$/;
  const bindM = endpoint.exec(a.bind);
  if (bindM === null || Number(bindM[2]) > 65535) throw new InvalidOptionError(`--bind must be tcp://host:port (port 0-65535), got '${a.bind}'.`);
  if (a.advertise !== undefined && !endpoint.test(a.advertise)) throw new InvalidOptionError(`--advertise must be tcp://host:port, got '${a.advertise}'.`);
  if (['*', '0.0.0.0', '[::]'].includes(bindM[1]!) && a.advertise === undefined) {
    throw new InvalidOptionError(`--bind ${a.bind} listens on every interface; add --advertise tcp://<this machine's address>:${bindM[2]} so peers can dial back.`);
  }
  const plaintext = a.plaintext === true;
  const seeds = a.peers === undefined ? [] : a.peers.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (a.peers !== undefined && seeds.length === 0) throw new InvalidOptionError(`--peers must list at least one tcp://host:port${plaintext ? '' : '#<public key>'}, got '${a.peers}'.`);
  for (const s of seeds) {
    let parsed: { pub: string; publicKey: string | null };
    try {
      parsed = parseSeed(s);
    } catch (err) {
      throw new InvalidOptionError(`--peers: ${(err as Error).message}`);
    }
    if (!endpoint.test(parsed.pub)) throw new InvalidOptionError(`--peers: '${s}' must start with tcp://host:port.`);
    if (plaintext && parsed.publicKey !== null) throw new InvalidOptionError(`--peers: '${s}' carries a public key but --plaintext is on; drop the '#<key>' part.`);
    if (!plaintext && parsed.publicKey === null) throw new InvalidOptionError(`--peers: '${s}' needs the peer's public key: ${s}#<contents of its curve.pub>.`);
  }
  let security: { readonly keys?: KeyPair; readonly allowlist?: readonly string[]; readonly plaintext?: boolean };
  if (plaintext) {
    if (a.keys !== undefined || a.allowlist !== undefined) throw new InvalidOptionError(`--plaintext runs without keys; drop --${a.keys !== undefined ? 'keys' : 'allowlist'} (or drop --plaintext).`);
    security = { plaintext: true };
  } else {
    if (a.keys === undefined) throw new InvalidOptionError('--bind needs --keys <dir> (curve.key, curve.pub from `dbn-node keygen`, and peers/*.pub), or --plaintext to run unauthenticated.');
    if (!isDir(a.keys)) throw new InvalidOptionError(`--keys: '${a.keys}' is not a directory (create it with dbn-node keygen --dir ${a.keys}).`);
    const keys = await readKeyPair(a.keys);
    const listPath = a.allowlist ?? path.join(a.keys, 'peers');
    if (!fs.existsSync(listPath)) {
      throw new InvalidOptionError(
        a.allowlist === undefined
          ? `--keys: no allowlist at ${listPath}; copy each peer's curve.pub there as <name>.pub (or pass --allowlist).`
          : `--allowlist: no such file or directory '${listPath}'.`,
      );
    }
    const allowlist = await readAllowlist(listPath);
    for (const s of seeds) {
      const key = parseSeed(s).publicKey!;
      if (!allowlist.includes(key)) throw new InvalidOptionError(`--peers: the key of '${s.slice(0, s.indexOf('#'))}' is not in the allowlist ${listPath}.`);
    }
    security = { keys, allowlist };
  }
  const runId = a['run-id'] ?? 'dbn';
  if (!/^[A-Za-z0-9._-]{1,16}$/.test(runId)) throw new InvalidOptionError(`--run-id must be 1-16 characters of [A-Za-z0-9._-], got '${runId}'.`);
  const int = (flag: keyof PeerArgs, v: number | undefined, min: number, max: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new InvalidOptionError(`--${flag} must be an integer in [${min}, ${max}], got ${v}.`);
    return v;
  };
  const heartbeatMs = int('heartbeat-ms', a['heartbeat-ms'], 10, 60_000) ?? 500;
  const peerTimeoutMs = int('peer-timeout-ms', a['peer-timeout-ms'], 20, 3_600_000) ?? 5000;
  if (peerTimeoutMs < 2 * heartbeatMs) throw new InvalidOptionError(`--peer-timeout-ms (${peerTimeoutMs}) must be at least twice --heartbeat-ms (${heartbeatMs}).`);
  const startTimeoutMs = int('start-timeout-ms', a['start-timeout-ms'], 1, 86_400_000) ?? 120_000;
  const shard = a.shard === undefined ? undefined : parseShard(a.shard);
  const expectedPeers = shard?.count ?? seeds.length + 1;
  if (shard !== undefined && seeds.length + 1 > shard.count) throw new InvalidOptionError(`--peers names ${seeds.length} other peers, more than --shard ${a.shard} leaves (${shard.count - 1}).`);
  if (expectedPeers > 1 && seeds.length === 0) throw new InvalidOptionError(`--shard ${a.shard} runs ${expectedPeers} peers: name at least one other with --peers.`);
  return {
    group: {
      runId,
      mesh: { bind: a.bind, ...(a.advertise === undefined ? {} : { advertise: a.advertise }), ...security },
      peers: seeds.map((s) => {
        const p = parseSeed(s);
        return { endpoint: p.pub, publicKey: p.publicKey };
      }),
      expectedPeers,
      heartbeatMs,
      peerTimeoutMs,
      startTimeoutMs,
      ...aggregationOf(a),
    },
    shard,
  };
}

/** `--aggregate`, `--trim`, `--clip-norm` as the group's aggregation option (absent for the plain sum). */
function aggregationOf(a: PeerArgs): { aggregation?: AggregationOptions } {
  const kind = a.aggregate ?? 'sum';
  if (kind !== 'sum' && kind !== 'trimmed-mean' && kind !== 'median') throw new InvalidOptionError(`--aggregate must be sum, trimmed-mean or median, got '${kind}'.`);
  if (a.trim !== undefined && kind !== 'trimmed-mean') throw new InvalidOptionError('--trim needs --aggregate trimmed-mean.');
  if (a.trim !== undefined && (!Number.isSafeInteger(a.trim) || a.trim < 1 || a.trim > 64)) throw new InvalidOptionError(`--trim must be an integer in [1, 64], got ${a.trim}.`);
  const clip = a['clip-norm'];
  if (clip !== undefined && !(Number.isFinite(clip) && clip > 0)) throw new InvalidOptionError(`--clip-norm must be a number > 0 (a multiple of the median part norm), got ${clip}.`);
  if (kind === 'sum' && clip === undefined) return {};
  const rule: AggregateRule = kind === 'trimmed-mean' ? { kind, trim: a.trim ?? 1 } : { kind };
  return { aggregation: { rule, ...(clip === undefined ? {} : { clipNorm: clip }) } };
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
