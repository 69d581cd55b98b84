/**
 * What a `train` process knows of its own run, for `/metrics`, `/status` and the dashboard: the
 * local progress (updated by the training hooks) and, in peer mode, the group's {@link RunStats}.
 */
import type { PeerGroup } from '../../distributed/index.js';
import { type EpochPoint, RunStats, UNIDENTIFIED } from '../../distributed/stats.js';

/** Local progress of the run. */
export interface Progress {
  phase: 'starting' | 'pretrain' | 'associative' | 'finetune' | 'done';
  /** Pretraining: the layer; fine-tuning: the number of layers. */
  stage: number;
  epoch: number;
  minibatches: number;
  samples: number;
  reconstructionError: number | undefined;
  loss: number | undefined;
  validationAccuracy: number | undefined;
}

/** One peer as `/status` shows it. */
export interface PeerStatus {
  readonly id: string;
  readonly name: string;
  readonly endpoint: string | null;
  readonly member: boolean;
  readonly lastHeardSecondsAgo: number | null;
  readonly stage: number;
  readonly epoch: number;
  readonly round: number;
  readonly divergence: number | null;
  readonly divergenceAt: { readonly stage: number; readonly epoch: number } | null;
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly sentMessages: number;
  readonly receivedMessages: number;
  readonly history: readonly EpochPoint[];
}

/** The `/status` document. */
export interface StatusDocument {
  readonly self: {
    readonly id: string | null;
    readonly name: string;
    readonly endpoint: string | null;
    readonly mode: 'peer' | 'single';
    readonly uptimeSeconds: number;
    readonly round: number;
    readonly view: number;
    readonly members: number;
    readonly fingerprint: RunStats['fingerprint'] | null;
    readonly history: readonly EpochPoint[];
  } & Readonly<Omit<Progress, 'reconstructionError' | 'loss' | 'validationAccuracy'>> & {
      readonly reconstructionError: number | null;
      readonly loss: number | null;
      readonly validationAccuracy: number | null;
    };
  readonly run: {
    readonly rounds: number;
    readonly barrierWaitSeconds: number;
    readonly suspects: number;
    readonly joins: number;
    readonly snapshotsServed: number;
    readonly snapshotsTaken: number;
    readonly refusals: Readonly<Record<string, number>>;
  };
  readonly peers: readonly PeerStatus[];
  readonly options: Readonly<Record<string, unknown>>;
}

/** The run as one process sees it. */
export class RunState {
  readonly progress: Progress = {
    phase: 'starting',
    stage: -1,
    epoch: 0,
    minibatches: 0,
    samples: 0,
    reconstructionError: undefined,
    loss: undefined,
    validationAccuracy: undefined,
  };
  /** The group's statistics in peer mode; a standalone object in a single process. */
  stats: RunStats;
  group: PeerGroup | undefined;
  readonly startedAt = Date.now();

  constructor(
    readonly name: string,
    readonly options: Readonly<Record<string, unknown>>,
  ) {
    this.stats = new RunStats(name);
  }

  /** Takes the group's statistics (peer mode). */
  attach(group: PeerGroup): void {
    this.group = group;
    group.runStats.name = this.name;
    group.runStats.history.push(...this.stats.history);
    this.stats = group.runStats;
  }

  /** An epoch ended: its figures go to the history (and to the other peers with the next heartbeat). */
  epochDone(point: EpochPoint): void {
    const p = this.progress;
    p.phase = point.phase;
    p.stage = point.stage;
    p.epoch = point.epoch;
    if (point.phase === 'pretrain') p.reconstructionError = point.value;
    else {
      p.loss = point.value;
      p.validationAccuracy = point.accuracy;
    }
    this.stats.epochDone(point);
  }

  /** The `/status` document. */
  status(now = Date.now()): StatusDocument {
    const g = this.group;
    const p = this.progress;
    const s = this.stats;
    return {
      self: {
        id: g?.id ?? null,
        name: this.name,
        endpoint: g?.endpoint ?? null,
        mode: g === undefined ? 'single' : 'peer',
        uptimeSeconds: (now - this.startedAt) / 1000,
        ...p,
        reconstructionError: p.reconstructionError ?? null,
        loss: p.loss ?? null,
        validationAccuracy: p.validationAccuracy ?? null,
        round: g === undefined ? s.rounds : g.next - 1,
        view: g?.view ?? 0,
        members: g?.members.length ?? 1,
        fingerprint: s.fingerprint ?? null,
        history: s.history,
      },
      run: {
        rounds: s.rounds,
        barrierWaitSeconds: s.barrierWaitSeconds,
        suspects: s.suspects,
        joins: s.joins,
        snapshotsServed: s.snapshotsServed,
        snapshotsTaken: s.snapshotsTaken,
        refusals: Object.fromEntries(s.refusals),
      },
      peers: this.peerList(now),
      options: this.options,
    };
  }

  private peerList(now: number): PeerStatus[] {
    const g = this.group;
    if (g === undefined) return [];
    const out: PeerStatus[] = [];
    for (const r of this.stats.peers.values()) {
      if (r.id === UNIDENTIFIED) continue;
      const d = g.directory.get(r.id);
      const sum = (m: Map<string, { bytes: number; messages: number }>, k: 'bytes' | 'messages'): number =>
        [...m.values()].reduce((a, t) => a + t[k], 0);
      out.push({
        id: r.id,
        name: r.name,
        endpoint: d?.endpoint ?? null,
        member: g.members.includes(r.id),
        lastHeardSecondsAgo: d === undefined ? null : (now - d.lastHeard) / 1000,
        stage: r.stage,
        epoch: r.epoch,
        round: r.round,
        divergence: r.divergence ?? null,
        divergenceAt: r.divergenceAt ?? null,
        sentBytes: sum(r.sent, 'bytes'),
        receivedBytes: sum(r.received, 'bytes'),
        sentMessages: sum(r.sent, 'messages'),
        receivedMessages: sum(r.received, 'messages'),
        history: r.history,
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }
}
