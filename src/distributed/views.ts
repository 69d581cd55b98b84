/**
 * View changes of a {@link PeerGroup}: when a member is lost (not heard for the timeout,
 * restarted, or left), the lowest live member coordinates a new view. It collects every live
 * member's last completed round, takes the largest (`cut`), keeps the members that completed
 * `cut − 1` or later, and names one that completed `cut`: the others fetch that round's summed
 * result from it. So every survivor applies the same rounds with the same sums.
 */
import { SyncError, WireFormatError } from '../errors.js';
import { type RoundKindName, type RoundMessage, type WireMember, encodeRound, intField, membersField } from '../sync/rounds-wire.js';
import { MAX_PEERS, type PeerGroup, short } from './group.js';

/** Kinds a member sends within a view (not a joiner's or a leaver's). */
const SPOKEN_IN_A_VIEW: ReadonlySet<RoundKindName> = new Set<RoundKindName>([
  'heartbeat',
  'contribution',
  'chunk',
  'state',
  'recover',
  'resultRequest',
]);

interface Coordination {
  readonly since: number;
  readonly suspects: Set<string>;
  readonly states: Map<string, number>;
}

/** The failure side of a group (owned by its {@link PeerGroup}). */
export class ViewChanges {
  private readonly suspects = new Set<string>();
  private recovery: { coordinator: string; since: number } | undefined;
  private coordination: Coordination | undefined;
  /** When each dropped peer was last told so (bounded by the peer table). */
  private readonly told = new Map<string, number>();
  /** The round after which each peer was dropped, in a view change this peer took part in (bounded like `told`). */
  private readonly droppedAfter = new Map<string, number>();
  /** Set when this peer learned it was dropped: after which round, and the error its rounds fail with. */
  private exclusion: { readonly cut: number; readonly error: SyncError } | undefined;
  /** When this peer last checked (its first check counts from when the group was made). */
  private lastTick = Date.now();
  /** Set once this peer was told it was dropped (or the views disagree): it takes part in no view change after that. */
  private stopped = false;
  /** When each dropped peer was last probed (keys: those of `droppedAfter`). */
  private readonly probed = new Map<string, number>();
  /** The other groups of a split already reported (at most 16). */
  private readonly splitsSaid = new Set<string>();

  constructor(private readonly g: PeerGroup) {}

  /** Every heartbeat: suspects members not heard for the timeout, and a stalled view change's coordinator. */
  tick(now: number): void {
    if (this.stopped) return;
    const g = this.g;
    this.creditDeafTime(now);
    for (const id of g.members) {
      const e = g.directory.get(id);
      if (id !== g.id && e !== undefined && now - e.lastHeard > g.peerTimeoutMs) this.suspect(id, `not heard for ${now - e.lastHeard} ms`);
    }
    const r = this.recovery;
    if (r !== undefined && now - r.since > g.peerTimeoutMs) {
      this.recovery = undefined;
      this.suspect(r.coordinator, 'did not complete the view change');
      if (this.recovery === undefined && this.coordination === undefined) this.beginRecovery();
    }
    const c = this.coordination;
    if (c !== undefined && now - c.since > g.peerTimeoutMs) this.checkCoordination(true);
  }

  /**
   * Silence is judged by the time this peer was listening. When a tick comes late, this peer's
   * event loop was held (a long computation, a loaded machine): messages that arrived meanwhile
   * are still queued in its sockets, so the time beyond one heartbeat is credited to every member
   * and to a pending view change, not counted against them. Without this, peers that all finished
   * a long layer-boundary computation at once dropped each other (seen under load).
   */
  private creditDeafTime(now: number): void {
    const deaf = now - this.lastTick - this.g.heartbeatMs;
    this.lastTick = now;
    if (deaf <= this.g.heartbeatMs) return;
    for (const id of this.g.members) {
      const e = this.g.directory.get(id);
      if (e !== undefined && e.lastHeard > 0) e.lastHeard = Math.min(now, e.lastHeard + deaf);
    }
    if (this.recovery !== undefined) this.recovery = { ...this.recovery, since: Math.min(now, this.recovery.since + deaf) };
    if (this.coordination !== undefined) this.coordination = { ...this.coordination, since: Math.min(now, this.coordination.since + deaf) };
  }

