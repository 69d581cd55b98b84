/**
 * The options, events, counters and endpoint rules of {@link Peer} (src/sync/peer.ts), apart
 * from its logic.
 */
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { InvalidOptionError, SyncError } from '../errors.js';
import type { WireFormatError, WireFormatErrorCode } from '../errors.js';
import { validateOptions } from '../validate.js';
import type { Constraints } from '../validate.js';
import { keyPrefix, senderIdFor, senderMatchesKey } from './identity.js';
import { checkKeyPair } from './keys.js';
import type { KeyPair } from './keys.js';
import type { SenderStats } from './ledger.js';
import { isEndpoint } from './wire.js';
import type { DeltaMessage, HeartbeatMessage, LayerTensors, PeerAddress } from './wire.js';
import { isZ85Key } from './z85.js';

export type { SenderStats } from './ledger.js';

/** Options of {@link Peer}. */
export interface PeerOptions {
  /** Run id, 1–16 characters of `[A-Za-z0-9._-]`; peers of other runs are ignored. */
  readonly runId: string;
  /** Model fingerprint, 64 lowercase hex (e.g. SHA-256 of the architecture); others are rejected. */
  readonly fingerprint: string;
  /** 32 lowercase hex characters; random when absent. */
  readonly senderId?: string;
  /** PUB endpoint to bind, `tcp://host:port` (port 0 picks a free port). */
  readonly bind: string;
  /** ROUTER endpoint to bind; default: same host, port + 1 (port 0 when `bind` uses port 0). */
  readonly routerBind?: string;
  /** PUB endpoint other peers should connect to; default: the bound one (required for wildcard hosts). */
  readonly advertise?: string;
  /** ROUTER endpoint other peers should connect to; default: the bound one. */
  readonly advertiseRouter?: string;
  /**
   * Seed peers' PUB endpoints. With CURVE each must carry its public key after `#`:
   * `tcp://10.0.0.2:5555#<40 Z85 chars>`, and that key must be in the allowlist.
   */
  readonly peers?: readonly string[];
  /** This peer's CURVE key pair (Z85). Required unless `plaintext: true`. */
  readonly keys?: KeyPair;
  /** Public keys (Z85) of the peers allowed to connect and to be connected to. */
  readonly allowlist?: readonly string[];
  /** Run without encryption or authentication; must be said explicitly. */
  readonly plaintext?: boolean;
  /** Heartbeat period; default 1000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** A peer not heard for this long is lost; default 5 × heartbeatIntervalMs. */
  readonly peerTimeoutMs?: number;
  /** A non-seed address not heard for this long is forgotten; default 10 × peerTimeoutMs. */
  readonly forgetAfterMs?: number;
  /** Send high-water mark of the PUB (messages); beyond it ZeroMQ drops. Default 1000. */
  readonly sndHWM?: number;
  /** Receive high-water mark of the SUB (messages). Default 1000. */
  readonly rcvHWM?: number;
  /** Messages that may wait in this peer's own send queue; default 1000. */
  readonly maxQueuedMessages?: number;
  /** The sequence of the last delta this sender id already published (to resume); default 0. */
  readonly startSequence?: number;
  /** How long `close()` waits for queued messages to leave; default 100 ms. */
  readonly lingerMs?: number;
  /**
   * Largest frame (message part) accepted on the sockets that receive deltas and snapshots
   * (SUB, DEALER): ZeroMQ disconnects a peer that sends a larger one, before buffering it. Size
   * it from the model, the largest parameter tensor as float32 (a `PeerTrainer` sets it so, see
   * {@link Peer.setMaxFrameBytes}). Default 256 MiB. The ROUTER and PUB sockets, which receive
   * only requests, announces and subscriptions, always take at most {@link CONTROL_FRAME_BYTES}.
   */
  readonly maxFrameBytes?: number;
  /** Most peer records kept (seeds included); gossip beyond it is ignored and counted. Default 256. */
  readonly maxPeers?: number;
  /** Most new records one heartbeat may add (the rest wait for later heartbeats). Default 16. */
  readonly maxNewPeersPerHeartbeat?: number;
  /** Bytes that may wait in each of this peer's send queues (PUB, ROUTER, each DEALER). Default 1 GiB. */
  readonly maxQueuedBytes?: number;
  /** Bytes of delivered deltas that may wait in one {@link Peer.deltas} iterator; beyond, deltas are dropped and counted. Default 256 MiB. */
  readonly maxInboxBytes?: number;
  /** How long an encoded snapshot answers further requests for the same layers. Default 200 ms. */
  readonly snapshotCacheMs?: number;
  /** Snapshot requests one client connection may make per second; beyond, refused and counted. Default 4. */
  readonly snapshotRequestsPerSecond?: number;
}

