/**
 * The peer flags of `train` (`--bind`, `--peers`, `--keys`, `--shard` …): parsed and checked
 * into the options of a sync `Peer` and a `PeerTrainer`. Without `--bind` training is local and
 * every other peer flag is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv } from 'yargs';
import type { Dbn, PeerTrainingOptions } from '../dbn/index.js';
import { InvalidOptionError } from '../errors.js';
import { modelFingerprint, parseSeed, readAllowlist, readKeyPair } from '../sync/index.js';
import type { PeerOptions } from '../sync/index.js';

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
  readonly 'publish-every'?: number | undefined;
  readonly 'publish-ms'?: number | undefined;
  readonly float16?: boolean | undefined;
  readonly sparse?: number | undefined;
  readonly merge?: string | undefined;
  readonly 'anti-entropy-ms'?: number | undefined;
  readonly 'min-peers'?: number | undefined;
  readonly 'join-timeout-ms'?: number | undefined;
  readonly 'heartbeat-ms'?: number | undefined;
  readonly 'peer-timeout-ms'?: number | undefined;
  readonly hwm?: number | undefined;
  readonly 'barrier-timeout-ms'?: number | undefined;
  readonly 'layer-barrier'?: boolean | undefined;
  readonly 'other-layers'?: string | undefined;
  readonly 'divergence-bound'?: number | undefined;
}

/** What the peer flags resolve to. */
export interface PeerConfig {
  /** Options of the sync `Peer`, less the model fingerprint (see {@link peerFingerprint}). */
  readonly peer: Omit<PeerOptions, 'fingerprint'>;
  readonly trainer: PeerTrainingOptions;
  /** 0-based shard index and count, when `--shard` was given. */
  readonly shard: { readonly index: number; readonly count: number } | undefined;
  readonly join: { readonly timeoutMs: number; readonly minPeers: number; readonly seeds: boolean };
}

const G = 'Peers (serverless training over ZeroMQ; without --bind training is local):';
const T = 'Peer tuning:';

/** Adds the peer flags to `train`. */
export function peerOptions<T0>(y: Argv<T0>): Argv<T0 & PeerArgs> {
  return y
    .option('bind', { type: 'string', describe: 'run as a peer: PUB endpoint to bind, tcp://host:port (port 0: any free port); the snapshot ROUTER takes port + 1', group: G })
    .option('advertise', { type: 'string', describe: 'the PUB endpoint other peers should dial (needed when --bind uses 0.0.0.0)', group: G })
    .option('peers', { type: 'string', describe: 'comma-separated seed peers, tcp://host:port#<public key> (no #key with --plaintext)', group: G })
    .option('keys', { type: 'string', describe: 'key directory: curve.key + curve.pub (dbn-node keygen) and peers/*.pub, the public keys allowed in', group: G })
    .option('allowlist', { type: 'string', describe: 'allowed public keys: a file of keys or a directory of *.pub (default <keys>/peers)', group: G })
    .option('plaintext', { type: 'boolean', describe: 'no encryption and no authentication (anyone who reaches the ports can read and inject deltas)', group: G })
    .option('shard', { type: 'string', describe: "train on shard i of n of the training rows, e.g. '2/3' (1-based)", group: G })
    .option('run-id', { type: 'string', describe: 'name of the run (1-16 of [A-Za-z0-9._-]); peers of other runs are ignored (default dbn)', group: G })
    .option('publish-every', { type: 'number', describe: 'publish the accumulated weight change every N minibatches (default 10)', group: G })
    .option('publish-ms', { type: 'number', describe: 'also publish when T ms passed since the last publication', group: G })
    .option('float16', { type: 'boolean', describe: 'send deltas as float16 with error feedback (half the bytes)', group: G })
    .option('sparse', { type: 'number', describe: 'send only this fraction of each delta\'s entries, the largest (e.g. 0.01), the rest later (error feedback); not with --float16', group: G })
    .option('merge', { type: 'string', describe: "'average' (model averaging: each peer's change counts 1/K) or 'sum' (each counts in full) (default average)", group: T })
    .option('anti-entropy-ms', { type: 'number', describe: 'average weights with a live peer\'s snapshot every M ms; 0 = off (default 10000)', group: T })
    .option('min-peers', { type: 'number', describe: 'wait for N live peers before training (up to --join-timeout-ms) and at every barrier (up to --barrier-timeout-ms): a peer that died is waited for until one rejoins (default 0)', group: T })
    .option('join-timeout-ms', { type: 'number', describe: 'how long to wait for peers when joining (default 5000)', group: T })
    .option('heartbeat-ms', { type: 'number', describe: 'heartbeat period (default 1000)', group: T })
    .option('peer-timeout-ms', { type: 'number', describe: 'a peer not heard for this long is lost (default 5 heartbeats)', group: T })
    .option('hwm', { type: 'number', describe: 'high-water mark of the PUB/SUB sockets in messages; beyond it deltas are dropped (default 100)', group: T })
    .option('barrier-timeout-ms', { type: 'number', describe: 'longest wait for peers at the end of a layer or of training (default 120000)', group: T })
    .option('layer-barrier', { type: 'boolean', describe: 'wait for the live peers at the end of every layer (default true; --no-layer-barrier)', group: T })
    .option('other-layers', { type: 'string', describe: "deltas for a layer this peer is not training: 'apply' or 'drop' (default apply)", group: T })
    .option('divergence-bound', { type: 'number', describe: 'weight divergence the final barrier repairs with anti-entropy (default 0.05)', group: T }) as unknown as Argv<T0 & PeerArgs>;
}

