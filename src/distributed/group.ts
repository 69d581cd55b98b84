/**
 * A group of peers that train one model in synchronous rounds, with no server: a
 * {@link Collective} over ZeroMQ. See docs/peer-training.md for the protocol; in short:
 *
 * - **Rounds.** Every member sends its contribution to round `g` (gradient sums and row counts)
 *   to every other member; when a member holds every member's contribution it adds them in the
 *   order of the members' ids, so every replica gets the same bits. Members are at most one round
 *   apart (finishing round `g` needs everyone's contribution to `g`).
 * - **Views.** The members of round `g` form a view (a number and a sorted list of ids). The
 *   lowest id is the view's leader. A peer not heard for `peerTimeoutMs` is suspected; the lowest
 *   unsuspected member coordinates a view change: it collects every live member's last completed
 *   round, takes `cut` = the largest, keeps the members that completed `cut − 1` or more, and
 *   names a member that completed `cut` (its result is fetched by those that did not). So every
 *   survivor applies the same rounds with the same sums.
 * - **Joins.** A peer that starts while the others train asks to join; the leader admits it in
 *   its contribution to an epoch's summary round, so every member learns of it with that round,
 *   and sends it a snapshot (a checkpoint) at the next round, the plan round of the next epoch.
 *   An admission changes the members, not the view's number (that counts view changes); a view
 *   change that straddles the admitting round cancels the admission.
 */
import { randomInt } from 'node:crypto';
import { SyncError, WireFormatError } from '../errors.js';
import { PLAN_STEP, type Collective, type RoundPosition } from '../rbm/collective.js';
import { Mesh } from '../sync/mesh.js';
import {
  type RoundKindName,
  type RoundMessage,
  type WireMember,
  decodeArrays,
  decodeRound,
  encodeArrays,
  encodeRound,
  intField,
  membersField,
} from '../sync/rounds-wire.js';
import { JoinDesk, type StartResult } from './join.js';
import { ShardedExchange } from './exchange.js';
import { IdentityGate } from './identity-gate.js';
import type { GroupEvent, GroupStats, PeerEntry, PeerGroupOptions } from './group-types.js';
import { ViewChanges } from './views.js';
import { RunStats, UNIDENTIFIED, countEvent } from './stats.js';

export type { GroupEvent, GroupStats, PeerEntry, PeerGroupOptions } from './group-types.js';

interface Waiting {
  readonly round: number;
  readonly position: RoundPosition;
  readonly tensors: readonly Float32Array[];
  readonly scalars: Float64Array;
  readonly since: number;
  resolve(): void;
  reject(err: Error): void;
}

const TRACE = process.env['DBN_NODE_TRACE_ROUNDS'] === '1';

/** Most peers a group tracks. */
export const MAX_PEERS = 256;

/** One peer's side of a group; create with {@link PeerGroup.open}, then {@link PeerGroup.start}. */
export class PeerGroup implements Collective {
  readonly id: string;
  readonly instance = randomInt(1, 2 ** 32 - 1);
  readonly heartbeatMs: number;
  readonly peerTimeoutMs: number;
  /**
   * Known peers by id (bounded by {@link MAX_PEERS}).
   * @internal
   */
  readonly directory = new Map<string, PeerEntry>();
  /** Sorted ids of the current view's members; empty before the start. */
  members: string[] = [];
  view = 0;
  /** The round the next {@link allReduce} takes part in. */
  next = 0;
  /** Set when training is over: the final model, for peers that ask to join. */
  finalModel: (() => Buffer) | undefined;
  /** Called by the leader to snapshot the model (a checkpoint's bytes) for an admitted peer. */
  snapshotProvider: (() => Buffer) | undefined;
  private last: { round: number; scalars: Float64Array; tensors: Float32Array[] } | undefined;
  private waiting: Waiting | undefined;
  private readonly pendingJoins = new Map<string, WireMember>();
  private admitted: { round: number; peers: WireMember[] } | undefined;
  private fatal: SyncError | undefined;
  private readonly byes = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastYield = 0;
  private readonly counters = { rounds: 0, bytesSent: 0, bytesReceived: 0, waitMs: 0, recoveries: 0, snapshotsServed: 0 };
  /**
   * The start barrier and join protocol.
   * @internal
   */
  readonly desk: JoinDesk;
  /**
   * Failures and view changes.
   * @internal
   */
  readonly views: ViewChanges;
  /**
   * The sums of the rounds.
   * @internal
   */
  readonly exchange: ShardedExchange;
  /** Traffic, rounds, refusals and what the peers report of themselves. */
  readonly runStats: RunStats;
  /**
   * Binds connections to sender ids; drops impersonations.
   * @internal
   */
  readonly gate: IdentityGate;

