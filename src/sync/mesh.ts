/**
 * The sockets of synchronous peer training: every peer binds one ROUTER that receives, and
 * dials one DEALER to each peer it sends to. Messages go one way on each connection (DEALER →
 * ROUTER), so a peer sends to another by its endpoint and receives everything on one socket.
 * ZeroMQ keeps each connection's messages in order and never drops on a DEALER below its
 * high-water mark; sends are serialized per socket ({@link SendQueue}) and bounded.
 *
 * With CURVE, the ROUTER is a CURVE server whose ZAP handler admits only allowlisted keys, and
 * each DEALER authenticates the peer it dials by that peer's public key. A sender id is derived
 * from the public key (plaintext: from the advertised endpoint), see {@link senderIdOf}; the
 * connection a message arrives on is bound to a sender id by a challenge, see
 * `ConnectionBinder` (`mesh-identity.ts`).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { InvalidOptionError, SyncError } from '../errors.js';
import type { KeyPair } from './keys.js';
import { SendQueue } from './queues.js';
import { ENDPOINT_RE } from './rounds-wire.js';
import { isZ85Key, z85Decode } from './z85.js';
import { serveZap } from './zap.js';

/** Options of {@link Mesh.open}. */
export interface MeshOptions {
  /** Endpoint to bind the ROUTER to, `tcp://host:port` (port 0: any free port). */
  readonly bind: string;
  /** Endpoint other peers dial; default: the bound one (required when `bind` is a wildcard host). */
  readonly advertise?: string;
  /** CURVE key pair; required unless `plaintext`. */
  readonly keys?: KeyPair;
  /** Public keys allowed to connect (CURVE). */
  readonly allowlist?: readonly string[];
  readonly plaintext?: boolean;
  /** Largest message part accepted (bytes). */
  readonly maxFrameBytes: number;
  /** Messages that may wait per destination. Default 64. */
  readonly maxQueued?: number;
  /** Bytes that may wait per destination. Default 2 × `maxFrameBytes`. */
  readonly maxQueuedBytes?: number;
  /** Most peers dialed at once (each is a socket and a file descriptor). Default 300. */
  readonly maxDialed?: number;
}

const WILDCARD_HOSTS = new Set(['*', '0.0.0.0', '[::]', '::']);

/**
 * The sender id of a peer: the first 16 bytes of SHA-256 of its CURVE public key (raw 32
 * bytes), or of `plaintext:<advertised endpoint>` without CURVE; 32 lowercase hex.
 */
export function senderIdOf(publicKey: string | null, endpoint: string): string {
  const h = createHash('sha256');
  if (publicKey !== null) h.update(Buffer.from(z85Decode(publicKey)!));
  else h.update(`plaintext:${endpoint}`);
  return h.digest('hex').slice(0, 32);
}

/** One peer's ROUTER and DEALERs. */
export class Mesh {
  /** The endpoint other peers dial. */
  readonly endpoint: string;
  /** This peer's sender id. */
  readonly id: string;
  private readonly dealers = new Map<string, { socket: zmq.Dealer; queue: SendQueue }>();
  private closed = false;
  private onMessage: (frames: Buffer[], connection: string) => void = () => undefined;

  private constructor(
    private readonly ctx: zmq.Context,
    private readonly router: zmq.Router,
    private readonly zap: zmq.Router | undefined,
    private readonly opts: MeshOptions,
    endpoint: string,
    private readonly onWarning: (err: Error) => void,
  ) {
    this.endpoint = endpoint;
    this.id = senderIdOf(opts.plaintext === true ? null : opts.keys!.publicKey, endpoint);
  }

  /** Binds the ROUTER (and the ZAP handler with CURVE); `EBIND` when the endpoint cannot be bound. */
  static async open(opts: MeshOptions, onWarning: (err: Error) => void): Promise<Mesh> {
    const m = ENDPOINT_RE.exec(opts.bind);
    if (m === null) throw new InvalidOptionError(`The bind endpoint must be tcp://host:port, got '${opts.bind}'.`);
    if (opts.plaintext !== true) {
      if (opts.keys === undefined) throw new InvalidOptionError('CURVE needs a key pair (or plaintext: true).');
      if (zmq.capability.curve !== true) throw new SyncError('This zeromq build has no CURVE support; use plaintext.', 'ECURVE');
    }
    const ctx = new zmq.Context({ blocky: false });
    let zap: zmq.Router | undefined;
    const curve = opts.plaintext === true ? undefined : opts.keys!;
    if (curve !== undefined) {
      zap = new zmq.Router({ context: ctx, linger: 0 });
      await zap.bind('inproc://zeromq.zap.01');
    }
    const router = new zmq.Router({
      context: ctx,
      linger: 0,
      maxMessageSize: opts.maxFrameBytes,
      receiveHighWaterMark: 1000,
      ...(curve === undefined
        ? {}
        : {
            curveServer: true,
            curveSecretKey: curve.secretKey,
            curvePublicKey: curve.publicKey,
            zapDomain: 'dbn',
            zapEnforceDomain: true,
          }),
    });
    try {
      await router.bind(opts.bind);
    } catch (err) {
      router.close();
      zap?.close();
      throw new SyncError(`Cannot bind ${opts.bind}: ${(err as Error).message}`, 'EBIND', { cause: err });
    }
    const bound = router.lastEndpoint ?? opts.bind;
    const endpoint = opts.advertise ?? bound;
    if (WILDCARD_HOSTS.has(ENDPOINT_RE.exec(endpoint)?.[1] ?? '')) {
      router.close();
      zap?.close();
      throw new InvalidOptionError(`${opts.bind} listens on every interface; set an advertised endpoint other peers can reach.`);
    }
    const mesh = new Mesh(ctx, router, zap, opts, endpoint, onWarning);
    if (zap !== undefined) {
      const allowed = new Set((opts.allowlist ?? []).map((k) => Buffer.from(z85Decode(k)!).toString('hex')));
      void serveZap(
        zap,
        (key) => allowed.has(key.toString('hex')),
        (detail) => onWarning(new SyncError(`Refused a connection: ${detail} is not allowed.`, 'EKEY')),
      );
    }
    void mesh.receiveLoop();
    return mesh;
  }

