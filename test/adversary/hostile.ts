/**
 * A hostile peer for the adversarial tests: a small program that speaks the asynchronous wire
 * format (src/sync/wire.ts) directly and lies — about its sender id, the peers it knows, the
 * sequences its snapshots reflect, its addresses. It binds an XPUB (what a real peer's SUB
 * connects to) and a ROUTER (snapshot requests), and can announce itself to a peer's ROUTER.
 */
import * as zmq from 'zeromq';
import type { KeyPair } from '../../src/sync/keys.js';
import { decode, encodeDelta, encodeHeartbeat, encodeSnapshotResponse } from '../../src/sync/wire.js';
import type { Envelope, LayerTensors, PeerAddress } from '../../src/sync/wire.js';

export interface HostileOptions {
  readonly runId: string;
  readonly fingerprint: string;
  readonly senderId: string;
  /** CURVE keys (the hostile peer is allowlisted), or none for plaintext. */
  readonly keys?: KeyPair;
}

/** See the top of this file. Close with {@link Hostile.close}. */
export class Hostile {
  readonly pub: zmq.XPublisher;
  readonly router: zmq.Router;
  private readonly dealers: zmq.Dealer[] = [];
  private serving = false;

  private constructor(private readonly o: HostileOptions) {
    const server = o.keys === undefined ? {} : { curveServer: true, curvePublicKey: o.keys.publicKey, curveSecretKey: o.keys.secretKey };
    this.pub = new zmq.XPublisher({ linger: 0, ...server });
    this.router = new zmq.Router({ linger: 0, ...server });
  }

  static async create(o: HostileOptions): Promise<Hostile> {
    const h = new Hostile(o);
    await h.pub.bind('tcp://127.0.0.1:0');
    await h.router.bind('tcp://127.0.0.1:0');
    return h;
  }

  /** Its true addresses. */
  get address(): PeerAddress {
    return { pub: this.pub.lastEndpoint!, router: this.router.lastEndpoint!, publicKey: this.o.keys?.publicKey ?? null };
  }

  /** Its PUB as a seed string. */
  get seed(): string {
    return this.o.keys === undefined ? this.address.pub : `${this.address.pub}#${this.o.keys.publicKey}`;
  }

  env(senderId = this.o.senderId): Envelope {
    return { runId: this.o.runId, fingerprint: this.o.fingerprint, senderId };
  }

  /** A heartbeat claiming `self` (default: its true addresses) and listing `peers`. */
  heartbeat(opts: { readonly peers?: readonly PeerAddress[]; readonly self?: PeerAddress; readonly lastSequence?: number } = {}): Buffer[] {
    return encodeHeartbeat(this.env(), {
      lastSequence: opts.lastSequence ?? 0,
      self: opts.self ?? this.address,
      peers: opts.peers ?? [],
      progress: { epoch: 0, batches: 0, samples: 0 },
      weightFingerprint: [],
    });
  }

  /** A delta of one 1×n tensor under any sender id. */
  delta(senderId: string, sequence: number, values: Float32Array): Buffer[] {
    return encodeDelta(this.env(senderId), { layer: 0, sequence, baseSequence: 0, tensors: [values], shapes: [[1, values.length]] });
  }

  async publish(frames: Buffer[]): Promise<void> {
    await this.pub.send(frames);
  }

  /** Sends `frames` to the ROUTER at `endpoint` (an announce or a request); server key `serverKey` under CURVE. */
  async sendTo(endpoint: string, frames: Buffer[], serverKey?: string): Promise<zmq.Dealer> {
    const curve =
      this.o.keys === undefined || serverKey === undefined
        ? {}
        : { curveServerKey: serverKey, curvePublicKey: this.o.keys.publicKey, curveSecretKey: this.o.keys.secretKey };
    const dealer = new zmq.Dealer({ linger: 0, ...curve });
    this.dealers.push(dealer);
    dealer.connect(endpoint);
    await dealer.send(frames);
    return dealer;
  }

  /** Publishes heartbeats every 20 ms until `heard()` resolves (beats the slow joiner). */
  async beatUntil(heard: Promise<unknown>, frames: () => Buffer[] = () => this.heartbeat()): Promise<void> {
    let done = false;
    void heard.then(
      () => (done = true),
      () => (done = true),
    );
    while (!done) {
      await this.pub.send(frames());
      await Promise.race([heard, new Promise((r) => setTimeout(r, 20))]);
    }
    await heard;
  }

  /** Answers every snapshot request on its ROUTER with `layers` and the (lying) `sequences`. */
  serveSnapshots(layers: LayerTensors[], sequences: Map<string, number>): void {
    if (this.serving) return;
    this.serving = true;
    void (async () => {
      for (;;) {
        let frames: Buffer[];
        try {
          frames = await this.router.receive();
        } catch {
          return;
        }
        const [rid, ...rest] = frames;
        let msg;
        try {
          msg = decode(rest);
        } catch {
          continue;
        }
        if (msg.kind !== 'snapshot-request') continue;
        const res = encodeSnapshotResponse(this.env(), { requestId: msg.requestId, layers, sequences });
        await this.router.send([rid!, ...res]).catch(() => undefined);
      }
    })();
  }

  close(): void {
    for (const d of this.dealers) d.close();
    this.pub.close();
    this.router.close();
  }
}

/** Resolves once `cond()` holds, polling every 10 ms; rejects after `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
