/**
 * A peer of a serverless training run: publishes this process's parameter deltas, receives the
 * other peers', keeps track of who is alive (heartbeats + gossip) and serves/requests weight
 * snapshots (the Clone pattern). No numeric work happens here: the model side hands in and
 * receives Float32Arrays.
 *
 * Sockets, all in one private ZeroMQ context per peer:
 * - XPUB bound at `bind`: DELTA and HEARTBEAT messages. (An XPUB is a PUB that also sees
 *   subscriptions; a new subscriber gets a heartbeat at once instead of at the next tick.)
 * - ROUTER bound at `routerBind`: snapshot requests and announces (heartbeats sent directly).
 *   Default: the host of `bind` with port + 1; an ephemeral port when `bind` uses port 0.
 * - One SUB per known peer, connected to its PUB (with that peer's server key), subscribed to
 *   `dbn/<runId>/`.
 * - One DEALER per peer ROUTER, on demand (snapshot requests, announces).
 * - With CURVE, a ZAP handler (ROUTER at `inproc://zeromq.zap.01`) that admits only clients
 *   whose public key is in the allowlist (this peer's own key is always admitted).
 *
 * Membership: every `heartbeatIntervalMs` a heartbeat carries this peer's addresses, the peers
 * it hears (PUB, ROUTER, public key), its progress and weight fingerprint. A peer connects its
 * SUB to every peer it learns of (seeds, gossip); a peer that hears someone whose heartbeat
 * does not list it yet sends that peer its heartbeat over a DEALER (an announce), so the other
 * side connects back. A peer not heard for `peerTimeoutMs` is lost ('peer-lost'); its address
 * stays connected (ZeroMQ keeps reconnecting) and 'peer-joined' fires when it is heard again.
 * Non-seed addresses not heard for `forgetAfterMs` are disconnected and forgotten. A failed
 * handshake (key not allowed, CURVE against plaintext) is retried after `peerTimeoutMs`.
 *
 * Trust: with CURVE a peer connects only to servers whose key is in its allowlist (learned
 * addresses with other keys are ignored and counted) and its own sockets admit only allowlisted
 * clients, so whatever it delivers came from an allowlisted key. A sender id is bound to the key
 * it was first heard under (deltas, heartbeats and snapshots arrive over connections whose
 * server key this peer chose), so one allowlisted peer cannot speak for another (refused,
 * counted as `rejected.sender`). Requests and announces reach the ROUTER, whose client keys
 * zeromq.js does not expose: they are not bound (they carry no weights). Every receiving socket
 * caps the size of a frame (`maxFrameBytes`, sized from the model by `PeerTrainer`; the ROUTER
 * and PUB at {@link CONTROL_FRAME_BYTES}): ZeroMQ drops a connection that sends a bigger one
 * before buffering it. With `plaintext: true` anyone who reaches the ports can read and inject
 * deltas.
 *
 * Sequences: each sender numbers its deltas 1, 2, 3 … (one counter across layers). For every
 * sender a receiver keeps a floor: every sequence ≤ floor was delivered, is known lost, or is
 * covered by a snapshot. A delta at or below the floor is a duplicate (it was delivered) or
 * stale (it was not) and is dropped; a delta above floor + 1 counts the missing ones as gaps.
 * A heartbeat (which travels behind the deltas on the same connection) carries the sender's
 * last sequence, so losses at the tail are counted too. A process that reuses a sender id
 * must continue its sequence (`startSequence`), or its deltas are dropped as stale.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as zmq from 'zeromq';
import { DbnError, InvalidOptionError, SyncError, WireFormatError } from '../errors.js';
import type { WireFormatErrorCode } from '../errors.js';
import { validateOptions } from '../validate.js';
import type { Constraints } from '../validate.js';
import { checkKeyPair } from './keys.js';
import type { KeyPair } from './keys.js';
import { Inbox, SendQueue } from './queues.js';
import { serveZap } from './zap.js';
import {
  decode,
  encodeDelta,
  encodeDeltaFrames,
  encodeHeartbeat,
  encodeSnapshotRequest,
  encodeSnapshotResponse,
  isEndpoint,
  runPrefix,
} from './wire.js';
import type {
  DeltaMessage,
  Envelope,
  HeartbeatMessage,
  LayerTensors,
  Message,
  PeerAddress,
  Progress,
  Shape,
  SnapshotRequestMessage,
  SnapshotResponseMessage,
} from './wire.js';
import { isZ85Key, z85Decode } from './z85.js';

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
   * `'sender'`: a message carried a sender id first heard under another CURVE key (one
   * allowlisted peer posing as another).
   */
  readonly reason: 'run' | 'fingerprint' | 'key' | 'gossip' | 'sender';
  readonly detail: string;
  readonly senderId?: string;
}

/** Counters of one sender. */
export interface SenderStats {
  delivered: number;
  duplicates: number;
  stale: number;
  gaps: number;
  /** Every sequence ≤ this is delivered, known lost or covered by a snapshot. */
  floor: number;
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
  readonly dropped: { queueFull: number; dealerHwm: number };
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
  readonly rejected: { run: number; fingerprint: number; key: number; gossip: number; sender: number };
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

interface PeerRecord {
  pub: string;
  router: string | null;
  publicKey: string | null;
  senderId: string | null;
  lastSeen: number | null;
  addedAt: number;
  alive: boolean;
  /** Its last heartbeat listed us among the peers it hears: what we publish reaches it. */
  hearsUs: boolean;
  seed: boolean;
  lastAnnounce: number;
  /** The addresses the peer advertises in its own heartbeats (may differ from `pub`). */
  advertised: PeerAddress | null;
  sub: zmq.Subscriber | null;
  retry: NodeJS.Timeout | null;
}

interface SenderState extends SenderStats {
  /** Sequences delivered recently, for telling duplicates from stale deltas. */
  recent: Set<number>;
  recentOrder: number[];
}

interface DealerEntry {
  dealer: zmq.Dealer;
  queue: SendQueue;
}

interface Pending {
  resolve: (m: SnapshotResponseMessage) => void;
  reject: (err: unknown) => void;
}

const RECENT = 1024;
const RUN_ID_RE = /^[A-Za-z0-9._-]{1,16}$/;
const HEX_RE = (n: number): RegExp => new RegExp(`^[0-9a-f]{${n}}$`);
const TCP_RE = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]#\s]+):(\d{1,5})$/;
const WILDCARD_HOSTS = new Set(['*', '0.0.0.0', '[::]', '::']);