  private constructor(
    readonly mesh: Mesh,
    readonly options: PeerGroupOptions,
  ) {
    this.id = mesh.id;
    this.heartbeatMs = options.heartbeatMs ?? 500;
    this.peerTimeoutMs = options.peerTimeoutMs ?? 5000;
    this.desk = new JoinDesk(this);
    this.views = new ViewChanges(this);
    this.exchange = new ShardedExchange(this);
    this.runStats = new RunStats(options.name ?? short(this.id));
    this.runStats.isMember = (id) => this.members.includes(id);
    this.gate = new IdentityGate(this);
  }

  /** Binds this peer's socket. */
  static async open(options: PeerGroupOptions): Promise<PeerGroup> {
    const holder: { group?: PeerGroup } = {};
    const mesh = await Mesh.open({ ...options.mesh, maxFrameBytes: options.maxFrameBytes }, (err) =>
      holder.group?.emit('warning', err.message),
    );
    const group = new PeerGroup(mesh, options);
    holder.group = group;
    mesh.listen((frames, connection) => group.onFrames(frames, connection));
    return group;
  }

  /** The endpoint other peers dial. */
  get endpoint(): string {
    return this.mesh.endpoint;
  }

  /**
   * This peer's endpoint and key as message fields.
   * @internal
   */
  selfMeta(): { endpoint: string; publicKey: string | null } {
    const s = this.self;
    return { endpoint: s.endpoint, publicKey: s.publicKey };
  }

  /** This peer as a member record. */
  get self(): WireMember {
    return {
      id: this.id,
      endpoint: this.mesh.endpoint,
      publicKey: this.options.mesh.plaintext === true ? null : this.options.mesh.keys!.publicKey,
    };
  }

  /** The lowest id of the view. */
  get leader(): string | undefined {
    return this.members[0];
  }

  /**
   * Waits for the expected peers (a fresh run) or joins a running one: resolves with a snapshot
   * to resume from, or the final model of a run that has finished.
   */
  async start(): Promise<StartResult> {
    this.timer = setInterval(() => this.tick(), this.heartbeatMs);
    return this.desk.start(this.options.startTimeoutMs ?? 120_000);
  }

  /** Counters of this peer's rounds, bytes, waits, view changes and snapshots. */
  stats(): GroupStats {
    return { ...this.counters, view: this.view, members: this.members.length };
  }

  // ------------------------------------------------------------------ rounds

  async allReduce(position: RoundPosition, tensors: readonly Float32Array[], scalars: Float64Array): Promise<void> {
    // A round that completes at once (a group of one) never waits on a socket: let timers and
    // messages (joiners, heartbeats) in now and then; the checks follow, as one may fail the group.
    if (performance.now() - this.lastYield > 20) {
      await new Promise<void>((r) => setImmediate(r));
      this.lastYield = performance.now();
    }
    if (this.fatal !== undefined) throw this.fatal;
    if (this.closed || this.view === 0) throw new SyncError('PeerGroup.allReduce: the group is not started or is closed.', 'ECLOSED');
    const round = this.next;
    if (TRACE)
      process.stderr.write(
        `[rounds] ${short(this.id)} enter ${round} stage ${position.stage} epoch ${position.epoch} step ${position.step} members ${this.members.map(short).join(',')}\n`,
      );
    if (this.admitted !== undefined && this.admitted.round === round) this.serveSnapshots(this.admitted.peers, round);
    const admit = this.admissions(position, tensors);
    this.exchange.begin({ round, position, admit, scalars: Float64Array.from(scalars), tensors: tensors.map((t) => Float32Array.from(t)) });
    const since = performance.now();
    await new Promise<void>((resolve, reject) => {
      this.waiting = { round, position, tensors, scalars, since, resolve, reject };
      this.checkRound();
    });
    if (this.waiting === undefined && performance.now() - since > 1) this.lastYield = performance.now();
    this.counters.waitMs += performance.now() - since;
    this.runStats.roundDone((performance.now() - since) / 1000);
  }

  /** The leader admits waiting joiners in its contribution to an epoch's summary round (they enter at the next plan round). */
  private admissions(position: RoundPosition, tensors: readonly Float32Array[]): WireMember[] {
    const summary = tensors.length === 0 && position.step !== PLAN_STEP;
    if (!summary || this.leader !== this.id || this.pendingJoins.size === 0) return [];
    const admit = [...this.pendingJoins.values()].filter((p) => !this.members.includes(p.id)).slice(0, 8);
    this.pendingJoins.clear();
    return admit;
  }

