/**
 * The peer flags of `train` (`--bind`, `--peers`, `--keys`, `--shard` …): parsed and checked
 * into the options of a `PeerGroup`. Without `--bind` training is local and
 * every other peer flag is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import { AGGREGATE_KINDS, type AggregateRule, type AggregationOptions, type PeerGroupOptions } from '../distributed/index.js';
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
  readonly 'min-peers'?: number | undefined;
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

const GROUP = 'Peers (training on several machines, no server; without --bind training is local):';

/** Adds the peer flags to `train`. */
export function peerOptions<T0>(y: Argv<T0>): Argv<T0 & PeerArgs> {
  return y
    .option('bind', { type: 'string', describe: 'run as a peer: endpoint to listen on, tcp://host:port', group: GROUP })
    .option('advertise', { type: 'string', describe: 'the endpoint other peers dial (needed when --bind uses 0.0.0.0)', group: GROUP })
    .option('peers', {
      type: 'string',
      describe: 'comma-separated other peers, tcp://host:port#<public key> (no #key with --plaintext)',
      group: GROUP,
    })
    .option('keys', {
      type: 'string',
      describe: 'key directory: curve.key + curve.pub (dbn-node keygen) and peers/*.pub, the public keys allowed in',
      group: GROUP,
    })
    .option('allowlist', {
      type: 'string',
      describe: 'allowed public keys: a file of keys or a directory of *.pub (default <keys>/peers)',
      group: GROUP,
    })
    .option('plaintext', {
      type: 'boolean',
      describe: 'no encryption and no authentication (anyone who reaches the port can read and send messages)',
      group: GROUP,
    })
    .option('shard', {
      type: 'string',
      describe: "train on shard i of n of the training rows, e.g. '2/3' (1-based); n peers start together",
      group: GROUP,
    })
    .option('run-id', {
      type: 'string',
      describe: 'name of the run (1-16 of [A-Za-z0-9._-]); messages of other runs are ignored (default dbn)',
      group: GROUP,
    })
    .option('heartbeat-ms', { type: 'number', describe: 'heartbeat period (default 500)', group: GROUP })
    .option('peer-timeout-ms', {
      type: 'number',
      describe: 'a peer not heard for this long is dropped from the rounds; the others go on (default 5000)',
      group: GROUP,
    })
    .option('start-timeout-ms', { type: 'number', describe: 'longest wait for every peer at the start (default 120000)', group: GROUP })
    .option('min-peers', {
      type: 'number',
      describe:
        'fewest peers the run goes on with: a peer left with fewer (lost peers, its side of a partition) stops with EQUORUM; above half of the peers, two sides of a partition cannot both go on (default 1)',
      group: GROUP,
    })
    .option('aggregate', {
      type: 'string',
      describe:
        "how the peers' gradients are combined: sum (default), trimmed-mean, median, mean-around-median or multi-krum (robust to a lying peer; recommended between organisations, see docs/security.md)",
      group: GROUP,
    })
    .option('trim', {
      type: 'number',
      describe:
        'with --aggregate trimmed-mean: values dropped at each end per coordinate; with mean-around-median: values dropped farthest from the median; with multi-krum: whole parts dropped farthest from the others (default 1)',
      group: GROUP,
    })
    .option('clip-norm', {
      type: 'number',
      describe: "clip each peer's part to this multiple of the median part norm before combining (e.g. 2)",
      group: GROUP,
    }) as unknown as Argv<T0 & PeerArgs>;
}

const PEER_ONLY: readonly (keyof PeerArgs)[] = [
  'advertise',
  'peers',
  'keys',
  'allowlist',
  'plaintext',
  'shard',
  'run-id',
  'heartbeat-ms',
  'peer-timeout-ms',
  'start-timeout-ms',
  'min-peers',
  'aggregate',
  'trim',
  'clip-norm',
];

/** Parses `--shard i/n` (1-based) into a 0-based index and a count. */
export function parseShard(text: string): { index: number; count: number } {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = match === null ? Number.NaN : Number(match[1]);
  const count = match === null ? Number.NaN : Number(match[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index < 1 || index > count) {
    throw new InvalidOptionError(`--shard must be i/n with 1 <= i <= n (e.g. 2/3 for the second of three shards), got '${text}'.`);
  }
  return { index: index - 1, count };
}

/** `tcp://host:port` (host a name, an IPv4 address or a bracketed IPv6 one). */
const ENDPOINT = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]#\s]+):(\d{1,5})$/;

/**
 * Checks the peer flags and reads the key files. Resolves with `undefined` without `--bind`
 * (and refuses any other peer flag then). Every bad flag raises one {@link InvalidOptionError}
 * (or the key files' `SyncError`) naming it.
 */
