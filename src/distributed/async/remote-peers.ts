/**
 * This peer's view of the other peers of the run, from their heartbeats: who is alive, their
 * stage, progress, last sequence and weight fingerprint. What a peer says is a hint for
 * barriers and divergence checks, never a bound on what this peer accepts.
 */
import type { HeartbeatMessage } from '../../sync/index.js';
import { fingerprintDivergence, readFingerprintHeader } from './peer-fingerprint.js';

/** One remote peer as its last heartbeat described it. */
export interface RemoteView {
  readonly fingerprint: Float64Array;
  /** Its stage (`-1`: not a trainer, a bare sync peer). */
  readonly stage: number;
  readonly settled: number;
  readonly epochs: number;
  readonly batches: number;
  /** Heartbeat `progress.samples`: in lockstep, its publication points per epoch in its stage (0: not known yet). */
  readonly samples: number;
  readonly lastSequence: number;
  readonly at: number;
}

/** The live peers and their last heartbeats. */
export class RemotePeers {
  private readonly views = new Map<string, RemoteView>();
  private readonly live = new Set<string>();

  /** Records a heartbeat; returns whether its sender was not known alive before. */
  heard(hb: HeartbeatMessage): boolean {
    const header = readFingerprintHeader(hb.weightFingerprint);
    const joined = !this.live.has(hb.senderId);
    this.live.add(hb.senderId);
    this.views.set(hb.senderId, {
      fingerprint: hb.weightFingerprint,
      stage: header?.stage ?? -1,
      settled: header?.settled ?? -1,
      epochs: header?.epochs ?? 0,
      batches: hb.progress.batches,
      samples: hb.progress.samples,
      lastSequence: hb.lastSequence,
      at: Date.now(),
    });
    return joined;
  }

  /** Marks `id` lost; returns whether it was alive. */
  lost(id: string): boolean {
    return this.live.delete(id);
  }

  get aliveCount(): number {
    return this.live.size;
  }

  /** The live peers that train (report a stage), with their views. */
  *liveTrainerViews(): Generator<[string, RemoteView]> {
    for (const id of this.live) {
      const view = this.views.get(id);
      if (view !== undefined && view.stage >= 0) yield [id, view];
    }
  }

  /** Live peers that report a training stage (trainers, not bare sync peers). */
  liveTrainers(): number {
    let n = 0;
    for (const _ of this.liveTrainerViews()) n++;
    return n;
  }

  /** Every peer ever heard, alive or not (a peer that finished a stage may have left). */
  allViews(): IterableIterator<RemoteView> {
    return this.views.values();
  }

  /** The live trainer furthest on (stage, then epochs, then batches), or undefined. */
  mostAdvanced(): RemoteView | undefined {
    let best: RemoteView | undefined;
    for (const [, v] of this.liveTrainerViews()) {
      if (
        best === undefined ||
        v.stage > best.stage ||
        (v.stage === best.stage && (v.epochs > best.epochs || (v.epochs === best.epochs && v.batches > best.batches)))
      )
        best = v;
    }
    return best;
  }

  /** The largest divergence between `fingerprint` and a live peer's comparable one, and how many were comparable. */
  divergence(fingerprint: Float64Array): { value: number | null; compared: number } {
    let worst: number | null = null;
    let compared = 0;
    for (const id of this.live) {
      const view = this.views.get(id);
      if (view === undefined) continue;
      const d = fingerprintDivergence(fingerprint, view.fingerprint);
      if (d === undefined) continue;
      compared++;
      worst = worst === null ? d : Math.max(worst, d);
    }
    return { value: worst, compared };
  }
}
