/**
 * Lockstep rounds: every publication point is a round `r` of the stage; a peer publishes its
 * change since round `r − 1` (float32, also when zero), waits until it holds the round-`r` delta
 * of every live trainer, and loads `base + scale · Σ d` summed in an order fixed by the deltas'
 * contents, so every peer ends every round with the same bits, whatever the arrival order or
 * load, and a rerun with the same seeds gives the same bits too (docs/async-peer-training.md).
 */
import { InvalidDataError, SyncError } from '../../errors.js';
import type { DeltaMessage } from '../../sync/index.js';
import { lengthOf, mergedWeightsSound, sumOfSquares } from './delta-guard.js';
import { roundChange, sendRound } from './encodings.js';
import type { BatchPosition, MergeStrategy, TrainerContext } from './merge-strategy.js';
import type { RemoteView } from './remote-peers.js';
import { deltaOverhead, type GroupState } from './state.js';

/** The group a lockstep peer makes rounds for (kept through the stage's barrier, which may add empty rounds). */
interface RoundGroup {
  readonly group: GroupState;
  /** Rounds completed in this group. */
  round: number;
  /** Rounds per epoch every peer makes (the largest announced), once agreed. */
  perEpoch: number | undefined;
  /** Rounds made in the current local epoch. */
  inEpoch: number;
}

/**
 * A total order of deltas by their bits (tensor by tensor, element by element, as signed 32-bit
 * integers): float32 addition is not associative, so a round's deltas are summed in an order
 * that depends only on what they hold. Deltas that compare equal are bit-identical.
 */
function byContent(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  for (let t = 0; t < a.length; t++) {
    const x = new Int32Array(a[t]!.buffer, a[t]!.byteOffset, a[t]!.length);
    const y = new Int32Array(b[t]!.buffer, b[t]!.byteOffset, b[t]!.length);
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return x[k]! - y[k]!;
  }
  return 0;
}

function roundKey(group: number, round: number): string {
  return `${group}/${round}`;
}

/** The lockstep {@link MergeStrategy}. */
export class LockstepMerge implements MergeStrategy {
  readonly kind = 'lockstep';
  readonly rateLimited = false;
  readonly layerBarrier = true;
  readonly pending = 0;
  announced = 0;
  private rounds: RoundGroup | undefined;
  /** The deltas held per `group/round` and sender; each sender's last sequence and count per group. */
  private readonly held = new Map<string, Map<string, Float32Array[]>>();
  private readonly chains = new Map<string, { last: number; count: number }>();
  private failure: Error | undefined;
  /** Wakes the one wait in progress (a delta, heartbeat or lost peer arrived). */
  private wake: (() => void) | undefined;

  constructor(private readonly ctx: TrainerContext) {}

  enterGroup(g: GroupState): void {
    this.rounds = { group: g, round: 0, perEpoch: undefined, inEpoch: 0 };
    this.announced = 0;
  }

  /**
   * Counts a minibatch; every `publishEvery` minibatches and at the epoch's last one, makes a
   * round; after the epoch's last, adds empty rounds up to the agreed rounds per epoch. The first
   * minibatch of a stage first agrees on that number with the other peers.
   */
  async afterBatch(id: number, position: BatchPosition): Promise<void> {
    const since = this.ctx.countBatch(id);
    const rounds = this.rounds!;
    if (rounds.perEpoch === undefined) await this.agreeRounds(rounds, position.batches);
    const last = position.batch === position.batches - 1;
    if (since < this.ctx.common.publishEvery && !last) return;
    await this.round(rounds);
    rounds.inEpoch++;
    if (!last) return;
    for (; rounds.inEpoch < rounds.perEpoch!; rounds.inEpoch++) {
      await this.round(rounds);
      this.ctx.counters.padded++;
    }
    rounds.inEpoch = 0;
  }

  async endStage(id: number): Promise<void> {
    // The stage's last round: every peer makes it (the change since the last round, often none).
    if (this.ctx.current()?.id === id) await this.round(this.rounds!);
    this.announced = 0;
  }

