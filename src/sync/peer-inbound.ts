/**
 * What a {@link Peer} does with each message it receives: decodes it against this run, checks
 * that a CURVE sender speaks on a connection of its own key (`identity.ts`), and hands deltas,
 * heartbeats, snapshot requests and responses to the ledger, membership, inboxes and snapshot
 * parts. The socket lifecycle stays in `peer.ts`.
 */
import type { EventEmitter } from 'node:events';
import type { Heartbeat } from './heartbeats.js';
import type { KeyBinding } from './identity.js';
import type { SenderLedger } from './ledger.js';
import type { Membership, PeerRecord } from './membership.js';
import { type PeerCounters, decodeChecked } from './peer-counters.js';
import type { PeerEvents, Rejection } from './peer-types.js';
import type { Inbox } from './queues.js';
import type { SnapshotClient } from './snapshot-client.js';
import type { SnapshotService } from './snapshot-service.js';
import type { DeltaMessage, Envelope, HeartbeatMessage, Message } from './wire.js';

/** The parts of a peer the inbound side reads and feeds. */
export interface InboundHost {
  readonly events: EventEmitter<PeerEvents>;
  readonly curve: boolean;
  readonly binding: KeyBinding;
  readonly ledger: SenderLedger;
  readonly counters: PeerCounters;
  readonly inboxes: ReadonlySet<Inbox<DeltaMessage>>;
  readonly snapshots: SnapshotService;
  readonly client: SnapshotClient;
  readonly heartbeat: Heartbeat;
  members(): Membership | undefined;
  env(): Envelope;
  reject(r: Rejection, counter: keyof PeerCounters['rejected']): void;
}

/** The receiving side of a peer. */
export class Inbound {
  constructor(private readonly host: InboundHost) {}

  /** A message on the SUB connected to `rec`'s PUB: deltas and heartbeats. */
  onSubMessage(rec: PeerRecord, frames: Buffer[]): void {
    const members = this.host.members();
    if (members?.records.get(rec.pub) !== rec) return;
    const msg = this.decode(frames);
    if (msg === undefined) return;
    if (msg === 'self') {
      // One of our own names reached us by gossip: stop listening to ourselves.
      members.forgetSelfAlias(rec);
      return;
    }
    if (!this.allowedSender(msg.senderId, rec.publicKey)) return;
    if (msg.kind === 'delta') this.onDelta(msg);
    else if (msg.kind === 'heartbeat') this.onHeartbeat(msg, rec);
    else this.host.counters.unexpected++;
  }

  /** A message on this peer's ROUTER: snapshot requests and announces. */
  onRouterMessage(frames: Buffer[]): void {
    const [rid, ...rest] = frames;
    if (rid === undefined) return;
    const msg = this.decode(rest);
    if (msg === undefined || msg === 'self') return;
    if (msg.kind === 'snapshot-request') void this.host.snapshots.answer(rid, msg);
    else if (msg.kind === 'heartbeat') this.host.members()?.onHeartbeat(msg, null, Date.now());
    else this.host.counters.unexpected++;
  }

  /** A message on a DEALER connected with server key `key`: snapshot responses. */
  onDealerMessage(frames: Buffer[], key: string | null): void {
    const msg = this.decode(frames);
    if (msg === undefined || msg === 'self' || !this.allowedSender(msg.senderId, key)) return;
    if (msg.kind !== 'snapshot-response') {
      this.host.counters.unexpected++;
      return;
    }
    this.host.client.onResponse(msg);
  }

  /** XPUB subscription messages: byte 1 then the prefix. A new subscriber hears us at once. */
  onSubscription(frames: Buffer[]): void {
    const first = frames[0];
    if (first !== undefined && first[0] === 1) this.host.heartbeat.soonAfterSubscription();
  }

  private decode(frames: Buffer[]): Message | 'self' | undefined {
    return decodeChecked(frames, this.host.env(), this.host.counters, {
      malformed: (err) => this.host.events.emit('malformed', err),
      rejected: (r, counter) => this.host.reject(r, counter),
    });
  }

  /**
   * With CURVE, true when `senderId` carries the prefix of `key`, the key of the connection the
   * message came in on (see `identity.ts`); otherwise refuses, counts and reports it. Plaintext
   * has no identities to check: always true.
   */
  private allowedSender(senderId: string, key: string | null): boolean {
    if (!this.host.curve || key === null || this.host.binding.allows(senderId, key)) return true;
    this.host.reject(
      { reason: 'sender', detail: `sender ${senderId} is not derived from key ${key}, the key of its connection`, senderId },
      'sender',
    );
    return false;
  }

  private onDelta(delta: DeltaMessage): void {
    if (this.host.ledger.onDelta(delta.senderId, delta.sequence) !== 'deliver') return;
    this.host.events.emit('delta', delta);
    for (const inbox of this.host.inboxes) if (!inbox.push(delta)) this.host.counters.dropped.inboxFull++;
  }

  /** A heartbeat heard over `rec`'s SUB: it travels behind the sender's deltas, so it moves the floor. */
  private onHeartbeat(hb: HeartbeatMessage, rec: PeerRecord): void {
    this.host.ledger.onHeartbeat(hb.senderId, hb.lastSequence);
    this.host.members()!.onHeartbeat(hb, rec, Date.now());
    this.host.events.emit('heartbeat', hb);
  }
}
