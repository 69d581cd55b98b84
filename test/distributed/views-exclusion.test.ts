/**
 * A peer dropped from the view while it could not hear (stopped, starved) and then resumed: it
 * must stop with `EEXCLUDED` as soon as it is told, never wait on a round, and never go on with a
 * view change of its own. One real `PeerGroup` with a fake transport (`test/helpers/view-fixture.ts`).
 */
import test, { type ExecutionContext } from 'ava';
import { SyncError } from '../../src/errors.js';
import { PeerGroup } from '../../src/distributed/group.js';
import { type WireMember } from '../../src/sync/rounds-wire.js';
import { A, B, type Fixture, HEARTBEAT_MS, POSITION, RUN, TIMEOUT_MS, from, groupIn, record, settled } from '../helpers/view-fixture.js';

/**
 * B sends two heartbeats of view 2 in a row: exactly one newView goes out, to B, naming `view` and
 * `members` (the second heartbeat comes within the same heartbeat period). Returns that message.
 */
function bTwiceToldOnce(
  t: ExecutionContext,
  group: PeerGroup,
  sent: Fixture['sent'],
  view: number,
  members: readonly string[],
): Fixture['sent'][number] {
  group.views.heardFrom(from(B, 'heartbeat', 2, 30, {}));
  group.views.heardFrom(from(B, 'heartbeat', 2, 30, {}));
  const told = sent.filter((s) => s.msg.kind === 'newView');
  t.is(told.length, 1);
  t.is(told[0]!.endpoint, record(B).endpoint);
  t.is(told[0]!.msg.view, view);
  t.deepEqual(
    (told[0]!.msg.meta['members'] as WireMember[]).map((m) => m.id),
    members,
  );
  return told[0]!;
}

test('a peer told it was dropped while its next round starts stops that round with EEXCLUDED instead of waiting forever', async (t) => {
  const { group } = await groupIn(t, 1, [A, B], 26);
  // allReduce lets other events in before it starts a round; the others' view (A and B, after
  // round 25) arrives in that moment, as when a stopped peer resumes between two rounds.
  const round = group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10));
  group.views.onNewView(from(B, 'newView', 2, 25, { members: [record(A), record(B)], holder: A }));
  const outcome = await settled(round);
  t.true(outcome instanceof SyncError, `the round is ${String(outcome)}`);
  t.is((outcome as SyncError).code, 'EEXCLUDED');
  t.regex((outcome as SyncError).message, /dropped from the run's rounds \(view 2/);
  await t.throwsAsync(group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10)), { code: 'EEXCLUDED' });
});

test('a resumed coordinator told it was dropped abandons its own view change: no view of its own, even after the timeout', async (t) => {
  const { group, sent, events } = await groupIn(t, 1, [A, B], 26);
  const round = group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10));
  t.is(await settled(round), 'pending');
  // It suspects A first: as the lowest id it coordinates, and asks B (the only other live member) for its state.
  group.views.suspect(A, 'not heard');
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'recover').map((s) => [s.endpoint, s.msg.view, s.msg.meta['suspects']]),
    [[record(B).endpoint, 1, [A]]],
  );
  // B answers with the view it is in: A and B since round 25, without this peer.
  group.views.onNewView(from(B, 'newView', 2, 25, { members: [record(A), record(B)], holder: A }));
  const outcome = await settled(round);
  t.is((outcome as SyncError).code, 'EEXCLUDED', `the round is ${String(outcome)}`);
  // Three timeouts of heartbeats later nobody answered its coordination: it must not install a view of its own.
  const before = sent.length;
  const start = Date.now();
  for (let now = start; now <= start + 3 * TIMEOUT_MS; now += HEARTBEAT_MS) group.views.tick(now);
  t.is(group.view, 1);
  t.deepEqual(group.members, [group.id, A, B].sort());
  t.deepEqual(
    events.filter((e) => e.event === 'view' || e.event === 'peer-lost').map((e) => e.event),
    ['peer-lost'],
  );
  t.deepEqual(
    sent.slice(before).map((s) => s.msg.kind),
    [],
  );
});

