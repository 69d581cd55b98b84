/**
 * What `train` needs to be watched while it runs: the `--metrics-port`, `--metrics-host`,
 * `--name` and `--log-format` flags, and an {@link Observer} that the training hooks feed and that
 * serves `/metrics`, `/status` and the dashboard.
 */
import * as os from 'node:os';
import type { Argv } from 'yargs';
import type { Dbn } from '../../dbn/index.js';
import type { PeerGroup } from '../../distributed/index.js';
import { NAME_RE, fingerprintOf } from '../../distributed/stats.js';
import { InvalidOptionError } from '../../errors.js';
import { squareSide } from '../common.js';
import { renderGrid } from '../images.js';
import type { Progress } from '../progress.js';
import { type LogFormat, RunLog, loggedProgress } from './log.js';
import { createRegistry } from './prometheus.js';
import { type ObserveServer, startObserveServer } from './server.js';
import { RunState } from './state.js';

/** The observation flags of `train`. */
export interface ObserveArgs {
  readonly 'metrics-port'?: number | undefined;
  readonly 'metrics-host'?: string | undefined;
  readonly name?: string | undefined;
  readonly 'log-format'?: LogFormat | undefined;
}

const G = 'Watching the run:';

/** Adds the observation flags. */
export function observeOptions<T0>(y: Argv<T0>): Argv<T0 & ObserveArgs> {
  return y
    .option('metrics-port', {
      type: 'number',
      describe: 'serve /metrics (Prometheus), /status (JSON) and a live dashboard at / on this port (0: any free port)',
      group: G,
    })
    .option('metrics-host', {
      type: 'string',
      describe: 'address the --metrics-port server listens on (default 127.0.0.1; 0.0.0.0 for every interface)',
      group: G,
    })
    .option('name', {
      type: 'string',
      describe: "this process's name in logs, metrics and other peers' /status (default: host name and port)",
      group: G,
    })
    .option('log-format', {
      choices: ['text', 'json'] as const,
      describe: 'summary and event lines as text (WARN marks what needs an operator) or one JSON object per line (default text)',
      group: G,
    }) as unknown as Argv<T0 & ObserveArgs>;
}

/** `--name`, or the host name plus the port of `--bind` (else of `--metrics-port`), made safe for labels. */
export function resolveName(a: ObserveArgs & { readonly bind?: string | undefined }): string {
  if (a.name !== undefined) {
    if (!NAME_RE.test(a.name)) throw new InvalidOptionError(`--name must be 1-64 characters of [A-Za-z0-9._:-], got '${a.name}'.`);
    return a.name;
  }
  const port = a.bind === undefined ? a['metrics-port'] : /:(\d+)$/.exec(a.bind)?.[1];
  const host =
    os
      .hostname()
      .replace(/[^A-Za-z0-9.-]/g, '-')
      .slice(0, 50) || 'host';
  return port === undefined ? host : `${host}:${port}`;
}

function checkPort(a: ObserveArgs): void {
  const port = a['metrics-port'];
  if (port !== undefined && (!Number.isSafeInteger(port) || port < 0 || port > 65535))
    throw new InvalidOptionError(`--metrics-port must be an integer in [0, 65535], got ${port}.`);
  if (a['metrics-host'] !== undefined && port === undefined) throw new InvalidOptionError('--metrics-host needs --metrics-port.');
  const host = a['metrics-host'];
  if (host !== undefined && !/^[A-Za-z0-9.:-]{1,253}$/.test(host))
    throw new InvalidOptionError(`--metrics-host must be a host name or an IP address, got '${host}'.`);
}

/** Feeds a {@link RunState} from the training hooks and serves it (with `--metrics-port`). */
export class Observer {
  readonly log: RunLog;
  /** The progress reporter `train` should use: its summary lines follow `--log-format`. */
  readonly progress: Progress;
  private model: Dbn | undefined;
  private server: ObserveServer | undefined;
  private port: number | undefined;
  private host = '127.0.0.1';
  private readonly identity: { readonly name: string; id: string | null; nameOf(short: string): string | undefined };

  private constructor(
    readonly state: RunState,
    progress: Progress,
    format: LogFormat,
  ) {
    this.identity = {
      name: state.name,
      id: null,
      nameOf: (short: string) => [...state.stats.peers.values()].find((p) => p.id.startsWith(short))?.name,
    };
    this.log = new RunLog(progress, format, this.identity);
    this.progress = loggedProgress(progress, this.log);
  }

