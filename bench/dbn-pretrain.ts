/**
 * Greedy pretraining of a 784-500-500-2000 DBN on Fashion-MNIST's 60,000 training images (the
 * Debian package dataset-fashion-mnist), one epoch per layer, next to the same algorithm in numpy
 * (bench/ref_dbn.py: Rbm's defaults — CD-1, batch 100, learning rate 0.1, momentum 0.5, weight
 * decay 0.0002, shuffled rows, hidden means passed up). Every run is its own process, so its peak
 * RSS is its own; rounds are interleaved (numpy with each thread setting, then the library) and
 * medians reported. numpy runs with OpenBLAS's default threads and with 1 thread (on a machine
 * shared with other work its spinning threads can be several times slower); the ratio is taken
 * against the faster. The library runs last in even rounds and first in odd ones.
 *
 *   npx tsx bench/dbn-pretrain.ts [--rounds 1] [--limit 0] [--layers 500,500,2000] [--backend native]
 *                                 [--ref-threads default,1] [--no-ref] [--dir /usr/share/datasets/fashion-mnist]
 *
 * Prints one JSON object: the machine, per contender the load and pretrain seconds and peak RSS,
 * the ratio numpy / library (pretrain seconds; of the medians, and within each round with its median),
 * and whether peak RSS stays under 1.5 GiB.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../src/data/fashion-mnist.js';
import { Dbn } from '../src/dbn/index.js';
import { createBackend } from '../src/kernels/index.js';
import { cpuVectorFlags } from './cpu-flags.js';
import { machine, median } from './machine.js';

const { values: a } = parseArgs({
  options: {
    rounds: { type: 'string', default: '1' },
    limit: { type: 'string', default: '0' },
    layers: { type: 'string', default: '500,500,2000' },
    backend: { type: 'string', default: 'native' },
    'ref-threads': { type: 'string', default: 'default,1' },
    'no-ref': { type: 'boolean', default: false },
    dir: { type: 'string', default: FASHION_MNIST_DIR },
    child: { type: 'boolean', default: false },
  },
});
const limit = Number(a.limit);
const hidden = a.layers.split(',').map(Number);
const RSS_LIMIT_MIB = 1536;

interface RunResult {
  readonly rows: number;
  readonly load_s: number;
  readonly pretrain_s: number;
  readonly peak_rss_mib: number;
  readonly recon_mse: number[];
  readonly description?: string;
}

/** One pretraining in this process (the child): prints its {@link RunResult}. */
async function child(): Promise<void> {
  const t0 = performance.now();
  const { train } = loadFashionMnist(a.dir, limit > 0 ? { limit } : {});
  const loadS = (performance.now() - t0) / 1000;
  const backend = createBackend(a.backend);
  await backend.ready();
  const dbn = new Dbn({
    nVisible: train.x.cols,
    // Rbm's defaults but for the monitor (the pseudo-likelihood numpy does not compute).
    layers: hidden.map((nHidden) => ({ nHidden, epochs: 1, monitorSize: 0 })),
    backend,
    seed: 1,
  });
  const t1 = performance.now();
  const history = await dbn.pretrain(train.x);
  const pretrainS = (performance.now() - t1) / 1000;
  const result: RunResult = {
    rows: train.x.rows,
    load_s: loadS,
    pretrain_s: pretrainS,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    recon_mse: history.map((h) => h.at(-1)?.reconstructionError ?? Number.NaN),
    description: backend.info.description,
  };
  dbn.dispose();
  backend.dispose();
  console.log(JSON.stringify(result));
}

function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv): RunResult | string {
  const p = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 16 << 20 });
  if (p.status !== 0) return `${path.basename(args[0] ?? cmd)} failed: ${(p.stderr || p.stdout).trim().split('\n').pop() ?? ''}`;
  return JSON.parse(p.stdout.trim().split('\n').pop()!) as RunResult;
}