  /**
   * Every message from a known peer that is not a member but speaks in a view is told this view:
   * one in an older view was dropped while it could not hear; one in a view of the same number,
   * or a peer this one dropped speaking in a newer view, is in another group that went on apart
   * (a partition that healed), and the two compare (see {@link onSplit}).
   */
  heardFrom(msg: RoundMessage): void {
    const g = this.g;
    if (g.view === 0 || msg.view <= 0 || g.members.includes(msg.sender) || !SPOKEN_IN_A_VIEW.has(msg.kind)) return;
    if (msg.view <= g.view || this.droppedAfter.has(msg.sender)) this.tellDropped(msg.sender);
  }

  /**
   * Peers this peer dropped in a view change and has not heard since: once per `peerTimeoutMs`
   * each is sent a heartbeat, so that after a partition heals the two sides hear of each other
   * (each side's heartbeats otherwise go to its own members only). A peer that died gets a few
   * bytes it never reads.
   */
  toProbe(now: number): string[] {
    const out: string[] = [];
    for (const id of this.droppedAfter.keys()) {
      if (this.g.members.includes(id) || now - (this.probed.get(id) ?? 0) < this.g.peerTimeoutMs) continue;
      this.probed.set(id, now);
      out.push(id);
    }
    return out;
  }

  /**
   * A peer that is not a member yet still speaks in an older view of this run was dropped while
   * it could not hear (stopped, starved): tell it, at most once per heartbeat, with this view's
   * members and the round after which it was dropped (−1 when this peer does not know). It stops
   * with `EEXCLUDED` (restarted, it rejoins from a snapshot), instead of later dropping everyone
   * else and finishing alone with another model.
   */
  tellDropped(id: string): void {
    const g = this.g;
    const now = Date.now();
    const last = this.told.get(id);
    if ((last !== undefined && now - last < g.heartbeatMs) || (last === undefined && this.told.size >= MAX_PEERS)) return;
    const p = g.directory.get(id);
    if (p === undefined) return;
    this.told.set(id, now);
    const records = g.members.map((m) => g.memberRecord(m));
    const header = {
      kind: 'newView' as const,
      runId: g.options.runId,
      sender: g.id,
      instance: g.instance,
      view: g.view,
      round: this.droppedAfter.get(id) ?? -1,
    };
    g.mesh.send(p.endpoint, p.publicKey, encodeRound(header, { members: records, holder: g.id }));
  }

  /**
   * Whether a view change is under way: this peer told a coordinator its last completed round, or
   * coordinates with its own. Until the new view is in place it completes no round (the group
   * checks this): a chunk sum or result still on its way — the lost peer's, sent before it
   * stopped — would otherwise complete a round after this peer reported it had not, and the new
   * view, which continues after the reported rounds, would find it a round ahead.
   */
  get changing(): boolean {
    return this.recovery !== undefined || this.coordination !== undefined;
  }

  /** Whether `id` is suspected now. */
  isSuspect(id: string): boolean {
    return this.suspects.has(id);
  }

  /** Marks a member as suspected (not heard, or restarted); a view change follows. */
  suspect(id: string, why: string): void {
    if (this.stopped || !this.g.members.includes(id) || id === this.g.id || this.suspects.has(id)) return;
    this.suspects.add(id);
    this.g.emit('peer-lost', `${short(id)} (${this.g.directory.get(id)?.endpoint ?? '?'}): ${why}`);
    if (this.recovery === undefined && this.coordination === undefined) this.beginRecovery();
  }

  private beginRecovery(): void {
    const alive = this.g.members.filter((id) => !this.suspects.has(id));
    const coordinator = alive[0]!;
    if (coordinator === this.g.id) {
      this.coordinate([...this.suspects]);
      return;
    }
    this.recovery = { coordinator, since: Date.now() };
    this.g.sendTo(coordinator, 'state', { completed: this.g.next - 1, suspects: [...this.suspects] });
  }

  private coordinate(suspects: readonly string[]): void {
    this.g.countRecovery();
    this.coordination = {
      since: Date.now(),
      suspects: new Set([...suspects, ...this.suspects]),
      states: new Map([[this.g.id, this.g.next - 1]]),
    };
    for (const id of this.g.members)
      if (id !== this.g.id && !this.coordination.suspects.has(id))
        this.g.sendTo(id, 'recover', { suspects: [...this.coordination.suspects] });
    this.checkCoordination();
  }