test('a member that speaks in an older view is told the current view and the round it was dropped after, at most once per heartbeat', async (t) => {
  // View 2 is this peer, A and B; A's view 3 drops B after round 30; ten rounds later B still sends heartbeats of view 2.
  const { group, sent } = await groupIn(t, 2, [A, B], 31);
  group.views.onNewView(from(A, 'newView', 3, 30, { members: [record(A), group.self], holder: A }));
  t.deepEqual(group.members, [group.id, A].sort());
  group.next = 41;
  const told = bTwiceToldOnce(t, group, sent, 3, [group.id, A].sort());
  t.is(told.msg.round, 30);
  await new Promise((r) => setTimeout(r, HEARTBEAT_MS + 5));
  group.views.heardFrom(from(B, 'heartbeat', 2, 30, {}));
  t.is(sent.filter((s) => s.msg.kind === 'newView').length, 2);
  // A member of the current view, or a message of the current view, is not told anything.
  group.views.heardFrom(from(A, 'heartbeat', 3, 40, {}));
  t.is(sent.filter((s) => s.msg.kind === 'newView').length, 2);
});

test('a finishing peer dropped before its last round does not finish: the others took that round without it', async (t) => {
  // It completed round 26 (the last) with the old view's parts; A and B went on from round 25 without it.
  const { group } = await groupIn(t, 1, [A, B], 27);
  const finished = group.finish(() => Buffer.from('final model'));
  group.views.onNewView(from(B, 'newView', 2, 25, { members: [record(A), record(B)], holder: A }));
  await t.throwsAsync(finished, { code: 'EEXCLUDED', message: /dropped from the run's rounds/ });
});

test('a finishing peer dropped after its last round finishes: every round it took was taken with the others', async (t) => {
  const { group } = await groupIn(t, 1, [A, B], 27);
  const finished = group.finish(() => Buffer.from('final model'));
  group.views.onNewView(from(B, 'newView', 2, 26, { members: [record(A), record(B)], holder: A }));
  await t.notThrowsAsync(finished);
});

test("a failure after a finishing peer's last round is reported as a warning naming it, and the peer finishes", async (t) => {
  const { group, events } = await groupIn(t, 1, [A, B], 27);
  const finished = group.finish(() => Buffer.from('final model'));
  group.fail(new SyncError('Peer ab12 sent a malformed chunk', 'EPROTOCOL'));
  group.views.onNewView(from(B, 'newView', 2, 26, { members: [record(A), record(B)], holder: A }));
  await t.notThrowsAsync(finished);
  t.deepEqual(
    events.filter((e) => e.event === 'warning').map((e) => e.detail),
    ["after this peer's last round (26): Peer ab12 sent a malformed chunk [EPROTOCOL]; its model is complete"],
  );
});

test('a finishing peer dropped after its last round reports no warning (being dropped then is no failure)', async (t) => {
  const { group, events } = await groupIn(t, 1, [A, B], 27);
  const finished = group.finish(() => Buffer.from('final model'));
  group.views.onNewView(from(B, 'newView', 2, 26, { members: [record(A), record(B)], holder: A }));
  await t.notThrowsAsync(finished);
  t.deepEqual(
    events.filter((e) => e.event === 'warning'),
    [],
  );
});

test('a restarted peer still joining ignores a "you were dropped" view queued for its former instance on the same endpoint', async (t) => {
  const { group } = await groupIn(t, 0, [], 0);
  group.members = [];
  const started = group.start();
  group.views.onNewView(from(B, 'newView', 2, -1, { members: [record(A), record(B)], holder: A }));
  t.is(await settled(started), 'pending');
  t.is(group.view, 0);
});

test('a restarted peer that hears nobody says when it gives up that the run may be over, and for how long finished peers answer', async (t) => {
  const group = await PeerGroup.open({
    runId: RUN,
    fingerprint: 'ab'.repeat(32),
    mesh: { bind: 'tcp://127.0.0.1:0', plaintext: true },
    maxFrameBytes: 1 << 20,
    // Port 1: nobody listens there (the others finished and exited).
    peers: [{ endpoint: 'tcp://127.0.0.1:1', publicKey: null }],
    expectedPeers: 2,
    heartbeatMs: HEARTBEAT_MS,
    peerTimeoutMs: 1500,
    startTimeoutMs: 300,
  });
  t.teardown(() => group.close());
  const err = await t.throwsAsync(group.start(), { code: 'ESTART' });
  t.regex(err.message, /heard from none; missing: tcp:\/\/127\.0\.0\.1:1\. Start every peer/);
  t.regex(err.message, /restarted after the others finished the run, the run is over: .* for only 3 s \(2 × --peer-timeout-ms\)/);
});

// ------------------------------------------------------------- split groups (a partition that healed)

/** An id below any the group gets (its own id is random hex). */
const Z = '0'.repeat(31) + '1';

test('a member of another group in the same view number is told this view (members and number), at most once per heartbeat', async (t) => {
  // This peer and A went on in view 2 without B; B, alone, also made a view 2.
  const { group, sent } = await groupIn(t, 2, [A], 30);
  bTwiceToldOnce(t, group, sent, 2, [group.id, A].sort());
  // a newer view from a non-member says nothing (that peer's group tells this one when it hears it)
  group.views.heardFrom(from(B, 'heartbeat', 3, 30, {}));
  t.is(sent.filter((s) => s.msg.kind === 'newView').length, 1);
});

test('a split where the other group of the same view number is larger: this peer stops with EEXCLUDED, its rounds and its finish refused', async (t) => {
  const { group, events } = await groupIn(t, 2, [], 30);
  const round = group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10));
  group.views.onNewView(from(B, 'newView', 2, -1, { members: [record(A), record(B)], holder: B }));
  const outcome = await settled(round);
  t.true(outcome instanceof SyncError, `the round is ${String(outcome)}`);
  t.is((outcome as SyncError).code, 'EEXCLUDED');
  t.regex(
    (outcome as SyncError).message,
    /^The run split into two groups that trained apart \(a network partition that healed\): this peer's group \(view 2, 1 member\(s\): [0-9a-f]{8}\) and a larger one.*\(view 2, 2 member\(s\): ffffffff, ffffffff\)\. This group's rounds are not the run's: this peer stops\. Restart it to rejoin/,
  );
  await t.throwsAsync(
    group.finish(() => Buffer.from('model')),
    { code: 'EEXCLUDED' },
  );
  t.deepEqual(
    events.filter((e) => e.event === 'warning'),
    [],
  );
});

