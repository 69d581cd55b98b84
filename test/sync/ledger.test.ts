import test from 'ava';
import { HINT_AHEAD, RECENT_SEQUENCES, SenderLedger } from '../../src/sync/ledger.js';

const A = 'aa'.repeat(16);
const B = 'bb'.repeat(16);
const SELF = 'ee'.repeat(16);

test('deliveries, duplicates, stale deltas and gaps are told apart exactly', (t) => {
  const ledger = new SenderLedger();
  const verdicts = [1, 2, 2, 5, 3, 5, 6].map((s) => ledger.onDelta(A, s));
  t.deepEqual(verdicts, ['deliver', 'deliver', 'duplicate', 'deliver', 'stale', 'duplicate', 'deliver']);
  t.deepEqual(ledger.statsOf(A), { delivered: 4, duplicates: 2, stale: 1, gaps: 2, floor: 6 });
});

test('the first delta heard sets the floor just below it (a late joiner counts no gaps)', (t) => {
  const ledger = new SenderLedger();
  t.is(ledger.onDelta(A, 40), 'deliver');
  t.is(ledger.onDelta(A, 39), 'stale');
  t.deepEqual(ledger.statsOf(A), { delivered: 1, duplicates: 0, stale: 1, gaps: 0, floor: 40 });
});

test('a heartbeat moves the floor to the last sequence and counts the tail as gaps', (t) => {
  const ledger = new SenderLedger();
  ledger.onHeartbeat(A, 3);
  t.deepEqual(ledger.statsOf(A), { delivered: 0, duplicates: 0, stale: 0, gaps: 0, floor: 3 });
  t.is(ledger.onDelta(A, 4), 'deliver');
  ledger.onHeartbeat(A, 8);
  t.deepEqual(ledger.statsOf(A), { delivered: 1, duplicates: 0, stale: 0, gaps: 4, floor: 8 });
  ledger.onHeartbeat(A, 2); // an older heartbeat never lowers the floor
  t.is(ledger.statsOf(A)!.floor, 8);
  t.is(ledger.onDelta(A, 8), 'stale');
});

test('a claim about a heard sender moves its floor at most HINT_AHEAD past what it announced', (t) => {
  const ledger = new SenderLedger();
  ledger.onDelta(A, 1);
  ledger.onDelta(A, 2);
  ledger.adoptHints(new Map([[A, 5]]), SELF);
  t.is(ledger.statsOf(A)!.floor, 5);
  t.deepEqual(
    [3, 4, 5, 6].map((s) => ledger.onDelta(A, s)),
    ['stale', 'stale', 'stale', 'deliver'],
  );
  // A hostile claim near 2^53 cannot silence A: at most HINT_AHEAD of its deltas are dropped.
  ledger.adoptHints(new Map([[A, Number.MAX_SAFE_INTEGER]]), SELF);
  t.is(ledger.statsOf(A)!.floor, 6 + HINT_AHEAD);
  t.is(ledger.onDelta(A, 6 + HINT_AHEAD), 'stale');
  t.is(ledger.onDelta(A, 7 + HINT_AHEAD), 'deliver');
  // A lower claim never lowers a floor.
  ledger.adoptHints(new Map([[A, 1]]), SELF);
  t.is(ledger.statsOf(A)!.floor, 7 + HINT_AHEAD);
});

test('a claim about a sender not heard yet counts only up to the sequence it first announces', (t) => {
  const ledger = new SenderLedger();
  ledger.adoptHints(
    new Map([
      [A, Number.MAX_SAFE_INTEGER],
      [B, 10],
      [SELF, 99],
    ]),
    SELF,
  );
  t.is(ledger.size, 0, 'claims create no sender');
  // A first heard by its delta 12: the claim covers at most 12, so 12 is stale and 13 delivered.
  t.is(ledger.onDelta(A, 12), 'stale');
  t.is(ledger.onDelta(A, 13), 'deliver');
  t.deepEqual(ledger.statsOf(A), { delivered: 1, duplicates: 0, stale: 1, gaps: 0, floor: 13 });
  // B first heard by its delta 8 with a claim of 10: the claim covers 8 (stale), not beyond.
  t.deepEqual(
    [8, 9, 10].map((s) => ledger.onDelta(B, s)),
    ['stale', 'deliver', 'deliver'],
  );
  t.is(ledger.statsOf(SELF), undefined, 'its own id is skipped');
});

test('a heartbeat first: the claim counts up to the announced last sequence', (t) => {
  const ledger = new SenderLedger();
  ledger.adoptHints(new Map([[A, 1_000_000]]), SELF);
  ledger.onHeartbeat(A, 7);
  t.is(ledger.statsOf(A)!.floor, 7);
  t.is(ledger.onDelta(A, 8), 'deliver');
});

test('duplicates are remembered for RECENT_SEQUENCES deliveries, older ones count as stale', (t) => {
  const ledger = new SenderLedger();
  for (let s = 1; s <= RECENT_SEQUENCES + 1; s++) ledger.onDelta(A, s);
  t.is(ledger.onDelta(A, 1), 'stale');
  t.is(ledger.onDelta(A, 2), 'duplicate');
});

test('the table is bounded: past maxSenders the least recently heard sender is forgotten', (t) => {
  const ledger = new SenderLedger(2);
  ledger.onDelta(A, 1);
  ledger.onDelta(B, 1);
  ledger.onDelta(A, 2); // A heard after B
  const C = 'cc'.repeat(16);
  ledger.onDelta(C, 1);
  t.is(ledger.size, 2);
  t.is(ledger.statsOf(B), undefined);
  t.deepEqual(Object.keys(ledger.stats()).sort(), [A, C]);
  t.deepEqual([...ledger.floors()].sort(), [
    [A, 2],
    [C, 1],
  ]);
  // Pending claims are bounded too.
  ledger.adoptHints(new Map(Array.from({ length: 10 }, (_, i) => [i.toString(16).padStart(32, '0'), 5] as const)), SELF);
  t.is(ledger.onDelta((9).toString(16).padStart(32, '0'), 3), 'deliver', 'claims past the bound were dropped');
  t.is(ledger.onDelta((0).toString(16).padStart(32, '0'), 3), 'stale', 'a claim within the bound was kept');
});
