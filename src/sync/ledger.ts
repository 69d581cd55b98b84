/**
 * The sender ledger: what this peer knows of every other sender's delta sequence. Pure: no
 * sockets, no clock, no events; the {@link Peer} front end feeds it and acts on its verdicts.
 *
 * Each sender numbers its deltas 1, 2, 3 … (one counter across layers). For every sender the
 * ledger keeps a floor: every sequence ≤ floor was delivered, is known lost, or is covered by a
 * snapshot. A delta at or below the floor is a duplicate (it was delivered) or stale (it was
 * not); a delta above floor + 1 counts the missing ones as gaps. A heartbeat, which travels
 * behind the sender's deltas on the same connection, carries the sender's last sequence, so
 * losses at the tail are counted too.
 *
 * Only what arrives on the sender's own (key-bound) connection is evidence: `heard` is the
 * highest sequence the sender itself announced (by a delta or a heartbeat). A snapshot's claim
 * about a sender (its sequences map) is a hint: it moves that sender's floor at most
 * {@link HINT_AHEAD} beyond what was heard from the sender (a claim of 2^53 cannot silence it),
 * and a claim about a sender not heard yet waits until it is heard, then counts up to the
 * sequence it first announces.
 */

/** Sequences a snapshot's claim may put a sender's floor beyond what was heard from it. */
export const HINT_AHEAD = 64;

/** Distinct recent sequences remembered per sender, to tell duplicates from stale deltas. */
export const RECENT_SEQUENCES = 1024;

/** Default most senders tracked; past it the least recently heard is forgotten. */
export const DEFAULT_MAX_SENDERS = 1024;

/** Counters of one sender. */
export interface SenderStats {
  delivered: number;
  duplicates: number;
  stale: number;
  gaps: number;
  /** Every sequence ≤ this is delivered, known lost or covered by a snapshot. */
  floor: number;
}

/** What to do with a delta. */
export type DeltaVerdict = 'deliver' | 'duplicate' | 'stale';

interface SenderEntry extends SenderStats {
  /** Highest sequence heard on the sender's own connection (delta or heartbeat). */
  heard: number;
  recent: Set<number>;
  recentOrder: number[];
  /** Order of last hearing, for eviction. */
  touched: number;
}

/** The per-sender sequence book-keeping of one peer; see the top of this file. */
export class SenderLedger {
  private readonly senders = new Map<string, SenderEntry>();
  /** Claims about senders not heard yet: sender → claimed sequence. */
  private readonly pendingHints = new Map<string, number>();
  private clock = 0;

  /** @param maxSenders most senders (and pending hints) kept; the least recently heard go first. */
  constructor(private readonly maxSenders = DEFAULT_MAX_SENDERS) {}

  /** A delta of `sender` numbered `sequence` arrived on that sender's connection. */
  onDelta(sender: string, sequence: number): DeltaVerdict {
    let s = this.senders.get(sender);
    if (s === undefined) s = this.create(sender, sequence - 1, sequence);
    this.touch(s);
    if (sequence > s.heard) s.heard = sequence;
    if (sequence <= s.floor) {
      if (s.recent.has(sequence)) s.duplicates++;
      else s.stale++;
      return s.recent.has(sequence) ? 'duplicate' : 'stale';
    }
    if (sequence > s.floor + 1) s.gaps += sequence - s.floor - 1;
    s.floor = sequence;
    s.delivered++;
    s.recent.add(sequence);
    s.recentOrder.push(sequence);
    if (s.recentOrder.length > RECENT_SEQUENCES) s.recent.delete(s.recentOrder.shift()!);
    return 'deliver';
  }

  /** A heartbeat of `sender` saying its last delta was `lastSequence` arrived on its connection. */
  onHeartbeat(sender: string, lastSequence: number): void {
    let s = this.senders.get(sender);
    if (s === undefined) s = this.create(sender, lastSequence, lastSequence);
    this.touch(s);
    if (lastSequence > s.heard) s.heard = lastSequence;
    if (lastSequence > s.floor) {
      s.gaps += lastSequence - s.floor;
      s.floor = lastSequence;
    }
  }

  /**
   * Takes a snapshot's claims (sender → last sequence reflected in its weights) as hints:
   * a known sender's floor rises to at most `heard + HINT_AHEAD`; an unknown sender's claim
   * waits until it is heard. `self` (this peer's own id) is skipped.
   */
  adoptHints(claims: ReadonlyMap<string, number>, self: string): void {
    for (const [sender, claim] of claims) {
      if (sender === self) continue;
      const s = this.senders.get(sender);
      if (s === undefined) {
        if (this.pendingHints.size >= this.maxSenders && !this.pendingHints.has(sender)) continue;
        this.pendingHints.set(sender, Math.max(claim, this.pendingHints.get(sender) ?? 0));
        continue;
      }
      const bounded = Math.min(claim, s.heard + HINT_AHEAD);
      if (bounded > s.floor) s.floor = bounded;
    }
  }

  /** Every sender's floor (what a snapshot taken now reflects once delivered deltas are applied). */
  floors(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [id, s] of this.senders) m.set(id, s.floor);
    return m;
  }

  /** Counters of one sender, or undefined when it is not tracked. */
  statsOf(sender: string): SenderStats | undefined {
    const s = this.senders.get(sender);
    return s === undefined ? undefined : { delivered: s.delivered, duplicates: s.duplicates, stale: s.stale, gaps: s.gaps, floor: s.floor };
  }

  /** Counters of every tracked sender. */
  stats(): Record<string, SenderStats> {
    const out: Record<string, SenderStats> = {};
    for (const id of this.senders.keys()) out[id] = this.statsOf(id)!;
    return out;
  }

  /** Number of tracked senders. */
  get size(): number {
    return this.senders.size;
  }

  /**
   * A sender first heard at `firstHeard` (with a floor of `floor` had no claim been made): a
   * pending claim counts up to what the sender itself announced, never beyond.
   */
  private create(sender: string, floor: number, firstHeard: number): SenderEntry {
    const hint = this.pendingHints.get(sender);
    this.pendingHints.delete(sender);
    const start = hint === undefined ? floor : Math.max(floor, Math.min(hint, firstHeard));
    if (this.senders.size >= this.maxSenders) this.evictOldest();
    const s: SenderEntry = {
      delivered: 0,
      duplicates: 0,
      stale: 0,
      gaps: 0,
      floor: start,
      heard: 0,
      recent: new Set(),
      recentOrder: [],
      touched: 0,
    };
    this.senders.set(sender, s);
    return s;
  }

  private touch(s: SenderEntry): void {
    s.touched = ++this.clock;
  }

  private evictOldest(): void {
    let oldest: string | undefined;
    let when = Infinity;
    for (const [id, s] of this.senders) {
      if (s.touched < when) {
        when = s.touched;
        oldest = id;
      }
    }
    if (oldest !== undefined) this.senders.delete(oldest);
  }
}
