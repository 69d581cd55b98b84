/**
 * The front end of a peer of a serverless training run (socket lifecycle and dispatch):
 * publishes this process's parameter deltas, receives the other peers', keeps track of who is alive (heartbeats + gossip) and serves/requests weight
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
 * Parts (as in zyre): `membership.ts` (records, announce, retry), `ledger.ts` (pure: floors,
 * duplicates, staleness, gaps, snapshot hints), `identity.ts` + `zap.ts` (CURVE key binding),
 * `snapshot-service.ts` / `snapshot-client.ts`, `dealers.ts`, `heartbeats.ts`, `peer-types.ts`, and
 * `peer-inbound.ts` (what is done with each message received).
 *
 * Trust: with CURVE a peer connects only to servers whose key is in its allowlist (learned
 * addresses with other keys are ignored and counted) and its own sockets admit only allowlisted
 * clients, so whatever it delivers came from an allowlisted key. A sender id carries a prefix
 * derived from its holder's public key (`identity.ts`) and is checked against the key of the
 * connection each delta, heartbeat and snapshot arrives on (a server key this peer chose), so
 * one allowlisted peer cannot speak for another, heard or not yet heard (refused, counted as
 * `rejected.sender`). Requests and announces reach the ROUTER, whose client keys
 * zeromq.js does not expose: they are not bound (they carry no weights). Every receiving socket
 * caps the size of a frame (`maxFrameBytes`, sized from the model by `PeerTrainer`; the ROUTER
 * and PUB at {@link CONTROL_FRAME_BYTES}): ZeroMQ drops a connection that sends a bigger one
 * before buffering it. With `plaintext: true` anyone who reaches the ports can read and inject
 * deltas.
 *
 * Sequences and snapshot claims: see `ledger.ts`. A process that reuses a sender id must
 * continue its sequence (`startSequence`), or its deltas are dropped as stale.
 */
import { EventEmitter } from 'node:events';
import * as zmq from 'zeromq';
import { InvalidOptionError, SyncError } from '../errors.js';
import { DealerPool } from './dealers.js';
import { Heartbeat } from './heartbeats.js';
import { KeyBinding } from './identity.js';
import { SenderLedger } from './ledger.js';
import { Inbound } from './peer-inbound.js';
import { PeerCounters } from './peer-counters.js';
import { info, Membership } from './membership.js';
import type { PeerRecord } from './membership.js';
import { CONTROL_FRAME_BYTES, advertisedAddress, checkSequences, defaultRouterBind, resolvePeerOptions } from './peer-types.js';
import type {
  PeerEvents,
  PeerOptions,
  PeerStats,
  ReceivedSnapshot,
  Rejection,
  ResolvedPeerOptions,
  SnapshotProvider,
} from './peer-types.js';
import { Inbox, SendQueue, deltaBytes } from './queues.js';
import { SnapshotClient } from './snapshot-client.js';
import { SnapshotService } from './snapshot-service.js';
import { receiveLoop, watchHandshakes } from './socket-loop.js';
import type { ReceivingSocket, SocketHost } from './socket-loop.js';
import { curveOptions, startZapHandler } from './zap.js';
import { encodeDelta, encodeDeltaFrames } from './wire.js';
import type { DeltaMessage, Envelope, PeerAddress, Progress, Shape } from './wire.js';

