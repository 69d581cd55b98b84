/**
 * The identity check of every message a {@link PeerGroup} receives: a message is handled only
 * once the connection it arrived on is bound to its claimed sender id (a challenge sent on this
 * peer's own connection to that sender's key, answered on the sender's connection; see
 * `ConnectionBinder` in `src/sync/mesh-identity.ts`). A message whose connection is bound to
 * another id is dropped and counted.
 */
import { senderIdOf } from '../sync/mesh.js';
import { ConnectionBinder } from '../sync/mesh-identity.js';
import { ENDPOINT_RE, type RoundMessage, type WireMember } from '../sync/rounds-wire.js';
import { type PeerGroup, short } from './group.js';

const NONCE_RE = /^[0-9a-f]{32}$/;

/** The identity gate of a group (owned by its {@link PeerGroup}). */
export class IdentityGate {
  readonly binder: ConnectionBinder;
  private readonly proofsSent = new Map<string, number>();

  constructor(private readonly g: PeerGroup) {
    this.binder = new ConnectionBinder({ challengeTimeoutMs: Math.max(2000, 4 * g.heartbeatMs) });
  }

  /**
   * Handles `msg` (arrived on `connection`, `bytes` long): challenges and proofs at once, anything
   * else through `deliver` once its connection is bound to its sender.
   */
  receive(msg: RoundMessage, connection: string, bytes: number, deliver: () => void): void {
    if (msg.kind === 'challenge') return this.onChallenge(msg);
    if (msg.kind === 'proof') return this.onProof(msg, connection);
    const before = this.binder.counters.impersonations;
    const verdict = this.binder.judge(connection, msg.sender, bytes, deliver, (nonce) => this.challenge(msg, nonce), Date.now());
    if (verdict === 'refused' && this.binder.counters.impersonations > before) {
      this.g.emit(
        'refused',
        `${msg.kind} claiming ${short(msg.sender)} arrived on the connection of ${short(this.binder.senderOf(connection) ?? '?')}: dropped`,
      );
    }
  }

  /** Sends the claimed sender of `msg` a challenge on this peer's own connection to its key; false when it cannot be reached. */
  private challenge(msg: RoundMessage, nonce: string): boolean {
    const g = this.g;
    const meta = { nonce, ...g.selfMeta() };
    if (g.directory.has(msg.sender)) {
      g.sendTo(msg.sender, 'challenge', meta, [], 0);
      return true;
    }
    const claimed = this.claimedRecord(msg);
    if (claimed === undefined) return false;
    g.sendToEndpoint(claimed.endpoint, claimed.publicKey, 'challenge', meta, [], 0);
    return true;
  }

  /** The endpoint and key a message claims for its sender, when they derive its id (and the key is allowlisted under CURVE). */
  private claimedRecord(msg: RoundMessage): WireMember | undefined {
    const g = this.g;
    const endpoint = msg.meta['endpoint'];
    const publicKey = msg.meta['publicKey'] ?? null;
    if (typeof endpoint !== 'string' || !ENDPOINT_RE.test(endpoint)) return undefined;
    const plaintext = g.options.mesh.plaintext === true;
    if (plaintext ? publicKey !== null : typeof publicKey !== 'string' || !(g.options.mesh.allowlist ?? []).includes(publicKey))
      return undefined;
    if (senderIdOf(publicKey as string | null, endpoint) !== msg.sender) return undefined;
    return { id: msg.sender, endpoint, publicKey: publicKey as string | null };
  }

  private onChallenge(msg: RoundMessage): void {
    const g = this.g;
    const nonce = msg.meta['nonce'];
    if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return;
    const now = Date.now();
    if (now - (this.proofsSent.get(msg.sender) ?? 0) < 20) return;
    if (this.proofsSent.size >= 1024) this.proofsSent.clear();
    this.proofsSent.set(msg.sender, now);
    // The proof goes on this peer's own connection to the challenger: that is the connection being bound.
    if (g.directory.has(msg.sender)) g.sendTo(msg.sender, 'proof', { nonce }, [], 0);
    else {
      const claimed = this.claimedRecord(msg);
      if (claimed !== undefined) g.sendToEndpoint(claimed.endpoint, claimed.publicKey, 'proof', { nonce }, [], 0);
    }
  }

  private onProof(msg: RoundMessage, connection: string): void {
    const nonce = msg.meta['nonce'];
    if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return;
    this.binder.prove(connection, msg.sender, nonce);
  }
}
