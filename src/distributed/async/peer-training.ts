/**
 * Serverless data-parallel training of a {@link Dbn} by several peers, each on its own shard of
 * the data, exchanging parameter deltas through a sync `Peer` (ZeroMQ). This is the front end
 * (join, pretrain, fine-tune, finish, stop); how deltas merge is the mode's
 * {@link MergeStrategy} (`async-merge.ts`, `lockstep-merge.ts`), how they are encoded
 * `encodings.ts`, how they are checked `delta-guard.ts`. Reasoning and measurements:
 * `docs/async-peer-training.md`.
 *
 * Parameter groups (`parameter-groups.ts`): `0…L−1` the RBMs, `L` the classifier. Stages:
 * `i < L` pretraining RBM `i`, `L` fine-tuning, `L+1` finished.
 */
import { InvalidOptionError } from '../../errors.js';
import { hostKernelsFor, type HostKernels } from '../../kernels/host/host-kernels.js';
import type { DeltaMessage, HeartbeatMessage, LayerTensors, PeerInfo, ReceivedSnapshot, Snapshot } from '../../sync/index.js';
import type { MatrixInput } from '../../validate.js';
import type { Dbn, PretrainHistory } from '../../dbn/dbn.js';
import type { FineTuneOptions, FineTuneResult, PretrainOptions } from '../../dbn/options.js';
import { AsyncMerge, averageInto } from './async-merge.js';
import { DeltaGuard, sumOfSquares } from './delta-guard.js';
import type { PeerLink } from './link.js';
import { LockstepMerge } from './lockstep-merge.js';
import type { MergeStrategy, TrainerContext } from './merge-strategy.js';
import {
  type CommonSettings,
  type JoinResult,
  type PeerTrainingOptions,
  type PeerTrainingReport,
  type PeerTrainingStats,
  resolveOptions,
} from './options.js';
import { ParameterGroups, sameShapes } from './parameter-groups.js';
import { encodeFingerprint } from './peer-fingerprint.js';
import { RemotePeers, type RemoteView } from './remote-peers.js';
import { type Counters, type GroupState, newCounters, newGroupState } from './state.js';
import { WeightSamples } from './weight-samples.js';

export type { PeerLink } from './link.js';
export type {
  AsyncMode,
  DeltaEncoding,
  JoinResult,
  LockstepMode,
  MergeRule,
  PeerTrainingOptions,
  PeerTrainingReport,
  PeerTrainingStats,
} from './options.js';
export { sameSequences } from './async-merge.js';

/**
 * Trains a {@link Dbn} as one peer of a run. Create it on a started `Peer`, optionally
 * {@link join} (snapshot from a live peer), then call {@link pretrain} / {@link fineTune} as on
 * the `Dbn`, {@link finish}, and {@link close} (the `Peer` is the caller's to close).
 *
 * @example
 * const peer = await Peer.create({ runId: 'digits', fingerprint, bind: 'tcp://10.0.0.1:5555', peers, keys, allowlist });
 * const trainer = new PeerTrainer(dbn, peer, { publishEvery: 10, mode: { kind: 'async', encoding: { kind: 'float16' } } });
 * await trainer.join({ timeoutMs: 5000, seeds: true });
 * await trainer.pretrain(myShard.x);
 * await trainer.fineTune(myShard.x, myShard.y, { epochs: 20 });
 * await trainer.finish();
 * trainer.close();
 * await peer.close();
 */
export class PeerTrainer {
  readonly dbn: Dbn;
  readonly link: PeerLink;
  private readonly common: CommonSettings;
  private readonly strategy: MergeStrategy;
  private readonly onReport: ((r: PeerTrainingReport) => void) | undefined;
  private readonly groups: ParameterGroups;
  private readonly guard: DeltaGuard;
  private readonly host: HostKernels;
  private readonly peers = new RemotePeers();
  private readonly counters: Counters = newCounters();
  private readonly samples: WeightSamples;
  private stage: number;
  private stageEpochs = 0;
  private settled = -1;
  private batches = 0;
  private sinceSync = 0;
  private lastSync = Date.now();
  private lastReport = 0;
  private group: GroupState | undefined;
  private lastGroup: number | undefined;
  /** A classifier taken from a snapshot before this peer knew its class count. */
  private pendingClassifier: Float32Array[] | undefined;
  private fingerprint: Float64Array = new Float64Array(0);
  private closed = false;
  private finishedRun = false;