export { CONTROL_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, parseSeed } from './peer-types.js';
export type {
  PeerEvents,
  PeerInfo,
  PeerOptions,
  PeerStats,
  ReceivedSnapshot,
  Rejection,
  SenderStats,
  Snapshot,
  SnapshotProvider,
} from './peer-types.js';

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
  /** This peer's sender id (32 hex; under CURVE its first 16 come from the public key). */
  readonly senderId: string;

  private readonly o: ResolvedPeerOptions;
  private readonly ledger = new SenderLedger();
  private readonly binding = new KeyBinding();
  private pub: zmq.XPublisher | undefined;
  private router: zmq.Router | undefined;
  private zap: zmq.Router | undefined;
  private pubQueue: SendQueue | undefined;
  private routerQueue: SendQueue | undefined;
  private members: Membership | undefined;
  private dealers: DealerPool | undefined;
  private readonly snapshots: SnapshotService;
  private readonly client: SnapshotClient;
  private readonly heartbeat: Heartbeat;
  private readonly inbound: Inbound;
  private frameLimit: number;
  private readonly inboxes = new Set<Inbox<DeltaMessage>>();
  private self: PeerAddress | undefined;
  private env: Envelope | undefined;
  private started = false;
  private closed = false;
  private sequence: number;
  private readonly layerSequence = new Map<number, number>();
  private readonly counters = new PeerCounters();

  /** Validates `options`; opens nothing until {@link start}. */
  constructor(options: PeerOptions) {
    super();
    this.o = resolvePeerOptions(options);
    this.senderId = this.o.senderId;
    this.sequence = this.o.startSequence;
    this.frameLimit = this.o.maxFrameBytes;
    this.snapshots = new SnapshotService(
      {
        env: () => this.env!,
        send: (rid, frames) => this.sendToRouterClient(rid, frames),
        warn: (err) => this.warn(err),
        limited: () => this.counters.dropped.snapshotRate++,
      },
      this.o.snapshotCacheMs,
      this.o.snapshotRequestsPerSecond,
    );
    this.heartbeat = new Heartbeat({
      env: () => this.env!,
      self: () => this.self!,
      lastSequence: () => this.sequence,
      heard: () => this.members!.alivePeers().map((r) => r.advertised ?? { pub: r.pub, router: r.router!, publicKey: r.publicKey }),
      publish: (frames) => this.queueOnPub(frames, 'heartbeats'),
      tick: (now) => this.members?.tick(now),
    });
    this.client = new SnapshotClient({
      events: this,
      members: () => this.members!,
      dealers: () => this.dealers!,
      isClosed: () => this.closed,
      sent: (queued) => (queued ? this.counters.sent.snapshotRequests++ : this.counters.dropped.queueFull++),
      rejected: (r) => this.reject(r, 'endpoint'),
      warn: (err) => this.warn(err),
    });
    this.inbound = new Inbound({
      events: this,
      curve: this.o.curve !== null,
      binding: this.binding,
      ledger: this.ledger,
      counters: this.counters,
      inboxes: this.inboxes,
      snapshots: this.snapshots,
      client: this.client,
      heartbeat: this.heartbeat,
      members: () => this.members,
      env: () => this.env!,
      reject: (r, counter) => this.reject(r, counter),
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
    const o = this.o;
    const ctx = new zmq.Context({ blocky: false });
    await this.startZap(ctx);
    this.pub = new zmq.XPublisher({
      context: ctx,
      sendHighWaterMark: o.sndHWM,
      linger: o.lingerMs,
      maxMessageSize: CONTROL_FRAME_BYTES,
      ...curveOptions(this.o.curve?.keys ?? null, true),
    });
    this.pub.verbosity = 'allSubs';
    await this.bindOrFail(this.pub, o.bind, 'PUB socket');
    const pubBound = this.pub.lastEndpoint ?? o.bind;
    const routerBind = o.routerBind ?? defaultRouterBind(o.bind, pubBound);
    this.router = new zmq.Router({
      context: ctx,
      linger: o.lingerMs,
      maxMessageSize: CONTROL_FRAME_BYTES,
      ...curveOptions(this.o.curve?.keys ?? null, true),
    });
    await this.bindOrFail(this.router, routerBind, 'ROUTER socket');
    this.self = advertisedAddress(o, pubBound, this.router.lastEndpoint ?? routerBind);
    this.env = { runId: o.runId, fingerprint: o.fingerprint, senderId: this.senderId };
    this.startQueues(this.pub, this.router);
    this.members = this.membership(ctx);
    this.dealers = this.dealerPool(ctx);
    const now = Date.now();
    for (const s of o.seeds) this.members.addSeed(s.pub, s.publicKey, now);
    this.heartbeat.start(o.heartbeatIntervalMs);
  }

  /** Sets the progress carried by the next heartbeats. */
  setProgress(progress: Progress): void {
    this.heartbeat.setProgress(progress);
  }

  /** Sets the weight fingerprint carried by the next heartbeats: 0–64 numbers, opaque to sync. */
  setWeightFingerprint(values: ArrayLike<number>): void {
    this.heartbeat.setWeightFingerprint(values);
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
      throw new InvalidOptionError(
        `Argument 'bytes' passed to 'Peer.setMaxFrameBytes' must be an integer in [1024, 2^31 - 1], got ${String(bytes)}.`,
      );
    }
    if (bytes === this.frameLimit) return;
    this.frameLimit = bytes;
    if (this.closed || !this.started) return;
    this.members?.reconnectAll(bytes);
    this.dealers?.dropAll();
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
  publishDelta(
    layer: number,
    tensors: readonly Float32Array[],
    shapes: readonly Shape[],
    opts: { readonly float16?: boolean } = {},
  ): number | undefined {
    const { env } = this.live('publishDelta');
    const sequence = this.sequence + 1;
    const baseSequence = this.layerSequence.get(layer) ?? 0;
    const frames = encodeDelta(env, { layer, sequence, baseSequence, tensors, shapes, float16: opts.float16 === true });
    return this.queueDelta(layer, sequence, frames);
  }

  /**
   * {@link publishDelta} for payload frames the caller wrote itself in the wire encoding (see
   * `encodeDeltaFrames`): float32 little-endian, binary16 little-endian with `float16`, or SPARSE
   * entries with `sparse` (`sparseFrame`). The frames are queued as they are, not copied: the
   * caller must not write to them afterwards.
   * @returns the sequence assigned, or `undefined` when the send queue is full.
   */
  publishDeltaFrames(
    layer: number,
    payload: readonly Buffer[],
    shapes: readonly Shape[],
    opts: { readonly float16?: boolean; readonly sparse?: boolean; readonly finiteChecked?: boolean } = {},
  ): number | undefined {
    const { env } = this.live('publishDeltaFrames');
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
    return this.queueDelta(layer, sequence, frames);
  }

  /** Resolves once everything published so far has been handed to ZeroMQ. */
  async flush(): Promise<void> {
    await this.pubQueue?.drain();
  }

  /**
   * Delivered deltas as an async iterator (each call gives an independent one, starting now);
   * iteration ends on {@link close}. The 'delta' event delivers the same messages. At most
   * `maxInboxBytes` of unread deltas wait behind an iterator; beyond, deltas are dropped from it
   * and counted (`dropped.inboxFull`): keep reading it, or end it with `return()`.
   */
  deltas(): AsyncIterableIterator<DeltaMessage> {
    const inbox: Inbox<DeltaMessage> = new Inbox<DeltaMessage>(() => this.inboxes.delete(inbox), this.o.maxInboxBytes, deltaBytes);
    if (this.closed) inbox.end();
    else this.inboxes.add(inbox);
    return inbox;
  }

  /**
   * Answers snapshot requests from other peers with `provider()` (which must return every
   * tensor of the requested layers and the per-sender sequences those weights reflect — see
   * {@link sequences}). Without a provider, requests get an "unavailable" answer. Answers are
   * rate-limited per client and one encoding serves `snapshotCacheMs`.
   */
  serveSnapshots(provider: SnapshotProvider | undefined): void {
    if (provider !== undefined && typeof provider !== 'function') {
      throw new InvalidOptionError(`Argument 'provider' passed to 'Peer.serveSnapshots' must be a function.`);
    }
    this.snapshots.provider = provider;
    this.snapshots.invalidate();
  }

  /**
   * The per-sender floors (see `ledger.ts`) plus this peer's own last sequence: what a snapshot
   * taken now reflects, provided every delivered delta has been applied.
   */
  sequences(): Map<string, number> {
    const m = this.ledger.floors();
    if (this.sequence > 0) m.set(this.senderId, this.sequence);
    return m;
  }

  /**
   * Asks a live peer (most recently heard first) for a snapshot and waits up to `timeoutMs`
   * (waiting for a peer to be heard if none is yet). Afterwards, the snapshot's sequences are
   * taken as hints (see `ledger.ts`) — unless `adoptSequences` is false (e.g. a snapshot only
   * compared or averaged with local weights); then call {@link adoptSequences} if and when the
   * weights are taken over. A peer whose snapshot endpoint cannot be connected is skipped (a
   * 'warning' with SyncError `ECONNECT`).
   * @throws SyncError `ETIMEDOUT` when no peer answered in time, `ECLOSED` when closed meanwhile.
   */
  async requestSnapshot(
    timeoutMs: number,
    opts: { readonly layers?: readonly number[]; readonly adoptSequences?: boolean } = {},
  ): Promise<ReceivedSnapshot> {
    const { env } = this.live('requestSnapshot');
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidOptionError(`Argument 'timeoutMs' passed to 'Peer.requestSnapshot' must be a positive number, got ${timeoutMs}.`);
    }
    const res = await this.client.request(env, [...(opts.layers ?? [])], timeoutMs);
    if (opts.adoptSequences !== false) this.adoptSequences(res.sequences);
    return { layers: res.layers, sequences: res.sequences, from: res.senderId };
  }

  /**
   * Takes `sequences` (sender → last sequence reflected in weights taken over) as hints: each
   * sender's floor rises to the claim, but never more than a few sequences past what that sender
   * announced on its own connection (see `ledger.ts`); this peer's own id is skipped. What
   * {@link requestSnapshot} does by default once the snapshot's weights are taken over.
   */
  adoptSequences(sequences: ReadonlyMap<string, number>): void {
    checkSequences(sequences, 'Peer.adoptSequences');
    this.ledger.adoptHints(sequences, this.senderId);
  }

  /**
   * Resolves once at least `count` peers are alive both ways: heard within `peerTimeoutMs`,
   * and their last heartbeat lists this peer among those they hear, so that what it publishes
   * from now on reaches them (a PUB socket drops what it sends before a subscriber has joined).
   * Rejects with SyncError `ETIMEDOUT` after `timeoutMs`.
   */
  async waitForPeers(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.members?.alivePeers() ?? []).filter((r) => r.hearsUs).length < count) {
      const remaining = deadline - Date.now();
      if (this.closed) throw new SyncError('Peer closed while waiting for peers.', 'ECLOSED');
      if (remaining <= 0)
        throw new SyncError(`Fewer than ${count} peers alive (hearing this peer too) after ${timeoutMs} ms.`, 'ETIMEDOUT');
      await this.client.waitForEvent('heartbeat', remaining);
    }
  }

  /** Counters and the peer table (a fresh object on every call). */
  stats(): PeerStats {
    const self = { senderId: this.senderId, pub: this.self?.pub ?? '', router: this.self?.router ?? '' };
    return this.counters.snapshot(self, this.ledger, [...(this.members?.records.values() ?? [])].map(info));
  }

  /** Stops timers, ends iterators, fails pending snapshot requests and closes every socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat.stop();
    this.client.close();
    for (const inbox of [...this.inboxes]) inbox.end();
    if (this.pubQueue !== undefined && this.o.lingerMs > 0) {
      await Promise.race([this.pubQueue.drain(), delay(this.o.lingerMs)]);
    }
    this.pubQueue?.close();
    this.routerQueue?.close();
    this.dealers?.dropAll();
    this.members?.close();
    this.router?.close();
    this.pub?.close();
    this.zap?.close();
    this.emit('close');
  }

  // -------------------------------------------------------------------------------------------

  private async startZap(ctx: zmq.Context): Promise<void> {
    if (this.o.curve === null) return;
    const refused = (detail: string): void => this.reject({ reason: 'key', detail }, 'key');
    this.zap = await startZapHandler(ctx, this.o.curve.allowed, refused, (zap) =>
      this.bindOrFail(zap, 'inproc://zeromq.zap.01', 'ZAP handler'),
    );
  }

  private startQueues(pub: zmq.XPublisher, router: zmq.Router): void {
    const onSendError = (err: unknown): void => {
      this.counters.sendErrors++;
      this.warn(err);
    };
    this.watchHandshakes(pub);
    this.watchHandshakes(router);
    this.pubQueue = new SendQueue(pub, this.o.maxQueuedMessages, onSendError, this.o.maxQueuedBytes);
    this.routerQueue = new SendQueue(router, this.o.maxQueuedMessages, onSendError, this.o.maxQueuedBytes);
    this.receiveLoop(router, (frames) => this.inbound.onRouterMessage(frames));
    this.receiveLoop(pub, (frames) => this.inbound.onSubscription(frames));
  }

  /** What membership and the DEALER pool share. */
  private socketHost(ctx: zmq.Context): SocketHost {
    return {
      context: ctx,
      frameLimit: () => this.frameLimit,
      isClosed: () => this.closed,
      watchHandshakes: (socket, after) => this.watchHandshakes(socket, after),
      receiveLoop: (socket, handle) => this.receiveLoop(socket, handle),
      warn: (err) => this.warn(err),
    };
  }

  private membership(ctx: zmq.Context): Membership {
    return new Membership({
      ...this.socketHost(ctx),
      options: this.o,
      self: () => this.self!,
      onSubMessage: (rec, frames) => this.inbound.onSubMessage(rec, frames),
      announce: (rec) => this.announce(rec),
      dropDealer: (router) => this.dealers?.drop(router),
      rejected: (r, counter) => this.reject(r, counter),
      joined: (p) => this.emit('peer-joined', p),
      lost: (p) => this.emit('peer-lost', p),
    });
  }

  private dealerPool(ctx: zmq.Context): DealerPool {
    return new DealerPool({
      ...this.socketHost(ctx),
      curveKeys: this.o.curve?.keys ?? null,
      maxQueuedBytes: this.o.maxQueuedBytes,
      onMessage: (frames, key) => this.inbound.onDealerMessage(frames, key),
      hwm: () => this.counters.dropped.dealerHwm++,
      sendError: (err) => {
        this.counters.sendErrors++;
        this.warn(err);
      },
    });
  }

  private reject(r: Rejection, counter: keyof PeerCounters['rejected']): void {
    this.counters.rejected[counter]++;
    this.emit('rejected', r);
  }

  /** Queues `frames` on the PUB, counting them as `what` or as refused. */
  private queueOnPub(frames: Buffer[], what: 'deltas' | 'heartbeats'): boolean {
    if (this.closed || this.pubQueue === undefined) return false;
    if (!this.pubQueue.push(frames)) {
      this.counters.dropped.queueFull++;
      return false;
    }
    this.counters.sent[what]++;
    return true;
  }

  private queueDelta(layer: number, sequence: number, frames: Buffer[]): number | undefined {
    if (!this.queueOnPub(frames, 'deltas')) return undefined;
    this.sequence = sequence;
    this.layerSequence.set(layer, sequence);
    return sequence;
  }

  private sendToRouterClient(rid: Buffer, frames: Buffer[]): boolean {
    if (this.closed || this.routerQueue === undefined) return false;
    if (this.routerQueue.push([rid, ...frames])) {
      this.counters.sent.snapshotResponses++;
      return true;
    }
    this.counters.dropped.queueFull++;
    return false;
  }

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

  private live(where: string): { env: Envelope } {
    if (this.closed) throw new SyncError(`Peer.${where}: the peer is closed.`, 'ECLOSED');
    if (this.env === undefined) throw new SyncError(`Peer.${where}: call start() first.`, 'ENOTSTARTED');
    return { env: this.env };
  }

  private warn(err: unknown): void {
    if (this.closed) return;
    this.emit('warning', err instanceof Error ? err : new Error(String(err)));
  }

  private receiveLoop(socket: ReceivingSocket, handle: (frames: Buffer[]) => void): void {
    receiveLoop(
      socket,
      handle,
      () => this.closed,
      (err) => this.warn(err),
    );
  }

  private announce(rec: PeerRecord): void {
    if (rec.router === null || this.closed || this.dealers === undefined) return;
    let entry;
    try {
      entry = this.dealers.get(rec.router, rec.publicKey);
    } catch (err) {
      this.warn(err);
      rec.router = null;
      return;
    }
    if (entry.queue.push(this.heartbeat.frames())) this.counters.sent.announces++;
    else this.counters.dropped.queueFull++;
  }

  /** Counts and reports failed handshakes on `socket`, then calls `after` (if given). */
  private watchHandshakes(socket: zmq.Socket, after?: () => void): void {
    watchHandshakes(socket, (e) => {
      if (this.closed) return;
      this.counters.handshakeFailures++;
      this.emit('handshake-failed', { endpoint: e.address, error: e.error });
      after?.();
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