/** Largest frame accepted on the ROUTER (snapshot requests, announces) and PUB (subscriptions) sockets. */
export const CONTROL_FRAME_BYTES = 256 * 1024;

/** Default of {@link PeerOptions.maxFrameBytes}. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Weights handed to and received from the snapshot service. */
export interface Snapshot {
  /** Every tensor of every layer, layers strictly increasing. */
  readonly layers: readonly LayerTensors[];
  /** Sender id → last sequence of that sender reflected in the weights. */
  readonly sequences: ReadonlyMap<string, number>;
}

/** A snapshot received from a peer. */
export interface ReceivedSnapshot extends Snapshot {
  readonly layers: LayerTensors[];
  readonly sequences: Map<string, number>;
  /** The sender id of the peer that served it. */
  readonly from: string;
}

/** Serves snapshots; receives the requested layers (empty: all). */
export type SnapshotProvider = (layers: readonly number[]) => Snapshot | Promise<Snapshot>;

/** A peer as reported by events and {@link PeerStats}. */
export interface PeerInfo extends PeerAddress {
  readonly senderId: string | null;
  /** `Date.now()` when last heard over its PUB, or null. */
  readonly lastSeen: number | null;
  readonly alive: boolean;
  /** Given in `peers` (never forgotten). */
  readonly seed: boolean;
}

/** Why a message or a connection was refused. */
export interface Rejection {
  /**
   * `'sender'`: a message carried a sender id not derived from the CURVE key of the connection
   * it came in on (one allowlisted peer posing as another). `'gossip'`: an address with a key
   * not allowed, not `tcp://host:port`, or beyond the record caps. `'endpoint'`: an address
   * ZeroMQ refused to connect to.
   */
  readonly reason: 'run' | 'fingerprint' | 'key' | 'gossip' | 'sender' | 'endpoint';
  readonly detail: string;
  readonly senderId?: string;
}

/** A snapshot of a peer's counters (a fresh object on every call). */
export interface PeerStats {
  readonly senderId: string;
  readonly pub: string;
  readonly router: string;
  readonly sent: { deltas: number; heartbeats: number; announces: number; snapshotRequests: number; snapshotResponses: number };
  /** Send errors reported by ZeroMQ (e.g. EAGAIN on a DEALER at its HWM). */
  readonly sendErrors: number;
  /**
   * Messages dropped here: `queueFull`, refused because this peer's own send queue was full;
   * `dealerHwm`, snapshot requests/announces refused by a DEALER at its high-water mark (its
   * peer unreachable). Drops by ZeroMQ at the PUB's high-water mark are silent by design of
   * PUB sockets; receivers count them as gaps.
   */
  readonly dropped: { queueFull: number; dealerHwm: number; snapshotRate: number; inboxFull: number };
  /** Well-formed messages of this run received (any kind, own echoes excluded). */
  readonly received: number;
  /** Deltas handed to the application. */
  readonly delivered: number;
  readonly duplicates: number;
  readonly stale: number;
  readonly gaps: number;
  readonly perSender: Record<string, SenderStats>;
  /** Frames that failed to decode, by {@link WireFormatError} code. */
  readonly malformed: Partial<Record<WireFormatErrorCode, number>>;
  /** Well-formed messages of a kind not expected on the socket they came in on. */
  readonly unexpected: number;
  readonly rejected: { run: number; fingerprint: number; key: number; gossip: number; sender: number; endpoint: number };
  /** Failed handshakes on this peer's client sockets (wrong key, plaintext vs CURVE …). */
  readonly handshakeFailures: number;
  /** Milliseconds spent decoding received messages of every kind (checksum, copies, checks). */
  readonly decodeMs: number;
  readonly peers: PeerInfo[];
}

