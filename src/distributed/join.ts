/**
 * The start barrier and the join protocol of a {@link PeerGroup}.
 *
 * - **Start together.** A starting peer greets (`hello`) its seeds and every peer they name,
 *   and starts when it has heard `expectedPeers − 1` others directly; the first view holds them
 *   all, sorted by id. A starting peer that hears a running peer whose first view names it adopts
 *   that view (it was only slower to hear everyone).
 * - **Join late.** A peer that hears a running run it is not a member of asks to `join`; the
 *   leader admits it (see `PeerGroup.allReduce`) and sends a `snapshot` (a checkpoint's bytes and
 *   the round it reflects). A run that has finished answers with the final model.
 */
import { createHash } from 'node:crypto';
import { SyncError, WireFormatError } from '../errors.js';
import { senderIdOf } from '../sync/mesh.js';
import { ENDPOINT_RE, ID_RE, type RoundMessage, type WireMember, intField, membersField } from '../sync/rounds-wire.js';
import { MAX_PEERS, type PeerEntry, type PeerGroup, short } from './group.js';

/** How a peer enters the run. */
export type StartResult =
  | { readonly kind: 'fresh'; readonly members: number }
  | { readonly kind: 'joined'; readonly snapshot: Buffer; readonly round: number; readonly members: number; readonly from: string }
  | { readonly kind: 'finished'; readonly model: Buffer; readonly from: string };

interface Heard {
  readonly running: boolean;
  readonly view: number;
  /** The round the peer's next all-reduce takes part in. */
  readonly next: number;
  readonly members: readonly string[];
}

/** The start and join side of a group (owned by its {@link PeerGroup}). */
export class JoinDesk {
  private mode: 'idle' | 'starting' | 'joining' | 'running' = 'idle';
  private readonly heard = new Map<string, Heard>();
  private readonly lastReply = new Map<string, number>();
  private readonly finalSent = new Map<string, number>();
  private readonly finishedClaims = new Map<string, { readonly digest: string; readonly model: Buffer }>();
  private settle: { resolve(r: StartResult): void; reject(e: Error): void } | undefined;
  private deadline = 0;
  private startedAt = 0;

  constructor(private readonly group: PeerGroup) {}

