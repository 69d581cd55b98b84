/**
 * Serverless data-parallel training of a {@link Dbn} by several peers, each on its own shard of
 * the data, exchanging parameter deltas through a sync `Peer` (ZeroMQ). The transport knows
 * nothing of models; this file decides what a delta is, how it is merged, checked and repaired.
 * The reasoning and measurements are in `docs/async-peer-training.md`.
 *
 * Parameter groups (the `layer` field of a delta): `0…L−1` the RBMs (`[W nv×nh, bv 1×nv, bh
 * 1×nh]`), `L` the fine-tuned classifier (`[W₀, b₀, …, W_head, b_head]`, weights `nIn×nOut`,
 * biases `1×nOut`). Stages: `i < L` pretraining RBM `i`, `L` fine-tuning, `L+1` finished.
 *
 * - Publish: every `publishEvery` minibatches (or `publishMs`), the change since the last
 *   publication, `cur − base`, where `base` is a host copy of what the other peers hold of this
 *   peer's work. Remote deltas are added to both the parameters and `base`, so they never echo.
 *   With `float16`, the rounded delta `q` is sent and `base += q`: the rounding residual stays in
 *   `cur − base` and goes out with the next delta (error feedback).
 * - Merge: accepted remote deltas are queued and added at the next publication. With
 *   `'average'` a peer publishes `1/K` of its change and keeps only that share (model averaging);
 *   with `'sum'` every change counts in full (asynchronous data-parallel SGD).
 * - Guards: unknown layer, wrong shapes, NaN/Inf, or a norm beyond `normFactor ×` the median of
 *   the recent ones: refused and counted.
 * - Anti-entropy: every `antiEntropyMs`, a snapshot of a live peer's published weights is
 *   averaged with this peer's when both reflect the same per-sender sequences, repairing what
 *   lost deltas left apart.
 * - Barriers: at the end of a layer (optional), of pretraining and of fine-tuning, a peer
 *   publishes its last delta in float32 and waits until every live peer has finished that stage
 *   and its deltas are applied.
 * - Lockstep (`lockstep: true`): every publication point is a round; a peer publishes its
 *   round-r delta, waits for the round-r delta of every live trainer, and loads
 *   `base + Σ deltas` summed in an order fixed by their contents, so all peers hold the same
 *   bits after every round whatever the arrival order or the load (see docs/async-peer-training.md, "Lockstep").
 */
import { InvalidDataError, InvalidOptionError, SyncError } from '../../errors.js';
import type { DeltaStepArgs, DeltaStepResult } from '../../kernels/backend.js';
import { float16FromFloat32, float16Table } from '../../sync/float16.js';
import { sparseFrame } from '../../sync/wire.js';
import type { DeltaMessage, HeartbeatMessage, LayerTensors, Peer, PeerInfo, ReceivedSnapshot, Snapshot } from '../../sync/index.js';
import { type Constraints, type MatrixInput, validateOptions } from '../../validate.js';
import type { ClassifierParameters, Dbn, PretrainHistory } from '../../dbn/dbn.js';
import { type DeltaKind, DeltaGuard, type DeltaRejection, type TensorShape } from './delta-guard.js';
import type { HiddenActivation } from '../../dbn/network.js';
import type { FineTuneOptions, FineTuneResult, PretrainOptions } from '../../dbn/options.js';
import { encodeFingerprint, fingerprintDivergence, readFingerprintHeader, sampleIndices, samplesPerGroup, takeSamples } from './peer-fingerprint.js';

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

/** Options of {@link PeerTrainer}. */
export interface PeerTrainingOptions {
  /** Publish after this many minibatches. Default 10. */
  readonly publishEvery?: number;
  /** Also publish once this many milliseconds passed since the last publication. Default: off. */
  readonly publishMs?: number;
  /**
   * How the peers' changes combine. `'average'` (model averaging): each peer publishes 1/K of its
   * local change and keeps only that share itself (K = live trainer peers + 1 at publication),
   * so the shared weights move by the mean of the peers' changes. `'sum'`: each change counts
   * in full (asynchronous data-parallel SGD: K peers make the updates of one model on all the
   * data, with stale gradients). Remote deltas are always added as they come: every peer holds
   * the initial weights plus every published delta. Default `'average'` (see docs/async-peer-training.md).
   */
  readonly merge?: 'sum' | 'average';
  /** Send deltas as binary16 with error feedback (the last delta of a stage goes as float32). Default false. */
  readonly float16?: boolean;
  /**
   * Send only about this fraction of each tensor's entries, those of largest magnitude (a
   * threshold estimated from 4,096 evenly spaced entries), as a SPARSE delta; the rest of the
   * change stays in `cur − base` and goes out with later deltas (error feedback), and the last
   * delta of a stage goes whole, as float32. In (0, 1); not with `float16`. Default: off.
   */
  readonly sparse?: number;
  /** Period of the anti-entropy round (snapshot + average); 0 turns it off. Default 10000. */
  readonly antiEntropyMs?: number;
  /**
   * After three anti-entropy rounds in a row whose snapshots reflected other sequences than the
   * local weights, average anyway and adopt the snapshot's sequences. Helps peers that cannot
   * all reach each other; costs exactness (deltas in flight are then half-counted). Default false.
   */
  readonly antiEntropyForce?: boolean;
  /** How long a snapshot request (join, anti-entropy) may take. Default 5000. */
  readonly snapshotTimeoutMs?: number;
  /**
   * Deltas for a layer this peer is not training (e.g. the last ones of a layer it has left):
   * `'apply'` them (every layer stays identical across peers) or `'drop'` them. Default `'apply'`.
   */
  readonly otherLayers?: 'apply' | 'drop';
  /** Wait for the live peers at the end of every RBM layer (always at the end of pretraining and fine-tuning). Default true. */
  readonly layerBarrier?: boolean;
  /** Longest wait at a barrier; then training goes on (counted). Default 120000. */
  readonly barrierTimeoutMs?: number;
  /**
   * A barrier also waits (up to `barrierTimeoutMs`) until at least this many live peers have
   * finished the stage: a peer that died is waited for until one rejoins. Default 0.
   */
  readonly minPeers?: number;
  /** Divergence (see {@link PeerTrainingStats.divergence}) a barrier repairs with anti-entropy rounds. Default 0.05. */
  readonly divergenceBound?: number;
  /** See {@link DeltaGuard}. Default 10. */
  readonly normFactor?: number;
  /** See {@link DeltaGuard}. Default 50. */
  readonly normWindow?: number;
  /** See {@link DeltaGuard}. Default 5. */
  readonly normWarmup?: number;
  /** Accepted deltas that may wait to be applied; the oldest beyond are dropped (counted). Default 1000. */
  readonly maxPending?: number;
  /** Least time between two `'sync'` reports. Default 1000. */
  readonly reportEveryMs?: number;
  /** Receives reports: periodic `'sync'`, and one per join, barrier, anti-entropy round, rejection, peer change. */
  readonly onReport?: (report: PeerTrainingReport) => void;
  /**
   * Synchronous rounds with reproducible results. Each publication point is round `r` of the
   * stage: the peer publishes its change since round `r − 1` (float32, even when zero), waits for
   * the round-`r` delta of every live trainer peer, and loads `base + Σ deltas` (times `1/K` with
   * `'average'`, K the deltas of the round), its own included, summed in an order fixed by the
   * deltas' contents: every peer holds the same bits after every round, whatever the arrival
   * order or load, and a rerun with the same seeds gives the same bits. A delta of a later round is held until its round. Every epoch ends with a round, and
   * every peer makes as many rounds per epoch as the peer with the most (the others publish
   * empty deltas at their epoch's end); the numbers are agreed at a stage's first minibatch
   * through the heartbeats. Waits longer than `barrierTimeoutMs`, a lost or refused delta, are a
   * {@link SyncError} (`ETIMEDOUT`, `ELOCKSTEP`). With `minPeers`, rounds also wait for that
   * many other peers (so a peer that starts before it has seen the others, or a lost peer, does
   * not make rounds alone). Needs every peer from the start (no join from a snapshot) with
   * `lockstep` too; refuses `float16`, `publishMs`, `layerBarrier: false` and
   * anti-entropy, which would make the result depend on timing. Default false.
   */
  readonly lockstep?: boolean;
}

/** Counters and state of a {@link PeerTrainer} (a fresh object on every call). */
export interface PeerTrainingStats {
  readonly senderId: string;
  /** `0…L−1` pretraining that RBM, `L` fine-tuning, `L+1` finished. */
  readonly stage: number;
  /** Epochs completed in the stage. */
  readonly epochs: number;
  /** Minibatches trained by this peer. */
  readonly batches: number;
  /** Publication points reached (deltas published or not). */
  readonly syncs: number;
  readonly published: number;
  /** Publications refused by a full send queue (the change stays in the next delta). */
  readonly publishRefused: number;
  /** Remote deltas added to the weights. */
  readonly applied: number;
  readonly rejected: Readonly<Record<DeltaRejection, number>>;
  /** Remote deltas dropped by `otherLayers: 'drop'`. */
  readonly droppedOtherLayer: number;
  /** Accepted deltas dropped because more than `maxPending` waited. */
  readonly droppedOverflow: number;
  readonly pending: number;
  /** Bytes of the DELTA messages published, and what they would have taken as float32. */
  readonly bytes: { readonly sent: number; readonly float32: number };
  /** `bytes.float32 / bytes.sent` (1 without float16). */
  readonly compressionRatio: number;
  readonly antiEntropy: { readonly rounds: number; readonly averaged: number; readonly skipped: number; readonly forced: number; readonly failed: number };
  /**
   * Largest relative divergence between this peer's weight fingerprint and a live peer's at the
   * same stage (RMS of the sampled weights' differences over their RMS), or null when no peer is
   * comparable. Peers sample at their own publication times, so a healthy run shows about one
   * publication's worth of drift.
   */
  readonly divergence: number | null;
  /** Live peers whose fingerprint was comparable. */
  readonly peersCompared: number;
  readonly barrierTimeouts: number;
  /**
   * Lockstep rounds ({@link PeerTrainingOptions.lockstep}): completed, of which empty ones this
   * peer published to fill a round other peers made (epoch ends, stage ends), and milliseconds
   * spent waiting for the other peers' deltas of a round.
   */
  readonly lockstep: { readonly rounds: number; readonly padded: number; readonly waitMs: number };
  /** Milliseconds spent in publication points (reading, diffing, encoding, merging, writing). */
  readonly syncMs: number;
  /**
   * Milliseconds spent receiving deltas: checking them here ({@link DeltaGuard}) plus the
   * transport's decoding of every message (`transport.decodeMs`). Adding them to the weights
   * happens at the next publication point and counts in `syncMs`.
   */
  readonly receiveMs: number;
  /**
   * The transport's counters (`Peer.stats()`): deltas delivered, gaps, duplicates, stale;
   * connections refused for a key not in the allowlist; failed handshakes of this peer's own.
   */
  readonly transport: {
    readonly delivered: number;
    readonly gaps: number;
    readonly duplicates: number;
    readonly stale: number;
    readonly rejectedKeys: number;
    readonly handshakeFailures: number;
    /** Milliseconds the transport spent decoding received messages (checksums, copies, checks). */
    readonly decodeMs: number;
  };
}

