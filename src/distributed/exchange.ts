/**
 * The sum of one round over the members of a {@link PeerGroup}: a sharded all-reduce. The
 * round's tensors, read as one flat vector, are cut into one chunk per member (in id order).
 * Each member sends every other member its scalars and that member's chunk; the owner of a chunk
 * adds the members' parts in id order and sends the chunk's sum to everyone. So each element is
 * added in the same order on one peer and copied to the others — every replica gets the same
 * bits — and a peer sends and receives about `2 (N − 1) / N` times the round's tensors, whatever
 * N (all-to-all: `N − 1` times).
 *
 * Every part and chunk result is judged by a {@link ContributionGuard} against this peer's own
 * part; the owner combines the parts with the group's rule (sum, or a robust rule: see
 * `robust.ts`). Contributions and chunk sums carry the sender's view; only those of the current view count (a
 * view change re-sends the waiting round's contribution under the new chunks).
 */
import { SyncError } from '../errors.js';
import type { RoundPosition } from '../rbm/collective.js';
import { type RoundMessage, type WireMember, decodeArrays, encodeArrays } from '../sync/rounds-wire.js';
import { ContributionGuard } from './contribution-guard.js';
import { type PeerGroup, short } from './group.js';
import { type AggregationOptions, SUM, aggregateChunks, checkAggregation } from './robust.js';

/** What a member sends for a round (its own copy keeps the whole tensors). */
interface Part {
  readonly view: number;
  readonly position: RoundPosition;
  readonly admit: WireMember[];
  readonly payload: readonly Buffer[];
}

/** The waiting round of this member. */
export interface OwnRound {
  readonly round: number;
  readonly position: RoundPosition;
  readonly admit: WireMember[];
  readonly scalars: Float64Array;
  readonly tensors: readonly Float32Array[];
}

/** `[start, end)` of chunk `k` of `parts` over `total` elements. */
export function chunkBounds(total: number, parts: number, k: number): { readonly start: number; readonly end: number } {
  return { start: Math.floor((k * total) / parts), end: Math.floor(((k + 1) * total) / parts) };
}

/** Norms already computed, per round object (its tensors do not change until the round completes). */
const wholeNorms = new WeakMap<OwnRound, number>();

/** The L2 norm of all of `r.tensors` (this peer's whole contribution to round `r`), computed once per round. */
function wholeNorm(r: OwnRound): number {
  const known = wholeNorms.get(r);
  if (known !== undefined) return known;
  let sum = 0;
  for (const t of r.tensors) for (let i = 0; i < t.length; i++) sum += t[i]! * t[i]!;
  const norm = Math.sqrt(sum);
  wholeNorms.set(r, norm);
  return norm;
}

/** A copy of the flat range `[start, end)` of `tensors` read as one vector. */
export function readFlat(tensors: readonly Float32Array[], start: number, end: number): Float32Array {
  const out = new Float32Array(end - start);
  let base = 0;
  for (const t of tensors) {
    const lo = Math.max(start, base);
    const hi = Math.min(end, base + t.length);
    if (lo < hi) out.set(t.subarray(lo - base, hi - base), lo - start);
    base += t.length;
  }
  return out;
}

/** Writes `src` over the flat range starting at `start` of `tensors`. */
export function writeFlat(tensors: readonly Float32Array[], start: number, src: Float32Array): void {
  let base = 0;
  const end = start + src.length;
  for (const t of tensors) {
    const lo = Math.max(start, base);
    const hi = Math.min(end, base + t.length);
    if (lo < hi) t.set(src.subarray(lo - start, hi - start), lo - base);
    base += t.length;
  }
}

/** The exchange of a group's rounds (owned by its {@link PeerGroup}). */
export class ShardedExchange {
  private readonly parts = new Map<number, Map<string, Part>>();
  private readonly sums = new Map<number, Map<string, { view: number; payload: Buffer }>>();
  private own: OwnRound | undefined;
  private scalarSum: Float64Array | undefined;

  private readonly guard: ContributionGuard;
  private readonly aggregation: AggregationOptions;

  constructor(private readonly g: PeerGroup) {
    this.guard = new ContributionGuard(g.options.guard);
    this.aggregation = checkAggregation(g.options.aggregation ?? SUM);
  }

