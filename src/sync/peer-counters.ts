/**
 * The counters of a {@link Peer} and the checks every received message passes before dispatch
 * (decoding, own echo, run, model fingerprint).
 */
import { WireFormatError } from '../errors.js';
import type { WireFormatErrorCode } from '../errors.js';
import type { SenderLedger } from './ledger.js';
import type { PeerInfo, PeerStats, Rejection } from './peer-types.js';
import { decode } from './wire.js';
import type { Message } from './wire.js';

/** Mutable counters behind {@link PeerStats}. */
export class PeerCounters {
  readonly sent = { deltas: 0, heartbeats: 0, announces: 0, snapshotRequests: 0, snapshotResponses: 0 };
  sendErrors = 0;
  readonly dropped = { queueFull: 0, dealerHwm: 0, snapshotRate: 0, inboxFull: 0 };
  received = 0;
  readonly malformed: Partial<Record<WireFormatErrorCode, number>> = {};
  unexpected = 0;
  readonly rejected = { run: 0, fingerprint: 0, key: 0, gossip: 0, sender: 0, endpoint: 0 };
  handshakeFailures = 0;
  decodeMs = 0;

  /** A fresh {@link PeerStats} from these counters, the ledger and the peer table. */
  snapshot(self: { senderId: string; pub: string; router: string }, ledger: SenderLedger, peers: PeerInfo[]): PeerStats {
    const perSender = ledger.stats();
    const total = { delivered: 0, duplicates: 0, stale: 0, gaps: 0 };
    for (const s of Object.values(perSender)) {
      total.delivered += s.delivered;
      total.duplicates += s.duplicates;
      total.stale += s.stale;
      total.gaps += s.gaps;
    }
    return {
      ...self,
      sent: { ...this.sent },
      sendErrors: this.sendErrors,
      dropped: { ...this.dropped },
      received: this.received,
      ...total,
      perSender,
      malformed: { ...this.malformed },
      unexpected: this.unexpected,
      rejected: { ...this.rejected },
      handshakeFailures: this.handshakeFailures,
      decodeMs: this.decodeMs,
      peers,
    };
  }
}

/** What a received message is checked against. */
export interface Expectation {
  readonly runId: string;
  readonly fingerprint: string;
  readonly senderId: string;
}

/**
 * Decodes `frames` and checks run and model: the message, `'self'` for this peer's own echo, or
 * undefined when it was malformed or of another run or model (counted; reported through
 * `malformed` or `rejected`).
 */
export function decodeChecked(
  frames: Buffer[],
  expect: Expectation,
  counters: PeerCounters,
  report: { malformed(err: WireFormatError): void; rejected(r: Rejection, counter: 'run' | 'fingerprint'): void },
): Message | 'self' | undefined {
  let msg: Message;
  const t0 = performance.now();
  try {
    msg = decode(frames);
  } catch (err) {
    if (!(err instanceof WireFormatError)) throw err;
    const code = err.code as WireFormatErrorCode;
    counters.malformed[code] = (counters.malformed[code] ?? 0) + 1;
    report.malformed(err);
    return undefined;
  } finally {
    counters.decodeMs += performance.now() - t0;
  }
  if (msg.senderId === expect.senderId) return 'self';
  if (msg.runId !== expect.runId) {
    report.rejected({ reason: 'run', detail: `run '${msg.runId}'`, senderId: msg.senderId }, 'run');
    return undefined;
  }
  if (msg.fingerprint !== expect.fingerprint) {
    report.rejected({ reason: 'fingerprint', detail: `model fingerprint ${msg.fingerprint}`, senderId: msg.senderId }, 'fingerprint');
    return undefined;
  }
  counters.received++;
  return msg;
}
