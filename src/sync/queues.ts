/**
 * Small async helpers of the sync layer: a serialized send queue per socket (zeromq.js allows
 * one `send()` in flight per socket) and an async-iterable inbox that ends on `end()`.
 */

/** Anything with zeromq.js's `send`. */
export interface Sender {
  send(message: Buffer[]): Promise<void>;
}

/** Bytes a decoded delta holds (its dense or sparse payload). */
export function deltaBytes(d: {
  readonly shapes: readonly (readonly [number, number])[];
  readonly sparse?: readonly { readonly indices: Uint32Array; readonly values: Float32Array }[];
}): number {
  if (d.sparse !== undefined) return d.sparse.reduce((n, s) => n + s.indices.byteLength + s.values.byteLength, 0);
  return d.shapes.reduce((n, [rows, cols]) => n + 4 * rows * cols, 0);
}

/** Bytes of a multipart message. */
export function messageBytes(frames: readonly Uint8Array[]): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}

/**
 * One serialized send path for one socket: at most one `send()` in flight, messages sent in the
 * order pushed, at most `max` messages and `maxBytes` bytes waiting (a single message larger
 * than `maxBytes` is taken when the queue is empty, so that it can ever be sent). The frames
 * pushed must not be mutated afterwards (zeromq sends buffers larger than 128 bytes without
 * copying).
 */
export class SendQueue {
  private readonly items: Buffer[][] = [];
  private running = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private waitingBytes = 0;

  /** `maxBytes`: the most bytes that may wait (a message larger than that alone still goes when nothing waits). */
  constructor(
    private readonly socket: Sender,
    private readonly max: number,
    private readonly onError: (err: unknown) => void,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Bytes waiting (not counting the message in flight); the same as {@link SendQueue.bytes}. */
  get queuedBytes(): number {
    return this.waitingBytes;
  }

  /** Messages waiting (not counting the one in flight). */
  get length(): number {
    return this.items.length;
  }

  /** Bytes waiting (not counting the message in flight). */
  get bytes(): number {
    return this.waitingBytes;
  }

  /** Queues `frames`; false (and nothing queued) when the queue is full (messages or bytes) or closed. */
  push(frames: Buffer[]): boolean {
    if (this.closed || this.items.length >= this.max) return false;
    const size = messageBytes(frames);
    if (this.items.length > 0 && this.waitingBytes + size > this.maxBytes) return false;
    this.waitingBytes += size;
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
    this.waitingBytes = 0;
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.items.length > 0) {
      const frames = this.items.shift()!;
      this.waitingBytes -= messageBytes(frames);
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

/**
 * An async-iterable queue holding at most `maxBytes` (as measured by `sizeOf`) of unread values;
 * iteration ends after {@link Inbox.end}.
 */
export class Inbox<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly sizes: number[] = [];
  private readonly waiting: Array<(r: IteratorResult<T, undefined>) => void> = [];
  private ended = false;
  private heldBytes = 0;

  constructor(
    private readonly onReturn?: () => void,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly sizeOf: (value: T) => number = () => 0,
  ) {}

  /** Bytes of the values waiting to be read. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Hands `value` to a waiting reader or queues it; false (dropped) when ended or full. */
  push(value: T): boolean {
    if (this.ended) return false;
    const w = this.waiting.shift();
    if (w !== undefined) {
      w({ value, done: false });
      return true;
    }
    const size = this.sizeOf(value);
    if (this.heldBytes + size > this.maxBytes) return false;
    this.heldBytes += size;
    this.items.push(value);
    this.sizes.push(size);
    return true;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiting.splice(0)) w({ value: undefined, done: true });
    this.onReturn?.();
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.items.length > 0) {
      this.heldBytes -= this.sizes.shift()!;
      return Promise.resolve({ value: this.items.shift()!, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.items.length = 0;
    this.sizes.length = 0;
    this.heldBytes = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