const CONSTRAINTS: Constraints = {
  runId: { kind: 'custom', expected: "1–16 characters of [A-Za-z0-9._-]", check: (v) => typeof v === 'string' && RUN_ID_RE.test(v) },
  fingerprint: { kind: 'custom', expected: '64 lowercase hex characters', check: (v) => typeof v === 'string' && HEX_RE(64).test(v) },
  senderId: { kind: 'custom', expected: '32 lowercase hex characters', check: (v) => typeof v === 'string' && HEX_RE(32).test(v) },
  bind: { kind: 'custom', expected: "an endpoint 'tcp://host:port'", check: (v) => typeof v === 'string' && TCP_RE.test(v) },
  routerBind: { kind: 'custom', expected: "an endpoint 'tcp://host:port'", check: (v) => typeof v === 'string' && TCP_RE.test(v) },
  advertise: { kind: 'custom', expected: "an endpoint like 'tcp://host:port'", check: isEndpoint },
  advertiseRouter: { kind: 'custom', expected: "an endpoint like 'tcp://host:port'", check: isEndpoint },
  peers: { kind: 'custom', expected: 'an array of endpoint strings', check: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string') },
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
};

/**
 * Splits a seed `tcp://host:port#<Z85 key>` into its endpoint and key (`null` without `#`).
 * Z85 may itself contain `#`; the first `#` ends the endpoint.
 */
export function parseSeed(seed: string): { readonly pub: string; readonly publicKey: string | null } {
  const i = seed.indexOf('#');
  const pub = i < 0 ? seed : seed.slice(0, i);
  const key = i < 0 ? null : seed.slice(i + 1);
  if (!isEndpoint(pub)) throw new InvalidOptionError(`Seed peer '${seed}' must be an endpoint like 'tcp://host:port', optionally followed by '#<public key>'.`);
  if (key !== null && !isZ85Key(key)) throw new InvalidOptionError(`Seed peer '${seed}': the part after '#' must be a 40-character Z85 public key.`);
  return { pub, publicKey: key };
}

/**
 * One peer of a run. Create with {@link Peer.create} (or `new Peer(options)` then
 * {@link Peer.start}); {@link Peer.close} stops every timer, socket and iterator.
 *
 * @example
 * const peer = await Peer.create({ runId: 'mnist', fingerprint, bind: 'tcp://0.0.0.0:5555',
 *   advertise: 'tcp://10.0.0.1:5555', peers: ['tcp://10.0.0.2:5555#…'], keys, allowlist });
 * peer.on('delta', (d) => model.enqueue(d));
 * peer.publishDelta(0, [dW, dB, dC], [[784, 500], [1, 784], [1, 500]]);
 */
export class Peer extends EventEmitter<PeerEvents> {
  /** This peer's sender id (32 hex). */
  readonly senderId: string;

  private readonly opts: Required<
    Pick<PeerOptions, 'runId' | 'fingerprint' | 'bind' | 'heartbeatIntervalMs' | 'peerTimeoutMs' | 'forgetAfterMs' | 'sndHWM' | 'rcvHWM' | 'maxQueuedMessages' | 'lingerMs'>
  >;
  private readonly curve: { readonly keys: KeyPair; readonly allowed: Set<string>; readonly allowedRaw: Buffer[] } | null;
  private readonly seeds: Array<{ pub: string; publicKey: string | null }>;
  private readonly routerBindOpt: string | undefined;
  private readonly advertiseOpt: string | undefined;
  private readonly advertiseRouterOpt: string | undefined;

  private ctx: zmq.Context | undefined;
  private pub: zmq.XPublisher | undefined;
  private router: zmq.Router | undefined;
  private zap: zmq.Router | undefined;
  private pubQueue: SendQueue | undefined;
  private routerQueue: SendQueue | undefined;
  private readonly dealers = new Map<string, DealerEntry>();
  private readonly records = new Map<string, PeerRecord>();
  /** Other names of known peers (their advertised PUB endpoints, our own aliases → null). */
  private readonly aliases = new Map<string, PeerRecord | null>();
  private readonly senders = new Map<string, SenderState>();
  /** Sender id → the CURVE key it was first heard under (CURVE only). */
  private readonly senderKeys = new Map<string, string>();
  private frameLimit: number;
  private readonly ignoredGossip = new Set<string>();
  private readonly pending = new Map<number, Pending>();
  private readonly inboxes = new Set<Inbox<DeltaMessage>>();
  private provider: SnapshotProvider | undefined;
  private self: PeerAddress | undefined;
  private env: Envelope | undefined;
  private timer: NodeJS.Timeout | undefined;
  private hbTimer: NodeJS.Timeout | undefined;
  private lastHeartbeatAt = 0;
  private started = false;
  private closed = false;
  private sequence: number;
  private readonly layerSequence = new Map<number, number>();
  private requestCounter = 0;
  private progress: Progress = { epoch: 0, batches: 0, samples: 0 };
  private weightFingerprint: Float64Array = new Float64Array(0);
  private readonly counters = {
    sent: { deltas: 0, heartbeats: 0, announces: 0, snapshotRequests: 0, snapshotResponses: 0 },
    sendErrors: 0,
    dropped: { queueFull: 0, dealerHwm: 0 },
    received: 0,
    malformed: {} as Partial<Record<WireFormatErrorCode, number>>,
    unexpected: 0,
    rejected: { run: 0, fingerprint: 0, key: 0, gossip: 0, sender: 0 },
    handshakeFailures: 0,
    decodeMs: 0,
  };

  /** Validates `options`; opens nothing until {@link start}. */
  constructor(options: PeerOptions) {
    super();
    validateOptions('Peer', CONSTRAINTS, options);
    for (const k of ['runId', 'fingerprint', 'bind'] as const) {
      if (options[k] === undefined) throw new InvalidOptionError(`The '${k}' option of Peer is required.`);
    }
    const hb = options.heartbeatIntervalMs ?? 1000;
    const timeout = options.peerTimeoutMs ?? 5 * hb;
    if (timeout <= hb) {
      throw new InvalidOptionError(`The 'peerTimeoutMs' option of Peer must exceed 'heartbeatIntervalMs' (${hb}). Got ${timeout}.`);
    }
    this.opts = {
      runId: options.runId,
      fingerprint: options.fingerprint,
      bind: options.bind,
      heartbeatIntervalMs: hb,
      peerTimeoutMs: timeout,
      forgetAfterMs: options.forgetAfterMs ?? 10 * timeout,
      sndHWM: options.sndHWM ?? 1000,
      rcvHWM: options.rcvHWM ?? 1000,
      maxQueuedMessages: options.maxQueuedMessages ?? 1000,
      lingerMs: options.lingerMs ?? 100,
    };
    this.senderId = options.senderId ?? randomBytes(16).toString('hex');
    this.sequence = options.startSequence ?? 0;
    this.frameLimit = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.routerBindOpt = options.routerBind;
    this.advertiseOpt = options.advertise;
    this.advertiseRouterOpt = options.advertiseRouter;

    const plaintext = options.plaintext === true;
    if (plaintext && (options.keys !== undefined || options.allowlist !== undefined)) {
      throw new InvalidOptionError("Peer takes either 'plaintext: true' or 'keys' + 'allowlist', not both.");
    }
    if (!plaintext) {
      if (options.keys === undefined || options.allowlist === undefined) {
        throw new InvalidOptionError("Peer needs 'keys' and 'allowlist' for CURVE, or 'plaintext: true' to run unencrypted and unauthenticated.");
      }
      if (zmq.capability.curve !== true) throw new SyncError('This zeromq build has no CURVE support; use plaintext: true.', 'ECURVE');
      try {
        checkKeyPair(options.keys, "The 'keys' option of Peer");
      } catch (err) {
        throw new InvalidOptionError((err as Error).message);
      }
      const allowed = new Set([...options.allowlist, options.keys.publicKey]);
      this.curve = { keys: options.keys, allowed, allowedRaw: [] };
    } else {
      this.curve = null;
    }
    this.seeds = (options.peers ?? []).map((s) => {
      const seed = parseSeed(s);
      if (this.curve !== null && seed.publicKey === null) {
        throw new InvalidOptionError(`Seed peer '${s}' needs its public key ('${s}#<key>') when CURVE is on.`);
      }
      if (this.curve !== null && !this.curve.allowed.has(seed.publicKey!)) {
        throw new InvalidOptionError(`Seed peer '${s}' has a public key that is not in the allowlist.`);
      }
      if (this.curve === null && seed.publicKey !== null) {
        throw new InvalidOptionError(`Seed peer '${s}' carries a public key but the peer runs with plaintext: true.`);
      }
      return seed;
    });
  }

  /** `new Peer(options)` then {@link start}. */
  static async create(options: PeerOptions): Promise<Peer> {
    const peer = new Peer(options);
    try {
      await peer.start();
    } catch (err) {
      await peer.close();
      throw err;
    }
    return peer;
  }

  /** This peer's advertised addresses (after {@link start}). */
  get address(): PeerAddress {
    if (this.self === undefined) throw new SyncError('Peer.address is known only after start().', 'ENOTSTARTED');
    return this.self;
  }

  /** This peer's PUB endpoint with its key, in the form other peers take as a seed. */
  get seedAddress(): string {
    const a = this.address;
    return a.publicKey === null ? a.pub : `${a.pub}#${a.publicKey}`;
  }

  /** The sequence of the last delta published (0 before the first). */
  get lastSequence(): number {
    return this.sequence;
  }

  /** Binds, connects to the seeds, and starts heartbeats. */
  async start(): Promise<void> {
    if (this.started) throw new SyncError('Peer.start() was already called.', 'ESTARTED');
    if (this.closed) throw new SyncError('Peer is closed.', 'ECLOSED');
    this.started = true;
    const o = this.opts;
    const ctx = new zmq.Context({ blocky: false });
    this.ctx = ctx;
    const security = (server: boolean): object => {
      if (this.curve === null) return {};
      const k = this.curve.keys;
      return server
        ? { curveServer: true, curveSecretKey: k.secretKey, curvePublicKey: k.publicKey, zapDomain: 'dbn', zapEnforceDomain: true }
        : { curveSecretKey: k.secretKey, curvePublicKey: k.publicKey };
    };

    if (this.curve !== null) {
      for (const key of this.curve.allowed) this.curve.allowedRaw.push(Buffer.from(rawKey(key)));
      this.zap = new zmq.Router({ context: ctx, linger: 0 });
      await this.bindOrFail(this.zap, 'inproc://zeromq.zap.01', 'ZAP handler');
      const allowedRaw = this.curve.allowedRaw;
      void serveZap(this.zap, (key) => allowedRaw.some((k) => k.equals(key)), (detail) => {
        this.counters.rejected.key++;
        this.emit('rejected', { reason: 'key', detail });
      });
    }

    this.pub = new zmq.XPublisher({ context: ctx, sendHighWaterMark: o.sndHWM, linger: o.lingerMs, maxMessageSize: CONTROL_FRAME_BYTES, ...security(true) });
    this.pub.verbosity = 'allSubs';
    await this.bindOrFail(this.pub, o.bind, 'PUB socket');
    const pubBound = this.pub.lastEndpoint ?? o.bind;
    const routerBind = this.routerBindOpt ?? defaultRouterBind(o.bind, pubBound);
    this.router = new zmq.Router({ context: ctx, linger: o.lingerMs, maxMessageSize: CONTROL_FRAME_BYTES, ...security(true) });
    await this.bindOrFail(this.router, routerBind, 'ROUTER socket');
    const routerBound = this.router.lastEndpoint ?? routerBind;
    const pubAddr = this.advertiseOpt ?? pubBound;
    const routerAddr = this.advertiseRouterOpt ?? (this.advertiseOpt === undefined ? routerBound : swapHost(routerBound, pubAddr));
    for (const [name, ep] of [['advertise', pubAddr], ['advertiseRouter', routerAddr]] as const) {
      if (WILDCARD_HOSTS.has(TCP_RE.exec(ep)?.[1] ?? '')) {
        throw new InvalidOptionError(`Peer binds a wildcard host (${ep}); set the '${name}' option to an address other peers can reach.`);
      }
    }
    this.self = { pub: pubAddr, router: routerAddr, publicKey: this.curve?.keys.publicKey ?? null };
    this.env = { runId: o.runId, fingerprint: o.fingerprint, senderId: this.senderId };

    const onSendError = (err: unknown): void => {
      this.counters.sendErrors++;
      this.warn(err);
    };
    this.watchHandshakes(this.pub);
    this.watchHandshakes(this.router);
    this.pubQueue = new SendQueue(this.pub, o.maxQueuedMessages, onSendError);
    this.routerQueue = new SendQueue(this.router, o.maxQueuedMessages, onSendError);
    void this.receiveLoop(this.router, (frames) => this.onRouterMessage(frames));
    void this.receiveLoop(this.pub, (frames) => this.onSubscription(frames));

    const now = Date.now();
    for (const s of this.seeds) {
      if (s.pub === this.self.pub) continue;
      this.addRecord({ pub: s.pub, router: '', publicKey: s.publicKey }, true, now);
    }
    this.timer = setInterval(() => this.tick(), o.heartbeatIntervalMs);
    this.timer.unref();
    this.sendHeartbeat();
  }

  /** Sets the progress carried by the next heartbeats. */
  setProgress(progress: Progress): void {
    for (const k of ['epoch', 'batches', 'samples'] as const) {
      const v = progress[k];
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new InvalidOptionError(`Argument 'progress.${k}' passed to 'Peer.setProgress' must be a non-negative integer, got ${String(v)}.`);
      }
    }
    this.progress = { epoch: progress.epoch, batches: progress.batches, samples: progress.samples };
  }

  /** Sets the weight fingerprint carried by the next heartbeats: 0–64 numbers, opaque to sync. */
  setWeightFingerprint(values: ArrayLike<number>): void {
    if (values.length > 64) throw new InvalidOptionError(`Argument 'values' passed to 'Peer.setWeightFingerprint' may hold at most 64 numbers, got ${values.length}.`);
    this.weightFingerprint = Float64Array.from(values);
  }

  /** The largest frame accepted on the SUB and DEALER sockets (see {@link PeerOptions.maxFrameBytes}). */
  get maxFrameBytes(): number {
    return this.frameLimit;
  }

  /**
   * Changes {@link maxFrameBytes}. Sockets opened from now on take the new limit; the SUB
   * sockets already connected are reconnected (messages in flight on them are lost and counted
   * as gaps) and the DEALERs reopened on next use. Nothing happens when the limit is unchanged.
   */
  setMaxFrameBytes(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 1024 || bytes > 2 ** 31 - 1) {
      throw new InvalidOptionError(`Argument 'bytes' passed to 'Peer.setMaxFrameBytes' must be an integer in [1024, 2^31 - 1], got ${String(bytes)}.`);
    }
    if (bytes === this.frameLimit) return;
    this.frameLimit = bytes;
    if (this.closed || !this.started) return;
    for (const rec of this.records.values()) {
      if (rec.sub === null) continue;
      try {
        rec.sub.disconnect(rec.pub);
      } catch {
        // Not connected: connect() below applies the limit anyway.
      }
      // Set between disconnect and connect: the option applies to connections made afterwards.
      rec.sub.maxMessageSize = bytes;
      try {
        rec.sub.connect(rec.pub);
      } catch (err) {
        this.warn(err);
      }
    }
    for (const router of [...this.dealers.keys()]) this.dropDealer(router);
  }

  /**
   * Publishes the change of one layer's parameters. Assigns the next sequence number, copies
   * (and encodes) the data at once — `tensors` may be reused as soon as this returns — and
   * queues it; never waits for the network.
   * @param tensors one Float32Array per parameter tensor, `shapes[i][0] * shapes[i][1]` values each.
   * @param shapes `[rows, cols]` per tensor.
   * @returns the sequence assigned, or `undefined` when this peer's send queue is full (nothing
   *   was assigned or sent; keep accumulating and try again later).
   */
  publishDelta(layer: number, tensors: readonly Float32Array[], shapes: readonly Shape[], opts: { readonly float16?: boolean } = {}): number | undefined {
    const { env, pubQueue } = this.live('publishDelta');
    const sequence = this.sequence + 1;
    const frames = encodeDelta(env, {
      layer,
      sequence,
      baseSequence: this.layerSequence.get(layer) ?? 0,
      tensors,
      shapes,
      float16: opts.float16 === true,
    });
    return this.queueDelta(layer, sequence, pubQueue, frames);
  }

  /**
   * {@link publishDelta} for payload frames the caller wrote itself in the wire encoding (see
   * `encodeDeltaFrames`): float32 little-endian, binary16 little-endian with `float16`, or SPARSE
   * entries with `sparse` (`sparseFrame`). The
   * frames are queued as they are, not copied: the caller must not write to them afterwards.
   * @returns the sequence assigned, or `undefined` when the send queue is full.
   */
  publishDeltaFrames(
    layer: number,
    payload: readonly Buffer[],
    shapes: readonly Shape[],
    opts: { readonly float16?: boolean; readonly sparse?: boolean; readonly finiteChecked?: boolean } = {},
  ): number | undefined {
    const { env, pubQueue } = this.live('publishDeltaFrames');
    const sequence = this.sequence + 1;
    const frames = encodeDeltaFrames(env, {
      layer,
      sequence,
      baseSequence: this.layerSequence.get(layer) ?? 0,
      payload,
      shapes,
      float16: opts.float16 === true,
      sparse: opts.sparse === true,
      finiteChecked: opts.finiteChecked === true,
    });
    return this.queueDelta(layer, sequence, pubQueue, frames);
  }

  private queueDelta(layer: number, sequence: number, pubQueue: SendQueue, frames: Buffer[]): number | undefined {
    if (!pubQueue.push(frames)) {
      this.counters.dropped.queueFull++;
      return undefined;
    }
    this.sequence = sequence;
    this.layerSequence.set(layer, sequence);
    this.counters.sent.deltas++;
    return sequence;
  }

  /** Resolves once everything published so far has been handed to ZeroMQ. */
  async flush(): Promise<void> {
    await this.pubQueue?.drain();
  }

  /**
   * Delivered deltas as an async iterator (each call gives an independent one, starting now);
   * iteration ends on {@link close}. The 'delta' event delivers the same messages. The queue
   * behind an iterator is unbounded: keep reading it, or end it with `return()`.
   */
  deltas(): AsyncIterableIterator<DeltaMessage> {
    const inbox: Inbox<DeltaMessage> = new Inbox(() => this.inboxes.delete(inbox));
    if (this.closed) inbox.end();
    else this.inboxes.add(inbox);
    return inbox;
  }

  /**
   * Answers snapshot requests from other peers with `provider()` (which must return every
   * tensor of the requested layers and the per-sender sequences those weights reflect — see
   * {@link sequences}). Without a provider, requests get an "unavailable" answer.
   */
  serveSnapshots(provider: SnapshotProvider | undefined): void {
    if (provider !== undefined && typeof provider !== 'function') {
      throw new InvalidOptionError(`Argument 'provider' passed to 'Peer.serveSnapshots' must be a function.`);
    }
    this.provider = provider;
  }

  /**
   * The per-sender floors (see the top of this file) plus this peer's own last sequence: what
   * a snapshot taken now reflects, provided every delivered delta has been applied.
   */
  sequences(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [id, s] of this.senders) m.set(id, s.floor);
    if (this.sequence > 0) m.set(this.senderId, this.sequence);
    return m;
  }

  /**
   * Asks a live peer (most recently heard first) for a snapshot and waits up to `timeoutMs`
   * (waiting for a peer to be heard if none is yet). Afterwards, deltas of each sender at or
   * below the snapshot's sequence for it are dropped as stale — unless `adoptSequences` is
   * false (e.g. a snapshot only compared or averaged with local weights); then call
   * {@link adoptSequences} if and when the weights are taken over.
   * @throws SyncError `ETIMEDOUT` when no peer answered in time, `ECLOSED` when closed meanwhile.
   */
  async requestSnapshot(timeoutMs: number, opts: { readonly layers?: readonly number[]; readonly adoptSequences?: boolean } = {}): Promise<ReceivedSnapshot> {
    const { env } = this.live('requestSnapshot');
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidOptionError(`Argument 'timeoutMs' passed to 'Peer.requestSnapshot' must be a positive number, got ${timeoutMs}.`);
    }
    const layers = [...(opts.layers ?? [])];
    const deadline = Date.now() + timeoutMs;
    const tried = new Set<string>();
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const candidate = [...this.records.values()]
        .filter((r) => r.alive && r.router !== null && !tried.has(r.pub))
        .sort((a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0))[0];
      if (candidate === undefined) {
        await this.waitForEvent('peer-joined', remaining);
        if (this.closed) throw new SyncError('Peer closed while waiting for a snapshot.', 'ECLOSED');
        tried.clear();
        continue;
      }
      tried.add(candidate.pub);
      const requestId = ++this.requestCounter;
      const entry = this.dealerFor(candidate);
      const frames = encodeSnapshotRequest(env, { requestId, layers });
      if (!entry.queue.push(frames)) {
        this.counters.dropped.queueFull++;
        continue;
      }
      this.counters.sent.snapshotRequests++;
      const res = await this.awaitResponse(requestId, candidate, remaining);
      if (this.closed) throw new SyncError('Peer closed while waiting for a snapshot.', 'ECLOSED');
      if (res === undefined || !res.available) continue;
      if (opts.adoptSequences !== false) this.adoptSequences(res.sequences);
      return { layers: res.layers, sequences: res.sequences, from: res.senderId };
    }
    throw new SyncError(`No peer answered a snapshot request within ${timeoutMs} ms.`, 'ETIMEDOUT');
  }

  /**
   * Raises each sender's floor to the sequence given for it (this peer's own id is skipped):
   * from now on its deltas at or below that sequence are dropped as stale. What
   * {@link requestSnapshot} does by default once the snapshot's weights are taken over.
   */
  adoptSequences(sequences: ReadonlyMap<string, number>): void {
    if (!(sequences instanceof Map)) throw new InvalidOptionError(`Argument 'sequences' passed to 'Peer.adoptSequences' must be a Map of sender id to sequence.`);
    for (const [sender, seq] of sequences) {
      if (typeof sender !== 'string' || !HEX_RE(32).test(sender) || !Number.isSafeInteger(seq) || seq < 0) {
        throw new InvalidOptionError(`Argument 'sequences' passed to 'Peer.adoptSequences' must map 32-hex sender ids to integers >= 0; got ${String(sender)} → ${String(seq)}.`);
      }
    }
    for (const [sender, seq] of sequences) {
      if (sender === this.senderId) continue;
      const st = this.senderState(sender);
      if (seq > st.floor) st.floor = seq;
    }
  }

  /**
   * Resolves once at least `count` peers are alive both ways: heard within `peerTimeoutMs`,
   * and their last heartbeat lists this peer among those they hear, so that what it publishes
   * from now on reaches them (a PUB socket drops what it sends before a subscriber has joined).
   * Rejects with SyncError `ETIMEDOUT` after `timeoutMs`.
   */
  async waitForPeers(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.alivePeers().filter((r) => r.hearsUs).length < count) {
      const remaining = deadline - Date.now();
      if (this.closed) throw new SyncError('Peer closed while waiting for peers.', 'ECLOSED');
      if (remaining <= 0) throw new SyncError(`Fewer than ${count} peers alive (hearing this peer too) after ${timeoutMs} ms.`, 'ETIMEDOUT');
      await this.waitForEvent('heartbeat', remaining);
    }
  }

  /** Counters and the peer table (a fresh object on every call). */
  stats(): PeerStats {
    const c = this.counters;
    const perSender: Record<string, SenderStats> = {};
    let delivered = 0;
    let duplicates = 0;
    let stale = 0;
    let gaps = 0;
    for (const [id, s] of this.senders) {
      perSender[id] = { delivered: s.delivered, duplicates: s.duplicates, stale: s.stale, gaps: s.gaps, floor: s.floor };
      delivered += s.delivered;
      duplicates += s.duplicates;
      stale += s.stale;
      gaps += s.gaps;
    }
    return {
      senderId: this.senderId,
      pub: this.self?.pub ?? '',
      router: this.self?.router ?? '',
      sent: { ...c.sent },
      sendErrors: c.sendErrors,
      dropped: { ...c.dropped },
      received: c.received,
      delivered,
      duplicates,
      stale,
      gaps,
      perSender,
      malformed: { ...c.malformed },
      unexpected: c.unexpected,
      rejected: { ...c.rejected },
      handshakeFailures: c.handshakeFailures,
      decodeMs: c.decodeMs,
      peers: [...this.records.values()].map(info),
    };
  }

  /** Stops timers, ends iterators, fails pending snapshot requests and closes every socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.hbTimer !== undefined) clearTimeout(this.hbTimer);
    for (const p of this.pending.values()) p.reject(new SyncError('Peer closed.', 'ECLOSED'));
    this.pending.clear();
    for (const inbox of [...this.inboxes]) inbox.end();
    if (this.pubQueue !== undefined && this.opts.lingerMs > 0) {
      await Promise.race([this.pubQueue.drain(), delay(this.opts.lingerMs)]);
    }
    this.pubQueue?.close();
    this.routerQueue?.close();
    for (const { dealer, queue } of this.dealers.values()) {
      queue.close();
      dealer.close();
    }
    this.dealers.clear();
    for (const rec of this.records.values()) {
      rec.sub?.close();
      if (rec.retry !== null) clearTimeout(rec.retry);
    }
    this.router?.close();
    this.pub?.close();
    this.zap?.close();
    this.emit('close');
  }

  // -------------------------------------------------------------------------------------------

  /** Binds; throws SyncError `EBIND` on failure and `ECLOSED` when close() ran meanwhile. */
  private async bindOrFail(socket: zmq.Socket, endpoint: string, what: string): Promise<void> {
    try {
      await socket.bind(endpoint);
    } catch (err) {
      if (this.closed) throw new SyncError('Peer closed during start().', 'ECLOSED', { cause: err });
      throw new SyncError(`Cannot bind the ${what} to ${endpoint}: ${(err as Error).message}`, 'EBIND', { cause: err });
    }
    if (this.closed) throw new SyncError('Peer closed during start().', 'ECLOSED');
  }

  private live(where: string): { env: Envelope; pubQueue: SendQueue } {
    if (this.closed) throw new SyncError(`Peer.${where}: the peer is closed.`, 'ECLOSED');
    if (this.env === undefined || this.pubQueue === undefined) throw new SyncError(`Peer.${where}: call start() first.`, 'ENOTSTARTED');
    return { env: this.env, pubQueue: this.pubQueue };
  }

  private warn(err: unknown): void {
    if (this.closed) return;
    this.emit('warning', err instanceof Error ? err : new Error(String(err)));
  }

  private async receiveLoop(socket: zmq.Subscriber | zmq.Router | zmq.XPublisher | zmq.Dealer, handle: (frames: Buffer[]) => void): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch (err) {
        if (!this.closed && !socket.closed) this.warn(err);
        return;
      }
      if (this.closed) return;
      try {
        handle(frames);
      } catch (err) {
        this.warn(err);
      }
    }
  }

  private decodeOwn(frames: Buffer[]): Message | 'self' | undefined {
    let msg: Message;
    const t0 = performance.now();
    try {
      msg = decode(frames);
    } catch (err) {
      if (!(err instanceof WireFormatError)) throw err;
      const code = err.code as WireFormatErrorCode;
      this.counters.malformed[code] = (this.counters.malformed[code] ?? 0) + 1;
      this.emit('malformed', err);
      return undefined;
    } finally {
      this.counters.decodeMs += performance.now() - t0;
    }
    if (msg.senderId === this.senderId) return 'self';
    if (msg.runId !== this.opts.runId) {
      this.counters.rejected.run++;
      this.emit('rejected', { reason: 'run', detail: `run '${msg.runId}'`, senderId: msg.senderId });
      return undefined;
    }
    if (msg.fingerprint !== this.opts.fingerprint) {
      this.counters.rejected.fingerprint++;
      this.emit('rejected', { reason: 'fingerprint', detail: `model fingerprint ${msg.fingerprint}`, senderId: msg.senderId });
      return undefined;
    }
    this.counters.received++;
    return msg;
  }

  private onSubMessage(rec: PeerRecord, frames: Buffer[]): void {
    if (this.records.get(rec.pub) !== rec) return;
    const msg = this.decodeOwn(frames);
    if (msg === undefined) return;
    if (msg === 'self') {
      // One of our own names reached us by gossip: stop listening to ourselves.
      this.forget(rec);
      this.aliases.set(rec.pub, null);
      return;
    }
    if (!this.boundToKey(msg.senderId, rec.publicKey)) return;
    if (msg.kind === 'delta') this.onDelta(msg);
    else if (msg.kind === 'heartbeat') this.onHeartbeat(msg, rec);
    else this.counters.unexpected++;
  }

  /**
   * With CURVE, binds a sender id to the key of the connection it was first heard on (the
   * server key this peer connected with: the handshake proves the other side holds it), and
   * refuses (counts, reports) a message whose sender id was bound to another key. Sender ids
   * are random per process, so a restarted peer binds a new one; an allowlisted peer cannot
   * speak for another. Plaintext has no identities to bind to: always true.
   */
  private boundToKey(senderId: string, key: string | null): boolean {
    if (this.curve === null || key === null) return true;
    const bound = this.senderKeys.get(senderId);
    if (bound === undefined) {
      this.senderKeys.set(senderId, key);
      return true;
    }
    if (bound === key) return true;
    this.counters.rejected.sender++;
    this.emit('rejected', { reason: 'sender', detail: `sender ${senderId} is bound to key ${bound}, heard under key ${key}`, senderId });
    return false;
  }

  private onRouterMessage(frames: Buffer[]): void {
    const [rid, ...rest] = frames;
    if (rid === undefined) return;
    const msg = this.decodeOwn(rest);
    if (msg === undefined || msg === 'self') return;
    if (msg.kind === 'snapshot-request') void this.answerSnapshot(rid, msg);
    else if (msg.kind === 'heartbeat') this.onHeartbeat(msg, null);
    else this.counters.unexpected++;
  }

  private onDealerMessage(frames: Buffer[], key: string | null): void {
    const msg = this.decodeOwn(frames);
    if (msg === undefined || msg === 'self' || !this.boundToKey(msg.senderId, key)) return;
    if (msg.kind !== 'snapshot-response') {
      this.counters.unexpected++;
      return;
    }
    const p = this.pending.get(msg.requestId);
    if (p !== undefined) {
      this.pending.delete(msg.requestId);
      p.resolve(msg);
    }
  }

  /** XPUB subscription messages: byte 1 then the prefix. A new subscriber hears us at once. */
  private onSubscription(frames: Buffer[]): void {
    const f = frames[0];
    if (f !== undefined && f[0] === 1) this.scheduleHeartbeat();
  }

  private senderState(id: string): SenderState {
    let s = this.senders.get(id);
    if (s === undefined) {
      s = { delivered: 0, duplicates: 0, stale: 0, gaps: 0, floor: 0, recent: new Set(), recentOrder: [] };
      this.senders.set(id, s);
    }
    return s;
  }

  private onDelta(d: DeltaMessage): void {
    const fresh = !this.senders.has(d.senderId);
    const s = this.senderState(d.senderId);
    if (fresh) s.floor = d.sequence - 1;
    if (d.sequence <= s.floor) {
      if (s.recent.has(d.sequence)) s.duplicates++;
      else s.stale++;
      return;
    }
    if (d.sequence > s.floor + 1) s.gaps += d.sequence - s.floor - 1;
    s.floor = d.sequence;
    s.delivered++;
    s.recent.add(d.sequence);
    s.recentOrder.push(d.sequence);
    if (s.recentOrder.length > RECENT) s.recent.delete(s.recentOrder.shift()!);
    this.emit('delta', d);
    for (const inbox of this.inboxes) inbox.push(d);
  }

  /**
   * A heartbeat heard over `rec`'s SUB (`rec` set) or announced to our ROUTER (`rec` null).
   * Only the former proves that we receive the peer's publications: it alone marks the peer
   * alive and moves the sender's floor (it travels behind the sender's deltas).
   */
  private onHeartbeat(hb: HeartbeatMessage, rec: PeerRecord | null): void {
    const now = Date.now();
    const self = this.self!;
    if (rec !== null) {
      if (hb.self.pub !== rec.pub && hb.self.pub !== self.pub && !this.records.has(hb.self.pub)) this.aliases.set(hb.self.pub, rec);
      rec.advertised = hb.self;
      rec.router = hb.self.router;
      const fresh = !this.senders.has(hb.senderId);
      const s = this.senderState(hb.senderId);
      if (fresh) s.floor = hb.lastSequence;
      else if (hb.lastSequence > s.floor) {
        s.gaps += hb.lastSequence - s.floor;
        s.floor = hb.lastSequence;
      }
      rec.senderId = hb.senderId;
      rec.lastSeen = now;
      if (!rec.alive) {
        rec.alive = true;
        this.emit('peer-joined', info(rec));
      }
      const listsUs = hb.peers.some((p) => p.pub === self.pub);
      rec.hearsUs = listsUs;
      if (!listsUs && now - rec.lastAnnounce >= this.opts.heartbeatIntervalMs) {
        rec.lastAnnounce = now;
        this.announce(rec);
      }
    } else if (!this.isKnown(hb.self.pub)) {
      this.addRecord(hb.self, false, now, hb.senderId);
    }
    for (const p of hb.peers) {
      if (!this.isKnown(p.pub)) this.addRecord(p, false, now);
    }
    if (rec !== null) this.emit('heartbeat', hb);
  }

  private isKnown(pub: string): boolean {
    return pub === this.self!.pub || this.records.has(pub) || this.aliases.has(pub);
  }

  /** Adds and connects an address; `undefined` when it is not acceptable (key not allowed). */
  private addRecord(a: PeerAddress, seed: boolean, now: number, senderId?: string): PeerRecord | undefined {
    if (this.closed) return undefined;
    if (this.curve !== null ? a.publicKey === null || !this.curve.allowed.has(a.publicKey) : a.publicKey !== null) {
      if (!this.ignoredGossip.has(a.pub)) {
        this.ignoredGossip.add(a.pub);
        this.counters.rejected.gossip++;
        const detail = `${a.pub} (${a.publicKey === null ? 'no key' : `key ${a.publicKey}`})`;
        this.emit('rejected', senderId === undefined ? { reason: 'gossip', detail } : { reason: 'gossip', detail, senderId });
      }
      return undefined;
    }
    const rec: PeerRecord = {
      pub: a.pub,
      router: a.router === '' ? null : a.router,
      publicKey: a.publicKey,
      senderId: null,
      lastSeen: null,
      addedAt: now,
      alive: false,
      hearsUs: false,
      seed,
      lastAnnounce: 0,
      advertised: null,
      sub: null,
      retry: null,
    };
    const k = this.curve?.keys;
    const sec = k === undefined ? {} : { curveServerKey: a.publicKey, curvePublicKey: k.publicKey, curveSecretKey: k.secretKey };
    const sub = new zmq.Subscriber({ context: this.ctx!, receiveHighWaterMark: this.opts.rcvHWM, linger: 0, maxMessageSize: this.frameLimit, ...sec });
    try {
      sub.subscribe(runPrefix(this.opts.runId));
      sub.connect(a.pub);
    } catch (err) {
      sub.close();
      this.warn(new SyncError(`Cannot connect to ${a.pub}: ${(err as Error).message}`, 'ECONNECT', { cause: err }));
      return undefined;
    }
    rec.sub = sub;
    this.records.set(a.pub, rec);
    // libzmq gives a connection up for good after a failed handshake (wrong key, CURVE vs
    // plaintext); retry later, in case the other side was restarted with a fixed allowlist.
    this.watchHandshakes(sub, () => this.scheduleRetry(rec));
    sub.events.on('disconnect', () => {
      if (!this.closed) this.scheduleRetry(rec, Date.now());
    });
    void this.receiveLoop(sub, (frames) => this.onSubMessage(rec, frames));
    return rec;
  }

  /**
   * Reconnects `rec`'s SUB after `peerTimeoutMs`; with `since`, only if nothing was heard from
   * it after that time (ZeroMQ reconnects by itself after a plain disconnection, but never
   * after a protocol error such as a frame beyond `maxFrameBytes`).
   */
  private scheduleRetry(rec: PeerRecord, since?: number): void {
    if (rec.retry !== null) return;
    rec.retry = setTimeout(() => {
      rec.retry = null;
      if (this.closed || rec.sub === null || this.records.get(rec.pub) !== rec) return;
      if (since !== undefined && (rec.lastSeen ?? 0) > since) return;
      try {
        rec.sub.disconnect(rec.pub);
      } catch {
        // Not connected any more: fine.
      }
      try {
        rec.sub.connect(rec.pub);
      } catch (err) {
        this.warn(err);
      }
    }, this.opts.peerTimeoutMs);
    rec.retry.unref();
  }

  private dropDealer(router: string): void {
    const entry = this.dealers.get(router);
    if (entry === undefined) return;
    this.dealers.delete(router);
    entry.queue.close();
    entry.dealer.close();
  }

  private forget(rec: PeerRecord): void {
    this.records.delete(rec.pub);
    for (const [name, r] of this.aliases) if (r === rec) this.aliases.delete(name);
    rec.sub?.close();
    rec.sub = null;
    if (rec.retry !== null) clearTimeout(rec.retry);
    rec.retry = null;
    if (rec.router !== null) this.dropDealer(rec.router);
  }

  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const rec of [...this.records.values()]) {
      if (rec.alive && rec.lastSeen !== null && now - rec.lastSeen > this.opts.peerTimeoutMs) {
        rec.alive = false;
        rec.hearsUs = false;
        this.emit('peer-lost', info(rec));
      }
      if (!rec.alive && !rec.seed && now - (rec.lastSeen ?? rec.addedAt) > this.opts.forgetAfterMs) this.forget(rec);
    }
    this.sendHeartbeat();
  }

  private scheduleHeartbeat(): void {
    if (this.closed || this.hbTimer !== undefined) return;
    const wait = Math.max(0, this.lastHeartbeatAt + 20 - Date.now());
    this.hbTimer = setTimeout(() => {
      this.hbTimer = undefined;
      this.sendHeartbeat();
    }, wait);
    this.hbTimer.unref();
  }

  private heartbeatFrames(): Buffer[] {
    return encodeHeartbeat(this.env!, {
      lastSequence: this.sequence,
      self: this.self!,
      peers: this.alivePeers().map((r) => r.advertised ?? { pub: r.pub, router: r.router!, publicKey: r.publicKey }),
      progress: this.progress,
      weightFingerprint: this.weightFingerprint,
    });
  }

  private alivePeers(): PeerRecord[] {
    return [...this.records.values()].filter((r) => r.alive && r.router !== null);
  }

  private sendHeartbeat(): void {
    if (this.closed || this.pubQueue === undefined) return;
    this.lastHeartbeatAt = Date.now();
    if (this.pubQueue.push(this.heartbeatFrames())) this.counters.sent.heartbeats++;
    else this.counters.dropped.queueFull++;
  }

  private announce(rec: PeerRecord): void {
    if (rec.router === null || this.closed) return;
    const entry = this.dealerFor(rec);
    if (entry.queue.push(this.heartbeatFrames())) this.counters.sent.announces++;
    else this.counters.dropped.queueFull++;
  }

  private dealerFor(rec: PeerRecord): DealerEntry {
    const router = rec.router!;
    let entry = this.dealers.get(router);
    if (entry === undefined) {
      const sec = this.curve === null ? {} : { curveSecretKey: this.curve.keys.secretKey, curvePublicKey: this.curve.keys.publicKey, curveServerKey: rec.publicKey };
      const dealer = new zmq.Dealer({ context: this.ctx!, linger: 0, sendTimeout: 0, sendHighWaterMark: 16, maxMessageSize: this.frameLimit, ...sec });
      this.watchHandshakes(dealer, () => this.dropDealer(router));
      // A DEALER whose connection broke on a protocol error (a frame beyond maxFrameBytes) is
      // never reconnected by ZeroMQ: reopen it on next use.
      dealer.events.on('disconnect', () => {
        if (!this.closed && this.dealers.get(router)?.dealer === dealer) this.dropDealer(router);
      });
      dealer.connect(router);
      const queue = new SendQueue(dealer, 16, (err) => {
        // A DEALER whose peer is gone fills up to its HWM; then sends fail at once with EAGAIN.
        if ((err as { code?: unknown }).code === 'EAGAIN') {
          this.counters.dropped.dealerHwm++;
          return;
        }
        this.counters.sendErrors++;
        this.warn(err);
      });
      entry = { dealer, queue };
      this.dealers.set(router, entry);
      const key = rec.publicKey;
      void this.receiveLoop(dealer, (frames) => this.onDealerMessage(frames, key));
    }
    return entry;
  }

  private awaitResponse(requestId: number, rec: PeerRecord, timeoutMs: number): Promise<SnapshotResponseMessage | undefined> {
    return new Promise((resolve, reject) => {
      const done = (m: SnapshotResponseMessage | undefined): void => {
        clearTimeout(timer);
        this.off('peer-lost', onLost);
        this.pending.delete(requestId);
        resolve(m);
      };
      const onLost = (p: PeerInfo): void => {
        if (p.pub === rec.pub) done(undefined);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.on('peer-lost', onLost);
      this.pending.set(requestId, {
        resolve: done,
        reject: (err) => {
          clearTimeout(timer);
          this.off('peer-lost', onLost);
          reject(err);
        },
      });
    });
  }

  private waitForEvent(event: 'peer-joined' | 'heartbeat', timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.off(event, finish);
        this.off('close', finish);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.on(event, finish);
      this.on('close', finish);
    });
  }

  private async answerSnapshot(rid: Buffer, req: SnapshotRequestMessage): Promise<void> {
    const env = this.env!;
    let frames: Buffer[] | undefined;
    if (this.provider !== undefined) {
      try {
        const snap = await this.provider(req.layers);
        const wanted = new Set(req.layers);
        const layers = req.layers.length === 0 ? snap.layers : snap.layers.filter((l) => wanted.has(l.layer));
        frames = encodeSnapshotResponse(env, { requestId: req.requestId, layers, sequences: snap.sequences });
      } catch (err) {
        this.warn(err instanceof DbnError ? err : new SyncError(`The snapshot provider failed: ${(err as Error).message}`, 'ESNAPSHOT', { cause: err }));
      }
    }
    frames ??= encodeSnapshotResponse(env, { requestId: req.requestId, available: false, layers: [], sequences: new Map() });
    if (this.closed || this.routerQueue === undefined) return;
    if (this.routerQueue.push([rid, ...frames])) this.counters.sent.snapshotResponses++;
    else this.counters.dropped.queueFull++;
  }

  /** Counts and reports failed handshakes on `socket`, then calls `after` (if given). */
  private watchHandshakes(socket: zmq.Socket, after?: () => void): void {
    const onFail = (e: { address: string; error: Error }): void => {
      if (this.closed) return;
      this.counters.handshakeFailures++;
      this.emit('handshake-failed', { endpoint: e.address, error: e.error });
      after?.();
    };
    socket.events.on('handshake:error:auth', onFail);
    socket.events.on('handshake:error:protocol', onFail);
    socket.events.on('handshake:error:other', onFail);
  }
}

