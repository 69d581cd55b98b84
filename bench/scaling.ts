/**
 * Speed from peers (not part of `npm test`; needs root for the network namespaces): for N = 1,
 * 2, 4, 8, N `dbn-node train` processes as users run them (`--bind`, `--peers` with CURVE keys
 * from `dbn-node keygen`, `--shard i/N`), each pinned with `taskset` to one core (peer i on core
 * i mod cores; so on a 2-core machine N = 8 runs 4 peers per core) with one BLAS thread, measure
 *
 * - wall time to a fixed accuracy on the held-out validation rows (`--metrics`, per fine-tuning
 *   epoch; the same rows' union over the peers as in one process),
 * - minibatches of all peers to reach it (statistical efficiency),
 * - MiB sent and received per peer per epoch (and the all-to-all figure computed beside it),
 *
 * in three series: loopback; peers in network namespaces on a bridge, every link limited with
 * `tc tbf` to 1 Gbit/s; and to 100 Mbit/s. N = 1 is one process without peers (no network): the
 * same run starts every series. A smaller schedule than the CLI defaults keeps a full run within
 * about an hour on a shared 2-core machine: `--limit 5000` rows (4,000 train / 1,000 test), 1 pretraining epoch per layer,
 * 10 fine-tuning epochs, no associative layer (peers train none).
 *
 * Usage: tsx bench/scaling.ts [--peers 1,2,4,8] [--series loopback,1000,100] [--limit 5000]
 *        [--epochs 1] [--finetune 10] [--target 0.82] [--png docs/scaling.png] [--dev] [--keep]
 * Runs the built CLI (`npm run build` first); `--dev` runs the TypeScript sources through tsx;
 * `--keep` keeps every process's log, `--metrics` file and model (the path goes to stderr).
 * Prints one JSON object per run, then a summary object with the machine and load averages.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { machine } from './machine.js';
import { createRateLimitedNet, removeAllNamespaces } from './scaling/netns.js';
import { type CliMode, type TrainResult, freePorts, makeKeys, runTrain } from './scaling/peer-process.js';
import { renderTimeToAccuracy } from './scaling/plot.js';
import { type RunSummary, type Schedule, summarizeRun, topologyBytes } from './scaling/summary.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '1,2,4,8' },
    series: { type: 'string', default: 'loopback,1000,100' },
    limit: { type: 'string', default: '5000' },
    epochs: { type: 'string', default: '1' },
    finetune: { type: 'string', default: '10' },
    target: { type: 'string', default: '0.82' },
    png: { type: 'string', default: 'docs/scaling.png' },
    dev: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const mode: CliMode = { dev: values.dev };
const counts = values.peers.split(',').map(Number);
const seriesList = values.series
  .split(',')
  .map((s) => (s === 'loopback' ? { name: 'loopback', rateMbit: undefined } : { name: `${s} Mbit/s`, rateMbit: Number(s) }));
const schedule: Schedule = {
  sizes: [784, 500, 500],
  classes: 10,
  pretrainEpochs: Number(values.epochs),
  batchSize: 100,
  validationFraction: 0.1,
  target: Number(values.target),
};
const common = [
  '--limit',
  values.limit,
  '--epochs',
  values.epochs,
  '--finetune',
  values.finetune,
  '--patience',
  '1000',
  '--associative',
  '0',
  '--seed',
  '1',
];
const cores = os.cpus().length;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-scaling-'));
const prefix = `dbnsc${process.pid}`;

const kills = new Set<() => void>();
const register = (kill: () => void): void => void kills.add(kill);
function cleanUp(): void {
  for (const kill of kills) kill();
  removeAllNamespaces();
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

async function peerRun(
  seriesIndex: number,
  n: number,
  publicKeys: readonly string[],
): Promise<{ results: TrainResult[]; shaping?: unknown }> {
  const series = seriesList[seriesIndex]!;
  const dir = fs.mkdtempSync(path.join(root, `s${seriesIndex}-n${n}-`));
  const net = series.rateMbit === undefined ? undefined : createRateLimitedNet(prefix, n, series.rateMbit);
  try {
    const ports = net === undefined ? await freePorts(n) : Array.from({ length: n }, () => 5555);
    const hosts = net === undefined ? Array.from({ length: n }, () => '127.0.0.1') : net.peers.map((p) => p.address);
    const endpoint = (i: number): string => `tcp://${hosts[i]}:${ports[i]}`;
    // When one peer fails, the run is over: the others are killed (not left to go on without it)
    // and the first failure is what is reported.
    const runKills: (() => void)[] = [];
    let firstFailure: unknown;
    const settled = await Promise.allSettled(
      hosts.map((_, i) => {
        const others = hosts.flatMap((__, j) => (j === i ? [] : [`${endpoint(j)}#${publicKeys[j]}`]));
        const args = [
          ...common,
          '--bind',
          endpoint(i),
          '--keys',
          path.join(root, 'keys', `p${i}`),
          '--shard',
          `${i + 1}/${n}`,
          '--peers',
          others.join(','),
          '--run-id',
          `sc${seriesIndex}n${n}`,
        ];
        const kill = (k: () => void): void => void (runKills.push(k), register(k));
        return runTrain(mode, dir, `p${i}`, args, { core: i % cores, netns: net?.peers[i]?.netns }, kill).catch((err: unknown) => {
          firstFailure ??= err;
          for (const k of runKills) k();
          throw err;
        });
      }),
    );
    if (firstFailure !== undefined) throw firstFailure;
    const results = settled.map((s) => (s as PromiseFulfilledResult<TrainResult>).value);
    const lost = results.flatMap((r) =>
      r.lines.filter((line) => line.startsWith('peer peer-lost') || line.startsWith('peer view')).map((line) => `${r.name}: ${line}`),
    );
    // Peers that dropped each other each went on alone: separate models, not a run of N peers.
    if (lost.length > 0) throw new Error(`peers were dropped during the run (every process exited 0):\n${lost.join('\n')}`);
    return net === undefined ? { results } : { results, shaping: net.counters() };
  } finally {
    net?.remove();
  }
}

/** A peer run, tried twice: a failure is printed (and listed in the summary) and does not end the bench. */
async function attempt(seriesIndex: number, n: number): Promise<Awaited<ReturnType<typeof peerRun>> | undefined> {
  for (let tryNumber = 1; tryNumber <= 2; tryNumber++) {
    try {
      return await peerRun(seriesIndex, n, publicKeys);
    } catch (err) {
      const failure = {
        series: seriesList[seriesIndex]!.name,
        peers: n,
        try: tryNumber,
        failed: (err as Error).message.split('\n').filter((l) => /error|failed|lost|view|dropped/i.test(l)),
      };
      failures.push(failure);
      console.log(JSON.stringify(failure));
    }
  }
  return undefined;
}