  /** Sends this member's parts of `r` to the other members (under the current view). */
  begin(r: OwnRound): void {
    if (!allFinite(r.scalars) || !r.tensors.every(allFinite)) {
      throw new SyncError(
        `This peer's contribution to round ${r.round} (stage ${r.position.stage}, epoch ${r.position.epoch}) is not finite: its training diverged (try a lower learning rate).`,
        'ENONFINITE',
      );
    }
    this.own = r;
    this.scalarSum = undefined;
    this.sendParts();
  }

  private sendParts(): void {
    const r = this.own!;
    const { members } = this.g;
    const total = r.tensors.reduce((s, t) => s + t.length, 0);
    const meta = { stage: r.position.stage, epoch: r.position.epoch, step: r.position.step, admit: r.admit };
    members.forEach((id, k) => {
      if (id === this.g.id) return;
      const { start, end } = chunkBounds(total, members.length, k);
      this.g.sendTo(id, 'contribution', meta, encodeArrays(r.scalars, [readFlat(r.tensors, start, end)]), r.round);
    });
  }

  /** Keeps another member's part (rounds beyond the next two are ignored). */
  onPart(msg: RoundMessage, position: RoundPosition, admit: WireMember[]): void {
    this.store(this.parts, msg.round, msg.sender, { view: msg.view, position, admit, payload: msg.payload });
  }

  /** Keeps a chunk owner's sum. */
  onSum(msg: RoundMessage): void {
    if (msg.payload.length !== 1) return;
    this.store(this.sums, msg.round, msg.sender, { view: msg.view, payload: msg.payload[0]! });
  }

  private store<T>(map: Map<number, Map<string, T>>, round: number, sender: string, value: T): void {
    let m = map.get(round);
    if (m === undefined) {
      if (map.size >= 4) return;
      m = new Map();
      map.set(round, m);
    }
    m.set(sender, value);
  }

  /** Round `round` completed (by its sums or by a fetched result): forget it. */
  completed(round: number): void {
    this.dropBelow(round + 1);
    if (this.own !== undefined && this.own.round <= round) {
      this.own = undefined;
      this.scalarSum = undefined;
    }
  }

  /** Forgets what is kept for rounds before `round`. */
  dropBelow(round: number): void {
    for (const map of [this.parts, this.sums]) for (const r of map.keys()) if (r < round) map.delete(r);
  }

  /** After a view change that continues at this member's waiting round: its parts go again, cut for the new members. */
  resend(): void {
    if (this.own === undefined || this.own.round !== this.g.next) return;
    this.scalarSum = undefined;
    this.sendParts();
  }