  /**
   * A remote delta is the next round of its sender in its group when its `baseSequence` is the
   * last one received; anything else means a delta was lost, which lockstep cannot repair.
   */
  receive(msg: DeltaMessage): void {
    const chainKey = `${msg.senderId}/${msg.layer}`;
    let chain = this.chains.get(chainKey);
    if (chain === undefined) this.chains.set(chainKey, (chain = { last: 0, count: 0 }));
    if (msg.baseSequence !== chain.last) {
      this.fail(
        `a delta of ${msg.senderId} for group ${msg.layer} was lost (sequence ${msg.sequence} follows ${msg.baseSequence}, the last received is ${chain.last})`,
      );
      return;
    }
    chain.last = msg.sequence;
    chain.count++;
    const rounds = this.rounds;
    if (rounds !== undefined && rounds.group.id === msg.layer && chain.count <= rounds.round) {
      this.fail(`${msg.senderId} sent a delta for round ${chain.count} of group ${msg.layer}, already merged here`);
      return;
    }
    const key = roundKey(msg.layer, chain.count);
    let round = this.held.get(key);
    if (round === undefined) this.held.set(key, (round = new Map()));
    round.set(msg.senderId, msg.tensors);
    this.wake?.();
  }

  refused(msg: DeltaMessage, why: string): void {
    this.fail(`the delta of ${msg.senderId} for group ${msg.layer} was refused (${why})`);
  }

  applyPending(): void {
    // Deltas are held by round and merged only in their round.
  }

  dropReflected(): void {
    // Lockstep peers never join from a snapshot.
  }

  checkLateJoin(best: RemoteView): void {
    throw new SyncError(
      `PeerTrainer (lockstep): a live peer has trained already (stage ${best.stage}, epoch ${best.epochs}); lockstep peers must all start together.`,
      'ELOCKSTEP',
    );
  }

  async barrierTurn(done: number): Promise<boolean> {
    if (this.failure !== undefined) throw this.failure;
    // A peer still training this stage made another round: take part with an empty delta.
    const rounds = this.rounds;
    if (rounds !== undefined && rounds.group.id === done && this.held.has(roundKey(done, rounds.round + 1))) {
      await this.round(rounds);
      this.ctx.counters.padded++;
      return true;
    }
    return false;
  }

  async barrierThrough(): Promise<boolean> {
    return true;
  }

  barrierTimedOut(done: number, behind: number): void {
    throw new SyncError(
      `PeerTrainer (lockstep): waited ${this.ctx.common.barrierTimeoutMs} ms at the end of stage ${done} for ${behind} peer(s).`,
      'ETIMEDOUT',
    );
  }

  idle(ms: number): Promise<void> {
    return this.nextEvent(ms);
  }

  stop(): void {
    // The change since the last round is only published in a round (the others then time out or lose this peer).
  }

  async antiEntropy(): Promise<boolean> {
    // Lockstep peers hold the same weights after every round: there is nothing to repair.
    return false;
  }

  peersChanged(): void {
    this.wake?.();
  }

  close(): void {
    this.wake?.();
  }

  /**
   * Announces this peer's publication points per epoch in its heartbeats and waits until every
   * live trainer has announced its own for this stage; every peer then makes the largest number.
   */
  private async agreeRounds(rounds: RoundGroup, batches: number): Promise<void> {
    const own = Math.ceil(batches / this.ctx.common.publishEvery);
    this.announced = own;
    this.ctx.publishFingerprint();
    const stage = rounds.group.id;
    await this.waitUntil(() => {
      for (const [, v] of this.ctx.peers.liveTrainerViews()) if (v.stage !== stage || v.samples <= 0) return false;
      return this.ctx.peers.liveTrainers() >= this.ctx.common.minPeers;
    }, `the live peers' rounds per epoch for stage ${stage}`);
    let most = own;
    for (const [, v] of this.ctx.peers.liveTrainerViews()) if (v.stage === stage) most = Math.max(most, v.samples);
    rounds.perEpoch = most;
  }

  /** Publishes this round's delta (retrying a full send queue); returns it. */
  private async publishRound(g: GroupState, r: number): Promise<Float32Array[]> {
    const cur = this.ctx.groups.readInto(g.id, g.cur);
    const shapes = this.ctx.groups.shapesOf(g.id)!;
    const change = roundChange(this.ctx, g, cur);
    if (!Number.isFinite(change.sumSquares))
      throw new InvalidDataError(
        `PeerTrainer (lockstep): the parameters of group ${g.id} hold a NaN or an infinity at round ${r}; training diverged.`,
      );
    for (let tries = 0; !sendRound(this.ctx, g.id, change, shapes); tries++) {
      if (tries >= 100)
        throw new SyncError(
          `PeerTrainer (lockstep): the send queue refused the delta of round ${r} of group ${g.id} 100 times.`,
          'ELOCKSTEP',
        );
      await this.ctx.link.flush();
    }
    this.ctx.counters.published++;
    let elements = 0;
    for (const x of change.delta) elements += x.length;
    const bytes = deltaOverhead(shapes.length) + 4 * elements;
    this.ctx.counters.bytesSent += bytes;
    this.ctx.counters.bytesFloat32 += bytes;
    this.ctx.guard.observeWeights(g.id, Math.sqrt(sumOfSquares(cur)));
    this.ctx.guard.acceptOwn(g.id, Math.sqrt(change.sumSquares));
    return change.delta;
  }

