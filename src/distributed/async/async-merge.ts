/**
 * Asynchronous merging: remote deltas are checked as they arrive, queued, and added at the next
 * publication point; anti-entropy rounds (snapshot + average) repair what lost deltas left
 * apart. For peers of very different speed; the result depends on timing (see
 * docs/async-peer-training.md for the measured trade-off).
 */
import type { DeltaMessage, ReceivedSnapshot } from '../../sync/index.js';
import { lengthOf, mergedWeightsSound, sumOfSquares } from './delta-guard.js';
import { addInto, addIntoBoth, publishDense, publishSparse } from './encodings.js';
import type { MergeStrategy, TrainerContext } from './merge-strategy.js';
import type { AsyncSettings } from './options.js';
import { sameShapes } from './parameter-groups.js';

/** Anti-entropy rounds that may skip for in-flight deltas before one averages anyway. */
const MISMATCHES_BEFORE_FORCE = 3;
/** Anti-entropy rounds a barrier runs at most to bring the divergence under the bound. */
const BARRIER_ROUNDS = 4;

/** Whether two sender → sequence maps agree (a missing sender counts as 0). */
export function sameSequences(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  for (const [k, v] of a) if ((b.get(k) ?? 0) !== v) return false;
  for (const [k, v] of b) if ((a.get(k) ?? 0) !== v) return false;
  return true;
}

/** The asynchronous {@link MergeStrategy}. */
export class AsyncMerge implements MergeStrategy {
  readonly kind = 'async';
  readonly rateLimited = true;
  readonly announced = 0;
  private queue: DeltaMessage[] = [];
  private antiEntropyTimer: NodeJS.Timeout | undefined;
  private antiEntropyRetry: NodeJS.Timeout | undefined;
  private antiEntropyBusy = false;
  private mismatches = 0;
  private repairRounds = 0;

  constructor(
    private readonly ctx: TrainerContext,
    private readonly settings: AsyncSettings,
    /** Averages a snapshot into this peer's weights (the trainer's, which owns the groups). */
    private readonly averageWith: (snap: ReceivedSnapshot) => void,
    /** This peer's divergence from the live peers now. */
    private readonly divergence: () => number | null,
  ) {
    if (settings.antiEntropyMs > 0) {
      this.antiEntropyTimer = setInterval(() => {
        this.mismatches = 0;
        void this.antiEntropy({});
      }, settings.antiEntropyMs);
      this.antiEntropyTimer.unref();
    }
  }

  get layerBarrier(): boolean {
    return this.settings.layerBarrier;
  }

  get pending(): number {
    return this.queue.length;
  }

  enterGroup(): void {
    this.applyPending();
  }