export async function resolvePeerArgs(args: PeerArgs): Promise<PeerConfig | undefined> {
  if (args.bind === undefined) {
    const given = PEER_ONLY.filter((flag) => args[flag] !== undefined);
    if (given.length > 0) throw new InvalidOptionError(`--${given[0]} needs --bind (peer mode); without --bind training is local.`);
    return undefined;
  }
  checkEndpoints(args.bind, args.advertise);
  const plaintext = args.plaintext === true;
  const seeds = parseSeeds(args.peers, plaintext);
  const security = plaintext ? plaintextSecurity(args) : await curveSecurity(args.keys, args.allowlist, seeds);
  const runId = args['run-id'] ?? 'dbn';
  if (!/^[A-Za-z0-9._-]{1,16}$/.test(runId))
    throw new InvalidOptionError(`--run-id must be 1-16 characters of [A-Za-z0-9._-], got '${runId}'.`);
  const timing = resolveTiming(args);
  const shard = args.shard === undefined ? undefined : parseShard(args.shard);
  const expectedPeers = shard?.count ?? seeds.length + 1;
  if (shard !== undefined && seeds.length + 1 > shard.count) {
    throw new InvalidOptionError(`--peers names ${seeds.length} other peers, more than --shard ${args.shard} leaves (${shard.count - 1}).`);
  }
  if (expectedPeers > 1 && seeds.length === 0)
    throw new InvalidOptionError(`--shard ${args.shard} runs ${expectedPeers} peers: name at least one other with --peers.`);
  const minPeers = args['min-peers'];
  if (minPeers !== undefined && (!Number.isSafeInteger(minPeers) || minPeers < 1 || minPeers > expectedPeers))
    throw new InvalidOptionError(`--min-peers must be an integer in [1, ${expectedPeers}] (the peers of this run), got ${minPeers}.`);
  return {
    group: {
      runId,
      mesh: { bind: args.bind, ...(args.advertise === undefined ? {} : { advertise: args.advertise }), ...security },
      peers: seeds.map((seed) => {
        const parsed = parseSeed(seed);
        return { endpoint: parsed.pub, publicKey: parsed.publicKey };
      }),
      expectedPeers,
      ...(minPeers === undefined ? {} : { minPeers }),
      ...timing,
      ...aggregationOf(args),
    },
    shard,
  };
}

/** `--bind` and `--advertise` are endpoints; a wildcard bind needs an address to advertise. */
function checkEndpoints(bind: string, advertise: string | undefined): void {
  const bound = ENDPOINT.exec(bind);
  if (bound === null || Number(bound[2]) > 65535)
    throw new InvalidOptionError(`--bind must be tcp://host:port (port 0-65535), got '${bind}'.`);
  if (advertise !== undefined && !ENDPOINT.test(advertise))
    throw new InvalidOptionError(`--advertise must be tcp://host:port, got '${advertise}'.`);
  if (['*', '0.0.0.0', '[::]'].includes(bound[1]!) && advertise === undefined) {
    throw new InvalidOptionError(
      `--bind ${bind} listens on every interface; add --advertise tcp://<this machine's address>:${bound[2]} so peers can dial back.`,
    );
  }
}

/** The `--peers` list, each entry checked: an endpoint, with the peer's public key unless `plaintext`. */
function parseSeeds(peers: string | undefined, plaintext: boolean): string[] {
  if (peers === undefined) return [];
  const seeds = peers
    .split(',')
    .map((seed) => seed.trim())
    .filter((seed) => seed !== '');
  if (seeds.length === 0)
    throw new InvalidOptionError(`--peers must list at least one tcp://host:port${plaintext ? '' : '#<public key>'}, got '${peers}'.`);
  for (const seed of seeds) {
    let parsed: { pub: string; publicKey: string | null };
    try {
      parsed = parseSeed(seed);
    } catch (err) {
      throw new InvalidOptionError(`--peers: ${(err as Error).message}`);
    }
    if (!ENDPOINT.test(parsed.pub)) throw new InvalidOptionError(`--peers: '${seed}' must start with tcp://host:port.`);
    if (plaintext && parsed.publicKey !== null)
      throw new InvalidOptionError(`--peers: '${seed}' carries a public key but --plaintext is on; drop the '#<key>' part.`);
    if (!plaintext && parsed.publicKey === null)
      throw new InvalidOptionError(`--peers: '${seed}' needs the peer's public key: ${seed}#<contents of its curve.pub>.`);
  }
  return seeds;
}

type Security = { readonly keys?: KeyPair; readonly allowlist?: readonly string[]; readonly plaintext?: boolean };