  private serveSnapshots(peers: readonly WireMember[], round: number): void {
    this.admitted = undefined;
    if (this.snapshotProvider === undefined) return;
    const bytes = this.snapshotProvider();
    const members = this.members.map((id) => this.memberRecord(id));
    for (const p of peers) {
      if (!this.members.includes(p.id)) continue;
      this.sendTo(p.id, 'snapshot', { members }, [bytes], round);
      this.counters.snapshotsServed++;
      this.emit('snapshot-served', `snapshot (${bytes.length} bytes) to ${short(p.id)} at ${p.endpoint} for round ${round}`);
    }
  }

  /** Forgets what is kept for rounds before `round`. */
  dropRoundsBelow(round: number): void {
    this.exchange.dropBelow(round);
  }

  /** Completes the waiting round when every chunk's sum is in (never while the view changes: see `ViewChanges.changing`). */
  checkRound(): void {
    const w = this.waiting;
    if (w === undefined || w.round !== this.next || this.views.changing) return;
    let admit: WireMember[] | undefined;
    try {
      admit = this.exchange.progress(w.tensors, w.scalars);
    } catch (err) {
      this.fail(err instanceof SyncError ? err : new SyncError(`Round ${w.round}: ${(err as Error).message}`, 'EPROTOCOL', { cause: err }));
      return;
    }
    if (admit !== undefined) this.completeRound(w, admit);
  }

  private completeRound(w: Waiting, admit: readonly WireMember[]): void {
    this.last = {
      round: w.round,
      scalars: Float64Array.from(w.scalars),
      tensors: w.tensors.map((t) => Float32Array.from(t)),
    };
    this.exchange.completed(w.round);
    this.next = w.round + 1;
    this.counters.rounds++;
    this.waiting = undefined;
    if (admit.length > 0) this.admit(admit, w.round);
    w.resolve();
  }

  /**
   * Adds the joiners admitted in round `round` to the members, from the next round on. The view's
   * number stays: it counts view changes only, so a view change that straddles the admission round
   * (some members completed it, others not) is agreed in one view number — and the coordinator's
   * member list then stands for everyone, cancelling the admission (see `onResult`); the
   * joiner keeps asking and is admitted at a later summary round.
   */
  private admit(admit: readonly WireMember[], round: number): void {
    const wasLeader = this.leader === this.id;
    const now = Date.now();
    for (const p of admit) {
      if (p.id === this.id) continue;
      this.remember(p, 0, now);
    }
    this.members = [...new Set([...this.members, ...admit.map((p) => p.id)])].sort();
    this.emit(
      'peer-admitted',
      `${admit.map((p) => `${short(p.id)} (${p.endpoint})`).join(', ')} from round ${round + 1}; ${this.members.length} members`,
    );
    if (wasLeader) this.admitted = { round: round + 1, peers: [...admit] };
  }

  // ------------------------------------------------------------------ messages

  /** Sends a message to a known peer; counts the bytes. */
  sendTo(id: string, kind: RoundKindName, meta: Record<string, unknown>, payload: readonly Buffer[] = [], round = this.next): void {
    const p = this.directory.get(id);
    if (p === undefined) return;
    this.sendToEndpoint(p.endpoint, p.publicKey, kind, meta, payload, round, id);
  }

  /**
   * Sends a message to an endpoint (dialing it with `publicKey` under CURVE); counts the bytes.
   * @internal
   */
  sendToEndpoint(
    endpoint: string,
    publicKey: string | null,
    kind: RoundKindName,
    meta: Record<string, unknown>,
    payload: readonly Buffer[] = [],
    round = this.next,
    to?: string,
  ): void {
    const frames = encodeRound(
      { kind, runId: this.options.runId, sender: this.id, instance: this.instance, view: this.view, round },
      meta,
      payload,
    );
    if (!this.mesh.send(endpoint, publicKey, frames)) return;
    const bytes = frames.reduce((s, f) => s + f.length, 0);
    this.counters.bytesSent += bytes;
    this.runStats.traffic('sent', to ?? [...this.directory.values()].find((p) => p.endpoint === endpoint)?.id ?? UNIDENTIFIED, kind, bytes);
  }

