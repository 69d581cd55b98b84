/**
 * The Prometheus text, the status table and the run statistics, on states built by hand: metric
 * names and labels, values read from the state at scrape time, bounded peer tables, divergence.
 */
import test from 'ava';
import { RunStats, countEvent, fingerprintDivergence, fingerprintOf } from '../../src/distributed/stats.js';
import { createRegistry } from '../../src/cli/observe/prometheus.js';
import { RunState } from '../../src/cli/observe/state.js';
import { checkStatus, formatBytes, formatStatusTable, statusUrl } from '../../src/cli/observe/status-table.js';
import { StatusError } from '../../src/errors.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

/** Parses `name{labels} value` lines into a list (comments skipped). */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      if (m === null) throw new Error(`not a sample line: ${l}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

test('every dbn_ metric is named with its unit, labelled only by bounded labels, and read from the state', async (t) => {
  const state = new RunState('node-a', { epochs: 3 });
  state.stats.traffic('sent', A, 'contribution', 1000);
  state.stats.traffic('sent', A, 'contribution', 500);
  state.stats.traffic('received', A, 'chunk', 700);
  state.stats.onReport(A, { name: 'peer-a', stage: 0, epoch: 1, round: 9 });
  state.stats.refused('non-finite');
  state.stats.roundDone(0.25);
  state.stats.roundDone(0.5);
  state.progress.minibatches = 12;
  state.epochDone({ stage: 0, epoch: 1, phase: 'pretrain', value: 0.0625 });
  const text = await createRegistry(state).metrics();
  const all = samples(text);
  const ours = all.filter((s) => s.name.startsWith('dbn_'));
  t.is(ours.length, all.length, 'every metric is prefixed dbn_');
  const allowed = new Set([
    'name',
    'peer',
    'peer_id',
    'kind',
    'reason',
    'phase',
    'le',
    'quantile',
    'type',
    'space',
    'version',
    'major',
    'minor',
    'patch',
    'kind',
  ]);
  for (const s of ours) for (const k of Object.keys(s.labels)) t.true(allowed.has(k), `${s.name} has label ${k}`);
  const one = (name: string, labels: Record<string, string> = {}): number | undefined =>
    ours.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  t.is(one('dbn_peer_bytes_sent_total', { peer: 'peer-a', peer_id: 'aaaaaaaa', kind: 'contribution' }), 1500);
  t.is(one('dbn_peer_messages_sent_total', { peer: 'peer-a', kind: 'contribution' }), 2);
  t.is(one('dbn_peer_bytes_received_total', { peer: 'peer-a', kind: 'chunk' }), 700);
  t.is(one('dbn_refused_total', { reason: 'non-finite' }), 1);
  t.is(one('dbn_refused_total', { reason: 'malformed' }), 0);
  t.is(one('dbn_rounds_total'), 2);
  t.is(one('dbn_barrier_wait_seconds_total'), 0.75);
  t.is(one('dbn_minibatches_total'), 12);
  t.is(one('dbn_reconstruction_error'), 0.0625);
  t.true(Number.isNaN(one('dbn_validation_accuracy_ratio')!), 'unknown figures are NaN, not 0');
  t.is(one('dbn_phase', { phase: 'pretrain' }), 1);
  t.is(ours.find((s) => s.name === 'dbn_epoch')?.labels['name'], 'node-a');
  t.truthy(one('dbn_process_cpu_seconds_total'), 'process metrics under dbn_');
  // Values are read at scrape time, not copied at registration.
  state.stats.traffic('sent', A, 'contribution', 1);
  t.is(
    samples(await createRegistry(state).metrics()).find(
      (s) => s.name === 'dbn_peer_bytes_sent_total' && s.labels['kind'] === 'contribution',
    )?.value,
    1501,
  );
});

test('peer reports: malformed fields are ignored, names are checked, the table of peers is bounded', (t) => {
  const stats = new RunStats('me');
  stats.onReport(A, {
    name: 'bad name with spaces',
    stage: 'x',
    epoch: -4,
    round: 3,
    points: [{ stage: 0, epoch: 0, phase: 'pretrain', value: 'NaN' }],
  });
  const a = stats.peers.get(A)!;
  t.is(a.name, 'aaaaaaaa');
  t.is(a.round, 3);
  t.is(a.history.length, 0);
  const point = (epoch: number): Record<string, unknown> => ({ stage: 0, epoch, phase: 'pretrain', value: epoch / 10 });
  stats.onReport(A, { points: [point(0), point(1)] });
  stats.onReport(A, { points: [point(1), point(2), point(3)] });
  t.deepEqual(
    a.history.map((p) => p.epoch),
    [0, 1, 2, 3],
    'points repeated in later heartbeats are kept once',
  );
  stats.onReport('not-an-id', { name: 'x' });
  t.false(stats.peers.has('not-an-id'));
  for (let i = 0; i < 400; i++) stats.traffic('received', i.toString(16).padStart(32, '0'), 'heartbeat', 1);
  t.is(stats.peers.size, 256);
  countEvent(stats, 'refused', 'hello from tcp://x:1: its id 12345678 does not derive from its allowlisted key');
  countEvent(stats, 'refused', 'malformed message: Field x must be an integer');
  countEvent(stats, 'peer-lost', 'x');
  t.is(stats.refusals.get('identity'), 1);
  t.is(stats.refusals.get('malformed'), 1);
  t.is(stats.suspects, 1);
});

test('divergence: 0 for the same bits, the largest sampled difference otherwise, compared at the same epoch only', (t) => {
  const w = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
  const same = fingerprintOf(0, 2, [w]);
  t.is(fingerprintDivergence(same, fingerprintOf(0, 2, [Float32Array.from(w)])), 0);
  const moved = Float32Array.from(w);
  moved[Math.floor((0.5 * 1000) / 32)] = w[Math.floor((0.5 * 1000) / 32)]! + 0.25; // the first sampled index
  t.true(Math.abs(fingerprintDivergence(same, fingerprintOf(0, 2, [moved])) - 0.25) < 1e-6);
  const hidden = Float32Array.from(w);
  hidden[1] = 0; // not sampled: only the hash and the norm see it
  const d = fingerprintDivergence(same, fingerprintOf(0, 2, [hidden]));
  t.true(d > 0, 'a difference the samples miss is still not 0');

  const stats = new RunStats('me');
  const warned: number[] = [];
  stats.onDivergence = (_id, _name, div) => warned.push(div);
  stats.setFingerprint(same);
  stats.onReport(B, { fingerprint: fingerprintOf(0, 3, [moved]) });
  t.is(stats.peers.get(B)!.divergence, undefined, 'another epoch is not compared');
  stats.onReport(B, { fingerprint: fingerprintOf(0, 2, [moved]) });
  t.true(stats.peers.get(B)!.divergence! > 0.24);
  t.is(warned.length, 1);

  // a peer outside this one's view (trained apart in a partition, or not joined yet): recorded, not warned about
  const apart = new RunStats('me');
  const warnedApart: string[] = [];
  apart.onDivergence = (id) => warnedApart.push(id);
  apart.isMember = (id) => id !== B;
  apart.setFingerprint(same);
  apart.onReport(B, { fingerprint: fingerprintOf(0, 2, [moved]) });
  t.true(apart.peers.get(B)!.divergence! > 0.24, 'the divergence is recorded');
  t.deepEqual(warnedApart, [], 'no warning about a non-member');
});

const DOC = {
  self: {
    id: A,
    name: 'p0',
    endpoint: 'tcp://127.0.0.1:7000',
    mode: 'peer',
    uptimeSeconds: 12.4,
    phase: 'pretrain',
    stage: 0,
    epoch: 3,
    minibatches: 40,
    samples: 1200,
    round: 41,
    view: 1,
    members: 2,
    reconstructionError: 0.04215,
    loss: null,
    validationAccuracy: null,
    fingerprint: null,
    history: [],
  },
  run: {
    rounds: 42,
    barrierWaitSeconds: 1.24,
    suspects: 0,
    joins: 0,
    snapshotsServed: 0,
    snapshotsTaken: 0,
    refusals: { malformed: 0, 'non-finite': 2 },
  },
  peers: [
    {
      id: B,
      name: 'p1',
      endpoint: 'tcp://127.0.0.1:7001',
      member: true,
      lastHeardSecondsAgo: 0.2,
      stage: 0,
      epoch: 3,
      round: 41,
      divergence: 0,
      divergenceAt: { stage: 0, epoch: 3 },
      sentBytes: 3 * 2 ** 20,
      receivedBytes: 2048,
      sentMessages: 90,
      receivedMessages: 88,
      history: [],
    },
  ],
  options: {},
};

test('the status table: this peer in two lines, one aligned row per peer', (t) => {
  const text = formatStatusTable(checkStatus(DOC, 'test'));
  const lines = text.trimEnd().split('\n');
  t.is(lines[0], 'p0 (aaaaaaaa)  tcp://127.0.0.1:7000  peer  pretrain  stage 0  epoch 3  round 41  view 1  2 member(s)  up 12 s');
  t.is(
    lines[1],
    'recon 0.0421  loss –  val acc –  minibatches 40  rounds 42  waited 1.2 s  suspected 0  admitted 0  snapshots served 0 taken 0  refused non-finite 2',
  );
  t.is(lines[3], 'NAME  ID        ENDPOINT              MEMBER  HEARD  STAGE  EPOCH  ROUND  DIVERGENCE     SENT  RECEIVED');
  t.is(lines[4], 'p1    bbbbbbbb  tcp://127.0.0.1:7001  yes     0.2 s      0      3     41           0  3.0 MiB   2.0 KiB');
  t.is(formatBytes(1023), '1023 B');
  t.regex(formatStatusTable(checkStatus({ ...DOC, peers: [] }, 'test')), /\(no other peers\)/);
});

test('status: a bad URL or a document that is not a status is one StatusError naming it', (t) => {
  t.is(statusUrl('http://h:9/').href, 'http://h:9/status');
  t.is(statusUrl('http://h:9/status').href, 'http://h:9/status');
  const e1 = t.throws(() => statusUrl('ftp://h:9'), { instanceOf: StatusError });
  t.is(e1.code, 'EBADSTATUS');
  t.regex(e1.message, /ftp:\/\/h:9/);
  t.throws(() => checkStatus({ self: {} }, 'http://x/status'), {
    instanceOf: StatusError,
    message: /http:\/\/x\/status is not a dbn-node status document/,
  });
});
