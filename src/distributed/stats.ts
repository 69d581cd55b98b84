/**
 * Run statistics of one peer of a {@link PeerGroup}: plain data, bounded, updated by the group and
 * its exchange and read by whoever reports on the run (the CLI's `/metrics` and `/status`).
 *
 * - Per peer (at most {@link MAX_PEERS} entries): bytes and messages sent and received, by message
 *   kind; what the peer says of itself in its heartbeats (name, stage, epoch, round, its latest
 *   epoch figures and a fingerprint of its parameters); and its replica divergence from this peer.
 * - For the run: rounds, time waited at round barriers, peers suspected and admitted, snapshots
 *   served and taken, refusals by reason.
 *
 * Divergence: each peer publishes, after every pretraining epoch, a fingerprint of its RBM
 * parameters (a SHA-256 prefix of all their bytes, their L2 norm and {@link SAMPLE_COUNT} values at
 * fixed indices). Two peers' fingerprints of the same (stage, epoch) are compared: divergence is
 * 0 when the hashes agree (the replicas hold the same bits), else the larger of the largest
 * absolute difference of the sampled values and the difference of the norms (both lower bounds of
 * the largest difference over all parameters, up to the norm's scale), and at least
 * `Number.MIN_VALUE` (so "differs somewhere" is never reported as 0).
 */
import { createHash } from 'node:crypto';
import { ID_RE } from '../sync/rounds-wire.js';

/** Most peers tracked (as the group's directory). */
const MAX_TRACKED = 256;
/** Points of a peer's history kept (oldest dropped). */
export const MAX_HISTORY = 600;
/** Parameters sampled into a fingerprint. */
export const SAMPLE_COUNT = 32;
/** Own fingerprints kept to compare with peers that are an epoch or two behind. */
const OWN_FINGERPRINTS = 8;
/** Longest peer name (UTF-16 units). */
export const MAX_NAME_LENGTH = 64;
/** Peer names: letters, digits and `._:-` (so they are safe as labels and in logs). */
export const NAME_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** Bounded reasons a message or peer is refused. */
export const REFUSAL_REASONS = ['malformed', 'non-finite', 'identity', 'fingerprint', 'other'] as const;
/** One of {@link REFUSAL_REASONS}. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A fingerprint of a replica's parameters at the end of an epoch. */
export interface ParamFingerprint {
  readonly stage: number;
  readonly epoch: number;
  /** First 16 hex of the SHA-256 of every parameter's float32 bytes. */
  readonly hash: string;
  readonly norm: number;
  readonly samples: readonly number[];
}

/** One epoch's figures of a peer, as its history keeps them. */
export interface EpochPoint {
  readonly stage: number;
  readonly epoch: number;
  /** 'pretrain': `value` is the reconstruction error; 'finetune': the loss, with `accuracy` the validation accuracy. */
  readonly phase: 'pretrain' | 'finetune';
  readonly value: number;
  readonly accuracy?: number;
}

/** Traffic with one peer, by message kind. */
export interface Traffic {
  bytes: number;
  messages: number;
}

/** What this peer knows of another one. */
export interface PeerRecord {
  readonly id: string;
  name: string;
  stage: number;
  epoch: number;
  round: number;
  readonly sent: Map<string, Traffic>;
  readonly received: Map<string, Traffic>;
  readonly history: EpochPoint[];
  fingerprint: ParamFingerprint | undefined;
  /** Replica divergence from this peer (see the module doc); undefined until comparable. */
  divergence: number | undefined;
  divergenceAt: { stage: number; epoch: number } | undefined;
}

/** What a peer says of itself in its heartbeats. */
export interface SelfReport {
  readonly name: string;
  readonly stage: number;
  readonly epoch: number;
  readonly round: number;
  /** The latest epochs' figures (at most `REPORTED_POINTS`, oldest first). */
  readonly points?: readonly EpochPoint[];
  readonly fingerprint?: ParamFingerprint;
}

