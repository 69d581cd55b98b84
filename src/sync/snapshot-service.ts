/**
 * The snapshot service of a {@link Peer}: answers snapshot requests arriving on its ROUTER with
 * the weights its provider returns (the Clone pattern's server side).
 *
 * Bounded against a client that floods requests: each client connection (ROUTER routing id) may
 * make `requestsPerSecond` requests per second (a token bucket; the rest are refused and
 * counted); one encoding answers every request for the same layers for `cacheMs` (the provider
 * runs at most once per period, and concurrent requests share one provider call); the answers
 * queue in the ROUTER's send queue, bounded in bytes by the caller.
 */
import { DbnError, SyncError } from '../errors.js';
import type { SnapshotProvider } from './peer-types.js';
import { encodeSnapshotResponse, readdressSnapshotResponse } from './wire.js';
import type { Envelope, SnapshotRequestMessage } from './wire.js';

/** Most clients whose request budget is remembered; the oldest is forgotten beyond. */
const MAX_CLIENTS = 1024;

/** What the service needs of its peer. */
export interface SnapshotServiceHost {
  env(): Envelope;
  /** Queues an answer to the ROUTER client `rid`; false when the queue refused it. */
  send(rid: Buffer, frames: Buffer[]): boolean;
  warn(err: unknown): void;
  /** A request refused by the rate limit. */
  limited(): void;
}

interface Encoded {
  readonly at: number;
  readonly frames: Promise<Buffer[]>;
}

/** Answers snapshot requests; see the top of this file. */
export class SnapshotService {
  provider: SnapshotProvider | undefined;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly cache = new Map<string, Encoded>();

  constructor(
    private readonly host: SnapshotServiceHost,
    private readonly cacheMs: number,
    private readonly requestsPerSecond: number,
  ) {}

  /** Answers `req` from client `rid` (unless rate-limited); never throws. */
  async answer(rid: Buffer, req: SnapshotRequestMessage, now = Date.now()): Promise<boolean> {
    if (!this.admit(rid.toString('hex'), now)) {
      this.host.limited();
      return false;
    }
    const frames = await this.encoded(req.layers, now);
    return this.host.send(rid, readdressSnapshotResponse(frames, req.requestId));
  }

  /** Drops the cached encodings (e.g. when the provider changes). */
  invalidate(): void {
    this.cache.clear();
  }

  private admit(client: string, now: number): boolean {
    let b = this.buckets.get(client);
    if (b === undefined) {
      if (this.buckets.size >= MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.requestsPerSecond, at: now };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(this.requestsPerSecond, b.tokens + ((now - b.at) / 1000) * this.requestsPerSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private encoded(layers: readonly number[], now: number): Promise<Buffer[]> {
    const key = layers.join(',');
    const hit = this.cache.get(key);
    if (hit !== undefined && now - hit.at <= this.cacheMs) return hit.frames;
    const frames = this.encode(layers);
    if (this.cache.size >= 64) this.cache.clear();
    this.cache.set(key, { at: now, frames });
    return frames;
  }

  private async encode(layers: readonly number[]): Promise<Buffer[]> {
    const env = this.host.env();
    if (this.provider !== undefined) {
      try {
        const snap = await this.provider(layers);
        const wanted = new Set(layers);
        const chosen = layers.length === 0 ? snap.layers : snap.layers.filter((l) => wanted.has(l.layer));
        return encodeSnapshotResponse(env, { requestId: 0, layers: chosen, sequences: snap.sequences });
      } catch (err) {
        this.host.warn(
          err instanceof DbnError
            ? err
            : new SyncError(`The snapshot provider failed: ${(err as Error).message}`, 'ESNAPSHOT', { cause: err }),
        );
      }
    }
    return encodeSnapshotResponse(env, { requestId: 0, available: false, layers: [], sequences: new Map() });
  }
}
