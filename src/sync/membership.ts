/**
 * Membership of a {@link Peer}: the table of known peers (seeds and gossip), one SUB socket per
 * peer connected to its PUB, liveness from heartbeats, reconnection after failed handshakes and
 * forgetting of addresses not heard for long.
 *
 * A peer connects its SUB to every peer it learns of (seeds, gossip); a peer heard whose
 * heartbeat does not list this one yet gets an announce (this peer's heartbeat over a DEALER),
 * so that it connects back. A peer not heard for `peerTimeoutMs` is lost; its address stays
 * connected (ZeroMQ keeps reconnecting) and it joins again when heard. Non-seed addresses not
 * heard for `forgetAfterMs` are disconnected and forgotten.
 *
 * Gossip is bounded: only `tcp://host:port` addresses whose key is allowed (CURVE) are taken, at
 * most `maxPeers` records in all and `maxNewPeersPerHeartbeat` new ones per heartbeat; the rest
 * is refused and counted (reason `'gossip'`), each address once.
 */
import * as zmq from 'zeromq';
import { SyncError } from '../errors.js';
import { isGossipEndpoint } from './peer-types.js';
import type { PeerInfo, Rejection, ResolvedPeerOptions } from './peer-types.js';
import type { SocketHost } from './socket-loop.js';
import type { HeartbeatMessage, PeerAddress } from './wire.js';
import { runPrefix } from './wire.js';

/** One known peer. */
export interface PeerRecord {
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

/** What membership needs of the peer that owns it. */
export interface MembershipHost extends SocketHost {
  readonly options: Pick<
    ResolvedPeerOptions,
    'curve' | 'runId' | 'heartbeatIntervalMs' | 'peerTimeoutMs' | 'forgetAfterMs' | 'rcvHWM' | 'maxPeers' | 'maxNewPeersPerHeartbeat'
  >;
  self(): PeerAddress;
  /** Frames received on `rec`'s SUB. */
  onSubMessage(rec: PeerRecord, frames: Buffer[]): void;
  /** Sends this peer's heartbeat to `rec`'s ROUTER. */
  announce(rec: PeerRecord): void;
  /** Closes the DEALER to `router`, if open. */
  dropDealer(router: string): void;
  rejected(r: Rejection, counter: 'gossip' | 'endpoint'): void;
  joined(info: PeerInfo): void;
  lost(info: PeerInfo): void;
}

/** The public view of a record. */
export function info(r: PeerRecord): PeerInfo {
  return {
    pub: r.pub,
    router: r.router ?? '',
    publicKey: r.publicKey,
    senderId: r.senderId,
    lastSeen: r.lastSeen,
    alive: r.alive,
    seed: r.seed,
  };
}

/** The peer table of one {@link Peer}; see the top of this file. */
export class Membership {
  readonly records = new Map<string, PeerRecord>();
  /** Other names of known peers (their advertised PUB endpoints, our own aliases → null). */
  private readonly aliases = new Map<string, PeerRecord | null>();
  private readonly ignored = new Set<string>();

  constructor(private readonly host: MembershipHost) {}

  /** Adds a seed (kept when not heard; never forgotten). */
  addSeed(pub: string, publicKey: string | null, now: number): void {
    if (pub === this.host.self().pub) return;
    this.add({ pub, router: '', publicKey }, true, now);
  }

  isKnown(pub: string): boolean {
    return pub === this.host.self().pub || this.records.has(pub) || this.aliases.has(pub);
  }

  /** Peers alive with a known ROUTER. */
  alivePeers(): PeerRecord[] {
    return [...this.records.values()].filter((r) => r.alive && r.router !== null);
  }

  /**
   * A heartbeat heard over `rec`'s SUB (`rec` set) or announced to our ROUTER (`rec` null).
   * Only the former proves that we receive the peer's publications: it alone marks the peer
   * alive. Then learns the addresses the heartbeat lists, within the caps.
   */
  onHeartbeat(hb: HeartbeatMessage, rec: PeerRecord | null, now: number): void {
    const budget = { left: this.host.options.maxNewPeersPerHeartbeat };
    if (rec !== null) this.heardOver(rec, hb, now);
    else if (!this.isKnown(hb.self.pub)) this.learn(hb.self, now, budget, hb.senderId);
    for (const p of hb.peers) if (!this.isKnown(p.pub)) this.learn(p, now, budget);
  }

  /** `rec` turned out to be one of our own names: stop listening to it. */
  forgetSelfAlias(rec: PeerRecord): void {
    this.forget(rec);
    this.aliases.set(rec.pub, null);
  }

  /** Expires peers not heard for `peerTimeoutMs` and forgets non-seeds after `forgetAfterMs`. */
  tick(now: number): void {
    for (const rec of [...this.records.values()]) {
      if (rec.alive && rec.lastSeen !== null && now - rec.lastSeen > this.host.options.peerTimeoutMs) {
        rec.alive = false;
        rec.hearsUs = false;
        this.host.lost(info(rec));
      }
      if (!rec.alive && !rec.seed && now - (rec.lastSeen ?? rec.addedAt) > this.host.options.forgetAfterMs) this.forget(rec);
    }
  }

  /** Reconnects every SUB so that a new frame limit applies (messages in flight are lost). */
  reconnectAll(maxFrameBytes: number): void {
    for (const rec of this.records.values()) {
      if (rec.sub === null) continue;
      try {
        rec.sub.disconnect(rec.pub);
      } catch {
        // Not connected: connect() below applies the limit anyway.
      }
      // Set between disconnect and connect: the option applies to connections made afterwards.
      rec.sub.maxMessageSize = maxFrameBytes;
      try {
        rec.sub.connect(rec.pub);
      } catch (err) {
        this.host.warn(err);
      }
    }
  }