  afterBatch(id: number): Promise<void> | undefined {
    const since = this.ctx.countBatch(id);
    const { publishMs } = this.settings;
    if (since < this.ctx.common.publishEvery && (publishMs === undefined || this.ctx.sinceLastSync() < publishMs)) return undefined;
    // Let the event loop turn once: the socket reads that deliver remote deltas happen there.
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.syncNow(false);
        resolve();
      }),
    );
  }

  async endStage(id: number): Promise<void> {
    if (this.ctx.current()?.id !== id) return;
    // A full send queue refuses the delta; the change stays in cur − base for the next try.
    for (let tries = 0; tries < 100; tries++) {
      const refused = this.ctx.counters.publishRefused;
      this.syncNow(true);
      if (this.ctx.counters.publishRefused === refused || this.ctx.isClosed()) break;
      await this.ctx.link.flush();
    }
  }

  receive(msg: DeltaMessage): void {
    this.queue.push(msg);
    if (this.queue.length > this.settings.maxPending) {
      this.queue.shift();
      this.ctx.counters.droppedOverflow++;
    }
  }

  refused(): void {
    // Refused deltas are counted and reported by the trainer; asynchronous merging goes on without them.
  }

  checkLateJoin(): void {
    // Asynchronous peers may join at any time from a snapshot.
  }

  stop(): void {
    if (this.ctx.current() !== undefined) this.syncNow(true);
  }

  dropReflected(snap: ReceivedSnapshot): void {
    this.queue = this.queue.filter((m) => m.sequence > (snap.sequences.get(m.senderId) ?? 0));
  }

  async barrierTurn(): Promise<boolean> {
    this.applyPending();
    return false;
  }

  async barrierThrough(): Promise<boolean> {
    const d = this.divergence();
    if (d === null || d <= this.settings.divergenceBound || this.repairRounds >= BARRIER_ROUNDS) {
      this.repairRounds = 0;
      return true;
    }
    this.repairRounds++;
    await this.antiEntropy({ force: false, retry: false });
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    return false;
  }

  barrierTimedOut(done: number, behind: number): void {
    this.repairRounds = 0;
    this.ctx.report('barrier', `gave up waiting for ${behind} peer(s) after ${this.ctx.common.barrierTimeoutMs} ms (stage ${done})`);
  }

  idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => setTimeout(resolve, ms));
  }

  peersChanged(): void {
    // Nothing waits on the view in asynchronous mode.
  }

  close(): void {
    if (this.antiEntropyTimer !== undefined) clearInterval(this.antiEntropyTimer);
    if (this.antiEntropyRetry !== undefined) clearTimeout(this.antiEntropyRetry);
  }

  /**
   * A publication point: publish the local change `cur − base` (divided by K with `'average'`,
   * this peer keeping only that share of it too), merge the queued remote deltas, write once.
   */
  private syncNow(final: boolean): void {
    const g = this.ctx.current();
    if (g === undefined || this.ctx.isClosed()) return;
    const t0 = performance.now();
    const cur = this.ctx.groups.readInto(g.id, g.cur);
    const shapes = this.ctx.groups.shapesOf(g.id)!;
    const share = this.ctx.common.merge === 'average' ? 1 / (1 + this.ctx.peers.liveTrainers()) : 1;
    const received = this.takePending(g.id);
    const encoding = this.settings.encoding;
    const result =
      encoding.kind === 'sparse' && !final
        ? publishSparse(this.ctx, g, cur, shapes, received, share, encoding.fraction)
        : publishDense(this.ctx, g, cur, shapes, received, share, encoding.kind === 'float16' && !final);
    this.ctx.counters.applied += result.merged;
    this.ctx.endSync(g, t0);
  }

  applyPending(): void {
    this.takePending(undefined);
  }

  /**
   * Adds the queued remote deltas of every group but `keep` (read, checked, added, written; the
   * group being trained also to its `base`) and returns those of group `keep`, not applied.
   * Deltas for the classifier before its classes are known stay queued; once they are, each is
   * checked again against the shapes (a delta for another class count is refused). With
   * `otherLayers: 'drop'` deltas of other groups than the focus are dropped.
   */
  private takePending(keep: number | undefined): DeltaMessage[] {
    const kept: DeltaMessage[] = [];
    if (this.queue.length === 0) return kept;
    const focus = this.ctx.focus();
    const classifier = this.ctx.groups.layerCount;
    const byGroup = new Map<number, DeltaMessage[]>();
    const wait: DeltaMessage[] = [];
    for (const msg of this.queue) {
      const id = msg.layer;
      if (id === classifier && this.ctx.groups.classes === undefined) {
        wait.push(msg);
        continue;
      }
      if (!this.stillFits(msg)) continue;
      if (this.settings.otherLayers === 'drop' && focus !== undefined && id !== focus) {
        this.ctx.counters.droppedOtherLayer++;
        continue;
      }
      if (id === keep) kept.push(msg);
      else {
        let list = byGroup.get(id);
        if (list === undefined) byGroup.set(id, (list = []));
        list.push(msg);
      }
    }
    this.queue = wait;
    for (const [id, list] of byGroup) this.mergeInto(id, list);
    return kept;
  }

  /** Whether a queued delta still has its group's shapes here (the classifier's are only known at fine-tuning); refused and counted if not. */
  private stillFits(msg: DeltaMessage): boolean {
    const expected = this.ctx.groups.shapesOf(msg.layer);
    const lengths = msg.shapes.map(([rows, cols]) => ({ length: rows * cols }));
    if (
      expected !== undefined &&
      sameShapes(lengths, expected) &&
      msg.shapes.every((s, i) => s[0] === expected[i]![0] && s[1] === expected[i]![1])
    )
      return true;
    this.ctx.counters.rejected.shape++;
    this.ctx.report(
      'rejected',
      `shape: a queued delta of ${msg.senderId} for group ${msg.layer} does not fit its shapes here (sequence ${msg.sequence})`,
    );
    return false;
  }

  /** Adds `list` to group `id` (and its `base` when it is being trained), unless the result would be broken. */
  private mergeInto(id: number, list: readonly DeltaMessage[]): void {
    const current = this.ctx.current();
    const base = current?.id === id ? current.base : undefined;
    const target = this.ctx.groups.read(id);
    const beforeSq = sumOfSquares(target);
    const trial = target.map((t) => t.slice());
    for (const msg of list) for (let t = 0; t < trial.length; t++) addInto(trial[t]!, tensorOf(msg, t), 1);
    if (!mergedWeightsSound(beforeSq, sumOfSquares(trial), list.length, lengthOf(trial), this.ctx.guard.settings)) {
      this.ctx.counters.rolledBack++;
      this.ctx.report(
        'rejected',
        `merging ${list.length} queued delta(s) into group ${id} would break its weights: kept the last good state`,
      );
      return;
    }
    for (const msg of list) {
      for (let t = 0; t < target.length; t++) {
        if (base === undefined) addInto(target[t]!, tensorOf(msg, t), 1);
        else addIntoBoth(target[t]!, base[t]!, tensorOf(msg, t));
      }
      this.ctx.counters.applied++;
    }
    this.ctx.groups.write(id, target, true);
    this.ctx.refreshBlock(id, base ?? target);
  }

  /**
   * One anti-entropy round: asks a live peer for a snapshot, and averages both published states
   * when they reflect the same per-sender sequences. Otherwise deltas are in flight: skipped and
   * retried 250 ms later, up to three times; with `force` the third mismatch averages anyway and
   * adopts the snapshot's sequences.
   */
  async antiEntropy(opts: { readonly force?: boolean; readonly retry?: boolean }): Promise<boolean> {
    const force = opts.force ?? this.settings.antiEntropyForce;
    if (this.antiEntropyBusy || this.ctx.isClosed() || this.ctx.peers.aliveCount === 0) return false;
    this.antiEntropyBusy = true;
    const counts = this.ctx.counters.antiEntropy;
    counts.rounds++;
    try {
      let snap: ReceivedSnapshot;
      try {
        snap = await this.ctx.link.requestSnapshot(this.ctx.common.snapshotTimeoutMs, { adoptSequences: false });
      } catch {
        counts.failed++;
        return false;
      }
      if (this.ctx.isClosed()) return false;
      this.applyPending();
      const match = sameSequences(this.ctx.link.sequences(), snap.sequences);
      if (!match && (++this.mismatches < MISMATCHES_BEFORE_FORCE || !force)) {
        counts.skipped++;
        if (opts.retry !== false) this.scheduleRetry(force);
        return false;
      }
      this.mismatches = 0;
      const before = this.divergence();
      this.averageWith(snap);
      if (!match) {
        this.ctx.link.adoptSequences(snap.sequences);
        counts.forced++;
      }
      counts.averaged++;
      this.ctx.report(
        'anti-entropy',
        `averaged with ${snap.from}${match ? '' : ' (sequences differed)'}; divergence before ${before === null ? 'n/a' : before.toPrecision(3)}`,
      );
      return true;
    } finally {
      this.antiEntropyBusy = false;
    }
  }

  private scheduleRetry(force: boolean): void {
    const period = this.settings.antiEntropyMs;
    if (this.mismatches >= MISMATCHES_BEFORE_FORCE || this.antiEntropyRetry !== undefined || period <= 0) return;
    this.antiEntropyRetry = setTimeout(
      () => {
        this.antiEntropyRetry = undefined;
        void this.antiEntropy({ force });
      },
      Math.min(250, period),
    );
    this.antiEntropyRetry.unref();
  }
}

/** Tensor `t` of a delta as a dense array (a SPARSE delta's is built on access). */
function tensorOf(msg: DeltaMessage, t: number): Float32Array {
  return msg.tensors[t]!;
}

/** Averages this peer's published weights with a snapshot's, group by group (`published`: `base` of the group being trained). */
export function averageInto(
  params: Float32Array[],
  published: Float32Array[],
  snapshot: readonly Float32Array[],
  isCurrent: boolean,
): void {
  for (let t = 0; t < params.length; t++) {
    const a = snapshot[t]!;
    const b = published[t]!;
    const correction = new Float32Array(a.length);
    for (let k = 0; k < a.length; k++) correction[k] = (a[k]! - b[k]!) * 0.5;
    addInto(params[t]!, correction, 1);
    if (isCurrent) addInto(published[t]!, correction, 1);
  }
}
