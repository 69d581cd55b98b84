import type { Peer } from '../../sync/index.js';

/** What {@link PeerTrainer} needs of a sync `Peer` (a `Peer` is one; tests may wrap one). */
export type PeerLink = Pick<
  Peer,
  | 'senderId'
  | 'publishDelta'
  | 'publishDeltaFrames'
  | 'flush'
  | 'on'
  | 'off'
  | 'setWeightFingerprint'
  | 'setProgress'
  | 'serveSnapshots'
  | 'requestSnapshot'
  | 'adoptSequences'
  | 'sequences'
  | 'stats'
  | 'waitForPeers'
  | 'setMaxFrameBytes'
>;
