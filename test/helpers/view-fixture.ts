/**
 * A real `PeerGroup` for view-change tests: its socket bound on loopback and never dialed, its
 * outgoing messages captured instead of sent (the fake transport); the other members exist only
 * as ids in its directory, and the view logic's clock is driven by calling `tick`.
 */
import type { ExecutionContext } from 'ava';
import { PeerGroup, type GroupEvent } from '../../src/distributed/group.js';
import { type RoundKindName, type RoundMessage, type WireMember, decodeRound, encodeRound } from '../../src/sync/rounds-wire.js';

export const RUN = 'views';
export const HEARTBEAT_MS = 20;
export const TIMEOUT_MS = 100;
/** Ids above any the group gets (the group's own id is the lowest: the coordinator of a view change). */
export const A = 'f'.repeat(31) + 'a';
export const B = 'f'.repeat(31) + 'b';
export const POSITION = { stage: 0, epoch: 1, step: 3 };

export interface Fixture {
  readonly group: PeerGroup;
  readonly sent: { readonly endpoint: string; readonly msg: RoundMessage }[];
  readonly events: GroupEvent[];
}

/** A group in view `view` with `members` (its own id added) that has completed rounds below `next`; A and B known at dummy endpoints. */
export async function groupIn(
  t: ExecutionContext,
  view: number,
  others: readonly string[],
  next: number,
  extra: { readonly minPeers?: number } = {},
): Promise<Fixture> {
  const events: GroupEvent[] = [];
  const group = await PeerGroup.open({
    ...extra,
    runId: RUN,
    fingerprint: 'ab'.repeat(32),
    mesh: { bind: 'tcp://127.0.0.1:0', plaintext: true },
    maxFrameBytes: 1 << 20,
    peers: [],
    expectedPeers: 3,
    heartbeatMs: HEARTBEAT_MS,
    peerTimeoutMs: TIMEOUT_MS,
    onEvent: (e) => events.push(e),
  });
  t.teardown(() => group.close());
  const sent: Fixture['sent'] = [];
  group.mesh.send = (endpoint, _key, frames) => {
    sent.push({ endpoint, msg: decodeRound(frames) });
    return true;
  };
  const now = Date.now();
  group.remember(record(A), 1, now);
  group.remember(record(B), 2, now);
  group.members = [group.id, ...others].sort();
  group.view = view;
  group.next = next;
  return { group, sent, events };
}

export function record(id: string): WireMember {
  return { id, endpoint: `tcp://127.0.0.1:${id === A ? 1 : 2}`, publicKey: null };
}

/** The message another peer sends (decoded as this peer receives it). */
export function from(
  sender: string,
  kind: RoundKindName,
  view: number,
  round: number,
  meta: Record<string, unknown>,
  payload: readonly Buffer[] = [],
): RoundMessage {
  return decodeRound(encodeRound({ kind, runId: RUN, sender, instance: sender === A ? 1 : 2, view, round }, meta, payload));
}

/** What a pending promise has become after the event loop turned a few times. */
export async function settled(p: Promise<unknown>): Promise<'resolved' | 'pending' | Error> {
  const out = p.then(
    () => 'resolved' as const,
    (err: Error) => err,
  );
  const pending = new Promise<'pending'>((r) => setTimeout(() => r('pending'), 200));
  return Promise.race([out, pending]);
}

/** Hands `msg` to the group as if it came from its sender's connection (the identity gate passed): the path of every message. */
export function deliver(group: PeerGroup, msg: RoundMessage): void {
  group['dispatch'](msg);
}