/** Epoch points a heartbeat carries: several, so epochs shorter than a heartbeat are not missed. */
export const REPORTED_POINTS = 6;

/** A peer whose divergence passed the bound, for the log. */
export type DivergenceListener = (id: string, name: string, divergence: number, at: { stage: number; epoch: number }) => void;

/** The statistics of a peer's run (see the module doc). */
export class RunStats {
  name: string;
  stage = -1;
  epoch = 0;
  rounds = 0;
  barrierWaitSeconds = 0;
  longestBarrierWaitSeconds = 0;
  suspects = 0;
  joins = 0;
  snapshotsServed = 0;
  snapshotsTaken = 0;
  readonly refusals = new Map<RefusalReason, number>(REFUSAL_REASONS.map((r) => [r, 0]));
  readonly peers = new Map<string, PeerRecord>();
  readonly history: EpochPoint[] = [];
  private readonly fingerprints: ParamFingerprint[] = [];
  /** Called when a peer's divergence is over {@link divergenceBound}. */
  onDivergence: DivergenceListener | undefined;
  /** Divergence above which {@link onDivergence} is called. */
  divergenceBound = 0;
  /**
   * Whether peer `id` is in this peer's current view: {@link onDivergence} is called for members only
   * (a peer outside the view — one that trained apart in a partition, or one not yet joined — is
   * expected to differ; its divergence is still recorded). Unset: every peer counts.
   */
  isMember: ((id: string) => boolean) | undefined;
  /** Called when one round's barrier wait is over {@link longWaitSeconds}. */
  onLongWait: ((seconds: number, round: number) => void) | undefined;
  longWaitSeconds = 10;

  constructor(name: string) {
    this.name = name;
  }

  /** This peer's latest fingerprint. */
  get fingerprint(): ParamFingerprint | undefined {
    return this.fingerprints.at(-1);
  }

  /** The record of peer `id` (created when there is room; undefined when the table is full). */
  peer(id: string): PeerRecord | undefined {
    let p = this.peers.get(id);
    if (p === undefined) {
      if (this.peers.size >= MAX_TRACKED) return undefined;
      p = {
        id,
        name: id.slice(0, 8),
        stage: -1,
        epoch: 0,
        round: -1,
        sent: new Map(),
        received: new Map(),
        history: [],
        fingerprint: undefined,
        divergence: undefined,
        divergenceAt: undefined,
      };
      this.peers.set(id, p);
    }
    return p;
  }

  /** Counts a message of `bytes` sent to (`direction` 'sent') or received from peer `id`. */
  traffic(direction: 'sent' | 'received', id: string, kind: string, bytes: number): void {
    const p = this.peer(id);
    if (p === undefined) return;
    const map = direction === 'sent' ? p.sent : p.received;
    const t = map.get(kind);
    if (t === undefined) map.set(kind, { bytes, messages: 1 });
    else {
      t.bytes += bytes;
      t.messages++;
    }
  }

  /** Counts a refusal. */
  refused(reason: RefusalReason): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  /** Counts a completed round and the time waited for it. */
  roundDone(waitSeconds: number): void {
    this.rounds++;
    this.barrierWaitSeconds += waitSeconds;
    this.longestBarrierWaitSeconds = Math.max(this.longestBarrierWaitSeconds, waitSeconds);
    if (waitSeconds > this.longWaitSeconds) this.onLongWait?.(waitSeconds, this.rounds - 1);
  }

  /** Records an epoch's figures of this peer. */
  epochDone(point: EpochPoint): void {
    this.stage = point.stage;
    this.epoch = point.epoch;
    pushBounded(this.history, point, MAX_HISTORY);
  }

  /** Records this peer's fingerprint and compares it with the peers' of the same epoch. */
  setFingerprint(fp: ParamFingerprint): void {
    pushBounded(this.fingerprints, fp, OWN_FINGERPRINTS);
    for (const p of this.peers.values()) this.compare(p);
  }

