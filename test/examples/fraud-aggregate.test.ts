import test from 'ava';
import { InvalidOptionError, Standardizer, SyncError, type HostMatrix } from '../../src/index.js';
import { BankAggregator } from '../../examples/fraud/aggregate.js';
import { shareAddress, sharedStandardizer } from '../../examples/fraud/distributed.js';

async function threeBanks(timeoutMs?: number): Promise<BankAggregator[]> {
  const host = await BankAggregator.host(3, timeoutMs);
  return [host, BankAggregator.connect(host.address, 1, 3, timeoutMs), BankAggregator.connect(host.address, 2, 3, timeoutMs)];
}

test('every bank gets the element-wise sum of all contributions, also with rounds entered in different orders', async (t) => {
  const banks = await threeBanks();
  try {
    const a = [
      [1, 2, 3],
      [10, 20, 30],
      [100, 200, 300.5],
    ];
    // Bank 2 asks for round 'b' before 'a'; bank 0 (the host) enters 'a' last.
    const results = await Promise.all([
      Promise.all([banks[1]!.sum('a', a[1]!), banks[1]!.sum('b', [1])]),
      Promise.all([banks[2]!.sum('b', [2]), banks[2]!.sum('a', a[2]!)]).then(([b, x]) => [x, b] as const),
      Promise.all([banks[0]!.sum('b', [4]), new Promise<Float64Array>((r) => setTimeout(() => r(banks[0]!.sum('a', a[0]!)), 50))]).then(
        ([b, x]) => [x, b] as const,
      ),
    ]);
    for (const [sumA, sumB] of results) {
      t.deepEqual(Array.from(sumA), [111, 222, 333.5]);
      t.deepEqual(Array.from(sumB), [7]);
    }
  } finally {
    await Promise.all(banks.map((b) => b.close()));
  }
});

test('contributions of different lengths fail the round on the host with a SyncError naming the bank', async (t) => {
  const banks = await threeBanks(2000);
  try {
    const host = banks[0]!.sum('r', [1, 2]);
    void banks[1]!.sum('r', [1, 2]).catch(() => undefined);
    void banks[2]!.sum('r', [1, 2, 3]).catch(() => undefined);
    const err = await t.throwsAsync(host, { instanceOf: SyncError });
    t.is(err?.code, 'EAGGREGATE');
    t.regex(err!.message, /bank 2 sent 3 numbers, bank 0 2/);
  } finally {
    await Promise.all(banks.map((b) => b.close()));
  }
});

test('a bank that never contributes times the round out, naming the missing bank', async (t) => {
  const banks = await threeBanks(300);
  try {
    void banks[1]!.sum('r', [1]).catch(() => undefined);
    const err = await t.throwsAsync(banks[0]!.sum('r', [1]), { instanceOf: SyncError });
    t.is(err?.code, 'ETIMEDOUT');
    t.regex(err!.message, /waiting for bank 2/);
  } finally {
    await Promise.all(banks.map((b) => b.close()));
  }
});

test('a malformed aggregation address is a SyncError', (t) => {
  const err = t.throws(() => BankAggregator.connect('127.0.0.1:5555', 1, 3), { instanceOf: SyncError });
  t.regex(err!.message, /tcp:\/\/HOST:PORT/);
});

test('federated standardization equals a Standardizer fitted on all banks’ rows together', async (t) => {
  const cols = 4;
  const sizes = [37, 51, 12];
  let state = 12345;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  // Columns with different scales and offsets; the last one constant (std 0 → 1).
  const blocks: HostMatrix[] = sizes.map((rows) => {
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      data[i * cols] = 1000 + 50 * next();
      data[i * cols + 1] = -3 * next();
      data[i * cols + 2] = next() < 0.1 ? 40 : next();
      data[i * cols + 3] = 7;
    }
    return { rows, cols, data };
  });
  const all = new Float32Array(sizes.reduce((a, b) => a + b, 0) * cols);
  let k = 0;
  for (const b of blocks) {
    all.set(b.data, k);
    k += b.data.length;
  }
  const expected = new Standardizer().fit({ rows: all.length / cols, cols, data: all }).parameters;
  const banks = await threeBanks();
  try {
    const scalers = await Promise.all(banks.map((b, i) => sharedStandardizer(b, blocks[i]!)));
    for (const s of scalers) {
      const p = s.parameters;
      for (let j = 0; j < cols; j++) {
        t.true(
          Math.abs(p.mean[j]! - expected.mean[j]!) <= 1e-9 * Math.max(1, Math.abs(expected.mean[j]!)),
          `mean ${j}: ${p.mean[j]} vs ${expected.mean[j]}`,
        );
        t.true(Math.abs(p.std[j]! - expected.std[j]!) <= 1e-9 * expected.std[j]!, `std ${j}: ${p.std[j]} vs ${expected.std[j]}`);
      }
      t.is(p.std[3], 1);
    }
  } finally {
    await Promise.all(banks.map((b) => b.close()));
  }
});

test('shareAddress: every bank reads bank 0’s address back from the sum', async (t) => {
  const banks = await threeBanks();
  try {
    const address = 'tcp://127.0.0.1:45639';
    const got = await Promise.all([
      shareAddress(banks[0]!, 'peer-1', address),
      shareAddress(banks[1]!, 'peer-1', undefined),
      shareAddress(banks[2]!, 'peer-1', undefined),
    ]);
    t.deepEqual(got, [address, address, address]);
    await t.throwsAsync(shareAddress(banks[0]!, 'peer-2', 'tcp://host with space:1'), { instanceOf: InvalidOptionError });
    await t.throwsAsync(shareAddress(banks[0]!, 'peer-3', 'x'.repeat(257)), { instanceOf: InvalidOptionError });
  } finally {
    await Promise.all(banks.map((b) => b.close()));
  }
});
