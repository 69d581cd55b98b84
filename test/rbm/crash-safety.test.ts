import test from 'ava';
import { crashSafety } from '../../bench/crash-safety.js';

// The fast version of bench/crash-safety.ts: writers killed with SIGKILL at random moments while
// they save a model, a checkpoint and an .rbm. Through the library every file must still load;
// the control, writing the same bytes in place, shows that the check sees broken files. Both run
// at once to keep the test short.
test('model and checkpoint files survive SIGKILL at random moments (0 unreadable); naive writes do not', async (t) => {
  const [atomic, naive] = await Promise.all([
    crashSafety({ mode: 'atomic', kills: 10, parallel: 10, seed: 11, maxDelayMs: 300 }),
    crashSafety({ mode: 'naive', kills: 5, parallel: 5, seed: 12, maxDelayMs: 300 }),
  ]);
  t.log(JSON.stringify(atomic));
  t.log(JSON.stringify(naive));
  t.is(atomic.filesChecked, 30);
  t.is(atomic.unreadable, 0, atomic.examples.join('; '));
  t.true(atomic.maxTempFiles <= 1, 'a killed save leaves at most its own temp file; the next save removes it');
  t.true(naive.unreadable >= 1, 'the check sees a truncated file');
});