  /**
   * Calls `handle` with every message received: its frames after the routing id, and the
   * connection it arrived on (the sending DEALER's routing id, hex; see `ConnectionBinder`).
   */
  listen(handle: (frames: Buffer[], connection: string) => void): void {
    this.onMessage = handle;
  }

  /**
   * Queues `frames` for the peer at `endpoint` (dialing it the first time, with its public key
   * under CURVE). False when that peer's queue is full (it is not reading) or the mesh is closed.
   * The frames must not be mutated afterwards.
   */
  send(endpoint: string, publicKey: string | null, frames: Buffer[]): boolean {
    if (this.closed) return false;
    let d = this.dealers.get(endpoint);
    if (d === undefined) {
      if (this.dealers.size >= (this.opts.maxDialed ?? 300)) {
        this.onWarning(
          new SyncError(`Not dialing ${endpoint}: ${this.dealers.size} peers are dialed already (the most allowed).`, 'ELIMIT'),
        );
        return false;
      }
      const k = this.opts.keys;
      if (this.opts.plaintext !== true && (publicKey === null || !isZ85Key(publicKey))) {
        this.onWarning(new SyncError(`No public key for ${endpoint}: cannot dial it under CURVE.`, 'EKEY'));
        return false;
      }
      const socket = new zmq.Dealer({
        context: this.ctx,
        linger: 0,
        sendTimeout: 0,
        sendHighWaterMark: this.opts.maxQueued ?? 64,
        // A random routing id per connection (never guessed by another peer, never starting with 0): receivers bind it to this peer's key.
        routingId: connectionId(),
        ...(this.opts.plaintext === true ? {} : { curveSecretKey: k!.secretKey, curvePublicKey: k!.publicKey, curveServerKey: publicKey! }),
      });
      try {
        socket.connect(endpoint);
      } catch (err) {
        socket.close();
        this.onWarning(new SyncError(`Cannot dial ${endpoint}: ${(err as Error).message}`, 'ECONNECT', { cause: err }));
        return false;
      }
      d = {
        socket,
        queue: new SendQueue(socket, this.opts.maxQueued ?? 64, () => undefined, this.opts.maxQueuedBytes ?? 2 * this.opts.maxFrameBytes),
      };
      this.dealers.set(endpoint, d);
    }
    return d.queue.push(frames);
  }

  /** Stops dialing `endpoint` (drops what waits for it). */
  hangUp(endpoint: string): void {
    const d = this.dealers.get(endpoint);
    if (d === undefined) return;
    this.dealers.delete(endpoint);
    d.queue.close();
    d.socket.close();
  }

  /** Resolves when every queued message has been handed to ZeroMQ, or after `ms`. */
  async drain(ms: number): Promise<void> {
    const all = Promise.all([...this.dealers.values()].map((d) => d.queue.drain()));
    await Promise.race([all, new Promise((r) => setTimeout(r, ms).unref())]);
  }

  /** Closes every socket; `lingerMs` lets queued messages leave first. Idempotent. */
  close(lingerMs = 0): void {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.dealers.values()) {
      d.queue.close();
      d.socket.linger = lingerMs;
      d.socket.close();
    }
    this.dealers.clear();
    this.router.close();
    this.zap?.close();
  }

  private async receiveLoop(): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.router.receive();
      } catch (err) {
        if (!this.closed) this.onWarning(err as Error);
        return;
      }
      if (this.closed) return;
      try {
        this.onMessage(frames.slice(1), frames[0]!.toString('hex'));
      } catch (err) {
        this.onWarning(err as Error);
      }
    }
  }
}

/** A fresh routing id for a DEALER: 32 hex characters (unguessable; a ROUTER refuses a duplicate connection). */
function connectionId(): string {
  return randomBytes(16).toString('hex');
}
