/**
 * A view change freezes the rounds: once a peer has told the coordinator its last completed
 * round (or coordinates, with its own), it completes no further round until the new view is in
 * place. Otherwise a message already on its way — the lost peer's chunk sum sent just before it
 * stopped, or a result fetched in the previous view change — completes a round the others
 * never completed, and the new view (which continues after the reported round) finds this peer
 * one round ahead: `EPROTOCOL`, "the peers disagree on the rounds" (seen in the CLI test with a
 * SIGSTOPped peer). And a view change that straddles a round admitting a joiner (some members
 * completed it, some not) is agreed in one view number, with the coordinator's members for
 * everyone: the admission is cancelled. One real `PeerGroup` with a fake transport
 * (`test/helpers/view-fixture.ts`).
 */
import test from 'ava';
import { encodeArrays } from '../../src/sync/rounds-wire.js';
import { A, B, POSITION, deliver, from, groupIn, record, settled } from '../helpers/view-fixture.js';

const STEP = { stage: POSITION.stage, epoch: POSITION.epoch, step: POSITION.step, admit: [] };

function part(sender: string, view: number, round: number, rows: number, values: readonly number[]) {
  return from(sender, 'contribution', view, round, STEP, encodeArrays(Float64Array.of(rows), [Float32Array.from(values)]));
}

function chunkSum(sender: string, view: number, round: number, values: readonly number[]) {
  return from(sender, 'chunk', view, round, {}, [Buffer.from(Float32Array.from(values).buffer)]);
}

test('the lost peer’s chunk sum arriving after this coordinator recorded its state does not complete the round; the round is summed again in the new view', async (t) => {
  // This peer (the lowest id: it coordinates), A and B in view 1; rounds up to 25 done.
  const { group, sent, events } = await groupIn(t, 1, [A, B], 26);
  const tensors = [Float32Array.of(1, 2, 3, 4, 5, 6)];
  const scalars = Float64Array.of(10);
  const round = group.allReduce(POSITION, tensors, scalars);
  t.is(await settled(round), 'pending');
  // Round 26 in view 1: three chunks of 2 elements; this peer owns [0, 2).
  deliver(group, part(A, 1, 26, 10, [10, 20]));
  deliver(group, part(B, 1, 26, 10, [30, 40]));
  const ownSum = sent.filter((s) => s.msg.kind === 'chunk' && s.msg.round === 26);
  t.is(ownSum.length, 2);
  t.deepEqual([...new Float32Array(new Uint8Array(ownSum[0]!.msg.payload[0]!).buffer)], [41, 62]);
  deliver(group, chunkSum(B, 1, 26, [50, 60]));
  // A stops before this peer has its chunk sum: it is lost, this peer coordinates and records round 25 as its last.
  group.views.suspect(A, 'not heard');
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'recover').map((s) => s.endpoint),
    [record(B).endpoint],
  );
  // A's sum, sent before it stopped, arrives late: it must not complete round 26.
  deliver(group, chunkSum(A, 1, 26, [30, 40]));
  t.is(await settled(round), 'pending');
  t.is(group.next, 26);
  // B completed 25 too: view 2 keeps this peer and B after round 25.
  deliver(group, from(B, 'state', 1, 26, { completed: 25, suspects: [A] }));
  const view = sent.filter((s) => s.msg.kind === 'newView');
  t.deepEqual(
    view.map((s) => [s.endpoint, s.msg.view, s.msg.round]),
    [[record(B).endpoint, 2, 25]],
  );
  t.is(group.view, 2);
  t.deepEqual(group.members, [group.id, B].sort());
  // Round 26 again, in view 2: two chunks of 3; this peer sent B its part of B's chunk [3, 6).
  const again = sent.filter((s) => s.msg.kind === 'contribution' && s.msg.view === 2);
  t.is(again.length, 1);
  t.deepEqual([...new Float32Array(new Uint8Array(again[0]!.msg.payload[1]!).buffer)], [4, 5, 6]);
  deliver(group, part(B, 2, 26, 10, [10, 20, 30]));
  deliver(group, chunkSum(B, 2, 26, [7, 8, 9]));
  t.is(await settled(round), 'resolved');
  // This peer's chunk: its own part plus B's (A's contribution counts nowhere); B's chunk as B sent it.
  t.deepEqual([...tensors[0]!], [11, 22, 33, 7, 8, 9]);
  t.deepEqual([...scalars], [20]);
  t.is(group.next, 27);
  t.deepEqual(
    events.filter((e) => e.event === 'warning' || /disagree/.test(e.detail)),
    [],
  );
});

