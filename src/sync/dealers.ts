/**
 * The DEALER sockets of a {@link Peer}, one per other peer's ROUTER, opened on demand for
 * snapshot requests and announces, each with its own serialized send queue.
 *
 * An endpoint ZeroMQ refuses to connect to (EINVAL on a malformed address, an unknown
 * transport …) gives a typed {@link SyncError} `ECONNECT`, never the raw error: the caller
 * skips that peer and goes on.
 */
import * as zmq from 'zeromq';
import { SyncError } from '../errors.js';
import type { KeyPair } from './keys.js';
import { SendQueue } from './queues.js';
import type { SocketHost } from './socket-loop.js';

/** One open DEALER. */
export interface DealerEntry {
  readonly dealer: zmq.Dealer;
  readonly queue: SendQueue;
}

/** What the pool needs of its peer. */
export interface DealerHost extends SocketHost {
  readonly curveKeys: KeyPair | null;
  readonly maxQueuedBytes: number;
  /** Frames from the ROUTER whose peer holds `publicKey` (null in plaintext). */
  onMessage(frames: Buffer[], publicKey: string | null): void;
  /** A DEALER at its high-water mark refused a message (its peer unreachable). */
  hwm(): void;
  sendError(err: unknown): void;
}

/** DEALERs by ROUTER endpoint; see the top of this file. */
export class DealerPool {
  private readonly entries = new Map<string, DealerEntry>();

  constructor(private readonly host: DealerHost) {}

  /**
   * The DEALER connected to `router` (whose peer holds `publicKey`), opened if needed.
   * @throws SyncError `ECONNECT` when ZeroMQ refuses the endpoint.
   */
  get(router: string, publicKey: string | null): DealerEntry {
    const open = this.entries.get(router);
    if (open !== undefined) return open;
    const keys = this.host.curveKeys;
    const sec = keys === null ? {} : { curveSecretKey: keys.secretKey, curvePublicKey: keys.publicKey, curveServerKey: publicKey };
    const dealer = new zmq.Dealer({
      context: this.host.context,
      linger: 0,
      sendTimeout: 0,
      sendHighWaterMark: 16,
      maxMessageSize: this.host.frameLimit(),
      ...sec,
    });
    try {
      dealer.connect(router);
    } catch (err) {
      dealer.close();
      throw new SyncError(`Cannot connect to the snapshot endpoint ${router}: ${(err as Error).message}`, 'ECONNECT', { cause: err });
    }
    this.host.watchHandshakes(dealer, () => this.drop(router));
    // A DEALER whose connection broke on a protocol error (a frame beyond maxFrameBytes) is
    // never reconnected by ZeroMQ: reopen it on next use.
    dealer.events.on('disconnect', () => {
      if (!this.host.isClosed() && this.entries.get(router)?.dealer === dealer) this.drop(router);
    });
    const queue = new SendQueue(
      dealer,
      16,
      (err) => {
        // A DEALER whose peer is gone fills up to its HWM; then sends fail at once with EAGAIN.
        if ((err as { code?: unknown }).code === 'EAGAIN') this.host.hwm();
        else this.host.sendError(err);
      },
      this.host.maxQueuedBytes,
    );
    const entry = { dealer, queue };
    this.entries.set(router, entry);
    this.host.receiveLoop(dealer, (frames) => this.host.onMessage(frames, publicKey));
    return entry;
  }

  /** Closes the DEALER to `router`, if open. */
  drop(router: string): void {
    const entry = this.entries.get(router);
    if (entry === undefined) return;
    this.entries.delete(router);
    entry.queue.close();
    entry.dealer.close();
  }

  /** Closes every DEALER (reopened on next use). */
  dropAll(): void {
    for (const router of [...this.entries.keys()]) this.drop(router);
  }
}