/** Events of {@link Peer}. */
export interface PeerEvents {
  /** A delta from another peer, not seen before and above that sender's floor. */
  delta: [DeltaMessage];
  /** Any heartbeat heard over a PUB (progress, weight fingerprints, membership). */
  heartbeat: [HeartbeatMessage];
  'peer-joined': [PeerInfo];
  'peer-lost': [PeerInfo];
  rejected: [Rejection];
  malformed: [WireFormatError];
  'handshake-failed': [{ readonly endpoint: string; readonly error: Error }];
  /** Something unexpected that did not stop the peer (e.g. a snapshot provider threw). */
  warning: [Error];
  close: [];
}

export const RUN_ID_RE = /^[A-Za-z0-9._-]{1,16}$/;
export const HEX_RE = (n: number): RegExp => new RegExp(`^[0-9a-f]{${n}}$`);
export const TCP_RE = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]#\s]+):(\d{1,5})$/;
export const WILDCARD_HOSTS = new Set(['*', '0.0.0.0', '[::]', '::']);

export const CONSTRAINTS: Constraints = {
  runId: { kind: 'custom', expected: '1–16 characters of [A-Za-z0-9._-]', check: (v) => typeof v === 'string' && RUN_ID_RE.test(v) },
  fingerprint: { kind: 'custom', expected: '64 lowercase hex characters', check: (v) => typeof v === 'string' && HEX_RE(64).test(v) },
  senderId: { kind: 'custom', expected: '32 lowercase hex characters', check: (v) => typeof v === 'string' && HEX_RE(32).test(v) },
  bind: { kind: 'custom', expected: "an endpoint 'tcp://host:port'", check: (v) => typeof v === 'string' && TCP_RE.test(v) },
  routerBind: { kind: 'custom', expected: "an endpoint 'tcp://host:port'", check: (v) => typeof v === 'string' && TCP_RE.test(v) },
  advertise: { kind: 'custom', expected: "an endpoint like 'tcp://host:port'", check: isEndpoint },
  advertiseRouter: { kind: 'custom', expected: "an endpoint like 'tcp://host:port'", check: isEndpoint },
  peers: {
    kind: 'custom',
    expected: 'an array of endpoint strings',
    check: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
  },
  keys: { kind: 'object' },
  allowlist: { kind: 'custom', expected: 'an array of 40-character Z85 public keys', check: (v) => Array.isArray(v) && v.every(isZ85Key) },
  plaintext: { kind: 'boolean' },
  heartbeatIntervalMs: { kind: 'integer', min: 1, max: 3_600_000 },
  peerTimeoutMs: { kind: 'integer', min: 2, max: 86_400_000 },
  forgetAfterMs: { kind: 'integer', min: 2, max: 864_000_000 },
  sndHWM: { kind: 'integer', min: 1, max: 1_000_000_000 },
  rcvHWM: { kind: 'integer', min: 1, max: 1_000_000_000 },
  maxQueuedMessages: { kind: 'integer', min: 1, max: 1_000_000_000 },
  startSequence: { kind: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER - 1 },
  lingerMs: { kind: 'integer', min: 0, max: 60_000 },
  maxFrameBytes: { kind: 'integer', min: 1024, max: 2 ** 31 - 1 },
  maxPeers: { kind: 'integer', min: 1, max: 65536 },
  maxNewPeersPerHeartbeat: { kind: 'integer', min: 1, max: 1024 },
  maxQueuedBytes: { kind: 'integer', min: 1024, max: Number.MAX_SAFE_INTEGER },
  maxInboxBytes: { kind: 'integer', min: 1024, max: Number.MAX_SAFE_INTEGER },
  snapshotCacheMs: { kind: 'integer', min: 0, max: 3_600_000 },
  snapshotRequestsPerSecond: { kind: 'integer', min: 1, max: 1_000_000 },
};

/**
 * Splits a seed `tcp://host:port#<Z85 key>` into its endpoint and key (`null` without `#`).
 * Z85 may itself contain `#`; the first `#` ends the endpoint.
 */
export function parseSeed(seed: string): { readonly pub: string; readonly publicKey: string | null } {
  const i = seed.indexOf('#');
  const pub = i < 0 ? seed : seed.slice(0, i);
  const key = i < 0 ? null : seed.slice(i + 1);
  if (!isEndpoint(pub))
    throw new InvalidOptionError(`Seed peer '${seed}' must be an endpoint like 'tcp://host:port', optionally followed by '#<public key>'.`);
  if (key !== null && !isZ85Key(key))
    throw new InvalidOptionError(`Seed peer '${seed}': the part after '#' must be a 40-character Z85 public key.`);
  return { pub, publicKey: key };
}

