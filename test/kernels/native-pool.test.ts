// The native backend's fork-join pool: its workers spin for a few milliseconds after a product
// (a training step's products come back to back), then sleep — an idle process burns no core.
import test from 'ava';
import { createBackend } from '../../src/kernels/index.js';

test('after a burst of threaded products the native pool goes to sleep: an idle process uses (almost) no CPU', async (t) => {
  const b = createBackend('native');
  try {
    await b.ready();
  } catch {
    t.pass('the native backend does not load here (its own tests say why)');
    return;
  }
  t.regex(b.info.description, /threads?/);
  const [m, k, n] = [100, 784, 500];
  const x = b.alloc(m, k);
  const w = b.alloc(k, n);
  const out = b.alloc(m, n);
  b.write(x, new Float32Array(m * k).fill(0.5));
  b.write(w, new Float32Array(k * n).fill(0.25));
  for (let i = 0; i < 50; i++) b.gemm(out, x, w);
  // The workers spin for at most 5 ms after the last product; 100 ms later they must be asleep.
  await new Promise((r) => setTimeout(r, 100));
  const before = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 400));
  const used = process.cpuUsage(before);
  const cpuMs = (used.user + used.system) / 1000;
  const wallMs = performance.now() - t0;
  // A spinning worker would use about wallMs of CPU; the event loop's own idling uses a few ms.
  t.true(cpuMs < 0.1 * wallMs, `${cpuMs.toFixed(1)} ms of CPU in ${wallMs.toFixed(0)} ms idle`);
  // And the products still run after the pool slept (it wakes on the next one).
  b.gemm(out, x, w);
  const got = new Float32Array(m * n);
  b.read(out, got);
  t.is(got[0], 0.5 * 0.25 * k);
  b.dispose();
});