  /** What this peer says of itself in a heartbeat (bounded: a few hundred bytes). */
  report(round: number): SelfReport {
    const points = this.history.slice(-REPORTED_POINTS);
    const fingerprint = this.fingerprint;
    return { name: this.name, stage: this.stage, epoch: this.epoch, round, points, ...(fingerprint === undefined ? {} : { fingerprint }) };
  }

  /** Takes what peer `id` says of itself (malformed fields are ignored: a report is a hint). */
  onReport(id: string, meta: Record<string, unknown>): void {
    if (!ID_RE.test(id)) return;
    const p = this.peer(id);
    if (p === undefined) return;
    const r = parseReport(meta);
    if (r.name !== undefined) p.name = r.name;
    if (r.stage !== undefined) p.stage = r.stage;
    if (r.epoch !== undefined) p.epoch = r.epoch;
    if (r.round !== undefined) p.round = r.round;
    const recent = p.history.slice(-2 * REPORTED_POINTS);
    for (const point of r.points ?? []) {
      if (!recent.some((q) => q.stage === point.stage && q.epoch === point.epoch && q.phase === point.phase))
        pushBounded(p.history, point, MAX_HISTORY);
    }
    if (r.fingerprint !== undefined) {
      p.fingerprint = r.fingerprint;
      this.compare(p);
    }
  }

  private compare(p: PeerRecord): void {
    const theirs = p.fingerprint;
    if (theirs === undefined) return;
    const mine = this.fingerprints.find((f) => f.stage === theirs.stage && f.epoch === theirs.epoch);
    if (mine === undefined || (p.divergenceAt?.stage === mine.stage && p.divergenceAt.epoch === mine.epoch)) return;
    p.divergence = fingerprintDivergence(mine, theirs);
    p.divergenceAt = { stage: mine.stage, epoch: mine.epoch };
    if (this.onDivergence !== undefined && p.divergence > this.divergenceBound && (this.isMember?.(p.id) ?? true))
      this.onDivergence(p.id, p.name, p.divergence, p.divergenceAt);
  }

  /** Bytes and messages sent and received, summed over peers and kinds. */
  totals(): { sentBytes: number; receivedBytes: number; sentMessages: number; receivedMessages: number } {
    const out = { sentBytes: 0, receivedBytes: 0, sentMessages: 0, receivedMessages: 0 };
    for (const p of this.peers.values()) {
      for (const t of p.sent.values()) {
        out.sentBytes += t.bytes;
        out.sentMessages += t.messages;
      }
      for (const t of p.received.values()) {
        out.receivedBytes += t.bytes;
        out.receivedMessages += t.messages;
      }
    }
    return out;
  }
}

/** Divergence of two fingerprints of the same epoch (see the module doc). */
export function fingerprintDivergence(a: ParamFingerprint, b: ParamFingerprint): number {
  if (a.hash === b.hash) return 0;
  let max = Math.abs(a.norm - b.norm);
  if (a.samples.length === b.samples.length)
    for (let i = 0; i < a.samples.length; i++) max = Math.max(max, Math.abs(a.samples[i]! - b.samples[i]!));
  return Math.max(max, Number.MIN_VALUE);
}

/** The fingerprint of parameter tensors (in a fixed order, the same on every replica). */
export function fingerprintOf(stage: number, epoch: number, tensors: readonly Float32Array[]): ParamFingerprint {
  const hash = createHash('sha256');
  let sumSquares = 0;
  let total = 0;
  for (const t of tensors) {
    hash.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    for (let i = 0; i < t.length; i++) sumSquares += t[i]! * t[i]!;
    total += t.length;
  }
  const samples: number[] = [];
  const count = Math.min(SAMPLE_COUNT, total);
  for (let k = 0; k < count; k++) {
    let index = Math.floor(((k + 0.5) * total) / count);
    for (const t of tensors) {
      if (index < t.length) {
        samples.push(t[index]!);
        break;
      }
      index -= t.length;
    }
  }
  return { stage, epoch, hash: hash.digest('hex').slice(0, 16), norm: Math.sqrt(sumSquares), samples };
}

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