test('a split where this group is larger: it goes on, says so once, and keeps its view', async (t) => {
  const { group, events } = await groupIn(t, 2, [A], 30);
  for (let i = 0; i < 3; i++) group.views.onNewView(from(B, 'newView', 2, -1, { members: [record(B)], holder: B }));
  const warnings = events.filter((e) => e.event === 'warning').map((e) => e.detail);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /: this group \(view 2, 2 member\(s\).*\) and another \(view 2, 1 member\(s\): ffffffff\); this group is larger/);
  t.is(group.view, 2);
  t.deepEqual(group.members, [group.id, A].sort());
  const round = group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10));
  t.is(await settled(round), 'pending');
});

test('a split between groups of one size: the group holding the lowest id wins, on both sides', async (t) => {
  // This group (this peer and A) against {Z, B}: Z is the lowest id, so this group stops.
  const lose = await groupIn(t, 2, [A], 30);
  lose.group.remember({ id: Z, endpoint: 'tcp://127.0.0.1:3', publicKey: null }, 3, Date.now());
  lose.group.views.onNewView(from(B, 'newView', 2, -1, { members: [record(Z), record(B)], holder: B }));
  await t.throwsAsync(lose.group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10)), { code: 'EEXCLUDED' });
  // This group (this peer and A) against {B} and a higher id: this peer's id is lower, so this group wins.
  const win = await groupIn(t, 2, [A], 30);
  const high = 'f'.repeat(32);
  win.group.remember({ id: high, endpoint: 'tcp://127.0.0.1:3', publicKey: null }, 3, Date.now());
  win.group.views.onNewView(
    from(B, 'newView', 2, -1, { members: [record(B), { id: high, endpoint: 'tcp://127.0.0.1:3', publicKey: null }], holder: B }),
  );
  t.is(win.events.filter((e) => e.event === 'warning').length, 1);
  t.is(await settled(win.group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10))), 'pending');
});

test('the larger group wins whatever the view numbers: a lone peer that lost its group twice (a newer view) stops, the larger group goes on', async (t) => {
  // This group: this peer and A in view 2. B (dropped by it after round 25) went on alone and is in view 4.
  const big = await groupIn(t, 1, [A, B], 26);
  big.group.views.onNewView(from(A, 'newView', 2, 25, { members: [record(A), big.group.self], holder: A }));
  // B speaks in its newer view: a peer this group dropped is told this view (it compares and stops) ...
  big.group.views.heardFrom(from(B, 'heartbeat', 4, 40, {}));
  const told = big.sent.filter((s) => s.msg.kind === 'newView' && s.endpoint === record(B).endpoint);
  t.is(told.length, 1);
  t.is(told[0]!.msg.view, 2);
  // ... and B's newer view of one does not exclude this group: it says so and goes on.
  big.group.views.onNewView(from(B, 'newView', 4, 40, { members: [record(B)], holder: B }));
  t.is(big.group.view, 2);
  t.regex(
    big.events.find((e) => e.event === 'warning')?.detail ?? '',
    /this group \(view 2, 2 member\(s\).*\) and another \(view 4, 1 member\(s\)/,
  );
  t.is(await settled(big.group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10))), 'pending');
  // The lone peer's side: in view 4 alone, told the older view of a larger group, it stops.
  const lone = await groupIn(t, 4, [], 41);
  lone.group.views.onNewView(from(A, 'newView', 2, -1, { members: [record(A), record(B)], holder: A }));
  await t.throwsAsync(lone.group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10)), {
    code: 'EEXCLUDED',
    message: /this peer's group \(view 4, 1 member\(s\).*\) and a larger one.*\(view 2, 2 member\(s\)/,
  });
});