  onRecover(msg: RoundMessage): void {
    if (this.stopped || msg.view !== this.g.view || !this.g.members.includes(msg.sender) || this.suspects.has(msg.sender)) return;
    this.recovery = { coordinator: msg.sender, since: Date.now() };
    this.g.sendTo(msg.sender, 'state', { completed: this.g.next - 1, suspects: [...this.suspects] });
  }

  onState(msg: RoundMessage): void {
    if (this.stopped || msg.view !== this.g.view || !this.g.members.includes(msg.sender)) return;
    const completed = intField(msg.meta, 'completed', -1);
    const theirs = suspectList(msg.meta);
    if (this.coordination === undefined) {
      const alive = this.g.members.filter((id) => !theirs.includes(id) && !this.suspects.has(id));
      if (alive[0] !== this.g.id) return;
      this.coordinate(theirs);
    }
    const c = this.coordination!;
    for (const s of theirs) if (s !== this.g.id) c.suspects.add(s);
    if (!c.suspects.has(msg.sender)) c.states.set(msg.sender, completed);
    this.checkCoordination();
  }

  checkCoordination(force = false): void {
    const c = this.coordination;
    if (c === undefined) return;
    const expected = this.g.members.filter((id) => !c.suspects.has(id));
    if (!force && !expected.every((id) => c.states.has(id))) return;
    const cut = Math.max(...c.states.values());
    const members = [...c.states.entries()]
      .filter(([, done]) => done >= cut - 1)
      .map(([id]) => id)
      .sort();
    const holder =
      [...c.states.entries()].find(([id, done]) => done === cut && id === this.g.id)?.[0] ??
      [...c.states.entries()].find(([, done]) => done === cut)![0];
    const view = this.g.view + 1;
    const records = members.map((id) => this.g.memberRecord(id));
    this.coordination = undefined;
    for (const id of members) {
      if (id === this.g.id) continue;
      const p = this.g.directory.get(id)!;
      this.g.mesh.send(
        p.endpoint,
        p.publicKey,
        encodeRound(
          { kind: 'newView', runId: this.g.options.runId, sender: this.g.id, instance: this.g.instance, view, round: cut },
          { members: records, holder },
        ),
      );
    }
    this.applyView(view, records, cut, holder);
  }

  /**
   * A newer view from a member (a view change) or from a peer that dropped this one (see
   * {@link tellDropped}). Ignored before this peer is in a view: a restarted peer on the same
   * endpoint may receive what was queued for its former instance, and a joiner takes its view from its snapshot.
   */
  onNewView(msg: RoundMessage): void {
    const g = this.g;
    if (this.stopped || g.view === 0) return;
    const fromMember = g.members.includes(msg.sender);
    if (fromMember && msg.view <= g.view) return;
    const members = membersField(msg.meta, 'members', MAX_PEERS);
    // A view from outside this one, sharing no member with it: another group, whatever its number.
    if (!fromMember && !members.some((m) => m.id === g.id || g.members.includes(m.id))) {
      this.onSplit(msg.view, members);
      return;
    }
    if (msg.view <= g.view) return;
    const holder = typeof msg.meta['holder'] === 'string' ? msg.meta['holder'] : '';
    this.applyView(msg.view, members, msg.round, holder);
  }

