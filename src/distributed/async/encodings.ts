/**
 * Publication encodings: a group's local change `cur − base` goes out as float32, binary16 (with
 * error feedback) or a SPARSE delta (the largest entries, with error feedback), and the received
 * deltas are merged in the same pass. The numeric loops are the host kernels
 * (`src/kernels/host/`); this module decides what is sent, what `base` becomes and what is
 * written, and undoes a merge that would leave broken weights ({@link mergedWeightsSound}).
 */
import type { HostKernels } from '../../kernels/host/host-kernels.js';
import type { DeltaMessage } from '../../sync/index.js';
import { sparseFrame } from '../../sync/wire.js';
import { type DeltaGuard, type DeltaKind, lengthOf, mergedWeightsSound, sumOfSquares, type TensorShape } from './delta-guard.js';
import type { PeerLink } from './link.js';
import type { ParameterGroups } from './parameter-groups.js';
import { type Counters, deltaOverhead, type GroupState } from './state.js';

/** What the publication functions work with. */
export interface PublishContext {
  readonly link: PeerLink;
  readonly host: HostKernels;
  readonly groups: ParameterGroups;
  readonly guard: DeltaGuard;
  readonly counters: Counters;
}

/** How a publication point ended. */
export interface Publication {
  /** The change went out (or there was none): `base` moved. False: the change stays whole in `cur − base`. */
  readonly settled: boolean;
  /** Remote deltas merged (0 when the merge was rolled back). */
  readonly merged: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Evenly spaced entries whose magnitudes estimate a tensor's sparse threshold. */
const THRESHOLD_SAMPLE = 4096;

/** The change of one fused pass: payload frames (and float32 views of them), Σ d², binary16 overflow. */
interface Change {
  readonly payload: Buffer[];
  readonly delta: Float32Array[];
  readonly sumSquares: number;
  readonly float16: boolean;
  readonly overflow: boolean;
}

/**
 * One pass per tensor ({@link HostKernels.deltaStep}): `d = share · (cur − base)` into fresh
 * payload frames (float32, or binary16 with `float16`), `g.next = base + sent + r`,
 * `g.curNext = (keep ? base + d : cur) + r`, `r` the remote deltas' sum. Only reads `cur`, `g.base`.
 */
function fusedChange(
  ctx: PublishContext,
  cur: readonly Float32Array[],
  g: GroupState,
  remote: readonly Float32Array[][],
  share: number,
  keep: boolean,
  float16: boolean,
): Change {
  const payload: Buffer[] = [];
  const delta: Float32Array[] = [];
  let sumSquares = 0;
  let overflow = false;
  for (let t = 0; t < cur.length; t++) {
    const n = cur[t]!.length;
    const frame = ctx.host.frame((float16 ? 2 : 4) * n);
    const out = float16
      ? { half: new Uint16Array(frame.buffer, frame.byteOffset, n) }
      : { delta: new Float32Array(frame.buffer, frame.byteOffset, n) };
    const remoteTensors = remote.length > 0 ? { remote: remote.map((r) => r[t]!) } : {};
    const res = ctx.host.deltaStep({
      cur: cur[t]!,
      base: g.base[t]!,
      ...remoteTensors,
      share,
      keep,
      ...out,
      baseNext: g.next[t]!,
      curNext: g.curNext[t]!,
    });
    sumSquares += res.sumSquares;
    overflow ||= res.overflow;
    payload.push(frame);
    if (out.delta !== undefined) delta.push(out.delta);
  }
  return { payload, delta, sumSquares, float16, overflow };
}

/** Counts a published delta (its bytes, and what float32 would have taken) and records its norm as this peer's own update. */
export function countPublished(
  ctx: PublishContext,
  g: GroupState,
  shapes: readonly TensorShape[],
  payload: readonly Buffer[],
  sumSquares: number,
  kind: DeltaKind,
): void {
  ctx.counters.published++;
  let elements = 0;
  for (const b of g.base) elements += b.length;
  const overhead = deltaOverhead(shapes.length);
  ctx.counters.bytesSent += overhead + payload.reduce((a, f) => a + f.length, 0);
  ctx.counters.bytesFloat32 += overhead + elements * 4;
  ctx.guard.acceptOwn(g.id, Math.sqrt(sumSquares), kind);
}

/**
 * Whether merging `merged` remote deltas into weights of squared norm `beforeSq` gave sound
 * weights `after`; counts a roll-back when not.
 */
function mergeSound(ctx: PublishContext, beforeSq: number, after: readonly Float32Array[], merged: number): boolean {
  if (merged === 0) return true;
  if (mergedWeightsSound(beforeSq, sumOfSquares(after), merged, lengthOf(after), ctx.guard.settings)) return true;
  ctx.counters.rolledBack++;
  return false;
}

/** Sends `change`; returns whether the send queue took it. */
function send(ctx: PublishContext, id: number, change: Change, shapes: TensorShape[]): boolean {
  // The frames hold float32 in this machine's byte order: little-endian is the wire's.
  const seq =
    LITTLE_ENDIAN || change.float16
      ? ctx.link.publishDeltaFrames(id, change.payload, shapes, { float16: change.float16, finiteChecked: true })
      : ctx.link.publishDelta(id, change.delta, shapes);
  if (seq === undefined) ctx.counters.publishRefused++;
  return seq !== undefined;
}

/**
 * A dense publication (float32, or binary16 with `float16`) and the merge of `remote`, in one
 * fused pass per tensor. A merge that would leave broken weights is undone: the pass is redone
 * without the remote deltas (they are dropped, counted in `rolledBack`).
 */
export function publishDense(
  ctx: PublishContext,
  g: GroupState,
  cur: Float32Array[],
  shapes: TensorShape[],
  received: readonly DeltaMessage[],
  share: number,
  float16: boolean,
): Publication {
  const remote = remoteTensors(g, received);
  // With share < 1 this peer keeps only its share of its own change, like everyone else.
  const keep = share < 1;
  const curSq = sumOfSquares(cur);
  ctx.guard.observeWeights(g.id, Math.sqrt(curSq));
  let merging = remote;
  let out = fusedChange(ctx, cur, g, merging, share, keep, float16 && LITTLE_ENDIAN);
  if (!mergeSound(ctx, curSq, g.curNext, received.length)) {
    merging = [];
    out = fusedChange(ctx, cur, g, merging, share, keep, float16 && LITTLE_ENDIAN);
  }
  // A change beyond ±65504 has no binary16 form: such a delta goes as float32.
  if (out.overflow) out = fusedChange(ctx, cur, g, merging, share, keep, false);
  // Σ d² is not finite when the weights hold a NaN or an infinity: nothing is published then.
  let settled = Number.isFinite(out.sumSquares);
  let published = false;
  if (settled && out.sumSquares > 0) {
    published = send(ctx, g.id, out, shapes);
    settled = published;
    if (published) countPublished(ctx, g, shapes, out.payload, out.sumSquares, 'dense');
  }
  if (settled) {
    // Take the pass's results: base += what was sent, plus the remote deltas.
    [g.base, g.next] = [g.next, g.base];
    // curNext = cur (finite: Σ d² is) plus remote deltas that passed the guard and the merge check.
    if ((published && keep) || merging.length > 0) ctx.groups.write(g.id, g.curNext, true);
  } else if (merging.length > 0) {
    // Refused (or broken weights): the change stays whole in cur − base for the next try.
    for (const r of merging) for (let t = 0; t < cur.length; t++) addIntoBoth(cur[t]!, g.base[t]!, r[t]!);
    ctx.groups.write(g.id, cur);
  }
  return { settled, merged: merging.length > 0 ? received.length : 0 };
}

/**
 * A sparse publication: per tensor, the entries of `d = share · (cur − base)` at or above a
 * sampled magnitude threshold go out as a SPARSE delta and into `base`; the rest stays in
 * `cur − base` (error feedback). The received deltas are then added to both, sparse ones entry
 * by entry; a merge that would leave broken weights is undone.
 */
export function publishSparse(
  ctx: PublishContext,
  g: GroupState,
  cur: Float32Array[],
  shapes: TensorShape[],
  received: readonly DeltaMessage[],
  share: number,
  fraction: number,
): Publication {
  const keep = share < 1;
  const curSq = sumOfSquares(cur);
  ctx.guard.observeWeights(g.id, Math.sqrt(curSq));
  const indices = (g.sparseIndices ??= g.base.map((b) => new Uint32Array(b.length)));
  const values = (g.sparseValues ??= g.base.map((b) => new Float32Array(b.length)));
  const sample = (g.sample ??= new Float64Array(THRESHOLD_SAMPLE));
  const counts: number[] = [];
  const payload: Buffer[] = [];
  let sq = 0;
  for (let t = 0; t < cur.length; t++) {
    const count = ctx.host.sparseSelect({
      cur: cur[t]!,
      base: g.base[t]!,
      share,
      fraction,
      indices: indices[t]!,
      values: values[t]!,
      sample,
    });
    const chosen = values[t]!;
    for (let j = 0; j < count; j++) sq += chosen[j]! * chosen[j]!;
    counts.push(count);
    payload.push(sparseFrame(indices[t]!, chosen, count));
  }
  // Σ d² of the sent entries is not finite when the weights hold a NaN or an infinity.
  let settled = Number.isFinite(sq);
  let published = false;
  if (settled && sq > 0) {
    published = ctx.link.publishDeltaFrames(g.id, payload, shapes, { sparse: true, finiteChecked: true }) !== undefined;
    if (!published) ctx.counters.publishRefused++;
    settled = published;
    if (published) countPublished(ctx, g, shapes, payload, sq, 'sparse');
  }
  if (published) {
    for (let t = 0; t < cur.length; t++) {
      // With 'average' the weights become base + d (before base moves), like everyone else's.
      if (keep) keepShare(cur[t]!, g.base[t]!, share);
      const base = g.base[t]!;
      const at = indices[t]!;
      const chosen = values[t]!;
      for (let j = 0; j < counts[t]!; j++) base[at[j]!] = base[at[j]!]! + chosen[j]!;
    }
  }
  const merged = mergeReceived(ctx, g, cur, received);
  if (merged > 0 || (published && keep)) ctx.groups.write(g.id, cur, settled);
  return { settled, merged };
}

/** Adds `received` (dense or SPARSE) to `cur` and `g.base`, unless the result would be broken; returns how many were added. */
function mergeReceived(ctx: PublishContext, g: GroupState, cur: Float32Array[], received: readonly DeltaMessage[]): number {
  if (received.length === 0) return 0;
  const beforeSq = sumOfSquares(cur);
  const trial = (g.accumulated ??= g.base.map((b) => new Float32Array(b.length)));
  for (let t = 0; t < cur.length; t++) trial[t]!.set(cur[t]!);
  for (const m of received) for (let t = 0; t < cur.length; t++) addReceived(trial[t]!, undefined, m, t);
  if (!mergeSound(ctx, beforeSq, trial, received.length)) return 0;
  for (const m of received) for (let t = 0; t < cur.length; t++) addReceived(cur[t]!, g.base[t]!, m, t);
  return received.length;
}

/**
 * The received deltas of the group being published, as dense tensors for {@link publishDense}:
 * dense ones as they are; when any is SPARSE, all are summed in order into `g.accumulated`
 * (float32 after each addition, as the kernels sum several remote deltas), the sparse ones by
 * their entries only.
 */
function remoteTensors(g: GroupState, received: readonly DeltaMessage[]): Float32Array[][] {
  if (!received.some((m) => m.sparse !== undefined)) return received.map((m) => m.tensors);
  const acc = (g.accumulated ??= g.base.map((b) => new Float32Array(b.length)));
  for (const a of acc) a.fill(0);
  for (const m of received) for (let t = 0; t < acc.length; t++) addReceived(acc[t]!, undefined, m, t);
  return [acc];
}

/** `x += src` and `y += src`. */
export function addIntoBoth(x: Float32Array, y: Float32Array, src: Float32Array): void {
  for (let k = 0; k < x.length; k++) {
    const v = src[k]!;
    x[k] = x[k]! + v;
    y[k] = y[k]! + v;
  }
}

/** `dst += scale · src`. */
export function addInto(dst: Float32Array, src: Float32Array, scale: number): void {
  for (let k = 0; k < dst.length; k++) dst[k] = dst[k]! + scale * src[k]!;
}

/** `cur = base + fround(share · (cur − base))`: the peer keeps only its share of its change. */
function keepShare(cur: Float32Array, base: Float32Array, share: number): void {
  for (let k = 0; k < cur.length; k++) cur[k] = base[k]! + Math.fround((cur[k]! - base[k]!) * share);
}

/** Adds tensor `t` of a received delta (dense or SPARSE) to `x` and, when given, `y`. */
function addReceived(x: Float32Array, y: Float32Array | undefined, m: DeltaMessage, t: number): void {
  const s = m.sparse?.[t];
  if (s === undefined) {
    if (y === undefined) addInto(x, m.tensors[t]!, 1);
    else addIntoBoth(x, y, m.tensors[t]!);
    return;
  }
  const at = s.indices;
  const values = s.values;
  for (let j = 0; j < at.length; j++) {
    const k = at[j]!;
    x[k] = x[k]! + values[j]!;
    if (y !== undefined) y[k] = y[k]! + values[j]!;
  }
}

/** `fusedChange` for a lockstep round: `d = cur − base` in float32 frames (also when zero), nothing merged. */
export function roundChange(
  ctx: PublishContext,
  g: GroupState,
  cur: readonly Float32Array[],
): { payload: Buffer[]; delta: Float32Array[]; sumSquares: number } {
  const out = fusedChange(ctx, cur, g, [], 1, false, false);
  return { payload: out.payload, delta: out.delta, sumSquares: out.sumSquares };
}

/** Sends a lockstep round's delta; returns whether the send queue took it. */
export function sendRound(
  ctx: PublishContext,
  id: number,
  change: { payload: Buffer[]; delta: Float32Array[] },
  shapes: TensorShape[],
): boolean {
  return send(ctx, id, { ...change, sumSquares: 0, float16: false, overflow: false }, shapes);
}
