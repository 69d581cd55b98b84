/**
 * The requesting side of the snapshot service of a {@link Peer}: asks live peers, most recently
 * heard first, over their ROUTERs, and matches answers to requests. A peer whose snapshot
 * endpoint cannot be connected is skipped (a typed `ECONNECT` warning and a rejection with
 * reason `'endpoint'`), never a raw error.
 */
import type { EventEmitter } from 'node:events';
import { SyncError } from '../errors.js';
import type { DealerPool } from './dealers.js';
import type { Membership, PeerRecord } from './membership.js';
import type { PeerEvents, PeerInfo, Rejection } from './peer-types.js';
import { encodeSnapshotRequest } from './wire.js';
import type { Envelope, SnapshotResponseMessage } from './wire.js';

interface Pending {
  resolve: (m: SnapshotResponseMessage) => void;
  reject: (err: unknown) => void;
}

/** What the client needs of its peer. */
export interface SnapshotClientHost {
  readonly events: EventEmitter<PeerEvents>;
  members(): Membership;
  dealers(): DealerPool;
  isClosed(): boolean;
  /** A request was queued (true) or refused by a full queue (false). */
  sent(queued: boolean): void;
  rejected(r: Rejection): void;
  warn(err: unknown): void;
}

/** Sends snapshot requests and waits for their answers; see the top of this file. */
export class SnapshotClient {
  private readonly pending = new Map<number, Pending>();
  private requestCounter = 0;

  constructor(private readonly host: SnapshotClientHost) {}

  /**
   * The first available snapshot from a live peer within `timeoutMs`.
   * @throws SyncError `ETIMEDOUT` when none answered in time, `ECLOSED` when closed meanwhile.
   */
  async request(env: Envelope, layers: number[], timeoutMs: number): Promise<SnapshotResponseMessage> {
    const deadline = Date.now() + timeoutMs;
    const tried = new Set<string>();
    for (let remaining = timeoutMs; remaining > 0; remaining = deadline - Date.now()) {
      const candidate = this.host
        .members()
        .alivePeers()
        .filter((r) => !tried.has(r.pub))
        .sort((a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0))[0];
      if (candidate === undefined) {
        await this.waitForEvent('peer-joined', remaining);
        this.throwIfClosed();
        tried.clear();
        continue;
      }
      tried.add(candidate.pub);
      const res = await this.ask(candidate, env, layers, remaining);
      this.throwIfClosed();
      if (res !== undefined && res.available) return res;
    }
    throw new SyncError(`No peer answered a snapshot request within ${timeoutMs} ms.`, 'ETIMEDOUT');
  }

  /** An answer arrived; true when it matched a request still waiting. */
  onResponse(msg: SnapshotResponseMessage): boolean {
    const p = this.pending.get(msg.requestId);
    if (p === undefined) return false;
    this.pending.delete(msg.requestId);
    p.resolve(msg);
    return true;
  }

  /** Fails every waiting request with `ECLOSED`. */
  close(): void {
    for (const p of this.pending.values()) p.reject(new SyncError('Peer closed.', 'ECLOSED'));
    this.pending.clear();
  }

  /** Resolves on the next `event` (or close, or after `timeoutMs`). */
  waitForEvent(event: 'peer-joined' | 'heartbeat', timeoutMs: number): Promise<void> {
    const events = this.host.events;
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        events.off(event, finish);
        events.off('close', finish);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      events.on(event, finish);
      events.on('close', finish);
    });
  }

  private throwIfClosed(): void {
    if (this.host.isClosed()) throw new SyncError('Peer closed while waiting for a snapshot.', 'ECLOSED');
  }

  /** One request to `rec`; undefined when it could not be sent or was not answered in time. */
  private async ask(rec: PeerRecord, env: Envelope, layers: number[], timeoutMs: number): Promise<SnapshotResponseMessage | undefined> {
    let entry;
    try {
      entry = this.host.dealers().get(rec.router!, rec.publicKey);
    } catch (err) {
      this.host.rejected({
        reason: 'endpoint',
        detail: `${rec.router}: ${(err as Error).message}`,
        ...(rec.senderId === null ? {} : { senderId: rec.senderId }),
      });
      this.host.warn(err);
      rec.router = null;
      return undefined;
    }
    const requestId = ++this.requestCounter;
    const queued = entry.queue.push(encodeSnapshotRequest(env, { requestId, layers }));
    this.host.sent(queued);
    return queued ? this.awaitResponse(requestId, rec, timeoutMs) : undefined;
  }

  private awaitResponse(requestId: number, rec: PeerRecord, timeoutMs: number): Promise<SnapshotResponseMessage | undefined> {
    const events = this.host.events;
    return new Promise((resolve, reject) => {
      const done = (m: SnapshotResponseMessage | undefined): void => {
        clearTimeout(timer);
        events.off('peer-lost', onLost);
        this.pending.delete(requestId);
        resolve(m);
      };
      const onLost = (p: PeerInfo): void => {
        if (p.pub === rec.pub) done(undefined);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      events.on('peer-lost', onLost);
      this.pending.set(requestId, {
        resolve: done,
        reject: (err) => {
          clearTimeout(timer);
          events.off('peer-lost', onLost);
          reject(err);
        },
      });
    });
  }
}