  /** Records a peer (bounded); false when the table is full. */
  remember(p: WireMember, instance: number, now: number): boolean {
    const e = this.directory.get(p.id);
    if (e !== undefined) {
      if (instance !== 0) e.instance = instance;
      e.lastHeard = Math.max(e.lastHeard, now);
      return true;
    }
    if (this.directory.size >= MAX_PEERS) return false;
    this.directory.set(p.id, { ...p, instance, lastHeard: now });
    return true;
  }

  /**
   * The record (id, endpoint, key) of a known peer or of this one.
   * @internal
   */
  memberRecord(id: string): WireMember {
    if (id === this.id) return this.self;
    const e = this.directory.get(id)!;
    return { id, endpoint: e.endpoint, publicKey: e.publicKey };
  }

  private onFrames(frames: Buffer[], connection: string): void {
    if (this.closed) return;
    let msg: RoundMessage;
    try {
      msg = decodeRound(frames);
    } catch (err) {
      if (err instanceof WireFormatError) this.emit('refused', `malformed message: ${err.message}`);
      return;
    }
    if (msg.runId !== this.options.runId || msg.sender === this.id) return;
    const bytes = frames.reduce((s, f) => s + f.length, 0);
    this.counters.bytesReceived += bytes;
    // Counted as it arrives, like bytesReceived (proofs and messages the gate drops included), under the id it claims.
    this.runStats.traffic('received', this.directory.has(msg.sender) ? msg.sender : UNIDENTIFIED, msg.kind, bytes);
    this.gate.receive(msg, connection, bytes, () => this.dispatch(msg));
  }

  /** Handles a message whose connection is bound to its sender. */
  private dispatch(msg: RoundMessage): void {
    if (this.closed) return;
    const known = this.directory.get(msg.sender);
    if (known !== undefined) {
      if (
        known.instance !== 0 &&
        known.instance !== msg.instance &&
        this.members.includes(msg.sender) &&
        msg.kind !== 'contribution' &&
        msg.kind !== 'chunk'
      ) {
        this.suspect(msg.sender, 'restarted');
      }
      if (known.instance === 0 || !this.members.includes(msg.sender)) known.instance = msg.instance;
      known.lastHeard = Date.now();
      this.views.heardFrom(msg);
    }
    try {
      this.handle(msg, known);
    } catch (err) {
      if (err instanceof WireFormatError) this.emit('refused', `${msg.kind} from ${short(msg.sender)}: ${err.message}`);
      else throw err;
    }
  }

  private handle(msg: RoundMessage, known: PeerEntry | undefined): void {
    switch (msg.kind) {
      case 'contribution':
        return this.onContribution(msg, known);
      case 'heartbeat':
        if (known !== undefined) this.runStats.onReport(msg.sender, msg.meta);
        return;
      case 'bye':
        this.byes.add(msg.sender);
        if (msg.meta['leaving'] === true) this.suspect(msg.sender, 'left the run');
        return;
      case 'chunk':
        if (known === undefined || known.instance !== msg.instance || msg.round < this.next || msg.round > this.next + 1) return;
        this.exchange.onSum(msg);
        return this.checkRound();
      case 'resultRequest':
        return this.onResultRequest(msg);
      case 'result':
        return this.onResult(msg);
      case 'recover':
        return this.views.onRecover(msg);
      case 'state':
        return this.views.onState(msg);
      case 'newView':
        return this.views.onNewView(msg);
      default:
        return this.desk.handle(msg, known);
    }
  }

  private onContribution(msg: RoundMessage, known: PeerEntry | undefined): void {
    if (known === undefined || known.instance !== msg.instance) return;
    // Before its snapshot a joiner does not know its first round yet: it keeps the latest rounds.
    if (this.view === 0) this.dropRoundsBelow(msg.round - 2);
    else if (msg.round < this.next || msg.round > this.next + 1) return;
    const m = msg.meta;
    const position = {
      stage: intField(m, 'stage', -1, 1e6),
      epoch: intField(m, 'epoch', 0, 1e9),
      step: intField(m, 'step', PLAN_STEP, 1e9),
    };
    this.exchange.onPart(msg, position, membersField(m, 'admit', 8));
    this.checkRound();
  }

  private onResultRequest(msg: RoundMessage): void {
    const l = this.last;
    if (l === undefined || l.round !== msg.round) return;
    // A result fetched in a view change carries no admission (see onResult); the field stays for the wire format.
    this.sendTo(msg.sender, 'result', { admit: [] }, encodeArrays(l.scalars, l.tensors), l.round);
  }

