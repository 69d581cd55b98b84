/**
 * The `/metrics` registry (prom-client): every figure is read from the {@link RunState} when
 * Prometheus scrapes, so nothing is counted twice. Names start with `dbn_` and carry their unit;
 * labels are bounded: `peer` (a peer's name) and `peer_id` (the first 8 hex of its id) for at most
 * 256 peers, `kind` (a message kind of the rounds protocol), `reason` (a refusal reason).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { UNIDENTIFIED } from '../../distributed/stats.js';
import type { RunState } from './state.js';

type PeerLabels = 'peer' | 'peer_id';

function peerLabels(state: RunState, id: string): Record<PeerLabels, string> {
  const name = state.stats.peers.get(id)?.name ?? id.slice(0, 8);
  return { peer: id === UNIDENTIFIED ? UNIDENTIFIED : name, peer_id: id === UNIDENTIFIED ? '' : id.slice(0, 8) };
}

/** A gauge read from the state at every scrape (NaN while unknown). */
function gauge(registry: Registry, name: string, help: string, read: (state: RunState) => number | undefined, state: RunState): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read(state) ?? Number.NaN);
    },
  });
}

/** A counter whose total is read from the state at every scrape. */
function total(registry: Registry, name: string, help: string, read: (state: RunState) => number, state: RunState): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read(state));
    },
  });
}

function trafficCounters(registry: Registry, state: RunState): void {
  for (const direction of ['sent', 'received'] as const) {
    for (const unit of ['bytes', 'messages'] as const) {
      new Counter<PeerLabels | 'kind'>({
        name: `dbn_peer_${unit}_${direction}_total`,
        help: `${unit === 'bytes' ? 'Bytes' : 'Messages'} ${direction} ${direction === 'sent' ? 'to' : 'from'} each peer, by message kind (contribution and chunk carry the rounds' deltas).`,
        labelNames: ['peer', 'peer_id', 'kind'],
        registers: [registry],
        collect() {
          this.reset();
          for (const [id, record] of state.stats.peers) {
            for (const [kind, t] of direction === 'sent' ? record.sent : record.received)
              this.inc({ ...peerLabels(state, id), kind }, t[unit]);
          }
        },
      });
    }
  }
}

function peerGauges(registry: Registry, state: RunState): void {
  new Gauge<PeerLabels>({
    name: 'dbn_replica_divergence',
    help: "Replica divergence of each peer from this one at the latest epoch both fingerprinted: 0 when the parameters' hashes agree, else a lower bound of the largest parameter difference.",
    labelNames: ['peer', 'peer_id'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, r] of state.stats.peers) if (r.divergence !== undefined) this.set(peerLabels(state, id), r.divergence);
    },
  });
  new Gauge<PeerLabels>({
    name: 'dbn_peer_last_heard_seconds',
    help: 'Seconds since each known peer was last heard.',
    labelNames: ['peer', 'peer_id'],
    registers: [registry],
    collect() {
      this.reset();
      const g = state.group;
      if (g === undefined) return;
      const now = Date.now();
      for (const [id, e] of g.directory) this.set(peerLabels(state, id), (now - e.lastHeard) / 1000);
    },
  });
  new Counter<'reason'>({
    name: 'dbn_refused_total',
    help: 'Messages or peers refused, by reason.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of state.stats.refusals) this.inc({ reason }, n);
    },
  });
}

function progressGauges(registry: Registry, state: RunState): void {
  const p = state.progress;
  const phases = ['starting', 'pretrain', 'associative', 'finetune', 'done'] as const;
  new Gauge<'phase'>({
    name: 'dbn_phase',
    help: 'The phase this process is in (1 for the current one).',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      for (const phase of phases) this.set({ phase }, p.phase === phase ? 1 : 0);
    },
  });
  gauge(registry, 'dbn_stage', 'Pretraining: the layer being trained; fine-tuning: the number of layers.', () => p.stage, state);
  gauge(registry, 'dbn_epoch', 'The last epoch completed in the current stage (0-based).', () => p.epoch, state);
  gauge(
    registry,
    'dbn_round',
    'The last round completed with the peers (-1 before the first; local runs: none).',
    (s) => (s.group === undefined ? undefined : s.group.next - 1),
    state,
  );
  total(
    registry,
    'dbn_minibatches_total',
    "Minibatches this process trained on (its share of each round's minibatch in peer mode).",
    () => p.minibatches,
    state,
  );
  total(
    registry,
    'dbn_samples_total',
    'Rows this process went through, summed over epochs (fine-tuning: its labelled rows, the validation split included).',
    () => p.samples,
    state,
  );
  gauge(
    registry,
    'dbn_reconstruction_error',
    'Mean squared reconstruction error of the last pretraining epoch.',
    () => p.reconstructionError,
    state,
  );
  gauge(registry, 'dbn_finetune_loss', 'Mean training cross-entropy of the last fine-tuning epoch (nats).', () => p.loss, state);
  gauge(
    registry,
    'dbn_validation_accuracy_ratio',
    'Validation accuracy of the last fine-tuning epoch (0-1).',
    () => p.validationAccuracy,
    state,
  );
}

function runCounters(registry: Registry, state: RunState): void {
  total(registry, 'dbn_rounds_total', 'Rounds completed with the peers.', (s) => s.stats.rounds, state);
  total(
    registry,
    'dbn_barrier_wait_seconds_total',
    'Time spent waiting for the peers at round barriers.',
    (s) => s.stats.barrierWaitSeconds,
    state,
  );
  total(
    registry,
    'dbn_peers_suspected_total',
    'Peers suspected (not heard, restarted, left, or sending non-finite values) and dropped from the rounds.',
    (s) => s.stats.suspects,
    state,
  );
  total(registry, 'dbn_peers_admitted_total', 'Admissions of joining peers this process saw.', (s) => s.stats.joins, state);
  total(
    registry,
    'dbn_snapshots_served_total',
    'Snapshots (and final models) sent to joining peers.',
    (s) => s.stats.snapshotsServed,
    state,
  );
  total(registry, 'dbn_snapshots_taken_total', 'Snapshots this process joined a running run from.', (s) => s.stats.snapshotsTaken, state);
  gauge(
    registry,
    'dbn_peers_members',
    'Members of the current view (this process included).',
    (s) => (s.group === undefined ? 1 : s.group.members.length),
    state,
  );
  gauge(
    registry,
    'dbn_peers_alive',
    'Members of the current view heard within the peer timeout (this process included).',
    (s) => {
      const g = s.group;
      if (g === undefined) return 1;
      const now = Date.now();
      return g.members.filter((id) => id === g.id || now - (g.directory.get(id)?.lastHeard ?? 0) <= g.peerTimeoutMs).length;
    },
    state,
  );
}

/** A registry of every `dbn_` metric over `state`, with the process metrics (`dbn_process_…`, `dbn_nodejs_…`). */
export function createRegistry(state: RunState): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ name: state.name });
  collectDefaultMetrics({ register: registry, prefix: 'dbn_' });
  progressGauges(registry, state);
  runCounters(registry, state);
  trafficCounters(registry, state);
  peerGauges(registry, state);
  return registry;
}