  /** Hooks into `link` (deltas, heartbeats, snapshot requests) at once; trains nothing yet. */
  constructor(dbn: Dbn, link: PeerLink, options: PeerTrainingOptions = {}) {
    const { common, mode } = resolveOptions(options);
    this.dbn = dbn;
    this.link = link;
    this.common = common;
    this.onReport = options.onReport;
    this.guard = new DeltaGuard(options.guard);
    this.host = hostKernelsFor(dbn.backend);
    this.groups = new ParameterGroups(dbn);
    this.samples = new WeightSamples(this.groups.layerCount);
    const context = this.context();
    this.strategy =
      mode.kind === 'lockstep'
        ? new LockstepMerge(context)
        : new AsyncMerge(
            context,
            mode,
            (snap) => this.average(snap),
            () => this.divergence().value,
          );
    for (let i = 0; i < this.groups.layerCount; i++) this.samples.refresh(i, this.groups.read(i));
    this.stage = this.groups.firstIncompleteLayer() ?? this.groups.layerCount;
    this.publishFingerprint();
    this.limitFrames();
    link.on('delta', this.onDelta);
    link.on('heartbeat', this.onHeartbeat);
    link.on('peer-lost', this.onPeerLost);
    link.serveSnapshots((layers) => this.snapshot(layers));
  }

  /** True when {@link join} found a run that had already finished and took its final weights. */
  get runFinished(): boolean {
    return this.finishedRun;
  }

