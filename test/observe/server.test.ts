/** The observation server on its own: routes, methods, content types, and a port already in use. */
import test from 'ava';
import { createRegistry } from '../../src/cli/observe/prometheus.js';
import { type ObserveServer, startObserveServer } from '../../src/cli/observe/server.js';
import { RunState } from '../../src/cli/observe/state.js';
import { InvalidOptionError } from '../../src/errors.js';

const servers: ObserveServer[] = [];
test.afterEach.always(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(): Promise<{ server: ObserveServer; state: RunState }> {
  const state = new RunState('solo', { epochs: 2 });
  const server = await startObserveServer('127.0.0.1', 0, state, createRegistry(state), (which) =>
    which === 'filters' ? Buffer.from('PNG') : undefined,
  );
  servers.push(server);
  return { server, state };
}

test.serial('GET /status, /metrics, / and the pictures; other paths 404, other methods 405', async (t) => {
  const { server, state } = await serve();
  t.regex(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  state.epochDone({ stage: 0, epoch: 0, phase: 'pretrain', value: 0.5 });
  const status = await fetch(`${server.url}/status`);
  t.is(status.headers.get('content-type'), 'application/json; charset=utf-8');
  const doc = (await status.json()) as {
    self: { name: string; mode: string; reconstructionError: number; history: unknown[] };
    peers: unknown[];
    options: unknown;
  };
  t.like(doc.self, { name: 'solo', mode: 'single', reconstructionError: 0.5 });
  t.is(doc.self.history.length, 1);
  t.deepEqual(doc.peers, []);
  t.deepEqual(doc.options, { epochs: 2 });
  const metrics = await fetch(`${server.url}/metrics`);
  t.regex(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  t.regex(await metrics.text(), /^dbn_reconstruction_error\{name="solo"\} 0\.5$/m);
  const page = await fetch(`${server.url}/`);
  t.regex(await page.text(), /<canvas id="recon"/);
  t.is((await fetch(`${server.url}/filters.png`)).headers.get('content-type'), 'image/png');
  t.is((await fetch(`${server.url}/samples.png`)).status, 404);
  t.is((await fetch(`${server.url}/nope`)).status, 404);
  t.is((await fetch(`${server.url}/status`, { method: 'POST', body: '{}' })).status, 405);
  const head = await fetch(`${server.url}/status`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(await head.text(), '');
});

test.serial('a port in use is one InvalidOptionError naming --metrics-port', async (t) => {
  const { server } = await serve();
  const port = Number(new URL(server.url).port);
  const state = new RunState('other', {});
  const err = await t.throwsAsync(
    startObserveServer('127.0.0.1', port, state, createRegistry(state), () => undefined),
    { instanceOf: InvalidOptionError },
  );
  t.regex(err.message, new RegExp(`--metrics-port ${port} on --metrics-host 127\\.0\\.0\\.1: cannot listen \\(EADDRINUSE\\)`));
});
