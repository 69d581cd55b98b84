/**
 * Binding the connections a ROUTER receives on to sender ids, so that no message can speak for
 * another peer's key. zeromq.js does not expose a message's ZAP `User-Id`, so the binding is made
 * by a challenge:
 *
 * 1. A message arrives on connection `C` (the sending DEALER's routing id, random per
 *    connection) claiming sender `S`. If `C` is bound to `S` it is delivered; if `C` is bound to
 *    another sender it is dropped and counted (an impersonation).
 * 2. If `C` is not bound yet, the message is held (bounded in messages and bytes) and a
 *    `challenge` with a random nonce goes to `S` **on this peer's own DEALER to `S`**: under CURVE
 *    that connection authenticates `S`'s public key (the DEALER names it as the server key), so
 *    only the holder of `S`'s secret key reads the nonce.
 * 3. `S` answers `proof(nonce)` on its DEALER to this peer, i.e. on its own connection `C'`.
 *    The connection that carries the right nonce is bound to `S` and its held messages are
 *    delivered; held messages of other connections that claimed `S` stay held until their own
 *    proof, or are dropped after the timeout.
 *
 * In plaintext mode the challenge goes to `S`'s endpoint unauthenticated: the binding then only
 * says that whoever answers at that endpoint sent the message (a network party can spoof it).
 *
 * Pure bookkeeping: no sockets; the caller sends challenges and proofs.
 */
import { randomBytes } from 'node:crypto';

/** Limits of a {@link ConnectionBinder}. */
export interface BinderLimits {
  /** Connections remembered as bound (oldest forgotten first). Default 1024. */
  readonly maxBound?: number;
  /** Unbound connections whose messages are held. Default 64. */
  readonly maxHeldConnections?: number;
  /** Messages held per unbound connection. Default 32. */
  readonly maxHeldMessages?: number;
  /** Bytes held per unbound connection. Default 64 MiB. */
  readonly maxHeldBytes?: number;
  /** A challenge unanswered for this long may be sent again; held messages older than it are dropped. Default 2000 ms. */
  readonly challengeTimeoutMs?: number;
}

/** What became of a message. */
export type Verdict = 'deliver' | 'held' | 'refused';

/** Counters of a binder. */
export interface BinderCounters {
  /** Connections bound by a correct proof. */
  bound: number;
  /** Messages dropped because their connection is bound to another sender. */
  impersonations: number;
  /** Messages dropped because the limits on held messages were reached or their connection never proved its claim. */
  dropped: number;
  /** Challenges sent. */
  challenges: number;
}

interface Held {
  readonly sender: string;
  readonly since: number;
  readonly deliver: () => void;
  readonly bytes: number;
}

/** The connection → sender bindings of one receiving socket. */
export class ConnectionBinder {
  readonly counters: BinderCounters = { bound: 0, impersonations: 0, dropped: 0, challenges: 0 };
  private readonly bound = new Map<string, string>();
  private readonly challenges = new Map<string, { nonce: string; since: number }>();
  private readonly held = new Map<string, Held[]>();
  private readonly limits: Required<BinderLimits>;

  constructor(limits: BinderLimits = {}) {
    this.limits = {
      maxBound: 1024,
      maxHeldConnections: 64,
      maxHeldMessages: 32,
      maxHeldBytes: 64 << 20,
      challengeTimeoutMs: 2000,
      ...limits,
    };
  }

  /** The sender `connection` is bound to, if any. */
  senderOf(connection: string): string | undefined {
    return this.bound.get(connection);
  }

  /**
   * Judges a message of `bytes` bytes that arrived on `connection` claiming `sender`. `deliver`
   * handles it (now or once the connection is bound); `challenge(nonce)` sends `sender` a challenge
   * and returns false when it cannot (then the message is refused).
   */
  judge(
    connection: string,
    sender: string,
    bytes: number,
    deliver: () => void,
    challenge: (nonce: string) => boolean,
    now: number,
  ): Verdict {
    const owner = this.bound.get(connection);
    if (owner === sender) {
      deliver();
      return 'deliver';
    }
    if (owner !== undefined) {
      this.counters.impersonations++;
      return 'refused';
    }
    this.expire(now);
    const list = this.held.get(connection) ?? [];
    const heldBytes = list.reduce((s, h) => s + h.bytes, 0);
    if (
      (list.length === 0 && this.held.size >= this.limits.maxHeldConnections) ||
      list.length >= this.limits.maxHeldMessages ||
      heldBytes + bytes > this.limits.maxHeldBytes
    ) {
      this.counters.dropped++;
      return 'refused';
    }
    const pending = this.challenges.get(sender);
    if (pending === undefined || now - pending.since > this.limits.challengeTimeoutMs) {
      const nonce = randomBytes(16).toString('hex');
      if (!challenge(nonce)) {
        this.counters.dropped++;
        return 'refused';
      }
      this.counters.challenges++;
      this.challenges.set(sender, { nonce, since: now });
    }
    list.push({ sender, since: now, deliver, bytes });
    this.held.set(connection, list);
    return 'held';
  }

  /**
   * A `proof` of `nonce` arrived on `connection` claiming `sender`: binds the connection when the
   * nonce is the one challenged, and delivers its held messages that claimed `sender` (others it
   * held are dropped as impersonations). Returns whether the connection is now bound to `sender`.
   */
  prove(connection: string, sender: string, nonce: string): boolean {
    const pending = this.challenges.get(sender);
    if (pending === undefined || pending.nonce !== nonce || this.bound.has(connection)) return this.bound.get(connection) === sender;
    this.challenges.delete(sender);
    if (this.bound.size >= this.limits.maxBound) this.bound.delete(this.bound.keys().next().value!);
    this.bound.set(connection, sender);
    this.counters.bound++;
    const list = this.held.get(connection) ?? [];
    this.held.delete(connection);
    for (const h of list) {
      if (h.sender === sender) h.deliver();
      else this.counters.impersonations++;
    }
    return true;
  }

  /** Drops held messages older than the challenge timeout. */
  private expire(now: number): void {
    for (const [connection, list] of this.held) {
      const kept = list.filter((h) => now - h.since <= this.limits.challengeTimeoutMs);
      this.counters.dropped += list.length - kept.length;
      if (kept.length === 0) this.held.delete(connection);
      else if (kept.length !== list.length) this.held.set(connection, kept);
    }
  }
}