/**
 * True for `tcp://host:port` with a port in 1–65535 and a host that is not a wildcard: the only
 * addresses taken from gossip (an `ipc://` or malformed endpoint is refused, never connected).
 */
export function isGossipEndpoint(s: string): boolean {
  const m = TCP_RE.exec(s);
  if (m === null) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 && !WILDCARD_HOSTS.has(m[1]!);
}

/** Port + 1 on the host of `bind`, or port 0 when `bind` asked for an ephemeral port. */
export function defaultRouterBind(bind: string, bound: string): string {
  const m = TCP_RE.exec(bind)!;
  const port = Number(m[2]);
  if (port === 0) return `tcp://${m[1]}:0`;
  const b = TCP_RE.exec(bound);
  const p = b === null ? port : Number(b[2]);
  if (p + 1 > 65535) throw new InvalidOptionError(`The 'bind' port ${p} leaves no port + 1 for the ROUTER; set 'routerBind'.`);
  return `tcp://${m[1]}:${p + 1}`;
}

/** `endpoint` with the host of `like` (keeps the port of `endpoint`). */
export function swapHost(endpoint: string, like: string): string {
  const e = TCP_RE.exec(endpoint);
  const l = TCP_RE.exec(like);
  if (e === null || l === null) return endpoint;
  return `tcp://${l[1]}:${e[2]}`;
}

/** {@link PeerOptions} validated, with every default filled in. */
export interface ResolvedPeerOptions {
  readonly runId: string;
  readonly fingerprint: string;
  readonly bind: string;
  readonly routerBind: string | undefined;
  readonly advertise: string | undefined;
  readonly advertiseRouter: string | undefined;
  readonly senderId: string;
  readonly startSequence: number;
  readonly heartbeatIntervalMs: number;
  readonly peerTimeoutMs: number;
  readonly forgetAfterMs: number;
  readonly sndHWM: number;
  readonly rcvHWM: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly maxInboxBytes: number;
  readonly lingerMs: number;
  readonly maxFrameBytes: number;
  readonly maxPeers: number;
  readonly maxNewPeersPerHeartbeat: number;
  readonly snapshotCacheMs: number;
  readonly snapshotRequestsPerSecond: number;
  /** CURVE keys and the allowed public keys (this peer's own included), or null in plaintext. */
  readonly curve: { readonly keys: KeyPair; readonly allowed: ReadonlySet<string> } | null;
  readonly seeds: ReadonlyArray<{ readonly pub: string; readonly publicKey: string | null }>;
}

/**
 * Validates `options` (one {@link InvalidOptionError} naming the first problem) and fills in the
 * defaults. Under CURVE the sender id carries the key's prefix (src/sync/identity.ts): a given
 * `senderId` without it is refused.
 */
export function resolvePeerOptions(options: PeerOptions): ResolvedPeerOptions {
  validateOptions('Peer', CONSTRAINTS, options);
  for (const k of ['runId', 'fingerprint', 'bind'] as const) {
    if (options[k] === undefined) throw new InvalidOptionError(`The '${k}' option of Peer is required.`);
  }
  const hb = options.heartbeatIntervalMs ?? 1000;
  const timeout = options.peerTimeoutMs ?? 5 * hb;
  if (timeout <= hb) {
    throw new InvalidOptionError(`The 'peerTimeoutMs' option of Peer must exceed 'heartbeatIntervalMs' (${hb}). Got ${timeout}.`);
  }
  const curve = resolveCurve(options);
  let senderId = options.senderId ?? (curve === null ? randomBytes(16).toString('hex') : senderIdFor(curve.keys.publicKey));
  if (curve !== null && !senderMatchesKey(senderId, curve.keys.publicKey)) {
    throw new InvalidOptionError(
      `The 'senderId' option of Peer must start with '${keyPrefix(curve.keys.publicKey)}' (derived from the public key) under CURVE; got ${senderId}.`,
    );
  }
  senderId = senderId.toLowerCase();
  return {
    runId: options.runId,
    fingerprint: options.fingerprint,
    bind: options.bind,
    routerBind: options.routerBind,
    advertise: options.advertise,
    advertiseRouter: options.advertiseRouter,
    senderId,
    startSequence: options.startSequence ?? 0,
    heartbeatIntervalMs: hb,
    peerTimeoutMs: timeout,
    forgetAfterMs: options.forgetAfterMs ?? 10 * timeout,
    sndHWM: options.sndHWM ?? 1000,
    rcvHWM: options.rcvHWM ?? 1000,
    maxQueuedMessages: options.maxQueuedMessages ?? 1000,
    maxQueuedBytes: options.maxQueuedBytes ?? 2 ** 30,
    maxInboxBytes: options.maxInboxBytes ?? 256 * 2 ** 20,
    lingerMs: options.lingerMs ?? 100,
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxPeers: options.maxPeers ?? 256,
    maxNewPeersPerHeartbeat: options.maxNewPeersPerHeartbeat ?? 16,
    snapshotCacheMs: options.snapshotCacheMs ?? 200,
    snapshotRequestsPerSecond: options.snapshotRequestsPerSecond ?? 4,
    curve,
    seeds: (options.peers ?? []).map((s) => checkSeed(s, curve)),
  };
}