  /**
   * Progress of the waiting round: sums this member's chunk once every member's part is in,
   * and writes the round's result into `tensors`/`scalars` once every chunk sum is in. Returns
   * the leader's admissions when the round is complete, `undefined` otherwise.
   */
  progress(tensors: readonly Float32Array[], scalars: Float64Array): WireMember[] | undefined {
    const r = this.own;
    const g = this.g;
    if (r === undefined || r.round !== g.next) return undefined;
    const { members, view } = g;
    const total = r.tensors.reduce((s, t) => s + t.length, 0);
    const mine = members.indexOf(g.id);
    const parts = this.parts.get(r.round);
    const current = (id: string): Part | undefined => (id === g.id ? undefined : parts?.get(id)?.view === view ? parts.get(id) : undefined);
    if (this.scalarSum === undefined) {
      if (!members.every((id) => id === g.id || current(id) !== undefined)) return undefined;
      const { start, end } = chunkBounds(total, members.length, mine);
      const chunk = new Float32Array(end - start);
      const sum = new Float64Array(r.scalars.length);
      const decoded = members.map((id) =>
        id === g.id ? { scalars: r.scalars, chunk: readFlat(r.tensors, start, end) } : this.decodePart(id, current(id)!, r, end - start),
      );
      const refused = this.judgeParts(members, decoded, r);
      if (refused !== undefined) return this.refuse(this.parts, r.round, refused.id, refused.why);
      for (const part of decoded) for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + part.scalars[i]!;
      aggregateChunks(
        decoded.map((d) => d.chunk),
        this.aggregation,
        chunk,
      );
      this.scalarSum = sum;
      this.store(this.sums, r.round, g.id, { view, payload: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) });
      const payload = [Buffer.from(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))];
      for (const id of members) if (id !== g.id) g.sendTo(id, 'chunk', {}, payload, r.round);
    }
    const sums = this.sums.get(r.round);
    if (!members.every((id) => sums?.get(id)?.view === view)) return undefined;
    const chunks = members.map((id, k) => {
      const { start, end } = chunkBounds(total, members.length, k);
      const bytes = sums!.get(id)!.payload;
      if (bytes.length !== (end - start) * 4)
        throw new SyncError(
          `Peer ${short(id)} sent a chunk sum of ${bytes.length} bytes for round ${r.round}, expected ${(end - start) * 4}.`,
          'EPROTOCOL',
        );
      const chunk = new Float32Array(end - start);
      new Uint8Array(chunk.buffer).set(bytes);
      return { start, chunk };
    });
    const ownRows = r.scalars.length === 1 ? r.scalars[0]! : 1;
    const totalRows = this.scalarSum.length === 1 ? this.scalarSum[0]! : 1;
    const ownNorm = wholeNorm(r);
    for (const [k, id] of members.entries()) {
      if (id === g.id) continue;
      const { chunk } = chunks[k]!;
      const why = this.guard.judgeTensor(chunk, totalRows, ownNorm, ownRows);
      if (why !== undefined) return this.refuse(this.sums, r.round, id, `${why.replace('sent', 'sent as its chunk result')}`);
    }
    for (const { start, chunk } of chunks) writeFlat(tensors, start, chunk);
    scalars.set(this.scalarSum);
    const leader = members[0]!;
    const admit = leader === g.id ? r.admit : (parts?.get(leader)?.admit ?? []);
    this.parts.delete(r.round);
    this.sums.delete(r.round);
    this.own = undefined;
    this.scalarSum = undefined;
    return admit;
  }

  /**
   * Drops what `id` sent for `round` and has it dropped from the rounds (after this call
   * returns, so the view change does not run inside the exchange): a peer whose numbers are not
   * finite would poison every replica.
   */
  private refuse<T>(map: Map<number, Map<string, T>>, round: number, id: string, why: string): undefined {
    map.get(round)?.delete(id);
    this.g.runStats.refused('non-finite');
    setImmediate(() => this.g.suspect(id, `${why} in round ${round}`));
    return undefined;
  }

  /** The first member (other than this one) whose part this peer's guard refuses, and why. */
  private judgeParts(
    members: readonly string[],
    decoded: readonly { scalars: Float64Array; chunk: Float32Array }[],
    r: OwnRound,
  ): { id: string; why: string } | undefined {
    const ownRows = r.scalars.length === 1 ? r.scalars[0]! : 1;
    const ownNorm = wholeNorm(r);
    for (const [k, id] of members.entries()) {
      if (id === this.g.id) continue;
      const part = decoded[k]!;
      const why =
        this.guard.judgeScalars(id, r.position, part.scalars, r.scalars) ??
        this.guard.judgeTensor(part.chunk, part.scalars.length === 1 ? part.scalars[0]! : 1, ownNorm, ownRows);
      if (why !== undefined) return { id, why };
    }
    return undefined;
  }

  private decodePart(id: string, part: Part, r: OwnRound, chunkLength: number): { scalars: Float64Array; chunk: Float32Array } {
    const p = part.position;
    if (p.stage !== r.position.stage || p.epoch !== r.position.epoch || p.step !== r.position.step) {
      throw new SyncError(
        `Peer ${short(id)} is at stage ${p.stage} epoch ${p.epoch} step ${p.step} while this peer is at stage ${r.position.stage} epoch ${r.position.epoch} step ${r.position.step} in round ${r.round}: the peers do not train the same schedule.`,
        'EPOSITION',
      );
    }
    try {
      const { scalars, tensors } = decodeArrays(part.payload, r.scalars.length, [chunkLength]);
      return { scalars, chunk: tensors[0]! };
    } catch (err) {
      throw new SyncError(`Peer ${short(id)} sent a malformed contribution to round ${r.round}: ${(err as Error).message}`, 'EPROTOCOL', {
        cause: err,
      });
    }
  }
}

function allFinite(a: Float32Array | Float64Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}