function info(r: PeerRecord): PeerInfo {
  return { pub: r.pub, router: r.router ?? '', publicKey: r.publicKey, senderId: r.senderId, lastSeen: r.lastSeen, alive: r.alive, seed: r.seed };
}

function rawKey(key: string): Uint8Array {
  const raw = isZ85Key(key) ? z85Decode(key) : undefined;
  if (raw === undefined) throw new InvalidOptionError(`'${key}' is not a 40-character Z85 key.`);
  return raw;
}

/** Port + 1 on the host of `bind`, or port 0 when `bind` asked for an ephemeral port. */
function defaultRouterBind(bind: string, bound: string): string {
  const m = TCP_RE.exec(bind)!;
  const port = Number(m[2]);
  if (port === 0) return `tcp://${m[1]}:0`;
  const b = TCP_RE.exec(bound);
  const p = b === null ? port : Number(b[2]);
  if (p + 1 > 65535) throw new InvalidOptionError(`The 'bind' port ${p} leaves no port + 1 for the ROUTER; set 'routerBind'.`);
  return `tcp://${m[1]}:${p + 1}`;
}

/** `endpoint` with the host of `like` (keeps the port of `endpoint`). */
function swapHost(endpoint: string, like: string): string {
  const e = TCP_RE.exec(endpoint);
  const l = TCP_RE.exec(like);
  if (e === null || l === null) return endpoint;
  return `tcp://${l[1]}:${e[2]}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
