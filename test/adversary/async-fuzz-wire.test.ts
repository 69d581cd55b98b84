/**
 * The fast version of bench/fuzz-wire.ts: 20,000 mutated messages through each wire's decoder
 * (10,000 per wire): nothing but WireFormatError is thrown, and every mutation that still
 * decodes re-encodes to exactly the bytes it came from (nothing ignored or altered).
 */
import test from 'ava';
import { fuzzWire } from '../../bench/fuzz-wire-engine.js';

for (const wire of ['async', 'rounds'] as const) {
  test(`${wire} wire: 10,000 mutations, no crash, none accepted`, (t) => {
    const r = fuzzWire(wire, 10_000, 7);
    t.log(JSON.stringify({ refused: r.refused, roundTrip: r.roundTrip, byCode: r.byCode }));
    t.deepEqual(r.examples, []);
    t.is(r.crashes, 0);
    t.is(r.accepted, 0);
    t.is(r.refused + r.roundTrip, 10_000);
    // The mutations reach past the first checks: at least five distinct refusal codes.
    t.true(Object.keys(r.byCode).length >= 5);
  });
}