/** A report handed to {@link PeerTrainingOptions.onReport}. */
export interface PeerTrainingReport extends PeerTrainingStats {
  readonly event: 'sync' | 'join' | 'barrier' | 'anti-entropy' | 'rejected' | 'peer-joined' | 'peer-lost' | 'finish';
  readonly detail?: string;
}

/** What {@link PeerTrainer.join} did. */
export interface JoinResult {
  /** Weights were taken from a live peer's snapshot. */
  readonly snapshot: boolean;
  readonly from?: string;
  /** The stage and epochs the peer adopted (from the most advanced live peer). */
  readonly stage: number;
  readonly epochs: number;
  /** Live peers when the join ended. */
  readonly peers: number;
}

interface ResolvedOptions {
  readonly publishEvery: number;
  readonly publishMs: number | undefined;
  readonly merge: 'sum' | 'average';
  readonly float16: boolean;
  readonly sparse: number | undefined;
  readonly antiEntropyMs: number;
  readonly antiEntropyForce: boolean;
  readonly snapshotTimeoutMs: number;
  readonly otherLayers: 'apply' | 'drop';
  readonly layerBarrier: boolean;
  readonly barrierTimeoutMs: number;
  readonly minPeers: number;
  readonly divergenceBound: number;
  readonly maxPending: number;
  readonly reportEveryMs: number;
  readonly lockstep: boolean;
}

interface Pending {
  readonly msg: DeltaMessage;
  readonly norm: number;
}

interface RemoteView {
  fp: Float64Array;
  stage: number;
  settled: number;
  epochs: number;
  batches: number;
  /** Heartbeat `progress.samples`: with lockstep, the sender's publication points per epoch in its stage (0: not known yet). */
  samples: number;
  lastSequence: number;
  at: number;
}

/** The group a lockstep peer makes rounds for (kept through the stage's barrier, which may add empty rounds). */
interface LockstepGroup {
  readonly g: Current;
  /** Rounds completed in this group. */
  round: number;
  /** Rounds per epoch every peer makes (the largest announced), once agreed. */
  perEpoch: number | undefined;
  /** Rounds made in the current local epoch. */
  inEpoch: number;
}

interface Current {
  readonly id: number;
  /** What the other peers hold of this group (this peer's published work plus the merged deltas). */
  base: Float32Array[];
  /** Where a publication point writes the next `base` (swapped with it once the delta is out). */
  next: Float32Array[];
  /** Where a publication point writes the weights to load. */
  readonly curNext: Float32Array[];
  /** Where a publication point reads the weights now (reused: a publication allocates nothing). */
  readonly cur: Float32Array[];
  /** Scratch that gives each float32 of the change its bits (float16 encoding). */
  readonly delta: Float32Array[];
  readonly deltaBits: Uint32Array[];
  /** The sum of several remote deltas merged at once (allocated on first need). */
  acc?: Float32Array[];
  /** Sparse publication scratch: the chosen entries' indices and values, per tensor (allocated on first need). */
  sparseIdx?: Uint32Array[];
  sparseVal?: Float32Array[];
  sample?: Float64Array;
}

const CONSTRAINTS: Constraints = {
  publishEvery: { kind: 'integer', min: 1, max: 1_000_000 },
  publishMs: { kind: 'integer', min: 1, max: 86_400_000 },
  merge: { kind: 'enum', values: ['sum', 'average'] },
  float16: { kind: 'boolean' },
  sparse: { kind: 'number', min: 0, minOpen: true, max: 1, maxOpen: true },
  antiEntropyMs: { kind: 'integer', min: 0, max: 86_400_000 },
  antiEntropyForce: { kind: 'boolean' },
  snapshotTimeoutMs: { kind: 'integer', min: 1, max: 3_600_000 },
  otherLayers: { kind: 'enum', values: ['apply', 'drop'] },
  layerBarrier: { kind: 'boolean' },
  barrierTimeoutMs: { kind: 'integer', min: 0, max: 86_400_000 },
  minPeers: { kind: 'integer', min: 0, max: 1_000_000 },
  divergenceBound: { kind: 'number', min: 0, minOpen: true },
  normFactor: { kind: 'number', min: 1, minOpen: true },
  normWindow: { kind: 'integer', min: 1, max: 100_000 },
  normWarmup: { kind: 'integer', min: 1, max: 100_000 },
  maxPending: { kind: 'integer', min: 1, max: 10_000_000 },
  reportEveryMs: { kind: 'integer', min: 0, max: 86_400_000 },
  onReport: { kind: 'function' },
  lockstep: { kind: 'boolean' },
};

/** Options that make the result depend on timing, refused with `lockstep` (and why). */
const NOT_WITH_LOCKSTEP: readonly [keyof PeerTrainingOptions, (v: unknown) => boolean, string][] = [
  ['float16', (v) => v === true, "its error feedback keeps a rounding residual on each peer, so the peers' weights would differ"],
  ['sparse', (v) => v !== undefined, "its error feedback keeps the unsent entries on each peer, so the peers' weights would differ"],
  ['publishMs', (v) => v !== undefined, 'rounds must fall at the same minibatches on every run'],
  ['layerBarrier', (v) => v === false, 'a peer must not start the next layer while the others still make rounds of this one'],
  ['antiEntropyMs', (v) => typeof v === 'number' && v > 0, 'lockstep peers hold the same weights after every round; there is nothing to repair'],
  ['antiEntropyForce', (v) => v === true, 'lockstep peers hold the same weights after every round; there is nothing to repair'],
];

/** Anti-entropy rounds that may skip for in-flight deltas before one averages anyway. */
const MISMATCHES_BEFORE_FORCE = 3;
/** Anti-entropy rounds a barrier runs at most to bring the divergence under the bound. */
const BARRIER_ROUNDS = 4;