  start(timeoutMs: number): Promise<StartResult> {
    this.mode = 'starting';
    this.startedAt = Date.now();
    this.deadline = this.startedAt + timeoutMs;
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.tick(Date.now());
    });
  }

  /** Every heartbeat: greet, ask to join, check the barrier and its deadline. */
  tick(now: number): void {
    const g = this.group;
    if (this.mode === 'starting') {
      for (const s of g.options.peers) g.sendToEndpoint(s.endpoint, s.publicKey, 'hello', this.hello(), [], 0);
      for (const p of g.directory.values())
        if (!this.heard.has(p.id)) g.sendToEndpoint(p.endpoint, p.publicKey, 'hello', this.hello(), [], 0);
      this.checkBarrier();
    } else if (this.mode === 'joining') {
      // Every peer heard, running or not when last heard: a peer restarted since then may be running again (a peer not running ignores it).
      for (const id of this.heard.keys()) g.sendTo(id, 'join', this.identity(), [], 0);
    }
    if ((this.mode === 'joining' || this.mode === 'starting') && this.finishedClaims.size > 0) this.checkFinished(now);
    if ((this.mode === 'starting' || this.mode === 'joining') && now > this.deadline) this.timeout(now);
  }

  private hello(): Record<string, unknown> {
    const g = this.group;
    const known = [...g.directory.values()].slice(0, 64).map((p) => ({ id: p.id, endpoint: p.endpoint, publicKey: p.publicKey }));
    return { ...this.identity(), running: g.view > 0, view: g.view, next: g.next, members: g.members, known };
  }

  private identity(): Record<string, unknown> {
    const s = this.group.self;
    return { endpoint: s.endpoint, publicKey: s.publicKey, fingerprint: this.group.options.fingerprint };
  }

  private checkBarrier(): void {
    const g = this.group;
    for (const h of this.heard.values()) {
      if (!h.running) continue;
      if (h.view === 1 && h.next === 0 && h.members.includes(g.id) && h.members.every((id) => id === g.id || g.directory.has(id))) {
        this.begin(h.members);
      } else {
        this.mode = 'joining';
        g.emit('started', `the run is under way (${h.members.length} member(s)): asking to join`);
      }
      return;
    }
    const others = [...this.heard.keys()];
    if (others.length + 1 >= g.options.expectedPeers) this.begin([g.id, ...others]);
  }

  private begin(ids: readonly string[]): void {
    const g = this.group;
    g.members = [...ids].sort();
    g.view = 1;
    g.next = 0;
    // A member known only from another peer's hello has never been heard itself (lastHeard 0):
    // the run starts its clock now, or the first heartbeat check would drop it at once.
    const now = Date.now();
    for (const id of g.members) {
      const e = g.directory.get(id);
      if (e !== undefined) e.lastHeard = Math.max(e.lastHeard, now);
    }
    this.mode = 'running';
    g.emit(
      'started',
      `all ${g.members.length} peers present after ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s; members ${g.members.map(short).join(', ')}`,
    );
    this.settle?.resolve({ kind: 'fresh', members: g.members.length });
    this.settle = undefined;
  }

  private timeout(now: number): void {
    const g = this.group;
    const heardEndpoints = [...this.heard.keys()].map((id) => g.directory.get(id)?.endpoint ?? id);
    const missing = g.options.peers.map((p) => p.endpoint).filter((e) => !heardEndpoints.includes(e));
    const what =
      this.mode === 'starting'
        ? `waited ${((now - this.startedAt) / 1000).toFixed(0)} s for ${g.options.expectedPeers} peers (this one included); heard from ${heardEndpoints.length > 0 ? heardEndpoints.join(', ') : 'none'}; missing: ${missing.length > 0 ? missing.join(', ') : `${g.options.expectedPeers - 1 - heardEndpoints.length} peer(s) not named in --peers`}`
        : `asked the running peers (${heardEndpoints.join(', ')}) to join for ${((now - this.startedAt) / 1000).toFixed(0)} s without an answer`;
    const over =
      this.mode === 'starting' && heardEndpoints.length === 0
        ? ` If this peer was restarted after the others finished the run, the run is over: finished peers answer a restarted peer with the final model for only ${(2 * g.peerTimeoutMs) / 1000} s (2 × --peer-timeout-ms); take the model of a peer that finished.`
        : '';
    this.fail(new SyncError(`Peer start: ${what}. Start every peer (or raise --start-timeout-ms).${over}`, 'ESTART'));
  }

  /** Handles `hello`, `join`, `snapshot` and `finished`. */
  handle(msg: RoundMessage, known: PeerEntry | undefined): void {
    switch (msg.kind) {
      case 'hello':
        return this.onHello(msg);
      case 'join':
        return this.onJoin(msg, known);
      case 'snapshot':
        return this.onSnapshot(msg);
      case 'finished':
        return this.onFinished(msg);
      default:
        return;
    }
  }

  /** Checks a peer's claimed identity: the id must derive from its key (or plaintext endpoint) and its model must match ours. */
  private identify(msg: RoundMessage): WireMember | undefined {
    const g = this.group;
    const m = msg.meta;
    const endpoint = m['endpoint'];
    const publicKey = m['publicKey'] ?? null;
    if (typeof endpoint !== 'string' || !ENDPOINT_RE.test(endpoint))
      throw new WireFormatError('EFIELD', "Field 'endpoint' is missing or malformed.");
    const plaintext = g.options.mesh.plaintext === true;
    if (plaintext ? publicKey !== null : typeof publicKey !== 'string' || publicKey.length !== 40)
      throw new WireFormatError('EFIELD', `Field 'publicKey' must be ${plaintext ? 'null (plaintext run)' : 'a 40-character Z85 key'}.`);
    if (
      (!plaintext && !(g.options.mesh.allowlist ?? []).includes(publicKey as string)) ||
      senderIdOf(publicKey as string | null, endpoint) !== msg.sender
    ) {
      g.emit(
        'refused',
        `${msg.kind} from ${endpoint}: its id ${short(msg.sender)} does not derive from its ${plaintext ? 'endpoint' : 'allowlisted key'}`,
      );
      return undefined;
    }
    if (m['fingerprint'] !== g.options.fingerprint) {
      this.fail(
        new SyncError(
          `The peer at ${endpoint} trains another model or schedule (fingerprint ${String(m['fingerprint']).slice(0, 12)}…, ours ${g.options.fingerprint.slice(0, 12)}…): start every peer with the same model and training options.`,
          'EFINGERPRINT',
        ),
      );
      return undefined;
    }
    return { id: msg.sender, endpoint, publicKey: publicKey as string | null };
  }

  private onHello(msg: RoundMessage): void {
    const g = this.group;
    if (process.env['DBN_NODE_TRACE_ROUNDS'] === '1')
      process.stderr.write(`[rounds] hello from ${short(msg.sender)} running ${String(msg.meta['running'])} mode ${this.mode}\n`);
    const who = this.identify(msg);
    if (who === undefined) return;
    const running = msg.meta['running'] === true;
    const view = intField(msg.meta, 'view', 0);
    const next = intField(msg.meta, 'next', 0);
    const membersRaw = msg.meta['members'];
    if (!Array.isArray(membersRaw) || membersRaw.length > MAX_PEERS || !membersRaw.every((s) => typeof s === 'string' && ID_RE.test(s)))
      throw new WireFormatError('EFIELD', "Field 'members' must be a list of peer ids.");
    const now = Date.now();
    if (!g.remember(who, msg.instance, now)) return;
    if (this.heard.size < MAX_PEERS) this.heard.set(who.id, { running, view, next, members: membersRaw as string[] });
    if (this.mode === 'starting') for (const k of plausibleRecords(g, membersField(msg.meta, 'known', 64))) g.remember(k, 0, 0);
    this.replyHello(who.id, now);
    if (this.mode === 'starting') this.checkBarrier();
  }

  /** Answers a peer with a hello (at most twice per heartbeat): it hears that this peer is alive and whether it runs. */
  private replyHello(id: string, now: number): void {
    const g = this.group;
    const last = this.lastReply.get(id) ?? 0;
    if (now - last >= g.heartbeatMs / 2 && (this.lastReply.size < MAX_PEERS || this.lastReply.has(id))) {
      this.lastReply.set(id, now);
      g.sendTo(id, 'hello', this.hello(), [], g.next);
    }
  }

  private onJoin(msg: RoundMessage, known: PeerEntry | undefined): void {
    const g = this.group;
    if (g.view === 0) return;
    const who = this.identify(msg);
    if (who === undefined) return;
    g.remember(who, msg.instance, Date.now());
    if (g.finalModel !== undefined) {
      this.sendFinal(who.id);
      return;
    }
    if (known !== undefined && g.members.includes(who.id) && known.instance === msg.instance) return;
    this.replyHello(who.id, Date.now());
    if (g.leader === g.id) g.queueJoin(who);
  }

  private onSnapshot(msg: RoundMessage): void {
    const g = this.group;
    if (this.mode !== 'joining' || msg.payload.length !== 1) return;
    const members = membersField(msg.meta, 'members', MAX_PEERS);
    if (!members.some((m) => m.id === g.id)) return;
    // A snapshot comes from a member of the view it names that this peer has heard running (the leader answers a join with a hello).
    if (!members.some((m) => m.id === msg.sender) || this.heard.get(msg.sender)?.running !== true) {
      g.emit('refused', `snapshot from ${short(msg.sender)}: not a running member of the view it names`);
      return;
    }
    const now = Date.now();
    for (const m of members) if (m.id !== g.id) g.remember(m, 0, now);
    g.members = members.map((m) => m.id).sort();
    g.view = msg.view;
    g.next = msg.round;
    g.dropRoundsBelow(msg.round);
    this.mode = 'running';
    g.emit(
      'joined',
      `snapshot from ${short(msg.sender)} (${msg.payload[0]!.length} bytes) for round ${msg.round}; ${g.members.length} members`,
    );
    this.settle?.resolve({ kind: 'joined', snapshot: msg.payload[0]!, round: msg.round, members: g.members.length, from: msg.sender });
    this.settle = undefined;
  }

  /**
   * A peer says the run has finished. One peer's word is a hint: the final model is adopted only
   * when every peer heard within the timeout sent the same model (by SHA-256), and not before
   * this peer has listened for one timeout.
   */
  private onFinished(msg: RoundMessage): void {
    if ((this.mode !== 'joining' && this.mode !== 'starting') || msg.payload.length !== 1 || !this.heard.has(msg.sender)) return;
    if (this.finishedClaims.size < MAX_PEERS || this.finishedClaims.has(msg.sender)) {
      this.finishedClaims.set(msg.sender, { digest: createHash('sha256').update(msg.payload[0]!).digest('hex'), model: msg.payload[0]! });
    }
    this.checkFinished(Date.now());
  }

  private checkFinished(now: number): void {
    const g = this.group;
    // Give every reachable peer a timeout to be heard before a claim can be agreed.
    if (now - this.startedAt < g.peerTimeoutMs) return;
    const live = [...this.heard.keys()].filter((id) => now - (g.directory.get(id)?.lastHeard ?? 0) <= g.peerTimeoutMs);
    const claims = live.map((id) => this.finishedClaims.get(id));
    const first = claims[0];
    if (first === undefined || claims.some((c) => c?.digest !== first.digest)) return;
    this.mode = 'running';
    this.settle?.resolve({ kind: 'finished', model: first.model, from: live[0]! });
    this.settle = undefined;
  }

  /** After training: the final model goes to `waiting` (admitted or queued joiners) and to whoever asks to join later (see `onJoin`). */
  serveFinished(waiting: readonly string[]): void {
    this.mode = 'running';
    for (const id of waiting) this.sendFinal(id);
  }

  private sendFinal(id: string): void {
    const g = this.group;
    const last = this.finalSent.get(id) ?? 0;
    if (Date.now() - last < 2 * g.heartbeatMs || g.finalModel === undefined) return;
    if (this.finalSent.size < MAX_PEERS) this.finalSent.set(id, Date.now());
    g.sendTo(id, 'finished', {}, [g.finalModel()], g.next);
    g.emit('snapshot-served', `final model to ${short(id)} (${g.directory.get(id)?.endpoint ?? '?'}): the run has finished`);
  }

  fail(err: Error): void {
    this.settle?.reject(err);
    this.settle = undefined;
    if (this.mode !== 'running') this.mode = 'idle';
    this.group.fail(err instanceof SyncError ? err : new SyncError(err.message, 'ESTART'));
  }

  close(): void {
    this.settle?.reject(new SyncError('The peer group was closed before it started.', 'ECLOSED'));
    this.settle = undefined;
  }
}

/**
 * Gossiped peer records worth remembering: not known yet, the id derives from the record's key
 * (an allowlisted one under CURVE) or plaintext endpoint, at most 8 new per message and
 * {@link MAX_UNHEARD} never heard from in all.
 */
function plausibleRecords(g: PeerGroup, records: readonly WireMember[]): WireMember[] {
  const plaintext = g.options.mesh.plaintext === true;
  const allow = g.options.mesh.allowlist ?? [];
  const ok = (k: WireMember): boolean =>
    k.id !== g.id &&
    !g.directory.has(k.id) &&
    (plaintext ? k.publicKey === null : k.publicKey !== null && allow.includes(k.publicKey)) &&
    senderIdOf(k.publicKey, k.endpoint) === k.id;
  const unheard = [...g.directory.values()].filter((p) => p.lastHeard === 0).length;
  return records.filter(ok).slice(0, Math.max(0, Math.min(8, MAX_UNHEARD - unheard)));
}

/** Most gossiped records never heard from directly that a peer keeps (each may be dialed). */
const MAX_UNHEARD = 16;