  /**
   * Joins the run: waits for `minPeers` live peers (throws SyncError `ETIMEDOUT` after
   * `timeoutMs`), or with `seeds` up to `timeoutMs` for one; then, if a live peer has trained
   * already, takes a snapshot of its weights and its progress (lockstep refuses: `ELOCKSTEP`).
   */
  async join(opts: { readonly timeoutMs?: number; readonly minPeers?: number; readonly seeds?: boolean } = {}): Promise<JoinResult> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const minPeers = opts.minPeers ?? 0;
    if (!Number.isSafeInteger(minPeers) || minPeers < 0)
      throw new InvalidOptionError(`The 'minPeers' option of PeerTrainer.join must be an integer >= 0. Got ${String(minPeers)}.`);
    if (!(timeoutMs > 0))
      throw new InvalidOptionError(`The 'timeoutMs' option of PeerTrainer.join must be a positive number. Got ${String(timeoutMs)}.`);
    if (minPeers > 0) await this.link.waitForPeers(minPeers, timeoutMs);
    else if (opts.seeds === true) await this.link.waitForPeers(1, timeoutMs).catch(() => undefined);
    const best = this.peers.mostAdvanced();
    if (best === undefined || (best.stage <= this.stage && best.epochs <= this.stageEpochs && best.batches === 0)) {
      this.report('join', 'no trained peer: starting from the shared initial weights');
      return { snapshot: false, stage: this.stage, epochs: this.stageEpochs, peers: this.peers.aliveCount };
    }
    this.strategy.checkLateJoin(best);
    const snap = await this.link.requestSnapshot(this.common.snapshotTimeoutMs);
    this.adopt(snap, best);
    this.report('join', `snapshot from ${snap.from} at stage ${best.stage}, epoch ${best.epochs}`);
    return { snapshot: true, from: snap.from, stage: best.stage, epochs: best.epochs, peers: this.peers.aliveCount };
  }

  /** {@link Dbn.pretrain} as a peer: same data and options (its `onBatch`/`onEpoch` still run); publishes, merges and waits at barriers around it. */
  async pretrain(data: MatrixInput, opts: PretrainOptions = {}): Promise<PretrainHistory> {
    this.assertOpen();
    const first = this.groups.firstIncompleteLayer();
    if (first !== undefined && this.group?.id !== first) this.enterGroup(first, this.dbn.layers[first]!.epochsTrained);
    const signal = opts.signal;
    return this.dbn.pretrain(data, {
      ...opts,
      onBatch: async (layer, b) => {
        await this.strategy.afterBatch(layer, b);
        if (opts.onBatch) await opts.onBatch(layer, b);
      },
      onEpoch: async (layer, m) => {
        const rbm = this.dbn.layers[layer]!;
        this.stageEpochs = rbm.epochsTrained;
        if (!signal?.aborted && rbm.epochsTrained >= rbm.options.epochs) {
          await this.endStage(layer, this.strategy.layerBarrier || layer === this.groups.layerCount - 1);
          const next = this.groups.firstIncompleteLayer();
          if (next !== undefined) this.enterGroup(next, this.dbn.layers[next]!.epochsTrained);
        }
        if (opts.onEpoch) await opts.onEpoch(layer, m);
      },
    });
  }

  /**
   * {@link Dbn.fineTune} as a peer, the classifier being parameter group `L`. Peers train
   * without early stopping (each would restore its own best weights): `validation` is refused
   * and `validationFraction` must be 0 (the default here).
   */
  async fineTune(data: MatrixInput, labels: Int32Array, opts: FineTuneOptions = {}): Promise<FineTuneResult> {
    this.assertOpen();
    if (opts.validation !== undefined || (opts.validationFraction !== undefined && opts.validationFraction !== 0)) {
      throw new InvalidOptionError(
        "PeerTrainer.fineTune trains without early stopping (each peer would restore its own best weights): drop the 'validation' and 'validationFraction' options.",
      );
    }
    if (this.group !== undefined) await this.endStage(this.group.id, true);
    const signal = opts.signal;
    const L = this.groups.layerCount;
    const res = await this.dbn.fineTune(data, labels, {
      ...opts,
      validationFraction: 0,
      onStart: async (info) => {
        this.enterClassifier(info.classes, info.epochsDone);
        if (opts.onStart) await opts.onStart(info);
      },
      onBatch: async (b) => {
        await this.strategy.afterBatch(L, b);
        if (opts.onBatch) await opts.onBatch(b);
      },
      onEpoch: async (m) => {
        this.stageEpochs = m.epoch + 1;
        if (opts.onEpoch) await opts.onEpoch(m);
      },
    });
    if (!signal?.aborted && res.finished) await this.endStage(L, true);
    return res;
  }

  /**
   * Ends training: publishes the last delta (float32), then waits (up to `barrierTimeoutMs`)
   * until every live peer has finished and its deltas are applied. Snapshots are still served
   * until {@link close}.
   */
  async finish(): Promise<void> {
    this.assertOpen();
    const L = this.groups.layerCount;
    if (this.group !== undefined) await this.endStage(this.group.id, this.group.id === L);
    if (this.stage <= L) {
      const done = this.stage;
      this.stage = L + 1;
      this.stageEpochs = 0;
      this.publishFingerprint();
      await this.barrier(done);
    }
    // One more heartbeat, so the others see this peer settled before it goes.
    const beats = this.link.stats().sent.heartbeats;
    const until = Date.now() + 2000;
    while (!this.closed && this.link.stats().sent.heartbeats <= beats && Date.now() < until)
      await new Promise<void>((resolve) => setTimeout(resolve, 20));
    await this.link.flush();
    this.report('finish');
  }

  /** Publishes what is not published yet (float32, async mode) and waits for it to be handed to ZeroMQ: for Ctrl-C. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.strategy.stop();
    await this.link.flush();
  }

  /** Counters and state (a fresh object on every call). */
  stats(): PeerTrainingStats {
    const t = this.link.stats();
    const d = this.divergence();
    const c = this.counters;
    return {
      senderId: this.link.senderId,
      mode: this.strategy.kind,
      stage: this.stage,
      epochs: this.stageEpochs,
      batches: this.batches,
      syncs: c.syncs,
      published: c.published,
      publishRefused: c.publishRefused,
      applied: c.applied,
      rejected: { ...c.rejected },
      rolledBack: c.rolledBack,
      droppedOtherLayer: c.droppedOtherLayer,
      droppedOverflow: c.droppedOverflow,
      pending: this.strategy.pending,
      bytes: { sent: c.bytesSent, float32: c.bytesFloat32 },
      compressionRatio: c.bytesSent === 0 ? 1 : c.bytesFloat32 / c.bytesSent,
      antiEntropy: { ...c.antiEntropy },
      divergence: d.value,
      peersCompared: d.compared,
      barrierTimeouts: c.barrierTimeouts,
      lockstep: { rounds: c.rounds, padded: c.padded, waitMs: c.roundWaitMs },
      syncMs: c.syncMs,
      receiveMs: c.receiveMs + t.decodeMs,
      transport: {
        delivered: t.delivered,
        gaps: t.gaps,
        duplicates: t.duplicates,
        stale: t.stale,
        rejectedKeys: t.rejected.key,
        handshakeFailures: t.handshakeFailures,
        decodeMs: t.decodeMs,
      },
    };
  }

  /** Stops timers and unhooks from the link (which stays open). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.strategy.close();
    this.link.off('delta', this.onDelta);
    this.link.off('heartbeat', this.onHeartbeat);
    this.link.off('peer-lost', this.onPeerLost);
    this.link.serveSnapshots(undefined);
  }

  /**
   * One anti-entropy round now (async mode; also run every `antiEntropyMs`): asks a live peer
   * for a snapshot and averages both published states when they reflect the same per-sender
   * sequences. Resolves with whether weights were averaged; always false in lockstep.
   */
  antiEntropy(opts: { readonly force?: boolean; readonly retry?: boolean } = {}): Promise<boolean> {
    return this.strategy.antiEntropy(opts);
  }

  // ------------------------------------------------------------------ what the strategy uses

  private context(): TrainerContext {
    return {
      link: this.link,
      host: this.host,
      groups: this.groups,
      guard: this.guard,
      counters: this.counters,
      peers: this.peers,
      common: this.common,
      isClosed: () => this.closed,
      current: () => this.group,
      focus: () => this.group?.id ?? this.lastGroup,
      countBatch: (id) => {
        if (this.group?.id !== id) this.enterGroup(id, id < this.groups.layerCount ? this.dbn.layers[id]!.epochsTrained : 0);
        this.batches++;
        return ++this.sinceSync;
      },
      sinceLastSync: () => Date.now() - this.lastSync,
      endSync: (g, t0) => this.endSync(g, t0),
      refreshBlock: (id, tensors) => this.samples.refresh(id, tensors),
      publishFingerprint: () => this.publishFingerprint(),
      report: (event, detail) => this.report(event, detail),
    };
  }

  private endSync(g: GroupState, t0: number): void {
    this.sinceSync = 0;
    this.lastSync = Date.now();
    this.counters.syncs++;
    this.samples.refresh(g.id, g.base);
    this.publishFingerprint();
    this.counters.syncMs += performance.now() - t0;
    if (Date.now() - this.lastReport >= this.common.reportEveryMs) this.report('sync');
  }

  // ------------------------------------------------------------------ stages and barriers

  private enterGroup(id: number, epochs: number): void {
    this.group = newGroupState(id, this.groups.read(id));
    this.guard.observeWeights(id, Math.sqrt(sumOfSquares(this.group.base)));
    this.strategy.enterGroup(this.group);
    this.lastGroup = id;
    this.stage = id;
    this.stageEpochs = epochs;
    this.sinceSync = 0;
    this.lastSync = Date.now();
    this.samples.refresh(id, this.group.base);
    this.publishFingerprint();
  }

  private enterClassifier(classes: number, epochsDone: number): void {
    this.groups.classes = classes;
    this.limitFrames();
    if (this.pendingClassifier !== undefined) {
      const shapes = this.groups.shapesOf(this.groups.layerCount)!;
      if (sameShapes(this.pendingClassifier, shapes)) this.groups.write(this.groups.layerCount, this.pendingClassifier);
      this.pendingClassifier = undefined;
    }
    this.enterGroup(this.groups.layerCount, epochsDone);
  }

  /** Publishes the group's last delta, leaves it, and waits at a barrier if asked. */
  private async endStage(id: number, wait: boolean): Promise<void> {
    await this.strategy.endStage(id);
    this.group = undefined;
    this.lastGroup = id;
    this.stage = id + 1;
    this.stageEpochs = 0;
    this.publishFingerprint();
    if (wait) await this.barrier(id);
  }

  /** Live peers still behind stage `done` (or with deltas not yet here), and those through it but not settled. */
  private barrierState(done: number): { behind: number; unsettled: number } {
    const perSender = this.link.stats().perSender;
    let behind = 0;
    let unsettled = 0;
    for (const [id, v] of this.peers.liveTrainerViews()) {
      if (v.stage <= done || (perSender[id]?.floor ?? 0) < v.lastSequence) behind++;
      else if (v.settled < done && v.stage === done + 1) unsettled++;
    }
    // Peers that finished the stage count for minPeers even once gone (they may have left).
    let through = 0;
    for (const v of this.peers.allViews()) if (v.stage > done) through++;
    if (through < this.common.minPeers) behind += this.common.minPeers - through;
    return { behind, unsettled };
  }

  /**
   * Waits until every live trainer peer has a stage beyond `done` and everything it published
   * before saying so is applied here (this peer is then settled for `done`), and until every
   * live peer is settled too; then lets the strategy repair what is left (async: anti-entropy
   * while the divergence exceeds the bound). Gives up after `barrierTimeoutMs` (counted).
   */
  private async barrier(done: number): Promise<void> {
    const deadline = Date.now() + this.common.barrierTimeoutMs;
    this.report('barrier', `finished stage ${done}; waiting for the live peers`);
    for (;;) {
      if (this.closed) return;
      if (await this.strategy.barrierTurn(done)) continue;
      const { behind, unsettled } = this.barrierState(done);
      if (behind === 0 && this.settled < done) this.settled = done;
      this.publishFingerprint();
      if (behind === 0 && unsettled === 0) {
        if (await this.strategy.barrierThrough()) break;
        continue;
      }
      if (Date.now() >= deadline) {
        this.counters.barrierTimeouts++;
        this.strategy.barrierTimedOut(done, behind);
        break;
      }
      if (Date.now() - this.lastReport >= this.common.reportEveryMs) this.report('sync');
      await this.strategy.idle(20);
    }
  }

  // ------------------------------------------------------------------ remote input

  private readonly onDelta = (msg: DeltaMessage): void => {
    if (this.closed) return;
    const t0 = performance.now();
    // A sparse delta's tensors are only built on access: the guard needs their lengths alone.
    const tensors = msg.sparse === undefined ? msg.tensors : msg.shapes.map(([r, c]) => ({ length: r * c }));
    const kind = msg.sparse === undefined ? 'dense' : 'sparse';
    const origin = this.strategy.rateLimited ? { sender: msg.senderId, now: Date.now() } : undefined;
    const verdict = this.guard.check(msg.layer, tensors, msg.shapes, this.expectedShapes(msg), msg.sumSquares, kind, origin);
    this.counters.receiveMs += performance.now() - t0;
    if (!verdict.ok) {
      this.counters.rejected[verdict.reason]++;
      this.report('rejected', `${verdict.reason}: ${verdict.detail} (from ${msg.senderId}, sequence ${msg.sequence})`);
      this.strategy.refused(msg, `${verdict.reason}: ${verdict.detail}`);
      return;
    }
    if (origin !== undefined) this.guard.acceptRemote(msg.layer, verdict.norm, origin);
    this.strategy.receive(msg, verdict.norm, kind);
  };

  private readonly onHeartbeat = (hb: HeartbeatMessage): void => {
    if (this.peers.heard(hb)) this.report('peer-joined', hb.senderId);
    this.strategy.peersChanged();
  };

  private readonly onPeerLost = (p: PeerInfo): void => {
    if (p.senderId !== null && this.peers.lost(p.senderId)) {
      this.guard.forget(p.senderId);
      this.report('peer-lost', p.senderId);
      this.strategy.peersChanged();
    }
  };

  /** The shapes a delta for `msg.layer` must have here; for the classifier before fine-tuning, those its head implies (checked again once known). */
  private expectedShapes(msg: DeltaMessage): ReturnType<ParameterGroups['shapesOf']> {
    if (msg.layer === this.groups.layerCount && this.groups.classes === undefined) {
      const head = msg.shapes[msg.shapes.length - 1];
      return head === undefined ? undefined : this.groups.classifierShapes(head[1]);
    }
    return this.groups.shapesOf(msg.layer);
  }

  // ------------------------------------------------------------------ snapshots

  /** Every tensor of every group, `base` for the group being trained (what the peers hold of it). */
  private snapshot(layers: readonly number[]): Snapshot {
    this.strategy.applyPending();
    const wanted = new Set(layers);
    const out: LayerTensors[] = [];
    const ids = this.groups.classes === undefined ? this.groups.layerCount : this.groups.layerCount + 1;
    for (let id = 0; id < ids; id++) {
      if (wanted.size > 0 && !wanted.has(id)) continue;
      const tensors = this.group?.id === id ? this.group.base.map((b) => b.slice()) : this.groups.read(id);
      out.push({ layer: id, tensors, shapes: this.groups.shapesOf(id)! });
    }
    return { layers: out, sequences: this.link.sequences() };
  }

  /** Takes over a snapshot's weights and the progress of the peer `view` (joining). */
  private adopt(snap: ReceivedSnapshot, view: RemoteView): void {
    const L = this.groups.layerCount;
    for (const l of snap.layers) {
      if (l.layer < L) {
        if (!sameShapes(l.tensors, this.groups.shapesOf(l.layer)!)) continue;
        this.groups.write(l.layer, l.tensors);
        this.samples.refresh(l.layer, l.tensors);
        if (this.group?.id === l.layer) this.group.base.forEach((b, t) => b.set(l.tensors[t]!));
      } else if (l.layer === L) {
        const head = l.shapes[l.shapes.length - 1];
        const shapes = head === undefined ? undefined : this.groups.classifierShapes(head[1]);
        if (shapes !== undefined && sameShapes(l.tensors, shapes)) this.pendingClassifier = l.tensors.map((t) => t.slice());
      }
    }
    const stage = Math.min(view.stage, L + 1);
    for (const [i, rbm] of this.dbn.layers.entries()) {
      if (i < stage) rbm.epochsTrained = Math.max(rbm.epochsTrained, rbm.options.epochs);
      else if (i === stage) rbm.epochsTrained = Math.min(view.epochs, rbm.options.epochs);
    }
    if (stage === L + 1) this.adoptFinished();
    this.strategy.dropReflected(snap);
    this.stage = this.groups.firstIncompleteLayer() ?? stage;
    this.stageEpochs = this.stage < L ? this.dbn.layers[this.stage]!.epochsTrained : 0;
    this.publishFingerprint();
  }

  /** The run had finished: the snapshot's classifier is the final one. */
  private adoptFinished(): void {
    const classifier = this.pendingClassifier;
    if (classifier !== undefined) {
      this.groups.classes = classifier[classifier.length - 1]!.length;
      this.groups.write(this.groups.layerCount, classifier);
      this.samples.refresh(this.groups.layerCount, classifier);
      this.pendingClassifier = undefined;
    }
    this.finishedRun = true;
  }

  /** Averages this peer's published weights with a snapshot's, group by group (anti-entropy). */
  private average(snap: ReceivedSnapshot): void {
    for (const l of snap.layers) {
      const shapes = this.groups.shapesOf(l.layer);
      if (shapes === undefined || !sameShapes(l.tensors, shapes)) continue;
      const isCurrent = this.group?.id === l.layer;
      const params = this.groups.read(l.layer);
      const published = isCurrent ? this.group!.base : params;
      averageInto(params, published, l.tensors, isCurrent);
      this.groups.write(l.layer, params);
      this.samples.refresh(l.layer, published);
    }
    this.publishFingerprint();
  }

  // ------------------------------------------------------------------ fingerprints and reports

  private publishFingerprint(): void {
    this.fingerprint = encodeFingerprint(
      { stage: this.stage, epochs: this.stageEpochs, settled: this.settled },
      this.samples.forStage(this.stage),
    );
    this.link.setWeightFingerprint(this.fingerprint);
    // `samples` carries, in lockstep, this peer's publication points per epoch in its stage (0 otherwise).
    this.link.setProgress({ epoch: this.stageEpochs, batches: this.batches, samples: this.strategy.announced });
  }

  /**
   * Tells the link the largest frame a peer of this model may send: its largest tensor as
   * float32, at least 1 MiB for the other frames. An allowlisted peer cannot make this one
   * buffer a bigger frame.
   */
  private limitFrames(): void {
    this.link.setMaxFrameBytes(Math.max(4 * this.groups.largestTensor(), 1024 * 1024));
  }

  private divergence(): { value: number | null; compared: number } {
    return this.peers.divergence(this.fingerprint);
  }

  private report(event: PeerTrainingReport['event'], detail?: string): void {
    if (this.onReport === undefined) return;
    if (event === 'sync') this.lastReport = Date.now();
    this.onReport({ event, ...(detail === undefined ? {} : { detail }), ...this.stats() });
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidOptionError('This PeerTrainer is closed.');
  }
}
