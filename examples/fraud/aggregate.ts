/**
 * Sums of aggregate statistics across the banks of the distributed fraud example (federated
 * standardization, the shared oversampling factor, the pooled validation loss, the restored
 * model): each bank contributes one vector of numbers per named round, and every bank receives
 * the same element-wise sum. No row leaves a bank, only sums over its rows (or its copy of the
 * shared model's weights).
 *
 * Bank 0 hosts the sums (a ZeroMQ ROUTER on loopback, plaintext); the others connect a DEALER to
 * its address. The host adds the contributions in bank order, so every bank gets bit-identical
 * totals and takes identical decisions from them. The host sees each bank's contribution (this is
 * not secure aggregation); what a bank contributes is listed where the round is used
 * (`distributed.ts`).
 */
import * as zmq from 'zeromq';
import { SyncError } from '../../src/index.js';

interface Round {
  readonly parts: (Float64Array | undefined)[];
  /** ROUTER routing ids of the banks that sent a part (bank 0's own part has none). */
  readonly ids: (Buffer | undefined)[];
}

interface Waiter {
  readonly resolve: (v: Float64Array) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const SUM = Buffer.from('sum');
const TOTAL = Buffer.from('total');

function toBuffer(v: Float64Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function toVector(b: Buffer): Float64Array {
  const out = new Float64Array(b.length / 8);
  Buffer.from(out.buffer).set(b);
  return out;
}

/** One bank's end of the aggregation: {@link BankAggregator.host} on bank 0, {@link BankAggregator.connect} elsewhere. */
export class BankAggregator {
  private readonly rounds = new Map<string, Round>();
  private readonly waiters = new Map<string, Waiter>();
  private sending: Promise<void> = Promise.resolve();
  private closed = false;
  private failure: Error | undefined;

  private constructor(
    readonly bank: number,
    readonly banks: number,
    private readonly socket: zmq.Router | zmq.Dealer,
    /** The host's address (what the other banks connect to). */
    readonly address: string,
    private readonly timeoutMs: number,
  ) {
    void this.receive();
  }

  /** Bank 0: binds a ROUTER on 127.0.0.1 (a free port) for `banks` banks. */
  static async host(banks: number, timeoutMs = 600_000): Promise<BankAggregator> {
    const router = new zmq.Router({ linger: 2000 });
    try {
      await router.bind('tcp://127.0.0.1:0');
    } catch (err) {
      router.close();
      throw new SyncError(`Cannot bind the aggregation socket on 127.0.0.1: ${(err as Error).message}`, 'EBIND', { cause: err });
    }
    return new BankAggregator(0, banks, router, router.lastEndpoint!, timeoutMs);
  }

  /** Bank `bank` (≥ 1): connects to the host at `address`. */
  static connect(address: string, bank: number, banks: number, timeoutMs = 600_000): BankAggregator {
    if (!/^tcp:\/\/[^\s]+:\d+$/.test(address))
      throw new SyncError(`The aggregation address must look like tcp://HOST:PORT, got '${address}'.`, 'EADDRESS');
    const dealer = new zmq.Dealer({ linger: 2000 });
    dealer.connect(address);
    return new BankAggregator(bank, banks, dealer, address, timeoutMs);
  }

  /**
   * Contributes `values` to round `tag` and resolves with the element-wise sum over all banks
   * (the same on every bank). Every bank must contribute to every round, with vectors of one
   * length; a bank missing for `timeoutMs` is a {@link SyncError} (`ETIMEDOUT`).
   */
  sum(tag: string, values: ArrayLike<number>): Promise<Float64Array> {
    if (this.closed) return Promise.reject(new SyncError(`Aggregation round '${tag}': the aggregator is closed.`, 'ECLOSED'));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.waiters.has(tag))
      return Promise.reject(new SyncError(`Aggregation round '${tag}' is already in progress on bank ${this.bank}.`, 'EAGGREGATE'));
    const mine = Float64Array.from(values);
    const result = new Promise<Float64Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(tag);
        const r = this.rounds.get(tag);
        const missing = r === undefined ? 'the host' : r.parts.flatMap((p, i) => (p === undefined ? [`bank ${i}`] : [])).join(', ');
        reject(
          new SyncError(
            `Aggregation round '${tag}': no total after ${this.timeoutMs} ms on bank ${this.bank} (waiting for ${missing}).`,
            'ETIMEDOUT',
          ),
        );
      }, this.timeoutMs);
      this.waiters.set(tag, { resolve, reject, timer });
    });
    if (this.bank === 0) this.contribute(tag, 0, mine, undefined);
    else this.send([SUM, Buffer.from(tag), Buffer.from(String(this.bank)), toBuffer(mine)]);
    return result;
  }

  /** Closes the socket (after the sends in flight); pending rounds fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sending;
    this.fail(new SyncError('The aggregator was closed.', 'ECLOSED'));
    this.socket.close();
  }

  private send(frames: Buffer[]): void {
    this.sending = this.sending
      .then(() => this.socket.send(frames))
      .catch((err: unknown) =>
        this.fail(new SyncError(`Aggregation send failed on bank ${this.bank}: ${(err as Error).message}`, 'ESEND', { cause: err })),
      );
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const [tag, w] of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
      this.waiters.delete(tag);
    }
  }

  private settle(tag: string, total: Float64Array): void {
    const w = this.waiters.get(tag);
    if (w === undefined) return; // timed out already
    clearTimeout(w.timer);
    this.waiters.delete(tag);
    w.resolve(total);
  }

  /** Host: records bank `from`'s part of round `tag`; once all are in, sums them in bank order and sends the total to every bank. */
  private contribute(tag: string, from: number, values: Float64Array, id: Buffer | undefined): void {
    let r = this.rounds.get(tag);
    if (r === undefined) {
      r = {
        parts: new Array<Float64Array | undefined>(this.banks).fill(undefined),
        ids: new Array<Buffer | undefined>(this.banks).fill(undefined),
      };
      this.rounds.set(tag, r);
    }
    if (!(from >= 0 && from < this.banks) || r.parts[from] !== undefined) {
      this.fail(
        new SyncError(
          `Aggregation round '${tag}': unexpected contribution from bank ${from} (banks 0–${this.banks - 1}, each once).`,
          'EAGGREGATE',
        ),
      );
      return;
    }
    r.parts[from] = values;
    r.ids[from] = id;
    if (r.parts.some((p) => p === undefined)) return;
    const n = r.parts[0]!.length;
    const bad = r.parts.findIndex((p) => p!.length !== n);
    if (bad >= 0) {
      this.fail(
        new SyncError(
          `Aggregation round '${tag}': bank ${bad} sent ${r.parts[bad]!.length} numbers, bank 0 ${n}; every bank must send the same count.`,
          'EAGGREGATE',
        ),
      );
      return;
    }
    const total = new Float64Array(n);
    for (const p of r.parts) for (let k = 0; k < n; k++) total[k]! += p![k]!;
    this.rounds.delete(tag);
    const payload = toBuffer(total);
    for (const id2 of r.ids) if (id2 !== undefined) this.send([id2, TOTAL, Buffer.from(tag), payload]);
    this.settle(tag, total);
  }

  private async receive(): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (err) {
        if (!this.closed)
          this.fail(
            new SyncError(`Aggregation receive failed on bank ${this.bank}: ${(err as Error).message}`, 'ERECEIVE', { cause: err }),
          );
        return;
      }
      if (this.bank === 0) {
        const [id, kind, tag, from, payload] = frames;
        if (
          id === undefined ||
          kind?.equals(SUM) !== true ||
          tag === undefined ||
          from === undefined ||
          payload === undefined ||
          payload.length % 8 !== 0
        )
          continue;
        this.contribute(tag.toString(), Number(from.toString()), toVector(payload), id);
      } else {
        const [kind, tag, payload] = frames;
        if (kind?.equals(TOTAL) !== true || tag === undefined || payload === undefined || payload.length % 8 !== 0) continue;
        this.settle(tag.toString(), toVector(payload));
      }
    }
  }
}
