/**
 * A hostile peer for tests: a real {@link Mesh} (CURVE or plaintext) that speaks the rounds wire
 * format and lies as a test tells it to — any sender id, any kind, any fields and payload. It
 * proves its own identity when challenged (an allowlisted-but-hostile member) unless told not to.
 */
import { Mesh } from '../../src/sync/mesh.js';
import { type RoundKindName, type RoundMessage, decodeRound, encodeRound } from '../../src/sync/rounds-wire.js';
import type { KeyPair } from '../../src/sync/keys.js';

export interface HostileOptions {
  readonly bind: string;
  readonly runId: string;
  readonly fingerprint: string;
  readonly keys?: KeyPair;
  readonly allowlist?: readonly string[];
  readonly plaintext?: boolean;
}

/** Where a message goes: an endpoint and, under CURVE, its public key. */
export interface Target {
  readonly endpoint: string;
  readonly publicKey: string | null;
}

export class HostilePeer {
  readonly received: RoundMessage[] = [];
  /** Called with every message received (after the automatic proof of a challenge). */
  onMessage: (msg: RoundMessage) => void = () => undefined;
  answerChallenges = true;
  private readonly instance = 4242;

  private constructor(
    readonly mesh: Mesh,
    readonly options: HostileOptions,
  ) {
    mesh.listen((frames) => this.receive(frames));
  }

  static async open(options: HostileOptions): Promise<HostilePeer> {
    const mesh = await Mesh.open(
      {
        bind: options.bind,
        maxFrameBytes: 64 << 20,
        ...(options.plaintext === true ? { plaintext: true } : { keys: options.keys!, allowlist: options.allowlist ?? [] }),
      },
      () => undefined,
    );
    return new HostilePeer(mesh, options);
  }

  get id(): string {
    return this.mesh.id;
  }

  get endpoint(): string {
    return this.mesh.endpoint;
  }

  /** This peer's identity fields, as hello and join carry them. */
  identity(): Record<string, unknown> {
    return {
      endpoint: this.endpoint,
      publicKey: this.options.plaintext === true ? null : this.options.keys!.publicKey,
      fingerprint: this.options.fingerprint,
    };
  }

  /** Sends one message to `to`, claiming `sender` (default: its own id). */
  send(
    to: Target,
    kind: RoundKindName,
    meta: Record<string, unknown>,
    payload: readonly Buffer[] = [],
    header: { sender?: string; round?: number; view?: number; instance?: number } = {},
  ): boolean {
    const frames = encodeRound(
      {
        kind,
        runId: this.options.runId,
        sender: header.sender ?? this.id,
        instance: header.instance ?? this.instance,
        view: header.view ?? 1,
        round: header.round ?? 0,
      },
      meta,
      payload,
    );
    return this.mesh.send(to.endpoint, to.publicKey, frames);
  }

  /** Sends raw frames (not necessarily a valid message) to `to`. */
  sendRaw(to: Target, frames: Buffer[]): boolean {
    return this.mesh.send(to.endpoint, to.publicKey, frames);
  }

  close(): void {
    this.mesh.close();
  }

  private receive(frames: Buffer[]): void {
    let msg: RoundMessage;
    try {
      msg = decodeRound(frames);
    } catch {
      return;
    }
    this.received.push(msg);
    if (msg.kind === 'challenge' && this.answerChallenges) {
      const endpoint = msg.meta['endpoint'] as string;
      const publicKey = (msg.meta['publicKey'] ?? null) as string | null;
      this.send({ endpoint, publicKey }, 'proof', { nonce: msg.meta['nonce'] });
    }
    this.onMessage(msg);
  }
}

/** Resolves when `check()` holds, or rejects after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