async function main(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const self = fileURLToPath(import.meta.url);
  const common = ['--limit', a.limit, '--layers', a.layers, '--dir', a.dir];
  const refThreads = a['no-ref'] ? [] : a['ref-threads'].split(',');
  const runs = new Map<string, RunResult[]>();
  const problems: string[] = [];
  const loads: number[] = [];
  // per round, each contender's pretrain seconds (for ratios paired within a round)
  const perRound: Map<string, number>[] = [];
  const add = (key: string, r: RunResult | string): void => {
    if (typeof r === 'string') problems.push(`${key}: ${r}`);
    else {
      runs.set(key, [...(runs.get(key) ?? []), r]);
      perRound[perRound.length - 1]!.set(key, r.pretrain_s);
    }
  };
  for (let round = 0; round < Number(a.rounds); round++) {
    loads.push(loadavg()[0]!);
    perRound.push(new Map());
    // The library first in odd rounds, so neither side always meets the load the other left.
    const library = (): void =>
      add(
        `dbn-node ${a.backend}`,
        runChild(process.execPath, ['--import=tsx', self, '--child', '--backend', a.backend, ...common], process.env),
      );
    if (round % 2 === 1) library();
    for (const threads of refThreads) {
      const env = { ...process.env };
      if (threads === 'default') delete env['OPENBLAS_NUM_THREADS'];
      else env['OPENBLAS_NUM_THREADS'] = threads;
      const args = [path.join(here, 'ref_dbn.py'), '--dir', a.dir, '--layers', a.layers, ...(limit > 0 ? ['--limit', a.limit] : [])];
      add(`numpy (OpenBLAS threads: ${threads})`, runChild('python3', args, env));
    }
    if (round % 2 === 0) library();
  }
  const summary = [...runs].map(([name, rs]) => ({
    name,
    rows: rs[0]!.rows,
    ...(rs[0]!.description === undefined ? {} : { description: rs[0]!.description }),
    pretrain_s: median(rs.map((r) => r.pretrain_s)),
    load_s: median(rs.map((r) => r.load_s)),
    peak_rss_mib: Math.max(...rs.map((r) => r.peak_rss_mib)),
    recon_mse: rs[0]!.recon_mse,
    runs_pretrain_s: rs.map((r) => r.pretrain_s),
  }));
  const pairedSpeedups = perRound.flatMap((r) => {
    const libS = [...r].find(([k]) => k.startsWith('dbn-node'))?.[1];
    const refS = [...r].filter(([k]) => k.startsWith('numpy')).map(([, v]) => v);
    return libS === undefined || refS.length === 0 ? [] : [Math.min(...refS) / libS];
  });
  const lib = summary.find((s) => s.name.startsWith('dbn-node'));
  const refs = summary.filter((s) => s.name.startsWith('numpy'));
  const bestRef = refs.length === 0 ? undefined : refs.reduce((x, y) => (y.pretrain_s < x.pretrain_s ? y : x));
  console.log(
    JSON.stringify(
      {
        bench: 'dbn-pretrain',
        layers: [784, ...hidden],
        epochs_per_layer: 1,
        rounds: Number(a.rounds),
        machine: {
          ...machine(),
          vector: cpuVectorFlags(),
          shared: 'other processes may run: rounds interleaved, medians reported',
          load_1min_per_round: loads,
        },
        results: summary,
        ...(problems.length > 0 ? { problems } : {}),
        numpy_best: bestRef?.name ?? null,
        speedup_over_numpy_best: lib !== undefined && bestRef !== undefined ? bestRef.pretrain_s / lib.pretrain_s : null,
        // the same within each round (the faster numpy of that round ÷ the library that round): the
        // machine's speed drifts between rounds, and a pair run minutes apart shares more of it
        speedup_over_numpy_best_per_round: pairedSpeedups,
        speedup_over_numpy_best_per_round_median: pairedSpeedups.length > 0 ? median(pairedSpeedups) : null,
        peak_rss_under_1_5_gib: lib === undefined ? null : lib.peak_rss_mib < RSS_LIMIT_MIB,
      },
      null,
      2,
    ),
  );
}

await (a.child ? child() : main());