  private applyView(view: number, members: readonly WireMember[], cut: number, holder: string): void {
    if (!members.some((m) => m.id === this.g.id)) {
      const error = new SyncError(
        `This peer was dropped from the run's rounds (view ${view}: it was not heard for ${this.g.peerTimeoutMs} ms). Restart it to rejoin from a snapshot.`,
        'EEXCLUDED',
      );
      this.exclusion = { cut, error };
      this.stop(error);
      return;
    }
    const done = this.g.next - 1;
    if (done !== cut && done !== cut - 1) {
      this.stop(
        new SyncError(
          `View ${view} continues after round ${cut}, but this peer completed round ${done}: the peers disagree on the rounds.`,
          'EPROTOCOL',
        ),
      );
      return;
    }
    const least = this.g.options.minPeers ?? 1;
    if (members.length < least) {
      this.stop(
        new SyncError(
          `View ${view} keeps ${members.length} member(s) (${members.map((m) => short(m.id)).join(', ')}) after round ${cut}, fewer than --min-peers ${least}: this peer stops instead of training on without the others (lost peers, or its side of a network partition). Restart it when the others can be reached: it rejoins from a snapshot.`,
          'EQUORUM',
        ),
      );
      return;
    }
    const now = Date.now();
    const lost = this.g.members.filter((id) => !members.some((m) => m.id === id));
    for (const id of lost) if (this.droppedAfter.size < MAX_PEERS || this.droppedAfter.has(id)) this.droppedAfter.set(id, cut);
    for (const m of members) if (m.id !== this.g.id) this.g.remember(m, 0, now);
    for (const m of members) {
      const e = this.g.directory.get(m.id);
      if (e !== undefined) e.lastHeard = now;
    }
    this.g.members = members.map((m) => m.id).sort();
    this.g.view = view;
    this.suspects.clear();
    this.recovery = undefined;
    this.coordination = undefined;
    this.g.emit(
      'view',
      `view ${view}: ${this.g.members.length} member(s) after round ${cut}${lost.length > 0 ? `; dropped ${lost.map(short).join(', ')}` : ''}`,
    );
    if (done === cut - 1) this.g.sendTo(holder, 'resultRequest', {}, [], cut);
    else {
      this.g.exchange.resend();
      this.g.checkRound();
    }
  }

  /**
   * Another group's view shares no member with this one: the run split into two groups that each
   * went on alone (a partition, now healed), and their models differ. The larger group wins — of
   * two as large, the one holding the lowest id; the view numbers do not count (a peer alone
   * that lost its group twice has the higher one) — so both sides decide alike: a peer of the
   * other stops with `EEXCLUDED` (restarted, it rejoins from a snapshot); the winners say so once.
   */
  private onSplit(view: number, members: readonly WireMember[]): void {
    const ours = this.g.members;
    // Only peers this one knows count (a forged view cannot win with made-up members).
    const theirs = members
      .map((m) => m.id)
      .filter((id) => this.g.directory.has(id))
      .sort();
    if (theirs.length === 0) return;
    const theyWin = theirs.length > ours.length || (theirs.length === ours.length && theirs[0]! < ours[0]!);
    const group = (v: number, ids: readonly string[]): string => `view ${v}, ${ids.length} member(s): ${ids.map(short).join(', ')}`;
    const what = 'the run split into two groups that trained apart (a network partition that healed):';
    if (theyWin) {
      const error = new SyncError(
        `${what[0]!.toUpperCase()}${what.slice(1)} this peer's group (${group(this.g.view, ours)}) and a larger one, or one as large holding the lowest id (${group(view, theirs)}). This group's rounds are not the run's: this peer stops. Restart it to rejoin the run from a snapshot.`,
        'EEXCLUDED',
      );
      this.exclusion = { cut: -1, error };
      this.stop(error);
      return;
    }
    const key = theirs.join(',');
    if (this.splitsSaid.has(key) || this.splitsSaid.size >= 16) return;
    this.splitsSaid.add(key);
    this.g.emit(
      'warning',
      `${what} this group (${group(this.g.view, ours)}) and another (${group(view, theirs)}); this group is larger, or as large and holds the lowest id: the other's peers stop, and rejoin from a snapshot when restarted`,
    );
  }

  /**
   * The error to finish with when this peer was dropped after round `cut` but completed later
   * rounds: the others took those rounds without it, so its model is not the run's.
   */
  droppedApart(): SyncError | undefined {
    const e = this.exclusion;
    return e !== undefined && e.cut < this.g.next - 1 ? e.error : undefined;
  }

  /**
   * Leaves the view changes for good and fails the group (its waiting round rejects): a peer
   * that was dropped must not go on coordinating its own view change, which would keep it
   * running alone with the others' old members.
   */
  private stop(err: SyncError): void {
    this.stopped = true;
    this.recovery = undefined;
    this.coordination = undefined;
    this.suspects.clear();
    this.g.fail(err);
  }
}

function suspectList(meta: Record<string, unknown>): string[] {
  const v = meta['suspects'];
  if (!Array.isArray(v) || v.length > MAX_PEERS || !v.every((s) => typeof s === 'string' && /^[0-9a-f]{32}$/.test(s)))
    throw new WireFormatError('EFIELD', "Field 'suspects' must be a list of peer ids.");
  return v as string[];
}