test('a peer not dropped by this one that speaks in a newer view is not told anything', async (t) => {
  const { group, sent } = await groupIn(t, 2, [A], 30);
  group.views.heardFrom(from(B, 'heartbeat', 3, 30, {}));
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'newView'),
    [],
  );
});

test('a forged split view counts only peers this one knows: made-up members cannot make it win', async (t) => {
  const { group, events } = await groupIn(t, 2, [A], 30);
  const made = ['1', '2', '3', '4'].map((d) => ({ id: d.repeat(32), endpoint: `tcp://127.0.0.1:${d}`, publicKey: null }));
  group.views.onNewView(from(B, 'newView', 2, -1, { members: [record(B), ...made], holder: B }));
  t.is(await settled(group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10))), 'pending');
  t.regex(events.find((e) => e.event === 'warning')?.detail ?? '', /and another \(view 2, 1 member\(s\): ffffffff\)/);
});

test('a view of the same number from a member, or naming a member of this view, is no split', async (t) => {
  const { group, events } = await groupIn(t, 2, [A], 30);
  group.views.onNewView(from(A, 'newView', 2, -1, { members: [record(B)], holder: B }));
  group.views.onNewView(from(B, 'newView', 2, -1, { members: [record(A), record(B)], holder: B }));
  t.deepEqual(events, []);
  t.is(await settled(group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10))), 'pending');
});

test('peers dropped in a view change are probed with a heartbeat once per peer timeout; members are not probed', async (t) => {
  const { group } = await groupIn(t, 1, [A, B], 30);
  group.views.onNewView(from(A, 'newView', 2, 29, { members: [record(A), group.self], holder: A }));
  const start = Date.now();
  t.deepEqual(group.views.toProbe(start), [B]);
  t.deepEqual(group.views.toProbe(start + TIMEOUT_MS - 1), []);
  t.deepEqual(group.views.toProbe(start + TIMEOUT_MS), [B]);
  // B is admitted again: no more probes
  group.members = [group.id, A, B].sort();
  t.deepEqual(group.views.toProbe(start + 3 * TIMEOUT_MS), []);
});

// ------------------------------------------------------------- fewest members (--min-peers)

test('with minPeers 2, a view change that keeps 2 members goes on, and one that leaves this peer alone stops it with EQUORUM', async (t) => {
  const { group, events } = await groupIn(t, 1, [A, B], 30, { minPeers: 2 });
  // B is lost: A and this peer go on in view 2.
  group.views.onNewView(from(A, 'newView', 2, 29, { members: [record(A), group.self], holder: A }));
  t.is(group.view, 2);
  const round = group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10));
  t.is(await settled(round), 'pending');
  // A is not heard either: as the only live member this peer coordinates a view of itself alone, and stops instead.
  group.views.suspect(A, 'not heard');
  const outcome = await settled(round);
  t.true(outcome instanceof SyncError, `the round is ${String(outcome)}`);
  t.is((outcome as SyncError).code, 'EQUORUM');
  t.regex(
    (outcome as SyncError).message,
    /^View 3 keeps 1 member\(s\) \([0-9a-f]{8}\) after round 29, fewer than --min-peers 2: this peer stops instead of training on without the others/,
  );
  t.is(group.view, 2, 'the view of one was not applied');
  t.deepEqual(
    events.filter((e) => e.event === 'view').map((e) => e.detail),
    ['view 2: 2 member(s) after round 29; dropped ffffffff'],
  );
});

test('without minPeers a peer left alone goes on in a view of one (the default)', async (t) => {
  const { group } = await groupIn(t, 1, [A, B], 30);
  group.views.onNewView(from(A, 'newView', 2, 29, { members: [record(A), group.self], holder: A }));
  group.views.suspect(A, 'not heard');
  t.is(group.view, 3);
  t.deepEqual(group.members, [group.id]);
  t.is(await settled(group.allReduce(POSITION, [new Float32Array(6)], Float64Array.of(10))), 'resolved');
});