  /** Checks the flags (nothing is opened yet: see {@link serve}). */
  static create(a: ObserveArgs & { readonly bind?: string | undefined }, progress: Progress, options: Record<string, unknown>): Observer {
    checkPort(a);
    const observer = new Observer(new RunState(resolveName(a), options), progress, a['log-format'] ?? 'text');
    observer.port = a['metrics-port'];
    observer.host = a['metrics-host'] ?? '127.0.0.1';
    return observer;
  }

  /** Serves `/metrics`, `/status` and `/` when `--metrics-port` was given; {@link close} stops it. */
  async serve(): Promise<void> {
    if (this.port === undefined || this.server !== undefined) return;
    this.server = await startObserveServer(this.host, this.port, this.state, createRegistry(this.state), (which) => this.picture(which));
    const url = this.server.url;
    this.log.line(`metrics: ${url}/metrics, status: ${url}/status, dashboard: ${url}/ (name ${this.state.name})`);
  }

  /** `http://host:port` of the server, when there is one. */
  get url(): string | undefined {
    return this.server?.url;
  }

  /** Peer mode: the group's statistics become the run's; events are logged and divergence over 0 warned about. */
  attach(group: PeerGroup): void {
    this.state.attach(group);
    this.identity.id = group.id;
    const stats = group.runStats;
    stats.onLongWait = (seconds) =>
      this.log.event('barrier-wait', `waited ${seconds.toFixed(1)} s for the peers at one round barrier`, 'warn');
    stats.divergenceBound = 0;
    stats.onDivergence = (id, name, d, at) =>
      this.log.event(
        'divergence',
        `replica of ${name} (${id.slice(0, 8)}) differs from this one after stage ${at.stage} epoch ${at.epoch}: divergence ${d.toExponential(3)}`,
        'warn',
      );
  }

  /** The model the pictures are drawn from (it changes when a peer joins from a snapshot). */
  setModel(model: Dbn): void {
    this.model = model;
  }

  /** A minibatch (this process's share of a round's, in peer mode) was trained on. */
  batchDone(phase: 'pretrain' | 'finetune', stage: number): void {
    const p = this.state.progress;
    p.phase = phase;
    p.stage = stage;
    p.minibatches++;
  }

  /** A pretraining epoch of layer `layer` ended: its figures, and a fingerprint of the layer for divergence. */
  pretrainEpoch(layer: number, epoch: number, reconstructionError: number, rows: number): void {
    this.state.progress.samples += rows;
    this.state.epochDone({ stage: layer, epoch, phase: 'pretrain', value: reconstructionError });
    const rbm = this.model?.layers[layer];
    if (rbm === undefined) return;
    const p = rbm.getParameters();
    this.state.stats.setFingerprint(fingerprintOf(layer, epoch, [p.weights.data, p.visibleBias, p.hiddenBias]));
  }

  /** A fine-tuning epoch ended: its figures, and a fingerprint of the whole classifier for divergence. */
  fineTuneEpoch(epoch: number, loss: number, validationAccuracy: number | undefined, rows: number): void {
    const stage = this.model?.layers.length ?? 0;
    this.state.progress.samples += rows;
    this.state.epochDone({
      stage,
      epoch,
      phase: 'finetune',
      value: loss,
      ...(validationAccuracy === undefined ? {} : { accuracy: validationAccuracy }),
    });
    if (this.model?.classes === undefined) return;
    const tensors = this.model.getClassifierParameters().layers.flatMap((l) => [l.weights.data, l.bias]);
    this.state.stats.setFingerprint(fingerprintOf(stage, epoch, tensors));
  }

  /** Sets the phase (associative layer, done). */
  phase(phase: RunState['progress']['phase']): void {
    this.state.progress.phase = phase;
  }

  /** The first-layer filters (any time) or samples (once pretraining is over), as PNG; undefined when there are none. */
  private picture(which: 'filters' | 'samples'): Buffer | undefined {
    const model = this.model;
    const first = model?.layers[0];
    const side = model === undefined ? undefined : squareSide(model.nVisible);
    if (model === undefined || first === undefined || side === undefined) return undefined;
    if (which === 'filters') {
      const count = Math.min(64, first.nHidden);
      const w = first.getParameters().weights;
      const tiles = new Float32Array(count * model.nVisible);
      for (let j = 0; j < count; j++) for (let i = 0; i < model.nVisible; i++) tiles[j * model.nVisible + i] = w.data[i * w.cols + j]!;
      return renderGrid(tiles, count, { width: side, height: side, normalize: 'per-tile', scale: 2 });
    }
    const p = this.state.progress.phase;
    if (!model.isPretrained || p === 'pretrain' || p === 'starting') return undefined;
    const s = model.generate({ count: 32, gibbsSteps: 200, seed: 1 });
    return renderGrid(s.data, s.rows, { width: side, height: side, scale: 2 });
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }
}