const INT = (v: unknown, min: number, max: number): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : undefined;
const NUM = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function parsePoint(v: unknown): EpochPoint | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const stage = INT(r['stage'], -1, 1e6);
  const epoch = INT(r['epoch'], 0, 1e9);
  const value = NUM(r['value']);
  const phase = r['phase'] === 'pretrain' || r['phase'] === 'finetune' ? r['phase'] : undefined;
  if (stage === undefined || epoch === undefined || value === undefined || phase === undefined) return undefined;
  const accuracy = NUM(r['accuracy']);
  return { stage, epoch, phase, value, ...(accuracy === undefined ? {} : { accuracy }) };
}

function parseFingerprint(v: unknown): ParamFingerprint | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const stage = INT(r['stage'], -1, 1e6);
  const epoch = INT(r['epoch'], 0, 1e9);
  const norm = NUM(r['norm']);
  const hash = typeof r['hash'] === 'string' && /^[0-9a-f]{16}$/.test(r['hash']) ? r['hash'] : undefined;
  const s = r['samples'];
  const samples = Array.isArray(s) && s.length <= SAMPLE_COUNT && s.every((x) => NUM(x) !== undefined) ? (s as number[]) : undefined;
  if (stage === undefined || epoch === undefined || norm === undefined || hash === undefined || samples === undefined) return undefined;
  return { stage, epoch, hash, norm, samples };
}

function parseReport(meta: Record<string, unknown>): Partial<SelfReport> {
  const name = typeof meta['name'] === 'string' && NAME_RE.test(meta['name']) ? meta['name'] : undefined;
  const list = meta['points'];
  const points =
    Array.isArray(list) && list.length <= REPORTED_POINTS
      ? list.map(parsePoint).filter((x): x is EpochPoint => x !== undefined)
      : undefined;
  const fingerprint = parseFingerprint(meta['fingerprint']);
  const out: { -readonly [K in keyof SelfReport]?: SelfReport[K] } = {};
  if (name !== undefined) out.name = name;
  const stage = INT(meta['stage'], -1, 1e6);
  const epoch = INT(meta['epoch'], 0, 1e9);
  const round = INT(meta['round'], -1, Number.MAX_SAFE_INTEGER);
  if (stage !== undefined) out.stage = stage;
  if (epoch !== undefined) out.epoch = epoch;
  if (round !== undefined) out.round = round;
  if (points !== undefined) out.points = points;
  if (fingerprint !== undefined) out.fingerprint = fingerprint;
  return out;
}

/** The key of traffic with endpoints whose peer id is not known yet (hellos before the first answer). */
export const UNIDENTIFIED = 'unidentified';

const REFUSAL_PATTERNS: readonly (readonly [RegExp, RefusalReason])[] = [
  [/malformed|must be|missing/i, 'malformed'],
  [/non-finite|not finite/i, 'non-finite'],
  [/does not derive|not allowed|allowlist|key/i, 'identity'],
  [/fingerprint|options|schedule/i, 'fingerprint'],
];

/** Counts a group event of `event` kind into `stats` (refusals by a bounded reason read from the detail). */
export function countEvent(stats: RunStats, event: string, detail: string): void {
  switch (event) {
    case 'peer-lost':
      stats.suspects++;
      return;
    case 'peer-admitted':
      stats.joins++;
      return;
    case 'joined':
      stats.snapshotsTaken++;
      return;
    case 'snapshot-served':
      stats.snapshotsServed++;
      return;
    case 'refused':
      stats.refused(REFUSAL_PATTERNS.find(([re]) => re.test(detail))?.[1] ?? 'other');
      return;
    default:
      return;
  }
}