function resolveCurve(options: PeerOptions): ResolvedPeerOptions['curve'] {
  const plaintext = options.plaintext === true;
  if (plaintext && (options.keys !== undefined || options.allowlist !== undefined)) {
    throw new InvalidOptionError("Peer takes either 'plaintext: true' or 'keys' + 'allowlist', not both.");
  }
  if (plaintext) return null;
  if (options.keys === undefined || options.allowlist === undefined) {
    throw new InvalidOptionError(
      "Peer needs 'keys' and 'allowlist' for CURVE, or 'plaintext: true' to run unencrypted and unauthenticated.",
    );
  }
  if (zmq.capability.curve !== true) throw new SyncError('This zeromq build has no CURVE support; use plaintext: true.', 'ECURVE');
  try {
    checkKeyPair(options.keys, "The 'keys' option of Peer");
  } catch (err) {
    throw new InvalidOptionError((err as Error).message);
  }
  return { keys: options.keys, allowed: new Set([...options.allowlist, options.keys.publicKey]) };
}

function checkSeed(s: string, curve: ResolvedPeerOptions['curve']): { pub: string; publicKey: string | null } {
  const seed = parseSeed(s);
  if (curve !== null && seed.publicKey === null) {
    throw new InvalidOptionError(`Seed peer '${s}' needs its public key ('${s}#<key>') when CURVE is on.`);
  }
  if (curve !== null && !curve.allowed.has(seed.publicKey!)) {
    throw new InvalidOptionError(`Seed peer '${s}' has a public key that is not in the allowlist.`);
  }
  if (curve === null && seed.publicKey !== null) {
    throw new InvalidOptionError(`Seed peer '${s}' carries a public key but the peer runs with plaintext: true.`);
  }
  return seed;
}

/**
 * The addresses a peer advertises: `advertise`/`advertiseRouter`, else the bound ones (the ROUTER
 * on the advertised host when only `advertise` is set). InvalidOptionError for a wildcard host.
 */
export function advertisedAddress(o: ResolvedPeerOptions, pubBound: string, routerBound: string): PeerAddress {
  const pub = o.advertise ?? pubBound;
  const router = o.advertiseRouter ?? (o.advertise === undefined ? routerBound : swapHost(routerBound, pub));
  for (const [name, ep] of [
    ['advertise', pub],
    ['advertiseRouter', router],
  ] as const) {
    if (WILDCARD_HOSTS.has(TCP_RE.exec(ep)?.[1] ?? '')) {
      throw new InvalidOptionError(`Peer binds a wildcard host (${ep}); set the '${name}' option to an address other peers can reach.`);
    }
  }
  return { pub, router, publicKey: o.curve?.keys.publicKey ?? null };
}

/** InvalidOptionError unless `sequences` is a Map of 32-hex sender ids to integers ≥ 0. */
export function checkSequences(sequences: unknown, where: string): asserts sequences is ReadonlyMap<string, number> {
  if (!(sequences instanceof Map))
    throw new InvalidOptionError(`Argument 'sequences' passed to '${where}' must be a Map of sender id to sequence.`);
  for (const [sender, seq] of sequences as Map<unknown, unknown>) {
    if (typeof sender !== 'string' || !HEX_RE(32).test(sender) || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
      throw new InvalidOptionError(
        `Argument 'sequences' passed to '${where}' must map 32-hex sender ids to integers >= 0; got ${String(sender)} → ${String(seq)}.`,
      );
    }
  }
}
