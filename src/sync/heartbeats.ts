/**
 * The heartbeat of a {@link Peer}: what it says (addresses, peers heard, progress, weight
 * fingerprint, last sequence) and when (every `heartbeatIntervalMs`, and at most 20 ms after a
 * new subscriber appears).
 */
import { InvalidOptionError } from '../errors.js';
import { encodeHeartbeat } from './wire.js';
import type { Envelope, PeerAddress, Progress } from './wire.js';

/** What the heartbeat needs of its peer. */
export interface HeartbeatHost {
  env(): Envelope;
  self(): PeerAddress;
  lastSequence(): number;
  /** The addresses of the peers this one hears. */
  heard(): PeerAddress[];
  /** Queues frames on the PUB; false when refused. */
  publish(frames: Buffer[]): boolean;
  /** Called every period before the heartbeat goes out. */
  tick(now: number): void;
}

/** Sends a peer's heartbeats; see the top of this file. */
export class Heartbeat {
  private progress: Progress = { epoch: 0, batches: 0, samples: 0 };
  private weightFingerprint: Float64Array = new Float64Array(0);
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private stopped = false;

  constructor(private readonly host: HeartbeatHost) {}

  /** Beats now and every `intervalMs`. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.host.tick(Date.now());
      this.send();
    }, intervalMs);
    this.timer.unref();
    this.send();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.soon !== undefined) clearTimeout(this.soon);
  }

  setProgress(progress: Progress): void {
    for (const k of ['epoch', 'batches', 'samples'] as const) {
      const v = progress[k];
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new InvalidOptionError(
          `Argument 'progress.${k}' passed to 'Peer.setProgress' must be a non-negative integer, got ${String(v)}.`,
        );
      }
    }
    this.progress = { epoch: progress.epoch, batches: progress.batches, samples: progress.samples };
  }

  setWeightFingerprint(values: ArrayLike<number>): void {
    if (values.length > 64)
      throw new InvalidOptionError(
        `Argument 'values' passed to 'Peer.setWeightFingerprint' may hold at most 64 numbers, got ${values.length}.`,
      );
    this.weightFingerprint = Float64Array.from(values);
  }

  /** Beats within 20 ms of the last heartbeat (a new subscriber hears this peer at once). */
  soonAfterSubscription(): void {
    if (this.stopped || this.soon !== undefined) return;
    const wait = Math.max(0, this.lastAt + 20 - Date.now());
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.send();
    }, wait);
    this.soon.unref();
  }

  /** The heartbeat as it would go out now. */
  frames(): Buffer[] {
    return encodeHeartbeat(this.host.env(), {
      lastSequence: this.host.lastSequence(),
      self: this.host.self(),
      peers: this.host.heard(),
      progress: this.progress,
      weightFingerprint: this.weightFingerprint,
    });
  }

  /** Queues a heartbeat on the PUB; false when the queue refused it. */
  send(): boolean {
    if (this.stopped) return false;
    this.lastAt = Date.now();
    return this.host.publish(this.frames());
  }
}