  /**
   * The result of the round a view change continues after, fetched from its holder. Its
   * admissions are not applied: the new view's members (decided by the coordinator from the
   * members' states) stand for every member, the holder included, which leaves out a joiner
   * admitted in that round; it asks again.
   */
  private onResult(msg: RoundMessage): void {
    const w = this.waiting;
    if (w === undefined || w.round !== msg.round || this.views.changing) return;
    const { scalars, tensors } = decodeArrays(
      msg.payload,
      w.scalars.length,
      w.tensors.map((t) => t.length),
    );
    w.scalars.set(scalars);
    w.tensors.forEach((t, i) => t.set(tensors[i]!));
    this.completeRound(w, []);
  }

  // ------------------------------------------------------------------ timers and end

  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    if (this.view === 0) {
      this.desk.tick(now);
      return;
    }
    const report = this.runStats.report(this.next - 1);
    for (const id of this.members) if (id !== this.id) this.sendTo(id, 'heartbeat', { ...report });
    for (const id of this.views.toProbe(now)) this.sendTo(id, 'heartbeat', { ...report });
    this.desk.tick(now);
    this.views.tick(now);
  }

  /** Marks a member as suspected (not heard, restarted, left); a view change follows. */
  suspect(id: string, why: string): void {
    this.views.suspect(id, why);
  }

  /**
   * Counts a view change this peer coordinated.
   * @internal
   */
  countRecovery(): void {
    this.counters.recoveries++;
  }

  /** A joiner asks to be admitted (leader only queues it). */
  queueJoin(p: WireMember): void {
    if (this.members.includes(p.id)) {
      this.suspect(p.id, 'restarted and asks to join');
      return;
    }
    if (this.pendingJoins.size < 16) this.pendingJoins.set(p.id, p);
  }

  /**
   * Ends this peer's part: tells the members, then serves late joiners the final model and answers view
   * changes until every member said so too, or `2 × peerTimeoutMs` passed (`EEXCLUDED`: dropped before its last rounds).
   * A failure after this peer's last round is reported as a `warning` event: the model is complete.
   */
  async finish(finalModel: () => Buffer): Promise<void> {
    const bytes = finalModel();
    this.finalModel = () => bytes;
    const waiting = [...this.pendingJoins.keys(), ...(this.admitted?.peers.map((p) => p.id) ?? [])];
    this.pendingJoins.clear();
    this.admitted = undefined;
    this.desk.serveFinished(waiting);
    for (const id of this.members) if (id !== this.id) this.sendTo(id, 'bye', {});
    const until = Date.now() + 2 * this.peerTimeoutMs;
    while (
      Date.now() < until &&
      this.views.droppedApart() === undefined &&
      !this.members.every((id) => id === this.id || this.byes.has(id) || this.views.isSuspect(id) || waiting.includes(id))
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.mesh.drain(1000);
    if (this.views.droppedApart() !== undefined) throw this.views.droppedApart();
    // Every round of this peer was taken with the others, so its model is the run's; what went
    // wrong after its last round (a view change that failed, a peer's malformed message) is said.
    // Being dropped after it is not (the others stopped hearing a peer that was done).
    const late = this.fatal;
    if (late !== undefined && late.code !== 'EABORTED' && late.code !== 'EEXCLUDED')
      this.emit('warning', `after this peer's last round (${this.next - 1}): ${late.message} [${late.code}]; its model is complete`);
  }

  /**
   * Leaves the run before its end (e.g. on SIGINT): tells the members, who go on without this
   * peer at once, and rejects a waiting round with `EABORTED`.
   */
  async leave(): Promise<void> {
    for (const id of this.members) if (id !== this.id) this.sendTo(id, 'bye', { leaving: true });
    this.fail(new SyncError('This peer left the run (interrupted).', 'EABORTED'));
    await this.mesh.drain(1000);
  }

  /** Stops timers and sockets; a waiting round rejects. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.desk.close();
    this.waiting?.reject(new SyncError('The peer group was closed.', 'ECLOSED'));
    this.waiting = undefined;
    this.mesh.close(500);
  }

  /** Fails the group: the waiting round and every later one reject with `err`. */
  fail(err: SyncError): void {
    if (this.fatal !== undefined) return;
    this.fatal = err;
    this.waiting?.reject(err);
    this.waiting = undefined;
    this.desk.fail(err);
  }

  /**
   * Reports an event to `options.onEvent`.
   * @internal
   */
  emit(event: GroupEvent['event'], detail: string): void {
    countEvent(this.runStats, event, detail);
    this.options.onEvent?.({ event, detail });
  }
}

/** The first 8 hex of an id, for messages. */
export function short(id: string): string {
  return id.slice(0, 8);
}
