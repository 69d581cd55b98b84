/**
 * The types of a {@link PeerGroup}'s options, events, counters and peer table (split from
 * group.ts, which re-exports them).
 */
import type { MeshOptions } from '../sync/mesh.js';
import type { WireMember } from '../sync/rounds-wire.js';
import type { GuardOptions } from './contribution-guard.js';
import type { AggregationOptions } from './robust.js';

/** Options of {@link PeerGroup.open}. */
export interface PeerGroupOptions {
  /** Name of the run, 1–16 of `[A-Za-z0-9._-]`; messages of other runs are ignored. */
  readonly runId: string;
  /** 64 hex: the model and training schedule; peers with another are refused. */
  readonly fingerprint: string;
  readonly mesh: Omit<MeshOptions, 'maxFrameBytes'>;
  /** Largest message part: the largest parameter tensor or snapshot, in bytes. */
  readonly maxFrameBytes: number;
  /** Endpoints (and CURVE public keys) of the other peers. */
  readonly peers: readonly { readonly endpoint: string; readonly publicKey: string | null }[];
  /** How many peers (this one included) start the run together. */
  readonly expectedPeers: number;
  /** Heartbeat period. Default 500 ms. */
  readonly heartbeatMs?: number;
  /** A member not heard for this long is dropped from the rounds. Default 5000 ms. */
  readonly peerTimeoutMs?: number;
  /**
   * Fewest members a view may keep: a view change that leaves fewer (lost peers, or this peer's
   * side of a network partition) stops this peer with `EQUORUM` instead of training on without
   * the others. Above half of `expectedPeers`, two sides of a partition cannot both go on.
   * Default 1 (any survivor goes on).
   */
  readonly minPeers?: number;
  /** Longest wait for the expected peers at the start. Default 120000 ms. */
  readonly startTimeoutMs?: number;
  /** How the members' contributions are combined. Default: the sum. Every peer must use the same. */
  readonly aggregation?: AggregationOptions;
  /** Limits on what another member may contribute, judged against this peer's own part. */
  readonly guard?: GuardOptions;
  /** Notable events (peers joined and lost, view changes) as one line each. */
  readonly onEvent?: (event: GroupEvent) => void;
  /** This peer's name in other peers' reports (see {@link RunStats}); default the first 8 hex of its id. */
  readonly name?: string;
}

/** A notable event of the group. */
export interface GroupEvent {
  readonly event: 'started' | 'joined' | 'peer-admitted' | 'peer-lost' | 'view' | 'snapshot-served' | 'warning' | 'refused';
  readonly detail: string;
}

/** Counters of a group, for reports and tests. */
export interface GroupStats {
  readonly rounds: number;
  readonly view: number;
  readonly members: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly waitMs: number;
  readonly recoveries: number;
  readonly snapshotsServed: number;
}

/** A known peer. */
export interface PeerEntry extends WireMember {
  instance: number;
  lastHeard: number;
}
