/**
 * Wire fuzzing (not part of `npm test`): `--count` mutated messages (default 1,000,000) through
 * each wire's decoder — `decode` of the asynchronous wire (src/sync/wire.ts) and `decodeRound`
 * of the rounds wire (src/sync/rounds-wire.ts) — counting refusals by code, round-trips,
 * accepted mutations and crashes (the definitions are at the top of bench/fuzz-wire-engine.ts).
 * Prints one JSON object with the machine; exits 1 when anything was accepted or crashed.
 *
 * Usage: tsx bench/fuzz-wire.ts [--count 1000000] [--seed 1]
 */
import { parseArgs } from 'node:util';
import { cpuVectorFlags } from './cpu-flags.js';
import { fuzzWire } from './fuzz-wire-engine.js';
import { machine } from './machine.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000000' }, seed: { type: 'string', default: '1' } } });
const count = Number(values.count);
const seed = Number(values.seed);
if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(seed))
  throw new Error('--count must be a positive integer and --seed an integer.');

const results = (['async', 'rounds'] as const).map((wire) => {
  const t0 = performance.now();
  const report = fuzzWire(wire, count, seed);
  const seconds = (performance.now() - t0) / 1000;
  return { ...report, seconds: Number(seconds.toFixed(1)), perSecond: Math.round(count / seconds) };
});
const failures = results.reduce((n, r) => n + r.accepted + r.crashes, 0);
console.log(
  JSON.stringify(
    { bench: 'fuzz-wire', date: new Date().toISOString(), machine: machine(), cpuFlags: cpuVectorFlags(), count, seed, results, failures },
    null,
    2,
  ),
);
process.exitCode = failures === 0 ? 0 : 1;