function plaintextSecurity(args: PeerArgs): Security {
  if (args.keys !== undefined || args.allowlist !== undefined) {
    throw new InvalidOptionError(
      `--plaintext runs without keys; drop --${args.keys !== undefined ? 'keys' : 'allowlist'} (or drop --plaintext).`,
    );
  }
  return { plaintext: true };
}

/** This peer's key pair from `--keys` and the allowlist (`--allowlist`, else `<keys>/peers`), which must hold every seed's key. */
async function curveSecurity(keysDir: string | undefined, allowlistPath: string | undefined, seeds: readonly string[]): Promise<Security> {
  if (keysDir === undefined) {
    throw new InvalidOptionError(
      '--bind needs --keys <dir> (curve.key, curve.pub from `dbn-node keygen`, and peers/*.pub), or --plaintext to run unauthenticated.',
    );
  }
  if (!isDir(keysDir))
    throw new InvalidOptionError(`--keys: '${keysDir}' is not a directory (create it with dbn-node keygen --dir ${keysDir}).`);
  const keys = await readKeyPair(keysDir);
  const listPath = allowlistPath ?? path.join(keysDir, 'peers');
  if (!fs.existsSync(listPath)) {
    throw new InvalidOptionError(
      allowlistPath === undefined
        ? `--keys: no allowlist at ${listPath}; copy each peer's curve.pub there as <name>.pub (or pass --allowlist).`
        : `--allowlist: no such file or directory '${listPath}'.`,
    );
  }
  const allowlist = await readAllowlist(listPath);
  for (const seed of seeds) {
    const key = parseSeed(seed).publicKey!;
    if (!allowlist.includes(key))
      throw new InvalidOptionError(`--peers: the key of '${seed.slice(0, seed.indexOf('#'))}' is not in the allowlist ${listPath}.`);
  }
  return { keys, allowlist };
}

/** The heartbeat, peer and start timeouts (defaults 500 ms, 5 s, 2 min); the peer timeout at least two heartbeats. */
function resolveTiming(args: PeerArgs): { heartbeatMs: number; peerTimeoutMs: number; startTimeoutMs: number } {
  const integer = (flag: keyof PeerArgs, value: number | undefined, min: number, max: number): number | undefined => {
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || value < min || value > max)
      throw new InvalidOptionError(`--${flag} must be an integer in [${min}, ${max}], got ${value}.`);
    return value;
  };
  const heartbeatMs = integer('heartbeat-ms', args['heartbeat-ms'], 10, 60_000) ?? 500;
  const peerTimeoutMs = integer('peer-timeout-ms', args['peer-timeout-ms'], 20, 3_600_000) ?? 5000;
  if (peerTimeoutMs < 2 * heartbeatMs)
    throw new InvalidOptionError(`--peer-timeout-ms (${peerTimeoutMs}) must be at least twice --heartbeat-ms (${heartbeatMs}).`);
  const startTimeoutMs = integer('start-timeout-ms', args['start-timeout-ms'], 1, 86_400_000) ?? 120_000;
  return { heartbeatMs, peerTimeoutMs, startTimeoutMs };
}

/** `--aggregate`, `--trim`, `--clip-norm` as the group's aggregation option (absent for the plain sum). */
function aggregationOf(args: PeerArgs): { aggregation?: AggregationOptions } {
  const kind = (args.aggregate ?? 'sum') as AggregateRule['kind'];
  if (!AGGREGATE_KINDS.includes(kind))
    throw new InvalidOptionError(
      `--aggregate must be ${AGGREGATE_KINDS.slice(0, -1).join(', ')} or ${AGGREGATE_KINDS.at(-1)}, got '${kind}'.`,
    );
  if (args.trim !== undefined && (kind === 'sum' || kind === 'median'))
    throw new InvalidOptionError('--trim needs --aggregate trimmed-mean, mean-around-median or multi-krum.');
  if (args.trim !== undefined && (!Number.isSafeInteger(args.trim) || args.trim < 1 || args.trim > 64))
    throw new InvalidOptionError(`--trim must be an integer in [1, 64], got ${args.trim}.`);
  const clip = args['clip-norm'];
  if (clip !== undefined && !(Number.isFinite(clip) && clip > 0))
    throw new InvalidOptionError(`--clip-norm must be a number > 0 (a multiple of the median part norm), got ${clip}.`);
  if (kind === 'sum' && clip === undefined) return {};
  const rule: AggregateRule = kind === 'sum' || kind === 'median' ? { kind } : { kind, trim: args.trim ?? 1 };
  return { aggregation: { rule, ...(clip === undefined ? {} : { clipNorm: clip }) } };
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