test('a result fetched in one view change that arrives during the next one is not applied: the peer stays at the round it reported', async (t) => {
  const { group, sent } = await groupIn(t, 1, [A, B], 26);
  const tensors = [Float32Array.of(1, 2, 3, 4, 5, 6)];
  const round = group.allReduce(POSITION, tensors, Float64Array.of(10));
  t.is(await settled(round), 'pending');
  // View 2 (from B's coordination, say): everyone stays, A completed round 26 and holds its result.
  deliver(group, from(B, 'newView', 2, 26, { members: [record(A), record(B), group.self], holder: A }));
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'resultRequest').map((s) => [s.endpoint, s.msg.round]),
    [[record(A).endpoint, 26]],
  );
  // A is lost before its result arrives: this peer coordinates view 3 with its state, round 25.
  group.views.suspect(A, 'not heard');
  deliver(group, from(A, 'result', 2, 26, { admit: [] }, encodeArrays(Float64Array.of(30), [Float32Array.of(9, 9, 9, 9, 9, 9)])));
  t.is(await settled(round), 'pending');
  t.is(group.next, 26);
  // B had not completed 26 either: view 3 continues after 25, and this peer is in step.
  deliver(group, from(B, 'state', 2, 26, { completed: 25, suspects: [A] }));
  t.is(group.view, 3);
  t.deepEqual(group.members, [group.id, B].sort());
  t.deepEqual([...tensors[0]!], [1, 2, 3, 4, 5, 6]);
  deliver(group, part(B, 3, 26, 10, [10, 20, 30]));
  deliver(group, chunkSum(B, 3, 26, [0, 0, 0]));
  t.is(await settled(round), 'resolved');
  t.deepEqual([...tensors[0]!], [11, 22, 33, 0, 0, 0]);
});

/** A leader below every other id (the fixture's own id is a hash), and its record. */
const L = '0'.repeat(32);
const leader = { id: L, endpoint: 'tcp://127.0.0.1:3', publicKey: null };

/** This peer, the leader L and A in view 1; in round 26 (a summary round) L admits B, a joiner. */
async function admissionRound(t: Parameters<typeof groupIn>[0]) {
  const fixture = await groupIn(t, 1, [A], 26);
  const { group } = fixture;
  group.remember(leader, 2, Date.now());
  group.members = [L, group.id, A].sort();
  const round = group.allReduce(POSITION, [], Float64Array.of(5));
  t.is(await settled(round), 'pending');
  const admitB = from(L, 'contribution', 1, 26, { ...STEP, admit: [record(B)] }, encodeArrays(Float64Array.of(5), [new Float32Array(0)]));
  deliver(group, admitB);
  deliver(group, part(A, 1, 26, 5, []));
  deliver(group, chunkSum(L, 1, 26, []));
  return { ...fixture, round };
}

test('a view change after an admission round that this peer completed and the coordinator did not: the same view number, its state counts, the admission is cancelled', async (t) => {
  const { group, sent, round } = await admissionRound(t);
  deliver(group, chunkSum(A, 1, 26, []));
  t.is(await settled(round), 'resolved');
  // B is a member from round 27; an admission changes the members, not the view's number.
  t.deepEqual(group.members, [L, group.id, A, B].sort());
  t.is(group.view, 1);
  // A dies; L, which never had A's chunk sum for round 26, coordinates in view 1 and asks this peer.
  deliver(group, from(L, 'recover', 1, 27, { suspects: [A] }));
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'state').map((s) => [s.endpoint, s.msg.view, s.msg.meta['completed']]),
    [[leader.endpoint, 1, 26]],
  );
  // L continues after round 26 (this peer holds it) with the two of them: B's admission, which L never completed, is off.
  deliver(group, from(L, 'newView', 2, 26, { members: [leader, group.self], holder: group.id }));
  t.is(group.view, 2);
  t.deepEqual(group.members, [L, group.id].sort());
});

test('a result fetched after a view change carries no admission: the new view’s members stand (the joiner asks again)', async (t) => {
  const { group, sent, round } = await admissionRound(t);
  // A dies before its chunk sum reaches this peer; L completed round 26 (with B's admission) and coordinates.
  deliver(group, from(L, 'recover', 1, 26, { suspects: [A] }));
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'state').map((s) => s.msg.meta['completed']),
    [25],
  );
  deliver(group, from(L, 'newView', 2, 26, { members: [leader, group.self], holder: L }));
  t.deepEqual(
    sent.filter((s) => s.msg.kind === 'resultRequest').map((s) => [s.endpoint, s.msg.round]),
    [[leader.endpoint, 26]],
  );
  deliver(group, from(L, 'result', 2, 26, { admit: [record(B)] }, encodeArrays(Float64Array.of(15), [])));
  t.is(await settled(round), 'resolved');
  t.is(group.next, 27);
  t.is(group.view, 2);
  t.deepEqual(group.members, [L, group.id].sort());
});