/**
 * Trains a {@link Dbn} as one peer of a run. Create it on a started `Peer`, optionally
 * {@link join} (snapshot from a live peer), then call {@link pretrain} / {@link fineTune} as on
 * the `Dbn`, {@link finish}, and {@link close} (the `Peer` is the caller's to close).
 *
 * @example
 * const peer = await Peer.create({ runId: 'digits', fingerprint, bind: 'tcp://10.0.0.1:5555', peers, keys, allowlist });
 * const trainer = new PeerTrainer(dbn, peer, { publishEvery: 10 });
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
  private readonly o: ResolvedOptions;
  private readonly onReport: ((r: PeerTrainingReport) => void) | undefined;
  private readonly L: number;
  private readonly guard: DeltaGuard;
  private readonly activations: HiddenActivation[];
  private stage: number;
  private stageEpochs = 0;
  private settled = -1;
  private batches = 0;
  private sinceSync = 0;
  private lastSync = Date.now();
  private lastReport = 0;
  private current: Current | undefined;
  private lastGroup: number | undefined;
  private classes: number | undefined;
  private pending: Pending[] = [];
  private pendingClassifier: Float32Array[] | undefined;
  private readonly remote = new Map<string, RemoteView>();
  private readonly alive = new Set<string>();
  private readonly blocks: Float64Array[];
  private classifierBlock: Float64Array | undefined;
  private fingerprint: Float64Array = new Float64Array(0);
  private aeTimer: NodeJS.Timeout | undefined;
  private aeRetry: NodeJS.Timeout | undefined;
  private aeBusy = false;
  private mismatches = 0;
  private closed = false;
  private finishedRun = false;
  /** Lockstep: the group rounds are made for, the deltas held per `group/round` and sender, each sender's last sequence and count per group. */
  private ls: LockstepGroup | undefined;
  private readonly held = new Map<string, Map<string, Float32Array[]>>();
  private readonly chains = new Map<string, { last: number; count: number }>();
  private lsFailure: Error | undefined;
  /** Publication points per epoch this peer announces in its heartbeats (lockstep; 0 until known). */
  private lsAnnounce = 0;
  /** Wakes the one lockstep wait in progress (a delta, heartbeat or lost peer arrived). */
  private wake: (() => void) | undefined;
  private readonly c = {
    syncs: 0,
    published: 0,
    publishRefused: 0,
    applied: 0,
    rejected: { layer: 0, shape: 0, nonfinite: 0, norm: 0 } as Record<DeltaRejection, number>,
    droppedOtherLayer: 0,
    droppedOverflow: 0,
    bytesSent: 0,
    bytesF32: 0,
    ae: { rounds: 0, averaged: 0, skipped: 0, forced: 0, failed: 0 },
    barrierTimeouts: 0,
    syncMs: 0,
    receiveMs: 0,
    rounds: 0,
    padded: 0,
    roundWaitMs: 0,
  };

  /** Hooks into `link` (deltas, heartbeats, snapshot requests) at once; trains nothing yet. */
  constructor(dbn: Dbn, link: PeerLink, options: PeerTrainingOptions = {}) {
    validateOptions('PeerTrainer', CONSTRAINTS, options);
    const lockstep = options.lockstep ?? false;
    if (options.float16 === true && options.sparse !== undefined) {
      throw new InvalidOptionError("The 'float16' and 'sparse' options of PeerTrainer cannot be combined: a sparse delta's values go as float32.");
    }
    if (lockstep) {
      for (const [name, bad, why] of NOT_WITH_LOCKSTEP) {
        if (bad(options[name])) throw new InvalidOptionError(`The '${name}' option of PeerTrainer cannot be ${String(options[name])} with 'lockstep': ${why}.`);
      }
    }
    this.dbn = dbn;
    this.link = link;
    this.o = {
      publishEvery: options.publishEvery ?? 10,
      publishMs: options.publishMs,
      merge: options.merge ?? 'average',
      float16: options.float16 ?? false,
      sparse: options.sparse,
      antiEntropyMs: options.antiEntropyMs ?? (lockstep ? 0 : 10_000),
      antiEntropyForce: options.antiEntropyForce ?? false,
      snapshotTimeoutMs: options.snapshotTimeoutMs ?? 5000,
      otherLayers: options.otherLayers ?? 'apply',
      layerBarrier: options.layerBarrier ?? true,
      barrierTimeoutMs: options.barrierTimeoutMs ?? 120_000,
      minPeers: options.minPeers ?? 0,
      divergenceBound: options.divergenceBound ?? 0.05,
      maxPending: options.maxPending ?? 1000,
      reportEveryMs: options.reportEveryMs ?? 1000,
      lockstep,
    };
    this.onReport = options.onReport;
    this.guard = new DeltaGuard({
      ...(options.normFactor === undefined ? {} : { normFactor: options.normFactor }),
      ...(options.normWindow === undefined ? {} : { normWindow: options.normWindow }),
      ...(options.normWarmup === undefined ? {} : { normWarmup: options.normWarmup }),
    });
    this.L = dbn.layers.length;
    this.activations = dbn.layers.map((l): HiddenActivation => (l.options.hidden === 'noisy-relu' ? 'relu' : 'sigmoid'));
    this.classes = dbn.classes;
    const per = samplesPerGroup(this.L + 1);
    this.blocks = dbn.layers.map(() => new Float64Array(per));
    for (let i = 0; i < this.L; i++) this.refreshBlock(i, this.readGroup(i));
    this.stage = this.firstIncompleteLayer() ?? this.L;
    this.publishFingerprint();
    this.limitFrames();
    link.on('delta', this.onDelta);
    link.on('heartbeat', this.onHeartbeat);
    link.on('peer-lost', this.onPeerLost);
    link.serveSnapshots((layers) => this.snapshot(layers));
    if (this.o.antiEntropyMs > 0) {
      this.aeTimer = setInterval(() => {
        this.mismatches = 0;
        void this.antiEntropy();
      }, this.o.antiEntropyMs);
      this.aeTimer.unref();
    }
  }

  /** True when {@link join} found a run that had already finished and took its final weights. */
  get runFinished(): boolean {
    return this.finishedRun;
  }

  /**
   * Joins the run: waits for `minPeers` live peers (throws SyncError `ETIMEDOUT` after
   * `timeoutMs`), or with `seeds` up to `timeoutMs` for one; then, if a live peer has trained
   * already, takes a snapshot of its weights (all layers, and the per-sender sequences they
   * reflect) and its progress: layers it has finished count as trained here, the current one
   * continues at its epoch. Deltas newer than the snapshot are applied afterwards.
   */
  async join(opts: { readonly timeoutMs?: number; readonly minPeers?: number; readonly seeds?: boolean } = {}): Promise<JoinResult> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const minPeers = opts.minPeers ?? 0;
    if (!Number.isSafeInteger(minPeers) || minPeers < 0) throw new InvalidOptionError(`The 'minPeers' option of PeerTrainer.join must be an integer >= 0. Got ${String(minPeers)}.`);
    if (!(timeoutMs > 0)) throw new InvalidOptionError(`The 'timeoutMs' option of PeerTrainer.join must be a positive number. Got ${String(timeoutMs)}.`);
    if (minPeers > 0) await this.link.waitForPeers(minPeers, timeoutMs);
    else if (opts.seeds === true) await this.link.waitForPeers(1, timeoutMs).catch(() => undefined);
    let best: RemoteView | undefined;
    for (const id of this.alive) {
      const v = this.remote.get(id);
      if (v === undefined || v.stage < 0) continue;
      if (best === undefined || v.stage > best.stage || (v.stage === best.stage && (v.epochs > best.epochs || (v.epochs === best.epochs && v.batches > best.batches)))) best = v;
    }
    const fresh = best === undefined || (best.stage <= this.stage && best.epochs <= this.stageEpochs && best.batches === 0);
    if (fresh) {
      this.report('join', 'no trained peer: starting from the shared initial weights');
      return { snapshot: false, stage: this.stage, epochs: this.stageEpochs, peers: this.alive.size };
    }
    if (this.o.lockstep) {
      throw new SyncError(`PeerTrainer (lockstep): a live peer has trained already (stage ${best!.stage}, epoch ${best!.epochs}); lockstep peers must all start together.`, 'ELOCKSTEP');
    }
    const snap = await this.link.requestSnapshot(this.o.snapshotTimeoutMs);
    this.adopt(snap, best!);
    this.report('join', `snapshot from ${snap.from} at stage ${best!.stage}, epoch ${best!.epochs}`);
    return { snapshot: true, from: snap.from, stage: best!.stage, epochs: best!.epochs, peers: this.alive.size };
  }

  /**
   * {@link Dbn.pretrain} as a peer: same data and options (its `onBatch`/`onEpoch` still run);
   * publishes, merges and waits at barriers around it.
   */
  async pretrain(data: MatrixInput, opts: PretrainOptions = {}): Promise<PretrainHistory> {
    this.assertOpen();
    const first = this.firstIncompleteLayer();
    if (first !== undefined && this.current?.id !== first) this.enterGroup(first, this.dbn.layers[first]!.epochsTrained);
    const signal = opts.signal;
    return this.dbn.pretrain(data, {
      ...opts,
      onBatch: async (layer, b) => {
        await this.afterBatch(layer, b);
        if (opts.onBatch) await opts.onBatch(layer, b);
      },
      onEpoch: async (layer, m) => {
        const rbm = this.dbn.layers[layer]!;
        this.stageEpochs = rbm.epochsTrained;
        if (!signal?.aborted && rbm.epochsTrained >= rbm.options.epochs) {
          await this.endStage(layer, this.o.layerBarrier || layer === this.L - 1);
          const next = this.firstIncompleteLayer();
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
      throw new InvalidOptionError("PeerTrainer.fineTune trains without early stopping (each peer would restore its own best weights): drop the 'validation' and 'validationFraction' options.");
    }
    if (this.current !== undefined) await this.endStage(this.current.id, true);
    const signal = opts.signal;
    const res = await this.dbn.fineTune(data, labels, {
      ...opts,
      validationFraction: 0,
      onStart: async (info) => {
        this.enterClassifier(info.classes, info.epochsDone);
        if (opts.onStart) await opts.onStart(info);
      },
      onBatch: async (b) => {
        await this.afterBatch(this.L, b);
        if (opts.onBatch) await opts.onBatch(b);
      },
      onEpoch: async (m) => {
        this.stageEpochs = m.epoch + 1;
        if (opts.onEpoch) await opts.onEpoch(m);
      },
    });
    if (!signal?.aborted && res.finished) await this.endStage(this.L, true);
    return res;
  }

  /**
   * Ends training: publishes the last delta (float32), then waits (up to `barrierTimeoutMs`)
   * until every live peer has finished and its deltas are applied, running anti-entropy rounds
   * while the divergence exceeds the bound. Snapshots are still served until {@link close}.
   */
  async finish(): Promise<void> {
    this.assertOpen();
    if (this.current !== undefined) await this.endStage(this.current.id, this.current.id === this.L);
    if (this.stage <= this.L) {
      const done = this.stage;
      this.stage = this.L + 1;
      this.stageEpochs = 0;
      this.publishFingerprint();
      await this.barrier(done);
    }
    // One more heartbeat, so the others see this peer settled before it goes.
    const beats = this.link.stats().sent.heartbeats;
    const until = Date.now() + 2000;
    while (!this.closed && this.link.stats().sent.heartbeats <= beats && Date.now() < until) await new Promise<void>((resolve) => setTimeout(resolve, 20));
    await this.link.flush();
    this.report('finish');
  }

  /** Publishes what is not published yet (float32) and waits for it to be handed to ZeroMQ: for Ctrl-C. */
  async stop(): Promise<void> {
    if (this.closed) return;
    // In lockstep the change since the last round is only published in a round (the others then time out or lose this peer).
    if (this.current !== undefined && !this.o.lockstep) this.syncNow(true);
    await this.link.flush();
  }

  /** Counters and state (a fresh object on every call). */
  stats(): PeerTrainingStats {
    const t = this.link.stats();
    const d = this.divergence();
    return {
      senderId: this.link.senderId,
      stage: this.stage,
      epochs: this.stageEpochs,
      batches: this.batches,
      syncs: this.c.syncs,
      published: this.c.published,
      publishRefused: this.c.publishRefused,
      applied: this.c.applied,
      rejected: { ...this.c.rejected },
      droppedOtherLayer: this.c.droppedOtherLayer,
      droppedOverflow: this.c.droppedOverflow,
      pending: this.pending.length,
      bytes: { sent: this.c.bytesSent, float32: this.c.bytesF32 },
      compressionRatio: this.c.bytesSent === 0 ? 1 : this.c.bytesF32 / this.c.bytesSent,
      antiEntropy: { ...this.c.ae },
      divergence: d.value,
      peersCompared: d.compared,
      barrierTimeouts: this.c.barrierTimeouts,
      lockstep: { rounds: this.c.rounds, padded: this.c.padded, waitMs: this.c.roundWaitMs },
      syncMs: this.c.syncMs,
      receiveMs: this.c.receiveMs + t.decodeMs,
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
    if (this.aeTimer !== undefined) clearInterval(this.aeTimer);
    if (this.aeRetry !== undefined) clearTimeout(this.aeRetry);
    this.link.off('delta', this.onDelta);
    this.link.off('heartbeat', this.onHeartbeat);
    this.link.off('peer-lost', this.onPeerLost);
    this.link.serveSnapshots(undefined);
  }

  /**
   * One anti-entropy round now (also run every `antiEntropyMs`): asks a live peer for a
   * snapshot, and averages both published states, layer by layer, when they reflect the same
   * per-sender sequences. Otherwise deltas are in flight: the round is skipped and retried
   * 250 ms later, up to three times; with `force` (default: the `antiEntropyForce` option) the
   * third mismatch averages anyway and adopts the snapshot's sequences. Resolves with whether
   * weights were averaged. Does nothing in lockstep (the peers hold the same weights after every round).
   */
  async antiEntropy(opts: { readonly force?: boolean; readonly retry?: boolean } = {}): Promise<boolean> {
    const force = opts.force ?? this.o.antiEntropyForce;
    if (this.aeBusy || this.closed || this.alive.size === 0 || this.o.lockstep) return false;
    this.aeBusy = true;
    this.c.ae.rounds++;
    try {
      let snap: ReceivedSnapshot;
      try {
        snap = await this.link.requestSnapshot(this.o.snapshotTimeoutMs, { adoptSequences: false });
      } catch {
        this.c.ae.failed++;
        return false;
      }
      if (this.closed) return false;
      this.applyPending();
      const match = sameSequences(this.link.sequences(), snap.sequences);
      if (!match && (++this.mismatches < MISMATCHES_BEFORE_FORCE || !force)) {
        this.c.ae.skipped++;
        if (opts.retry !== false && this.mismatches < MISMATCHES_BEFORE_FORCE && this.aeRetry === undefined && this.o.antiEntropyMs > 0) {
          this.aeRetry = setTimeout(() => {
            this.aeRetry = undefined;
            void this.antiEntropy({ force });
          }, Math.min(250, this.o.antiEntropyMs));
          this.aeRetry.unref();
        }
        return false;
      }
      this.mismatches = 0;
      const before = this.divergence().value;
      this.average(snap);
      if (!match) {
        this.link.adoptSequences(snap.sequences);
        this.c.ae.forced++;
      }
      this.c.ae.averaged++;
      this.report('anti-entropy', `averaged with ${snap.from}${match ? '' : ' (sequences differed)'}; divergence before ${before === null ? 'n/a' : before.toPrecision(3)}`);
      return true;
    } finally {
      this.aeBusy = false;
    }
  }

  // ------------------------------------------------------------------ hot path

  /**
   * Counts a minibatch; at a publication point, first lets the event loop run once (the socket
   * reads that deliver remote deltas happen there; training alone would only yield every 50 ms),
   * then publishes and merges.
   */
  private afterBatch(id: number, b: { readonly batch: number; readonly batches: number }): Promise<void> | undefined {
    if (this.o.lockstep) return this.lockstepAfterBatch(id, b);
    if (this.current?.id !== id) this.enterGroup(id, id < this.L ? this.dbn.layers[id]!.epochsTrained : 0);
    this.batches++;
    this.sinceSync++;
    if (this.sinceSync < this.o.publishEvery && (this.o.publishMs === undefined || Date.now() - this.lastSync < this.o.publishMs)) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.syncNow(false);
        resolve();
      }),
    );
  }

  /**
   * A publication point: publish the local change `cur − base` (divided by K with `'average'`,
   * this peer keeping only that share of it too), merge the queued remote deltas, write once.
   */
  private syncNow(final: boolean): void {
    const g = this.current;
    if (g === undefined || this.closed) return;
    const t0 = performance.now();
    const cur = this.readGroupInto(g.id, g.cur);
    const shapes = this.shapesOf(g.id)!;
    const K = this.o.merge === 'average' ? 1 + this.liveTrainers() : 1;
    const received = this.applyPending(g.id);
    if (this.o.sparse !== undefined && !final) this.publishSparse(g, cur, shapes, received, K, this.o.sparse);
    else this.publishDense(g, cur, shapes, received, K, final);
    this.c.applied += received.length;
    this.endSync(g, t0);
  }

  /** What every publication point ends with: counters, the snapshot block, the fingerprint, a report when due. */
  private endSync(g: Current, t0: number): void {
    this.sinceSync = 0;
    this.lastSync = Date.now();
    this.c.syncs++;
    this.refreshBlock(g.id, g.base);
    this.publishFingerprint();
    this.c.syncMs += performance.now() - t0;
    if (Date.now() - this.lastReport >= this.o.reportEveryMs) this.report('sync');
  }

  /** {@link syncNow}'s dense publication (float32 or float16) and merge, in one fused pass per tensor. */
  private publishDense(g: Current, cur: Float32Array[], shapes: TensorShape[], received: readonly DeltaMessage[], K: number, final: boolean): void {
    const remote = remoteTensors(g, received);
    // With K > 1 this peer keeps only its 1/K share of its own change, like everyone else.
    const keep = K > 1;
    const f16 = this.o.float16 && !final && LITTLE_ENDIAN;
    const step = this.dbn.backend.deltaStep?.bind(this.dbn.backend);
    const alloc = this.frameAllocator();
    let out = fusedChange(cur, g, remote, 1 / K, keep, f16, step, alloc);
    // A change beyond ±65504 has no float16 form: such a delta goes as float32.
    if (out.overflow) out = fusedChange(cur, g, remote, 1 / K, keep, false, step, alloc);
    // Σ d² is not finite when the weights hold a NaN or an infinity: nothing is published then.
    let settled = Number.isFinite(out.sumSquares);
    let published = false;
    if (settled && out.sumSquares > 0) {
      // The frames hold float32 in this machine's byte order: little-endian is the wire's.
      const seq =
        LITTLE_ENDIAN || out.float16 ? this.link.publishDeltaFrames(g.id, out.payload, shapes, { float16: out.float16, finiteChecked: true }) : this.link.publishDelta(g.id, out.delta, shapes);
      if (seq === undefined) {
        this.c.publishRefused++;
        settled = false;
      } else {
        published = true;
        this.countPublished(g, shapes, out.payload, out.sumSquares);
      }
    }
    if (settled) {
      // Take the pass's results: base += what was sent, plus the remote deltas.
      [g.base, g.next] = [g.next, g.base];
      // curNext = cur (finite: Σ d² is) plus remote deltas that passed the guard: no value check needed.
      if ((published && keep) || remote.length > 0) this.writeGroup(g.id, g.curNext, true);
    } else if (remote.length > 0) {
      // Refused (or broken weights): the change stays whole in cur − base for the next try.
      for (const r of remote) for (let t = 0; t < cur.length; t++) addIntoBoth(cur[t]!, g.base[t]!, r[t]!);
      this.writeGroup(g.id, cur);
    }
  }

  /** Where payload frames come from: the backend's recycled host frames when it has them. */
  private frameAllocator(): (bytes: number) => Buffer {
    const b = this.dbn.backend;
    return b.hostFrame === undefined ? alignedBuffer : b.hostFrame.bind(b);
  }

  /** Counts a published delta (its bytes, and what float32 would have taken) and records its norm. */
  private countPublished(g: Current, shapes: readonly TensorShape[], payload: readonly Buffer[], sumSquares: number, kind: DeltaKind = 'dense'): void {
    this.c.published++;
    let elements = 0;
    for (const b of g.base) elements += b.length;
    const overhead = 104 + 8 * shapes.length + 16;
    this.c.bytesSent += overhead + payload.reduce((a, f) => a + f.length, 0);
    this.c.bytesF32 += overhead + elements * 4;
    this.guard.accept(g.id, Math.sqrt(sumSquares), kind);
  }

  /**
   * {@link syncNow}'s sparse publication ({@link PeerTrainingOptions.sparse}): per tensor, the
   * entries of `d = share · (cur − base)` at or above a sampled magnitude threshold go out as a
   * SPARSE delta and into `base`; the rest of `d` stays in `cur − base` (error feedback). The
   * received deltas are then added to both, sparse ones entry by entry: no pass over the whole
   * tensor but the selection, and nothing is written back unless something changed.
   */
  private publishSparse(g: Current, cur: Float32Array[], shapes: TensorShape[], received: readonly DeltaMessage[], K: number, fraction: number): void {
    const share = 1 / K;
    const keep = K > 1;
    const I = (g.sparseIdx ??= g.base.map((b) => new Uint32Array(b.length)));
    const V = (g.sparseVal ??= g.base.map((b) => new Float32Array(b.length)));
    const sample = (g.sample ??= new Float64Array(THRESHOLD_SAMPLE));
    const counts: number[] = [];
    const payload: Buffer[] = [];
    let sq = 0;
    const kernel = this.dbn.backend.sparseSelect?.bind(this.dbn.backend);
    for (let t = 0; t < cur.length; t++) {
      const c =
        kernel !== undefined
          ? kernel({ cur: cur[t]!, base: g.base[t]!, share, fraction, indices: I[t]!, values: V[t]!, sample })
          : selectChange(cur[t]!, g.base[t]!, share, sparseThreshold(cur[t]!, g.base[t]!, share, fraction, sample), I[t]!, V[t]!);
      const v = V[t]!;
      for (let j = 0; j < c; j++) sq += v[j]! * v[j]!;
      counts.push(c);
      payload.push(sparseFrame(I[t]!, v, c));
    }
    // Σ d² of the sent entries is not finite when the weights hold a NaN or an infinity.
    let settled = Number.isFinite(sq);
    let published = false;
    if (settled && sq > 0) {
      if (this.link.publishDeltaFrames(g.id, payload, shapes, { sparse: true, finiteChecked: true }) === undefined) {
        this.c.publishRefused++;
        settled = false;
      } else {
        published = true;
        this.countPublished(g, shapes, payload, sq, 'sparse');
      }
    }
    if (published) {
      for (let t = 0; t < cur.length; t++) {
        // With 'average' the weights become base + d (before base moves), like everyone else's.
        if (keep) keepShare(cur[t]!, g.base[t]!, share);
        const B = g.base[t]!;
        const it = I[t]!;
        const v = V[t]!;
        for (let j = 0; j < counts[t]!; j++) B[it[j]!] = B[it[j]!]! + v[j]!;
      }
    }
    // Remote deltas passed the guard: added in order to the weights and to base.
    for (const m of received) for (let t = 0; t < cur.length; t++) addReceived(cur[t]!, g.base[t]!, m, t);
    if (received.length > 0 || (published && keep)) this.writeGroup(g.id, cur, settled);
  }

  // ------------------------------------------------------------------ lockstep rounds

  /**
   * Lockstep: counts a minibatch; every `publishEvery` minibatches and at the epoch's last one,
   * makes a round; after the epoch's last, adds empty rounds up to the agreed rounds per epoch.
   * The first minibatch of a stage first agrees on that number with the other peers.
   */
  private async lockstepAfterBatch(id: number, b: { readonly batch: number; readonly batches: number }): Promise<void> {
    if (this.current?.id !== id) this.enterGroup(id, id < this.L ? this.dbn.layers[id]!.epochsTrained : 0);
    this.batches++;
    this.sinceSync++;
    const ls = this.ls!;
    if (ls.perEpoch === undefined) await this.agreeRounds(ls, b.batches);
    const last = b.batch === b.batches - 1;
    if (this.sinceSync < this.o.publishEvery && !last) return;
    await this.lockstepRound(ls);
    ls.inEpoch++;
    if (!last) return;
    for (; ls.inEpoch < ls.perEpoch!; ls.inEpoch++) {
      await this.lockstepRound(ls);
      this.c.padded++;
    }
    ls.inEpoch = 0;
  }

  /**
   * Announces this peer's publication points per epoch (`ceil(batches / publishEvery)`) in its
   * heartbeats and waits until every live trainer has announced its own for this stage; every
   * peer then makes the largest number of rounds per epoch.
   */
  private async agreeRounds(ls: LockstepGroup, batches: number): Promise<void> {
    const own = Math.ceil(batches / this.o.publishEvery);
    this.lsAnnounce = own;
    this.publishFingerprint();
    const stage = ls.g.id;
    await this.lockstepWait(() => {
      for (const id of this.alive) {
        const v = this.remote.get(id);
        if (v !== undefined && v.stage >= 0 && (v.stage !== stage || v.samples <= 0)) return false;
      }
      return this.liveTrainers() >= this.o.minPeers;
    }, `the live peers' rounds per epoch for stage ${stage}`);
    let most = own;
    for (const id of this.alive) {
      const v = this.remote.get(id);
      if (v !== undefined && v.stage === stage) most = Math.max(most, v.samples);
    }
    ls.perEpoch = most;
  }

  /**
   * One lockstep round: publishes `d = cur − base` (float32, even when zero), waits until the
   * round's delta of every live trainer is held, and loads `base + scale · Σ deltas` (scale 1,
   * or 1/K with `'average'`), summed in float32 in an order given by the deltas' contents
   * ({@link byContent}). Every peer does the same float32 operations on the same values, so all
   * end the round with the same bits; as the order does not depend on the (random) sender ids
   * either, another run with the same seeds and data gives the same bits too.
   */
  private async lockstepRound(ls: LockstepGroup): Promise<void> {
    if (this.lsFailure !== undefined) throw this.lsFailure;
    if (this.closed) throw new SyncError('PeerTrainer (lockstep): closed during a round.', 'ECLOSED');
    const g = ls.g;
    const r = ls.round + 1;
    let t0 = performance.now();
    const cur = this.readGroupInto(g.id, g.cur);
    const shapes = this.shapesOf(g.id)!;
    const payload: Buffer[] = [];
    const own: Float32Array[] = [];
    let sq = 0;
    for (let t = 0; t < cur.length; t++) {
      const C = cur[t]!;
      const B = g.base[t]!;
      const frame = this.frameAllocator()(4 * C.length);
      const D = new Float32Array(frame.buffer, frame.byteOffset, C.length);
      for (let k = 0; k < C.length; k++) {
        D[k] = C[k]! - B[k]!;
        const x = D[k]!;
        sq += x * x;
      }
      payload.push(frame);
      own.push(D);
    }
    if (!Number.isFinite(sq)) throw new InvalidDataError(`PeerTrainer (lockstep): the parameters of group ${g.id} hold a NaN or an infinity at round ${r}; training diverged.`);
    for (let tries = 0; ; tries++) {
      // The frames hold float32 in this machine's byte order: little-endian is the wire's.
      const seq = LITTLE_ENDIAN ? this.link.publishDeltaFrames(g.id, payload, shapes, { finiteChecked: true }) : this.link.publishDelta(g.id, own, shapes);
      if (seq !== undefined) break;
      this.c.publishRefused++;
      if (tries >= 100) throw new SyncError(`PeerTrainer (lockstep): the send queue refused the delta of round ${r} of group ${g.id} 100 times.`, 'ELOCKSTEP');
      await this.link.flush();
    }
    this.c.published++;
    let elements = 0;
    for (const x of own) elements += x.length;
    const bytes = 104 + 8 * shapes.length + 16 + 4 * elements;
    this.c.bytesSent += bytes;
    this.c.bytesF32 += bytes;
    this.guard.accept(g.id, Math.sqrt(sq));
    const key = roundKey(g.id, r);
    let round = this.held.get(key);
    if (round === undefined) this.held.set(key, (round = new Map()));
    round.set(this.link.senderId, own);
    this.c.syncMs += performance.now() - t0;

    const w0 = performance.now();
    await this.lockstepWait(() => this.roundComplete(round), `the deltas of round ${r} of group ${g.id}`);
    t0 = performance.now();
    this.c.roundWaitMs += t0 - w0;

    const deltas = [...round.values()].sort(byContent);
    const scale = this.o.merge === 'average' ? 1 / deltas.length : 1;
    for (let t = 0; t < g.base.length; t++) {
      const S = g.delta[t]!;
      S.set(deltas[0]![t]!);
      for (let i = 1; i < deltas.length; i++) {
        const d = deltas[i]![t]!;
        for (let k = 0; k < S.length; k++) S[k] = S[k]! + d[k]!;
      }
      const B = g.base[t]!;
      const N = g.next[t]!;
      for (let k = 0; k < N.length; k++) N[k] = B[k]! + S[k]! * scale;
    }
    this.held.delete(key);
    // The base and every delta are finite (checked above and by the guard).
    this.writeGroup(g.id, g.next, true);
    [g.base, g.next] = [g.next, g.base];
    ls.round = r;
    this.c.applied += deltas.length - 1;
    this.c.rounds++;
    this.endSync(g, t0);
  }

  /**
   * Whether `round` holds the delta of every live trainer peer (this peer's own is put in
   * first), and of at least `minPeers` of them: with `minPeers`, a lost peer stops the rounds
   * (until the timeout) instead of leaving the survivors to go on without it.
   */
  private roundComplete(round: ReadonlyMap<string, Float32Array[]>): boolean {
    for (const id of this.alive) {
      const v = this.remote.get(id);
      if (v !== undefined && v.stage >= 0 && !round.has(id)) return false;
    }
    return round.size - 1 >= this.o.minPeers;
  }

  /**
   * Waits until `done()` holds, checking it at every delta, heartbeat and lost peer; a lockstep
   * failure (lost or refused delta) or `barrierTimeoutMs` without it is a {@link SyncError}.
   */
  private async lockstepWait(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + this.o.barrierTimeoutMs;
    for (;;) {
      if (this.lsFailure !== undefined) throw this.lsFailure;
      if (this.closed) throw new SyncError(`PeerTrainer (lockstep): closed while waiting for ${what}.`, 'ECLOSED');
      if (done()) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new SyncError(`PeerTrainer (lockstep): waited ${this.o.barrierTimeoutMs} ms for ${what}.`, 'ETIMEDOUT');
      await this.nextEvent(Math.min(left, 250));
    }
  }

  /** Resolves at the next delta, heartbeat or lost peer, or after `ms`. */
  private nextEvent(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /**
   * Lockstep: a remote delta is the next round of its sender in its group when its
   * `baseSequence` (the sender's previous sequence for that group) is the last one received;
   * anything else means a delta was lost, which lockstep cannot repair. Held until its round.
   */
  private lockstepReceive(msg: DeltaMessage, norm: number): void {
    const ck = `${msg.senderId}/${msg.layer}`;
    let chain = this.chains.get(ck);
    if (chain === undefined) this.chains.set(ck, (chain = { last: 0, count: 0 }));
    if (msg.baseSequence !== chain.last) {
      this.failLockstep(`a delta of ${msg.senderId} for group ${msg.layer} was lost (sequence ${msg.sequence} follows ${msg.baseSequence}, the last received is ${chain.last})`);
      return;
    }
    chain.last = msg.sequence;
    chain.count++;
    const ls = this.ls;
    if (ls !== undefined && ls.g.id === msg.layer && chain.count <= ls.round) {
      this.failLockstep(`${msg.senderId} sent a delta for round ${chain.count} of group ${msg.layer}, already merged here`);
      return;
    }
    const key = roundKey(msg.layer, chain.count);
    let round = this.held.get(key);
    if (round === undefined) this.held.set(key, (round = new Map()));
    round.set(msg.senderId, msg.tensors);
    this.guard.accept(msg.layer, norm);
    this.wake?.();
  }

  private failLockstep(why: string): void {
    this.lsFailure ??= new SyncError(`PeerTrainer (lockstep): ${why}; the peers can no longer hold the same weights.`, 'ELOCKSTEP');
    this.report('rejected', why);
    this.wake?.();
  }

  /**
   * Adds the queued remote deltas of every group but `keep` (read, added, written; the group
   * being trained also to its `base`) and returns those of group `keep`, not applied (the
   * caller merges them in its own pass and counts them). Deltas for the classifier before it
   * exists stay queued; with `otherLayers: 'drop'` those of other groups than the focus are dropped.
   */
  private applyPending(keep?: number): DeltaMessage[] {
    const kept: DeltaMessage[] = [];
    if (this.pending.length === 0) return kept;
    // Deltas arrive already scaled by their sender ('average' divides at the source).
    const focus = this.current?.id ?? this.lastGroup;
    const byGroup = new Map<number, Pending[]>();
    const wait: Pending[] = [];
    for (const p of this.pending) {
      const id = p.msg.layer;
      if (id === this.L && this.classes === undefined) {
        wait.push(p);
        continue;
      }
      if (this.o.otherLayers === 'drop' && focus !== undefined && id !== focus) {
        this.c.droppedOtherLayer++;
        continue;
      }
      if (id === keep) {
        kept.push(p.msg);
        continue;
      }
      let list = byGroup.get(id);
      if (list === undefined) byGroup.set(id, (list = []));
      list.push(p);
    }
    this.pending = wait;
    for (const [id, list] of byGroup) {
      const base = this.current?.id === id ? this.current.base : undefined;
      const target = this.readGroup(id);
      for (const p of list) {
        for (let t = 0; t < target.length; t++) {
          if (base === undefined) addInto(target[t]!, p.msg.tensors[t]!, 1);
          else addIntoBoth(target[t]!, base[t]!, p.msg.tensors[t]!);
        }
        this.c.applied++;
      }
      this.writeGroup(id, target);
      this.refreshBlock(id, base ?? target);
    }
    return kept;
  }

  // ------------------------------------------------------------------ stages and barriers

  private enterGroup(id: number, epochs: number): void {
    const base = this.readGroup(id);
    const alloc = (): Float32Array[] => base.map((t) => new Float32Array(t.length));
    const delta = alloc();
    this.current = { id, base, next: alloc(), curNext: alloc(), cur: alloc(), delta, deltaBits: delta.map((d) => new Uint32Array(d.buffer)) };
    if (this.o.lockstep) {
      this.ls = { g: this.current, round: 0, perEpoch: undefined, inEpoch: 0 };
      this.lsAnnounce = 0;
    }
    this.lastGroup = id;
    this.stage = id;
    this.stageEpochs = epochs;
    this.sinceSync = 0;
    this.lastSync = Date.now();
    this.applyPending();
    this.refreshBlock(id, this.current.base);
    this.publishFingerprint();
  }

  private enterClassifier(classes: number, epochsDone: number): void {
    this.classes = classes;
    this.limitFrames();
    if (this.pendingClassifier !== undefined) {
      const shapes = this.shapesOf(this.L)!;
      if (sameShapes(this.pendingClassifier, shapes)) this.writeGroup(this.L, this.pendingClassifier);
      this.pendingClassifier = undefined;
    }
    this.enterGroup(this.L, epochsDone);
  }

  /** Publishes the group's last delta in float32, leaves it, and waits at a barrier if asked. */
  private async endStage(id: number, wait: boolean): Promise<void> {
    if (this.o.lockstep && this.current?.id === id) {
      // The stage's last round: every peer makes it (the change since the last round, often none).
      await this.lockstepRound(this.ls!);
    } else if (this.current?.id === id) {
      // A full send queue refuses the delta; the change stays in cur − base for the next try.
      for (let tries = 0; tries < 100; tries++) {
        const refused = this.c.publishRefused;
        this.syncNow(true);
        if (this.c.publishRefused === refused || this.closed) break;
        await this.link.flush();
      }
    }
    this.current = undefined;
    this.lastGroup = id;
    this.stage = id + 1;
    this.stageEpochs = 0;
    this.lsAnnounce = 0;
    this.publishFingerprint();
    if (wait) await this.barrier(id);
  }

  /**
   * Waits until every live trainer peer has a stage beyond `done` and everything it published
   * before saying so is applied here (this peer is then settled for `done`, and says so in its
   * fingerprint), and until every live peer is settled too, so that the fingerprints compared
   * are final; then, while the divergence exceeds the bound, runs up to {@link BARRIER_ROUNDS}
   * anti-entropy rounds. Gives up after `barrierTimeoutMs` (counted).
   */
  private async barrier(done: number): Promise<void> {
    const deadline = Date.now() + this.o.barrierTimeoutMs;
    let rounds = 0;
    this.report('barrier', `finished stage ${done}; waiting for the live peers`);
    for (;;) {
      if (this.closed) return;
      if (this.o.lockstep) {
        if (this.lsFailure !== undefined) throw this.lsFailure;
        // A peer still training this stage made another round: take part with an empty delta.
        const ls = this.ls;
        if (ls !== undefined && ls.g.id === done && this.held.has(roundKey(done, ls.round + 1))) {
          await this.lockstepRound(ls);
          this.c.padded++;
          continue;
        }
      }
      this.applyPending();
      const perSender = this.link.stats().perSender;
      let behind = 0;
      let unsettled = 0;
      for (const id of this.alive) {
        const v = this.remote.get(id);
        if (v === undefined || v.stage < 0) continue;
        if (v.stage <= done || (perSender[id]?.floor ?? 0) < v.lastSequence) behind++;
        else if (v.settled < done && v.stage === done + 1) unsettled++;
      }
      // Peers that finished the stage count for minPeers even once gone (they may have left).
      let through = 0;
      for (const v of this.remote.values()) if (v.stage > done) through++;
      if (through < this.o.minPeers) behind += this.o.minPeers - through;
      if (behind === 0 && this.settled < done) this.settled = done;
      this.publishFingerprint();
      if (behind === 0 && unsettled === 0) {
        const d = this.divergence().value;
        if (d === null || d <= this.o.divergenceBound || rounds >= BARRIER_ROUNDS || this.o.lockstep) break;
        rounds++;
        await this.antiEntropy({ force: false, retry: false });
        await new Promise<void>((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (Date.now() >= deadline) {
        this.c.barrierTimeouts++;
        if (this.o.lockstep) throw new SyncError(`PeerTrainer (lockstep): waited ${this.o.barrierTimeoutMs} ms at the end of stage ${done} for ${behind} peer(s).`, 'ETIMEDOUT');
        this.report('barrier', `gave up waiting for ${behind} peer(s) after ${this.o.barrierTimeoutMs} ms`);
        break;
      }
      if (Date.now() - this.lastReport >= this.o.reportEveryMs) this.report('sync');
      if (this.o.lockstep) await this.nextEvent(20);
      else await new Promise<void>((resolve) => setTimeout(resolve, 20));
    }
  }

  // ------------------------------------------------------------------ remote input

  private readonly onDelta = (msg: DeltaMessage): void => {
    if (this.closed) return;
    const t0 = performance.now();
    // A sparse delta's tensors are only built on access: the guard needs their lengths alone.
    const tensors = msg.sparse === undefined ? msg.tensors : msg.shapes.map(([r, c]) => ({ length: r * c }));
    const kind = msg.sparse === undefined ? 'dense' : 'sparse';
    const v = this.guard.check(msg.layer, tensors, msg.shapes, this.expectedShapes(msg), msg.sumSquares, kind);
    this.c.receiveMs += performance.now() - t0;
    if (!v.ok) {
      this.c.rejected[v.reason]++;
      this.report('rejected', `${v.reason}: ${v.detail} (from ${msg.senderId}, sequence ${msg.sequence})`);
      if (this.o.lockstep) this.failLockstep(`the delta of ${msg.senderId} for group ${msg.layer} was refused (${v.reason}: ${v.detail})`);
      return;
    }
    if (this.o.lockstep) {
      this.lockstepReceive(msg, v.norm);
      return;
    }
    this.guard.accept(msg.layer, v.norm, kind);
    this.pending.push({ msg, norm: v.norm });
    if (this.pending.length > this.o.maxPending) {
      this.pending.shift();
      this.c.droppedOverflow++;
    }
  };

  private readonly onHeartbeat = (hb: HeartbeatMessage): void => {
    const h = readFingerprintHeader(hb.weightFingerprint);
    if (!this.alive.has(hb.senderId)) {
      this.alive.add(hb.senderId);
      this.report('peer-joined', hb.senderId);
    }
    this.remote.set(hb.senderId, {
      fp: hb.weightFingerprint,
      stage: h?.stage ?? -1,
      settled: h?.settled ?? -1,
      epochs: h?.epochs ?? 0,
      batches: hb.progress.batches,
      samples: hb.progress.samples,
      lastSequence: hb.lastSequence,
      at: Date.now(),
    });
    this.wake?.();
  };

  private readonly onPeerLost = (p: PeerInfo): void => {
    if (p.senderId !== null && this.alive.delete(p.senderId)) {
      this.report('peer-lost', p.senderId);
      this.wake?.();
    }
  };

  /** The shapes a delta for `msg.layer` must have here; for the classifier before fine-tuning, those its head implies. */
  private expectedShapes(msg: DeltaMessage): readonly TensorShape[] | undefined {
    if (msg.layer === this.L && this.classes === undefined) {
      const head = msg.shapes[msg.shapes.length - 1];
      return head === undefined ? undefined : this.classifierShapes(head[1]);
    }
    return this.shapesOf(msg.layer);
  }

  /** Every tensor of every group, `base` for the group being trained (what the peers hold of it). */
  private snapshot(layers: readonly number[]): Snapshot {
    this.applyPending();
    const wanted = new Set(layers);
    const out: LayerTensors[] = [];
    const ids = this.classes === undefined ? this.L : this.L + 1;
    for (let id = 0; id < ids; id++) {
      if (wanted.size > 0 && !wanted.has(id)) continue;
      const tensors = this.current?.id === id ? this.current.base.map((b) => b.slice()) : this.readGroup(id);
      out.push({ layer: id, tensors, shapes: this.shapesOf(id)! });
    }
    return { layers: out, sequences: this.link.sequences() };
  }

  /** Takes over a snapshot's weights and the progress of the peer `view` (joining). */
  private adopt(snap: ReceivedSnapshot, view: RemoteView): void {
    for (const l of snap.layers) {
      if (l.layer < this.L) {
        if (!sameShapes(l.tensors, this.shapesOf(l.layer)!)) continue;
        this.writeGroup(l.layer, l.tensors);
        this.refreshBlock(l.layer, l.tensors);
        if (this.current?.id === l.layer) this.current.base.forEach((b, t) => b.set(l.tensors[t]!));
      } else if (l.layer === this.L) {
        const head = l.shapes[l.shapes.length - 1];
        const shapes = head === undefined ? undefined : this.classifierShapes(head[1]);
        if (shapes !== undefined && sameShapes(l.tensors, shapes)) this.pendingClassifier = l.tensors.map((t) => t.slice());
      }
    }
    const stage = Math.min(view.stage, this.L + 1);
    for (const [i, rbm] of this.dbn.layers.entries()) {
      if (i < stage) rbm.epochsTrained = Math.max(rbm.epochsTrained, rbm.options.epochs);
      else if (i === stage) rbm.epochsTrained = Math.min(view.epochs, rbm.options.epochs);
    }
    if (stage === this.L + 1) {
      if (this.pendingClassifier !== undefined) {
        this.classes = this.pendingClassifier[this.pendingClassifier.length - 1]!.length;
        this.writeGroup(this.L, this.pendingClassifier);
        this.refreshBlock(this.L, this.pendingClassifier);
        this.pendingClassifier = undefined;
      }
      this.finishedRun = true;
    }
    this.pending = this.pending.filter((p) => p.msg.sequence > (snap.sequences.get(p.msg.senderId) ?? 0));
    this.stage = this.firstIncompleteLayer() ?? stage;
    this.stageEpochs = this.stage < this.L ? this.dbn.layers[this.stage]!.epochsTrained : 0;
    this.publishFingerprint();
  }

  /** Averages this peer's published weights with a snapshot's, group by group. */
  private average(snap: ReceivedSnapshot): void {
    for (const l of snap.layers) {
      const shapes = this.shapesOf(l.layer);
      if (shapes === undefined || !sameShapes(l.tensors, shapes)) continue;
      const isCurrent = this.current?.id === l.layer;
      const params = this.readGroup(l.layer);
      const published = isCurrent ? this.current!.base : params;
      for (let t = 0; t < params.length; t++) {
        const corr = new Float32Array(params[t]!.length);
        scaledDifference(l.tensors[t]!, published[t]!, 0.5, corr);
        addInto(params[t]!, corr, 1);
        if (isCurrent) addInto(published[t]!, corr, 1);
      }
      this.writeGroup(l.layer, params);
      this.refreshBlock(l.layer, published);
    }
    this.publishFingerprint();
  }

  // ------------------------------------------------------------------ parameters and fingerprints

  private readGroup(id: number): Float32Array[] {
    if (id < this.L) {
      const p = this.dbn.layers[id]!.getParameters();
      return [p.weights.data, p.visibleBias, p.hiddenBias];
    }
    return this.dbn.getClassifierParameters().layers.flatMap((l) => [l.weights.data, l.bias]);
  }

  /** {@link readGroup} into `into` (the same arrays, no allocation) for an RBM layer; allocates for the classifier. */
  private readGroupInto(id: number, into: Float32Array[]): Float32Array[] {
    if (id >= this.L) return this.readGroup(id);
    this.dbn.layers[id]!.readParametersInto(into[0]!, into[1]!, into[2]!);
    return into;
  }

  /** Loads a group's tensors; `trusted`: their values were checked already (finite), only lengths are. */
  private writeGroup(id: number, t: readonly Float32Array[], trusted = false): void {
    if (id < this.L) {
      const r = this.dbn.layers[id]!;
      if (trusted) {
        r.writeParametersTrusted(t[0]!, t[1]!, t[2]!);
        return;
      }
      r.setParameters({ weights: { rows: r.nVisible, cols: r.nHidden, data: t[0]! }, visibleBias: t[1]!, hiddenBias: t[2]! });
      return;
    }
    const shapes = this.shapesOf(id)!;
    const layers: ClassifierParameters['layers'][number][] = [];
    for (let i = 0; i < t.length; i += 2) layers.push({ weights: { rows: shapes[i]![0], cols: shapes[i]![1], data: t[i]! }, bias: t[i + 1]! });
    this.dbn.setClassifierParameters({ activations: this.activations, layers });
  }

  private shapesOf(id: number): TensorShape[] | undefined {
    if (!Number.isInteger(id) || id < 0) return undefined;
    if (id < this.L) {
      const r = this.dbn.layers[id]!;
      return [
        [r.nVisible, r.nHidden],
        [1, r.nVisible],
        [1, r.nHidden],
      ];
    }
    if (id === this.L && this.classes !== undefined) return this.classifierShapes(this.classes);
    return undefined;
  }

  private classifierShapes(classes: number): TensorShape[] | undefined {
    if (!Number.isInteger(classes) || classes < 2) return undefined;
    const out: TensorShape[] = [];
    for (const r of this.dbn.layers) out.push([r.nVisible, r.nHidden], [1, r.nHidden]);
    out.push([this.dbn.nOutput, classes], [1, classes]);
    return out;
  }

  private firstIncompleteLayer(): number | undefined {
    const i = this.dbn.layers.findIndex((l) => l.epochsTrained < l.options.epochs);
    return i < 0 ? undefined : i;
  }

  /** Samples group `id`'s weights (its first tensor; every weight tensor for the classifier). */
  private refreshBlock(id: number, tensors: readonly Float32Array[]): void {
    if (id < this.L) {
      const block = this.blocks[id]!;
      takeSamples(tensors[0]!, sampleIndices(tensors[0]!.length, block.length), block, 0);
      return;
    }
    const per = samplesPerGroup(this.L + 1);
    const block = (this.classifierBlock ??= new Float64Array(per));
    const weights = tensors.filter((_, i) => i % 2 === 0);
    const each = Math.ceil(per / weights.length);
    let j = 0;
    for (const w of weights) {
      const idx = sampleIndices(w.length, each);
      for (let k = 0; k < idx.length && j < per; k++) block[j++] = w[idx[k]!]!;
    }
  }

  private publishFingerprint(): void {
    const blocks = this.stage >= this.L && this.classifierBlock !== undefined ? [...this.blocks, this.classifierBlock] : this.blocks;
    this.fingerprint = encodeFingerprint({ stage: this.stage, epochs: this.stageEpochs, settled: this.settled }, blocks);
    this.link.setWeightFingerprint(this.fingerprint);
    // `samples` carries, with lockstep, this peer's publication points per epoch in its stage (0 otherwise).
    this.link.setProgress({ epoch: this.stageEpochs, batches: this.batches, samples: this.lsAnnounce });
  }

  /**
   * Tells the link the largest frame a peer of this model may send: its largest tensor as
   * float32 (a delta or snapshot payload), at least 1 MiB for the other frames (heartbeat info,
   * snapshot index). An allowlisted peer cannot make this one buffer a bigger frame.
   */
  private limitFrames(): void {
    let largest = 0;
    for (let id = 0; id <= this.L; id++) for (const [r, c] of this.shapesOf(id) ?? []) largest = Math.max(largest, r * c);
    const head = this.classes === undefined ? 0 : this.dbn.nOutput * this.classes;
    this.link.setMaxFrameBytes(Math.max(4 * Math.max(largest, head), 1024 * 1024));
  }

  /** Live peers that report a training stage (trainers, not bare sync peers). */
  private liveTrainers(): number {
    let n = 0;
    for (const id of this.alive) if ((this.remote.get(id)?.stage ?? -1) >= 0) n++;
    return n;
  }

  private divergence(): { value: number | null; compared: number } {
    let worst: number | null = null;
    let compared = 0;
    for (const id of this.alive) {
      const v = this.remote.get(id);
      if (v === undefined) continue;
      const d = fingerprintDivergence(this.fingerprint, v.fp);
      if (d === undefined) continue;
      compared++;
      worst = worst === null ? d : Math.max(worst, d);
    }
    return { value: worst, compared };
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

/** `out = (a − b) · scale`; returns `Σ out²`. */
function scaledDifference(a: Float32Array, b: Float32Array, scale: number, out: Float32Array): number {
  let sq = 0;
  for (let k = 0; k < a.length; k++) {
    const v = (a[k]! - b[k]!) * scale;
    out[k] = v;
    sq += v * v;
  }
  return sq;
}

/** `dst += scale · src`. */
function addInto(dst: Float32Array, src: Float32Array, scale: number): void {
  for (let k = 0; k < dst.length; k++) dst[k] = dst[k]! + scale * src[k]!;
}

/** `x += src` and `y += src`. */
function addIntoBoth(x: Float32Array, y: Float32Array, src: Float32Array): void {
  for (let k = 0; k < x.length; k++) {
    const v = src[k]!;
    x[k] = x[k]! + v;
    y[k] = y[k]! + v;
  }
}

/** `acc = Σ deltas` tensor by tensor; returns `acc`. */
function sumInto(acc: Float32Array[], deltas: readonly Float32Array[][]): Float32Array[] {
  for (let t = 0; t < acc.length; t++) {
    acc[t]!.set(deltas[0]![t]!);
    for (let i = 1; i < deltas.length; i++) addInto(acc[t]!, deltas[i]![t]!, 1);
  }
  return acc;
}

/**
 * A total order of deltas by their bits (tensor by tensor, element by element, as signed 32-bit
 * integers): float32 addition is not associative, so a round's deltas are summed in an order
 * that depends only on what they hold. Deltas that compare equal are bit-identical, so their
 * order does not matter. Usually decided by the first element.
 */
function byContent(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  for (let t = 0; t < a.length; t++) {
    const x = new Int32Array(a[t]!.buffer, a[t]!.byteOffset, a[t]!.length);
    const y = new Int32Array(b[t]!.buffer, b[t]!.byteOffset, b[t]!.length);
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return x[k]! - y[k]!;
  }
  return 0;
}

/** The key of a lockstep round in {@link PeerTrainer}'s held deltas. */
function roundKey(group: number, round: number): string {
  return `${group}/${round}`;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const EMPTY = new Float32Array(0);

/** What {@link fusedChange} computed: a group's outgoing change, already in payload frames. */
type Change =
  | { readonly sparse: false; readonly float16: false; readonly overflow: false; readonly payload: Buffer[]; readonly delta: Float32Array[]; readonly sumSquares: number }
  | { readonly sparse: false; readonly float16: true; readonly overflow: boolean; readonly payload: Buffer[]; readonly sumSquares: number };

/** Evenly spaced entries whose magnitudes estimate a tensor's sparse threshold. */
const THRESHOLD_SAMPLE = 4096;

/**
 * The received deltas of the group being published, as dense tensors for {@link fusedChange}
 * or {@link sparseChange}: dense ones as they are; when any is SPARSE, all are summed in order
 * into `g.acc` (float32 after each addition, as the kernels sum several remote deltas), the
 * sparse ones by their entries only — no dense copy of a sparse delta is made.
 */
function remoteTensors(g: Current, received: readonly DeltaMessage[]): Float32Array[][] {
  if (!received.some((m) => m.sparse !== undefined)) return received.map((m) => m.tensors);
  const acc = (g.acc ??= g.base.map((b) => new Float32Array(b.length)));
  for (const a of acc) a.fill(0);
  for (const m of received) {
    for (let t = 0; t < acc.length; t++) {
      const A = acc[t]!;
      const s = m.sparse?.[t];
      if (s === undefined) {
        const D = m.tensors[t]!;
        for (let k = 0; k < A.length; k++) A[k] = A[k]! + D[k]!;
      } else {
        const I = s.indices;
        const V = s.values;
        for (let j = 0; j < I.length; j++) A[I[j]!] = A[I[j]!]! + V[j]!;
      }
    }
  }
  return [acc];
}

/**
 * The magnitude threshold of a sparse delta: the `(1 − fraction)` quantile of
 * {@link THRESHOLD_SAMPLE} evenly spaced `|share · (C − B)|` (all of them for a smaller tensor),
 * so that about `fraction · n` entries reach it, whatever the scale of the change.
 */
function sparseThreshold(C: Float32Array, B: Float32Array, share: number, fraction: number, sample: Float64Array): number {
  const n = C.length;
  const m = Math.min(n, sample.length);
  for (let i = 0; i < m; i++) {
    const k = Math.floor((i * n) / m);
    sample[i] = Math.abs((C[k]! - B[k]!) * share);
  }
  return quickSelect(sample, m, Math.min(m - 1, Math.floor((1 - fraction) * m)));
}

/**
 * Writes the index and float32 value of every entry of `d = share · (C − B)` with `|d| ≥ θ` and
 * `d ≠ 0` to `I`, `V`; returns how many. A NaN is taken too (and ±Infinity is ≥ θ): a change
 * that is not finite is sent, and its Σ d² shows it.
 */
function selectChange(C: Float32Array, B: Float32Array, share: number, theta: number, I: Uint32Array, V: Float32Array): number {
  let c = 0;
  for (let k = 0; k < C.length; k++) {
    const x = (C[k]! - B[k]!) * share;
    if (!(Math.abs(x) < theta) && x !== 0) {
      I[c] = k;
      V[c++] = x;
    }
  }
  return c;
}

/** `C = B + fround(share · (C − B))`: the peer keeps only its share of its change. */
function keepShare(C: Float32Array, B: Float32Array, share: number): void {
  for (let k = 0; k < C.length; k++) C[k] = B[k]! + Math.fround((C[k]! - B[k]!) * share);
}

/** Adds tensor `t` of a received delta (dense or SPARSE) to both `C` and `B`. */
function addReceived(C: Float32Array, B: Float32Array, m: DeltaMessage, t: number): void {
  const s = m.sparse?.[t];
  if (s === undefined) {
    addIntoBoth(C, B, m.tensors[t]!);
    return;
  }
  const I = s.indices;
  const V = s.values;
  for (let j = 0; j < I.length; j++) {
    const k = I[j]!;
    C[k] = C[k]! + V[j]!;
    B[k] = B[k]! + V[j]!;
  }
}

/** The `q`-th smallest of `a[0, m)` (0-based), reordering `a` (Hoare's selection, median-of-three pivots). */
function quickSelect(a: Float64Array, m: number, q: number): number {
  let lo = 0;
  let hi = m - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three as the pivot: sorted data (common: many equal magnitudes) stays linear.
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const tmp = a[i]!;
        a[i++] = a[j]!;
        a[j--] = tmp;
      }
    }
    if (q <= j) hi = j;
    else if (q >= i) lo = i;
    else return a[q]!;
  }
  return a[q]!;
}

/** An uninitialized buffer whose start is 4-byte aligned (typed-array views need it). */
function alignedBuffer(bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  return (b.byteOffset & 3) === 0 ? b : Buffer.from(new ArrayBuffer(bytes));
}

/**
 * A publication point in one pass over each tensor, given the weights `cur`, what the peers
 * hold `g.base`, and `remote`, the remote deltas to merge (`r` their float32 sum in order, or 0):
 * - the change `d = share · (cur − base)`, into fresh payload frames: float32 little-endian
 *   (views in `delta`), or with `float16` its nearest binary16 `q` (ties to even);
 * - `g.next = base + sent + r`, `sent` being `d` or `q`: with float16 the rounding residual
 *   `d − q` stays in `cur − base` and goes out with the next delta (error feedback);
 * - `g.curNext = (keep ? base + d : cur) + r` (`keep`: this peer keeps only its share);
 * - `Σ d²` (float64, not finite when a value is not), and whether a binary16 overflowed.
 * `cur` and `g.base` are only read, so the caller can still drop the results.
 */
function fusedChange(
  cur: readonly Float32Array[],
  g: Current,
  remote: readonly Float32Array[][],
  share: number,
  keep: boolean,
  float16: boolean,
  step: ((args: DeltaStepArgs) => DeltaStepResult) | undefined,
  alloc: (bytes: number) => Buffer = alignedBuffer,
): Change {
  const payload: Buffer[] = [];
  const delta: Float32Array[] = [];
  const hasR = remote.length > 0;
  // The loops below take one remote delta: several are summed first (float32, in order, as the kernel does).
  const r = step !== undefined || remote.length <= 1 ? remote[0] : sumInto((g.acc ??= g.base.map((b) => new Float32Array(b.length))), remote);
  let sq = 0;
  let inf = 0;
  for (let t = 0; t < cur.length; t++) {
    const C = cur[t]!;
    const B = g.base[t]!;
    const N = g.next[t]!;
    const CN = g.curNext[t]!;
    const R = r === undefined ? EMPTY : r[t]!;
    const n = C.length;
    if (step !== undefined) {
      // The backend's kernel: the same values as the loops below.
      const frame = alloc((float16 ? 2 : 4) * n);
      const out = float16 ? { half: new Uint16Array(frame.buffer, frame.byteOffset, n) } : { delta: new Float32Array(frame.buffer, frame.byteOffset, n) };
      const res = step({ cur: C, base: B, ...(hasR ? { remote: remote.map((x) => x[t]!) } : {}), share, keep, ...out, baseNext: N, curNext: CN });
      sq += res.sumSquares;
      if (res.overflow) inf = 0x8000;
      payload.push(frame);
      if (out.delta !== undefined) delta.push(out.delta);
    } else if (float16) {
      const frame = alloc(2 * n);
      const H = new Uint16Array(frame.buffer, frame.byteOffset, n);
      const D = g.delta[t]!;
      const bits = g.deltaBits[t]!;
      const T = float16Table();
      for (let k = 0; k < n; k++) {
        const c = C[k]!;
        const b = B[k]!;
        D[k] = (c - b) * share;
        const x = D[k]!;
        const h = float16FromFloat32(bits[k]!, x);
        H[k] = h;
        // An all-ones exponent (infinity) carries into bit 15.
        inf |= (h & 0x7c00) + 0x400;
        sq += x * x;
        const v = hasR ? R[k]! : 0;
        N[k] = b + T[h]! + v;
        CN[k] = (keep ? b + x : c) + v;
      }
      payload.push(frame);
    } else {
      const frame = alloc(4 * n);
      const D = new Float32Array(frame.buffer, frame.byteOffset, n);
      for (let k = 0; k < n; k++) {
        const c = C[k]!;
        const b = B[k]!;
        D[k] = (c - b) * share;
        const x = D[k]!;
        sq += x * x;
        const v = hasR ? R[k]! : 0;
        N[k] = b + x + v;
        CN[k] = (keep ? b + x : c) + v;
      }
      payload.push(frame);
      delta.push(D);
    }
  }
  if (float16) return { sparse: false, float16: true, overflow: (inf & 0x8000) !== 0, payload, sumSquares: sq };
  return { sparse: false, float16: false, overflow: false, payload, delta, sumSquares: sq };
}

function sameShapes(tensors: readonly Float32Array[], shapes: readonly TensorShape[]): boolean {
  return tensors.length === shapes.length && tensors.every((t, i) => t.length === shapes[i]![0] * shapes[i]![1]);
}

/** Whether two sender → sequence maps agree (a missing sender counts as 0). */
export function sameSequences(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  for (const [k, v] of a) if ((b.get(k) ?? 0) !== v) return false;
  for (const [k, v] of b) if ((a.get(k) ?? 0) !== v) return false;
  return true;
}