  /**
   * One round: publishes `d = cur − base`, waits until the round's delta of every live trainer
   * is held, and loads `base + scale · Σ deltas` (scale 1, or 1/K with `'average'`) summed in
   * float32 in the order {@link byContent}. Deltas whose shapes do not fit the group (a
   * classifier delta for another class count) or a sum that would break the weights end the
   * run with `ELOCKSTEP` rather than load broken weights.
   */
  private async round(rounds: RoundGroup): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.ctx.isClosed()) throw new SyncError('PeerTrainer (lockstep): closed during a round.', 'ECLOSED');
    const g = rounds.group;
    const r = rounds.round + 1;
    let t0 = performance.now();
    const own = await this.publishRound(g, r);
    const key = roundKey(g.id, r);
    let held = this.held.get(key);
    if (held === undefined) this.held.set(key, (held = new Map()));
    held.set(this.ctx.link.senderId, own);
    this.ctx.counters.syncMs += performance.now() - t0;

    const waitStart = performance.now();
    const round = held;
    await this.waitUntil(() => this.roundComplete(round), `the deltas of round ${r} of group ${g.id}`);
    t0 = performance.now();
    this.ctx.counters.roundWaitMs += t0 - waitStart;

    const deltas = [...round.values()].sort(byContent);
    if (!deltas.every((d) => d.length === g.base.length && d.every((t, i) => t.length === g.base[i]!.length))) {
      this.fail(`a delta of round ${r} of group ${g.id} does not fit the group's shapes`);
      throw this.failure!;
    }
    this.sum(g, deltas, this.ctx.common.merge === 'average' ? 1 / deltas.length : 1);
    this.held.delete(key);
    if (!mergedWeightsSound(sumOfSquares(g.base), sumOfSquares(g.next), deltas.length, lengthOf(g.base), this.ctx.guard.settings)) {
      this.ctx.counters.rolledBack++;
      this.fail(`the sum of round ${r} of group ${g.id} would break the weights`);
      throw this.failure!;
    }
    // The base and every delta are finite (checked above and by the guard).
    this.ctx.groups.write(g.id, g.next, true);
    [g.base, g.next] = [g.next, g.base];
    rounds.round = r;
    this.ctx.counters.applied += deltas.length - 1;
    this.ctx.counters.rounds++;
    this.ctx.endSync(g, t0);
  }

  /** `g.next = base + scale · Σ deltas`, the sum in float32 in the given order. */
  private sum(g: GroupState, deltas: readonly Float32Array[][], scale: number): void {
    for (let t = 0; t < g.base.length; t++) {
      const acc = g.sum[t]!;
      acc.set(deltas[0]![t]!);
      for (let i = 1; i < deltas.length; i++) {
        const d = deltas[i]![t]!;
        for (let k = 0; k < acc.length; k++) acc[k] = acc[k]! + d[k]!;
      }
      const base = g.base[t]!;
      const next = g.next[t]!;
      for (let k = 0; k < next.length; k++) next[k] = base[k]! + acc[k]! * scale;
    }
  }

  /** Whether `round` holds the delta of every live trainer peer, and of at least `minPeers` of them. */
  private roundComplete(round: ReadonlyMap<string, Float32Array[]>): boolean {
    for (const [id] of this.ctx.peers.liveTrainerViews()) if (!round.has(id)) return false;
    return round.size - 1 >= this.ctx.common.minPeers;
  }

  /** Waits until `done()` holds, checking it at every delta, heartbeat and lost peer; a failure or the timeout is a {@link SyncError}. */
  private async waitUntil(done: () => boolean, what: string): Promise<void> {
    const timeout = this.ctx.common.barrierTimeoutMs;
    const deadline = Date.now() + timeout;
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.ctx.isClosed()) throw new SyncError(`PeerTrainer (lockstep): closed while waiting for ${what}.`, 'ECLOSED');
      if (done()) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new SyncError(`PeerTrainer (lockstep): waited ${timeout} ms for ${what}.`, 'ETIMEDOUT');
      await this.nextEvent(Math.min(left, 250));
    }
  }

  /** Resolves at the next delta, heartbeat or lost peer, or after `ms`. */
  private nextEvent(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private fail(why: string): void {
    this.failure ??= new SyncError(`PeerTrainer (lockstep): ${why}; the peers can no longer hold the same weights.`, 'ELOCKSTEP');
    this.ctx.report('rejected', why);
    this.wake?.();
  }
}
