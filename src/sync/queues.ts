/**
 * Small async helpers of the sync layer: a serialized send queue per socket (zeromq.js allows
 * one `send()` in flight per socket) and an async-iterable inbox that ends on `end()`.
 */

/** Anything with zeromq.js's `send`. */
export interface Sender {
  send(message: Buffer[]): Promise<void>;
}

/**
 * One serialized send path for one socket: at most one `send()` in flight, messages sent in the
 * order pushed, at most `max` waiting. The frames pushed must not be mutated afterwards (zeromq
 * sends buffers larger than 128 bytes without copying).
 */
export class SendQueue {
  private readonly items: Buffer[][] = [];
  private running = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private bytes = 0;

  /** `maxBytes`: the most bytes that may wait (a message larger than that alone still goes when nothing waits). */
  constructor(
    private readonly socket: Sender,
    private readonly max: number,
    private readonly onError: (err: unknown) => void,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Bytes waiting (not counting the message in flight). */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Messages waiting (not counting the one in flight). */
  get length(): number {
    return this.items.length;
  }

  /** Queues `frames`; false (and nothing queued) when the queue is full (in messages or bytes) or closed. */
  push(frames: Buffer[]): boolean {
    if (this.closed || this.items.length >= this.max) return false;
    const size = frames.reduce((s, f) => s + f.length, 0);
    if (this.items.length > 0 && this.bytes + size > this.maxBytes) return false;
    this.bytes += size;
    this.items.push(frames);
    if (!this.running) void this.run();
    return true;
  }

  /** Resolves once every message pushed so far has been handed to the socket. */
  drain(): Promise<void> {
    if (!this.running && this.items.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Drops whatever is waiting; later pushes are refused. */
  close(): void {
    this.closed = true;
    this.items.length = 0;
    this.bytes = 0;
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.items.length > 0) {
      const frames = this.items.shift()!;
      this.bytes -= frames.reduce((s, f) => s + f.length, 0);
      try {
        await this.socket.send(frames);
      } catch (err) {
        if (this.closed) break;
        this.onError(err);
      }
    }
    this.running = false;
    const waiting = this.idle;
    this.idle = [];
    for (const resolve of waiting) resolve();
  }
}

/** An unbounded async-iterable queue; iteration ends after {@link Inbox.end}. */
export class Inbox<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly waiting: Array<(r: IteratorResult<T, undefined>) => void> = [];
  private ended = false;

  constructor(private readonly onReturn?: () => void) {}

  push(value: T): void {
    if (this.ended) return;
    const w = this.waiting.shift();
    if (w !== undefined) w({ value, done: false });
    else this.items.push(value);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
    this.onReturn?.();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.items.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