const failures: Record<string, unknown>[] = [];
const loadBefore = os.loadavg();
const startedAt = new Date().toISOString();
const publicKeys = makeKeys(mode, path.join(root, 'keys'), Math.max(...counts));
const single = summarizeRun([await runTrain(mode, fs.mkdtempSync(path.join(root, 'n1-')), 'one', common, { core: 0 }, register)], schedule);
console.log(JSON.stringify({ series: 'one process', ...single }));
const table: { series: string; rows: (RunSummary & Record<string, unknown>)[] }[] = [];
for (const [seriesIndex, series] of seriesList.entries()) {
  const rows: (RunSummary & Record<string, unknown>)[] = [];
  for (const n of counts) {
    if (n === 1) {
      rows.push({ ...single, network: 'none (one process)' });
      continue;
    }
    const run = await attempt(seriesIndex, n);
    if (run === undefined) continue;
    const { results, shaping } = run;
    const summary = summarizeRun(results, schedule);
    const computed = topologyBytes(
      schedule,
      n,
      summary.trainingRows,
      summary.epochsRun - schedule.pretrainEpochs * (schedule.sizes.length - 1),
    );
    const row = {
      ...summary,
      minibatchRatio:
        summary.minibatchesToTarget === null || single.minibatchesToTarget === null
          ? null
          : Number((summary.minibatchesToTarget / single.minibatchesToTarget).toFixed(3)),
      computedMiBPerPeerPerEpoch: computed,
      ...(shaping === undefined ? {} : { shaping }),
    };
    rows.push(row);
    console.log(JSON.stringify({ series: series.name, ...row }));
  }
  table.push({ series: series.name, rows });
}
const loadAfter = os.loadavg();

const png = renderTimeToAccuracy(table, schedule.target, Number(values.limit), cores);
fs.writeFileSync(values.png, png);
console.log(
  JSON.stringify({
    bench: 'scaling',
    startedAt,
    schedule: { ...schedule, limit: Number(values.limit), finetuneEpochs: Number(values.finetune), cli: mode.dev ? 'tsx sources' : 'dist' },
    placement: `peer i pinned to core i mod ${cores} (taskset), OPENBLAS_NUM_THREADS=1; N=1 uses one core`,
    machine: {
      ...machine(),
      avx512: fs.readFileSync('/proc/cpuinfo', 'utf8').includes('avx512f'),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
    },
    series: table,
    failures,
    png: values.png,
  }),
);
if (values.keep) console.error(`logs, metrics and models kept in ${root}`);
else fs.rmSync(root, { recursive: true, force: true });
