/**
 * Three real `dbn-node train` peers on loopback with `--metrics-port`, watched while they train:
 * `/metrics` and `/status` of each (and `dbn-node status` as a user types it) agree with each
 * other (bytes sent by A to B = received by B from A, within the rounds in flight; exactly at the
 * end), with the `--metrics` JSONL, and show identical replicas (divergence 0). Small data and a
 * small layer keep the run to seconds; every wait is bounded and every process killed afterwards.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killAll, readMetrics, spawnTrain } from '../peers/harness.js';
import type { Proc } from '../peers/harness.js';
import type { StatusDocument } from '../../src/cli/observe/state.js';

const RUN = [
  '--limit',
  '900',
  '--layers',
  '64',
  '--epochs',
  '14',
  '--finetune',
  '2',
  '--batch-size',
  '50',
  '--associative',
  '0',
  '--no-pictures',
  '--plaintext',
];
const base = 7600 + (process.pid % 150) * 8;

test.afterEach.always(() => killAll());

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parseMetrics(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(l)!;
      return {
        name: m[1]!,
        labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!])),
        value: Number(m[3]),
      };
    });
}

function value(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

async function get(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

/** `dbn-node status <args>` as a user runs it. */
function statusCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('bin/dbn-node.js'), 'status', ...args], {
      env: { ...process.env, DBN_NODE_DEV: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The divergence each peer of `url` shows, once all are known. */
async function divergenceOf(url: string, ms: number): Promise<(number | null)[]> {
  const end = Date.now() + ms;
  for (;;) {
    const doc = JSON.parse(await get(`${url}/status`)) as StatusDocument;
    const d = doc.peers.map((p) => p.divergence);
    if ((d.length === 2 && d.every((x) => x !== null)) || Date.now() > end) return d;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const pretrainRecords = (p: Proc): Record<string, unknown>[] => readMetrics(p).filter((r) => r['phase'] === 'pretrain');

/** Bytes of the rounds' messages (contribution, chunk) `from` sent to `to`, and how many rounds `from` completed. */
function roundBytes(samples: readonly Sample[], direction: 'sent' | 'received', peer: string): number {
  return ['contribution', 'chunk'].reduce((a, kind) => a + value(samples, `dbn_peer_bytes_${direction}_total`, { peer, kind }), 0);
}

type Scrape = { readonly metrics: Sample[]; readonly status: StatusDocument };

/** Each peer's /status names the others and their ids; the rounds' bytes of each pair agree within the rounds in flight. */
function checkScrapes(t: ExecutionContext, scraped: readonly Scrape[], names: readonly string[], ids: readonly string[]): void {
  for (const [i, s] of scraped.entries()) {
    t.is(s.status.self.name, names[i]!);
    t.is(s.status.self.mode, 'peer');
    t.is(s.status.self.members, 3);
    t.deepEqual(
      s.status.peers.map((p) => [p.name, p.id, p.member]),
      names.flatMap((n, j) => (j === i ? [] : [[n, ids[j], true]])),
      'each peer knows the others by name and id',
    );
    t.is(value(s.metrics, 'dbn_peers_alive'), 3);
    t.true(value(s.metrics, 'dbn_round') >= 0 && s.status.self.round >= 0);
  }
  // Bytes of the rounds sent by A to B = received by B from A, within the rounds in flight.
  for (const [a, sa] of scraped.entries()) {
    for (const [b, sb] of scraped.entries()) {
      if (a === b) continue;
      const sent = roundBytes(sa.metrics, 'sent', names[b]!);
      const received = roundBytes(sb.metrics, 'received', names[a]!);
      const perRound = sent / Math.max(1, value(sa.metrics, 'dbn_rounds_total'));
      const inFlight = (Math.abs(value(sa.metrics, 'dbn_rounds_total') - value(sb.metrics, 'dbn_rounds_total')) + 2) * perRound;
      t.true(
        sent > 0 && Math.abs(sent - received) <= inFlight,
        `${names[a]}→${names[b]}: sent ${sent}, received ${received}, in flight at most ${inFlight}`,
      );
    }
  }
}

/** After the run: the scraped figures are the JSONL's, per-peer traffic adds up, and the rounds' bytes agree exactly pair by pair. */
function checkAfterExit(
  t: ExecutionContext,
  procs: readonly Proc[],
  scraped: readonly Scrape[],
  names: readonly string[],
  ids: readonly string[],
): void {
  for (const [i, p] of procs.entries()) {
    const records = readMetrics(p);
    // The scraped reconstruction error is the JSONL's at the scraped epoch, to the bit.
    const m = scraped[i]!.metrics;
    const at = records.find((r) => r['phase'] === 'pretrain' && r['epoch'] === value(m, 'dbn_epoch'));
    t.is(
      at?.['reconstructionError'],
      value(m, 'dbn_reconstruction_error'),
      `${p.name}: /metrics and the JSONL at epoch ${value(m, 'dbn_epoch')}`,
    );
    t.true(value(m, 'dbn_minibatches_total') >= (at?.['epoch'] as number) + 1);
    // The JSONL's end-of-run totals: per-peer traffic adds up to the peer's bytes sent and received.
    const stats = records.find((r) => r['event'] === 'stats')!;
    const traffic = stats['traffic'] as Record<string, { name: string; sent: Record<string, number>; received: Record<string, number> }>;
    const sum = (dir: 'sent' | 'received'): number =>
      Object.values(traffic).reduce((a, x) => a + Object.values(x[dir]).reduce((s, v) => s + v, 0), 0);
    t.is(sum('sent'), stats['bytesSent'] as number);
    t.is(sum('received'), stats['bytesReceived'] as number);
  }
  // At the end no round is in flight: the rounds' bytes agree exactly, pair by pair.
  const finals = procs.map(
    (p) =>
      readMetrics(p).find((r) => r['event'] === 'stats')!['traffic'] as Record<
        string,
        { sent: Record<string, number>; received: Record<string, number> }
      >,
  );
  for (const a of [0, 1, 2]) {
    for (const b of [0, 1, 2]) {
      if (a === b) continue;
      for (const kind of ['contribution', 'chunk'])
        t.is(finals[a]![ids[b]!]!.sent[kind], finals[b]![ids[a]!]!.received[kind], `${names[a]}→${names[b]} ${kind}`);
    }
  }
}

test.serial(
  'three peers with --metrics-port: /metrics, /status and `dbn-node status` agree with each other and the JSONL while they train',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-observe-'));
    const names = ['p0', 'p1', 'p2'];
    const zmq = names.map((_, i) => base + i);
    const http = names.map((_, i) => base + 4 + i);
    const procs = names.map((name, i) => {
      const others = zmq.filter((_, j) => j !== i).map((p) => `tcp://127.0.0.1:${p}`);
      return spawnTrain(dir, name, [
        '--bind',
        `tcp://127.0.0.1:${zmq[i]}`,
        '--peers',
        others.join(','),
        '--shard',
        `${i + 1}/3`,
        '--name',
        name,
        '--metrics-port',
        String(http[i]),
        ...RUN,
      ]);
    });
    const urls = await Promise.all(procs.map(async (p) => (await p.waitLine(/^metrics: (http:\/\/\S+)\/metrics/, 60_000))[1]!));
    t.deepEqual(
      urls,
      http.map((p) => `http://127.0.0.1:${p}`),
    );

    // `dbn-node status` as a user types it (started now: a CLI process takes seconds to start).
    const cli = Promise.all([statusCli(['--url', urls[0]!]), statusCli(['--url', urls[1]!, '--json'])]);
    // During the run: once every peer finished two pretraining epochs, scrape all three at once.
    await until('two epochs on every peer', 60_000, () => procs.every((p) => pretrainRecords(p).length >= 2));
    const scraped = await Promise.all(
      urls.map(async (u) => ({
        metrics: parseMetrics(await get(`${u}/metrics`)),
        status: JSON.parse(await get(`${u}/status`)) as StatusDocument,
      })),
    );
    const [table, json] = await cli;
    t.true(
      procs.every((p) => p.running),
      'the scrapes happened during the run',
    );
    t.is(table.code, 0, table.stderr);
    t.is(json.code, 0, json.stderr);
    fs.writeFileSync(path.join(dir, 'status-table.txt'), table.stdout);
    t.log(`dbn-node status --url ${urls[0]}\n${table.stdout}`);
    t.regex(table.stdout, /^p0 \([0-9a-f]{8}\) {2}tcp:\/\/127\.0\.0\.1:\d+ {2}peer {2}(pretrain|finetune) /);
    t.regex(table.stdout, /\np1 +[0-9a-f]{8} {2}tcp:\/\/127\.0\.0\.1:\d+ {2}yes /);
    t.regex(table.stdout, /\np2 +[0-9a-f]{8} {2}tcp:\/\/127\.0\.0\.1:\d+ {2}yes /);
    t.is((JSON.parse(json.stdout) as StatusDocument).self.name, 'p1');

    const ids = scraped.map((s) => s.status.self.id!);
    checkScrapes(t, scraped, names, ids);

    // Replica divergence: each peer compares the others' parameter fingerprints with its own; in
    // synchronous rounds the replicas hold the same bits, so it is 0.
    const divergences = await Promise.all(urls.map((u) => divergenceOf(u, 30_000)));
    t.true(
      procs.every((p) => p.running),
      'divergence was read during the run',
    );
    t.deepEqual(divergences, [
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    for (const p of procs) t.is(await p.exited(120_000), 0, p.lines.slice(-20).join('\n'));

    checkAfterExit(t, procs, scraped, names, ids);
    t.regex(
      procs[0]!.lines.join('\n'),
      /fine-tune epoch 0: loss [\d.]+ {2}train acc [\d.]+ {2}val acc 0\.\d+/,
      'validation accuracy is a number in peer mode',
    );
  },
);