const PEER_ONLY: readonly (keyof PeerArgs)[] = [
  'advertise', 'peers', 'keys', 'allowlist', 'plaintext', 'shard', 'run-id', 'publish-every', 'publish-ms', 'float16', 'sparse', 'merge', 'anti-entropy-ms',
  'min-peers', 'join-timeout-ms', 'heartbeat-ms', 'peer-timeout-ms', 'hwm', 'barrier-timeout-ms', 'layer-barrier', 'other-layers', 'divergence-bound',
];

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
  let security: Pick<PeerOptions, 'keys' | 'allowlist' | 'plaintext'>;
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
  const heartbeat = int('heartbeat-ms', a['heartbeat-ms'], 10, 3_600_000) ?? 1000;
  const peerTimeout = int('peer-timeout-ms', a['peer-timeout-ms'], 20, 86_400_000) ?? 5 * heartbeat;
  if (peerTimeout <= heartbeat) throw new InvalidOptionError(`--peer-timeout-ms (${peerTimeout}) must exceed --heartbeat-ms (${heartbeat}).`);
  const hwm = int('hwm', a.hwm, 1, 1_000_000) ?? 100;
  const merge = a.merge ?? 'average';
  if (merge !== 'sum' && merge !== 'average') throw new InvalidOptionError(`--merge must be 'sum' or 'average', got '${merge}'.`);
  const other = a['other-layers'] ?? 'apply';
  if (other !== 'apply' && other !== 'drop') throw new InvalidOptionError(`--other-layers must be 'apply' or 'drop', got '${other}'.`);
  const sparse = a.sparse;
  if (sparse !== undefined && !(Number.isFinite(sparse) && sparse > 0 && sparse < 1)) throw new InvalidOptionError(`--sparse must be a fraction in (0, 1), e.g. 0.01, got ${sparse}.`);
  if (sparse !== undefined && a.float16 === true) throw new InvalidOptionError('--sparse and --float16 cannot be combined: a sparse delta\'s values go as float32.');
  const bound = a['divergence-bound'];
  if (bound !== undefined && !(Number.isFinite(bound) && bound > 0)) throw new InvalidOptionError(`--divergence-bound must be a number > 0, got ${bound}.`);
  const publishEvery = int('publish-every', a['publish-every'], 1, 1_000_000);
  const publishMs = int('publish-ms', a['publish-ms'], 1, 86_400_000);
  const antiEntropy = int('anti-entropy-ms', a['anti-entropy-ms'], 0, 86_400_000);
  const barrierTimeout = int('barrier-timeout-ms', a['barrier-timeout-ms'], 0, 86_400_000);
  const minPeers = int('min-peers', a['min-peers'], 0, 10_000) ?? 0;
  const joinTimeout = int('join-timeout-ms', a['join-timeout-ms'], 1, 86_400_000) ?? 5000;
  const shard = a.shard === undefined ? undefined : parseShard(a.shard);
  return {
    peer: {
      runId,
      bind: a.bind,
      ...(a.advertise === undefined ? {} : { advertise: a.advertise }),
      peers: seeds,
      ...security,
      heartbeatIntervalMs: heartbeat,
      peerTimeoutMs: peerTimeout,
      sndHWM: hwm,
      rcvHWM: hwm,
      lingerMs: 2000,
    },
    trainer: {
      ...(publishEvery === undefined ? {} : { publishEvery }),
      ...(publishMs === undefined ? {} : { publishMs }),
      ...(a.float16 === undefined ? {} : { float16: a.float16 }),
      ...(sparse === undefined ? {} : { sparse }),
      merge,
      ...(antiEntropy === undefined ? {} : { antiEntropyMs: antiEntropy }),
      ...(barrierTimeout === undefined ? {} : { barrierTimeoutMs: barrierTimeout }),
      ...(a['layer-barrier'] === undefined ? {} : { layerBarrier: a['layer-barrier'] }),
      otherLayers: other,
      minPeers,
      ...(bound === undefined ? {} : { divergenceBound: bound }),
      reportEveryMs: Math.min(1000, heartbeat),
    },
    shard,
    join: { timeoutMs: joinTimeout, minPeers, seeds: seeds.length > 0 },
  };
}

/**
 * The model fingerprint peers compare: the architecture and the seed (peers must start from the
 * same initial weights, since deltas are added to them).
 */
export function peerFingerprint(dbn: Dbn): string {
  return modelFingerprint({
    format: 'dbn-node-peer/1',
    nVisible: dbn.nVisible,
    layers: dbn.layers.map((l) => ({ nHidden: l.nHidden, visible: l.options.visible, hidden: l.options.hidden })),
    seed: dbn.seed,
  });
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