  /** Closes every SUB and stops every retry. */
  close(): void {
    for (const rec of this.records.values()) {
      rec.sub?.close();
      if (rec.retry !== null) clearTimeout(rec.retry);
    }
  }

  private heardOver(rec: PeerRecord, hb: HeartbeatMessage, now: number): void {
    const self = this.host.self();
    if (
      hb.self.pub !== rec.pub &&
      hb.self.pub !== self.pub &&
      !this.records.has(hb.self.pub) &&
      this.aliases.size < this.host.options.maxPeers
    ) {
      this.aliases.set(hb.self.pub, rec);
    }
    rec.advertised = hb.self;
    // A ROUTER address that is not tcp://host:port is never connected to (no snapshot, no announce).
    rec.router = isGossipEndpoint(hb.self.router) ? hb.self.router : null;
    rec.senderId = hb.senderId;
    rec.lastSeen = now;
    if (!rec.alive) {
      rec.alive = true;
      this.host.joined(info(rec));
    }
    const listsUs = hb.peers.some((p) => p.pub === self.pub);
    rec.hearsUs = listsUs;
    if (!listsUs && now - rec.lastAnnounce >= this.host.options.heartbeatIntervalMs) {
      rec.lastAnnounce = now;
      this.host.announce(rec);
    }
  }

  /** Takes a gossiped address if the caps and rules allow; refuses (once per address) otherwise. */
  private learn(a: PeerAddress, now: number, budget: { left: number }, senderId?: string): void {
    if (budget.left <= 0) return; // heard again in later heartbeats
    const why = this.refusal(a);
    if (why !== null) {
      if (this.ignored.has(a.pub) || this.ignored.size >= 4 * this.host.options.maxPeers) return;
      this.ignored.add(a.pub);
      const detail = `${a.pub} (${why})`;
      this.host.rejected(senderId === undefined ? { reason: 'gossip', detail } : { reason: 'gossip', detail, senderId }, 'gossip');
      return;
    }
    budget.left--;
    this.add(a, false, now);
  }

  private refusal(a: PeerAddress): string | null {
    const curve = this.host.options.curve;
    if (!isGossipEndpoint(a.pub)) return 'not tcp://host:port';
    if (curve !== null ? a.publicKey === null || !curve.allowed.has(a.publicKey) : a.publicKey !== null) {
      return a.publicKey === null ? 'no key' : `key ${a.publicKey}`;
    }
    if (this.records.size >= this.host.options.maxPeers) return `table full (${this.host.options.maxPeers} peers)`;
    return null;
  }

  /** Adds and connects an address; `undefined` when ZeroMQ refuses to connect to it. */
  private add(a: PeerAddress, seed: boolean, now: number): PeerRecord | undefined {
    if (this.host.isClosed()) return undefined;
    const rec: PeerRecord = {
      pub: a.pub,
      router: a.router === '' || !isGossipEndpoint(a.router) ? null : a.router,
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
    const k = this.host.options.curve?.keys;
    const sec = k === undefined ? {} : { curveServerKey: a.publicKey, curvePublicKey: k.publicKey, curveSecretKey: k.secretKey };
    const sub = new zmq.Subscriber({
      context: this.host.context,
      receiveHighWaterMark: this.host.options.rcvHWM,
      linger: 0,
      maxMessageSize: this.host.frameLimit(),
      ...sec,
    });
    try {
      sub.subscribe(runPrefix(this.host.options.runId));
      sub.connect(a.pub);
    } catch (err) {
      sub.close();
      this.host.rejected({ reason: 'endpoint', detail: `${a.pub}: ${(err as Error).message}` }, 'endpoint');
      this.host.warn(new SyncError(`Cannot connect to ${a.pub}: ${(err as Error).message}`, 'ECONNECT', { cause: err }));
      return undefined;
    }
    rec.sub = sub;
    this.records.set(a.pub, rec);
    // libzmq gives a connection up for good after a failed handshake (wrong key, CURVE vs
    // plaintext); retry later, in case the other side was restarted with a fixed allowlist.
    this.host.watchHandshakes(sub, () => this.scheduleRetry(rec));
    sub.events.on('disconnect', () => {
      if (!this.host.isClosed()) this.scheduleRetry(rec, Date.now());
    });
    this.host.receiveLoop(sub, (frames) => this.host.onSubMessage(rec, frames));
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
      if (this.host.isClosed() || rec.sub === null || this.records.get(rec.pub) !== rec) return;
      if (since !== undefined && (rec.lastSeen ?? 0) > since) return;
      try {
        rec.sub.disconnect(rec.pub);
      } catch {
        // Not connected any more: fine.
      }
      try {
        rec.sub.connect(rec.pub);
      } catch (err) {
        this.host.warn(err);
      }
    }, this.host.options.peerTimeoutMs);
    rec.retry.unref();
  }

  private forget(rec: PeerRecord): void {
    this.records.delete(rec.pub);
    for (const [name, r] of this.aliases) if (r === rec) this.aliases.delete(name);
    rec.sub?.close();
    rec.sub = null;
    if (rec.retry !== null) clearTimeout(rec.retry);
    rec.retry = null;
    if (rec.router !== null) this.host.dropDealer(rec.router);
  }
}
