/**
 * `train` as a peer: opens the group, brings the model into the run (fresh, from a snapshot, or
 * the finished model), and finishes it; the training itself is the same code as a local run,
 * with the group as the collective.
 */
import * as path from 'node:path';
import type { Dbn } from '../dbn/index.js';
import { PeerGroup, type GroupEvent, enterRun, modelBytes, runFingerprint } from '../distributed/index.js';
import type { MetricsWriter } from './metrics.js';
import type { Observer } from './observe/session.js';
import type { PeerConfig } from './peer-options.js';

/** Printed on stderr when a peer run starts with `--plaintext` (after `WARN: --plaintext: `, or as a JSON line). */
export const PLAINTEXT_WARNING =
  'no encryption and no authentication. Anyone who can reach these ports can read the model and change it (send gradients, claim to be a peer). Use it only on a network you trust; use --keys otherwise.';

/** A peer's side of a run, as the `train` command holds it. */
export interface PeerRun {
  readonly group: PeerGroup;
  readonly model: Dbn;
  /** The run had finished before this peer joined: `model` is its final model. */
  readonly finished: boolean;
  /** Ends this peer's part (serving late joiners meanwhile) and closes the group. */
  finish(): Promise<void>;
}

/**
 * Opens the group on the peer flags and enters the run. `schedule` holds every training option
 * (peers compare their fingerprints: a peer with other options is refused with a clear error).
 */
export async function startPeerRun(
  config: PeerConfig,
  model: Dbn,
  schedule: Record<string, unknown>,
  out: string,
  log: (line: string) => void,
  metrics: MetricsWriter | undefined,
  observer?: Observer,
): Promise<PeerRun> {
  const onEvent = (e: GroupEvent): void => {
    metrics?.write({ phase: 'peers', ...e });
    if (observer === undefined) log(`peer ${e.event}: ${e.detail}`);
    else observer.log.groupEvent(e);
  };
  const largest = model.layers.reduce((s, l) => s + 3 * (l.nVisible + 1) * (l.nHidden + 1), 0) * 4;
  if (config.group.mesh.plaintext === true)
    process.stderr.write(`${observer?.log.warning('--plaintext', PLAINTEXT_WARNING) ?? `WARN: --plaintext: ${PLAINTEXT_WARNING}`}\n`);
  const agreed = config.group.aggregation === undefined ? schedule : { ...schedule, aggregation: config.group.aggregation };
  const name = observer?.state.name;
  const group = await PeerGroup.open({
    ...config.group,
    fingerprint: runFingerprint(model, agreed),
    maxFrameBytes: largest + (16 << 20),
    onEvent,
    ...(name === undefined ? {} : { name }),
  });
  observer?.attach(group);
  log(
    `peer ${name === undefined ? '' : `${name} `}${group.id.slice(0, 8)} at ${group.endpoint} (run ${config.group.runId}): waiting for ${config.group.expectedPeers - 1} other peer(s)…`,
  );
  const scratch = path.join(out, '.peer-snapshot.dbn');
  try {
    const entry = await enterRun(group, model, scratch);
    if (entry.start.kind === 'joined')
      log(`joined the running run at round ${entry.start.round} from a snapshot (${entry.start.members} members)`);
    if (entry.finished) log('the run had already finished: took its final model');
    return {
      group,
      model: entry.model,
      finished: entry.finished,
      async finish() {
        await group.finish(() => modelBytes(entry.model, path.join(out, '.peer-final.dbn')));
        const s = group.stats();
        log(
          `peers: ${s.rounds} rounds, ${s.members} member(s) at the end, ${(s.bytesSent / 2 ** 20).toFixed(1)} MiB sent, ${(s.bytesReceived / 2 ** 20).toFixed(1)} MiB received, ${(s.waitMs / 1000).toFixed(1)} s waiting, ${s.recoveries} view change(s), ${s.snapshotsServed} snapshot(s) served`,
        );
        metrics?.write({ phase: 'peers', event: 'stats', ...s, traffic: trafficRecord(group) });
      },
    };
  } catch (err) {
    group.close();
    throw err;
  }
}

/** Bytes sent to and received from each peer, by message kind, for the `--metrics` file. */
function trafficRecord(group: PeerGroup): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [id, p] of group.runStats.peers) {
    out[id] = {
      name: p.name,
      sent: Object.fromEntries([...p.sent].map(([k, t]) => [k, t.bytes])),
      received: Object.fromEntries([...p.received].map(([k, t]) => [k, t.bytes])),
    };
  }
  return out;
}
