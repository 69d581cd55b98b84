/**
 * The dashboard in a real browser: Debian's headless chromium (driven by playwright-core, nothing
 * downloaded) loads `/` of a peer while three CLI peers train, and the page draws the training
 * curves of every peer, the peers table and the model's filters. The screenshot is kept under the
 * test's temporary directory; with DBN_NODE_UPDATE_SCREENSHOT=1 it replaces docs/dashboard.png.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { killAll, readMetrics, spawnTrain } from '../peers/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const RUN = [
  '--limit',
  '1200',
  '--layers',
  '64',
  '--epochs',
  '6',
  // Fine-tuning takes ~0.2 s an epoch here: 60 epochs keep the run live (~10 s) while the page loads
  // and every peer's heartbeat brings its points; with 10 (1.8 s) a peer sometimes finished first.
  '--finetune',
  '60',
  '--patience',
  '100',
  '--batch-size',
  '50',
  '--associative',
  '0',
  '--no-pictures',
  '--plaintext',
];
const base = 7300 + (process.pid % 150) * 8;

let browser: BrowserContext | undefined;
test.afterEach.always(async () => {
  await browser?.close();
  browser = undefined;
  killAll();
});

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Chart {
  readonly points: number;
  readonly series: number;
  /** Pixels of the first (blue) curve's colour family. */
  readonly inked: number;
}
interface Drawn {
  readonly recon: Chart;
  readonly loss: Chart;
  readonly acc: Chart;
  readonly rows: (string | null)[][];
  readonly title: string | null;
}

const hasChromium = fs.existsSync(CHROMIUM);
(hasChromium ? test.serial : test.serial.skip)(
  'the dashboard of a live three-peer run draws every peer’s curves, the peers table, the filters and samples',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-dashboard-'));
    const names = ['alpha', 'beta', 'gamma'];
    const zmq = names.map((_, i) => base + i);
    const procs = names.map((name, i) => {
      const others = zmq.filter((_, j) => j !== i).map((p) => `tcp://127.0.0.1:${p}`);
      return spawnTrain(dir, name, [
        '--bind',
        `tcp://127.0.0.1:${zmq[i]}`,
        '--peers',
        others.join(','),
        '--shard',
        `${i + 1}/3`,
        '--name',
        name,
        '--metrics-port',
        '0',
        ...RUN,
      ]);
    });
    const url = (await procs[0]!.waitLine(/^metrics: (http:\/\/\S+)\/metrics/, 60_000))[1]!;
    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1260, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
    });
    // Load the page once fine-tuning has two epochs, so every chart has points.
    await until('two fine-tuning epochs', 90_000, () =>
      procs.every((p) => readMetrics(p).filter((r) => r['phase'] === 'finetune').length >= 2),
    );
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/`);
    // The page's own code runs in the browser: these checks are written as the browser's JavaScript.
    await page.waitForFunction(
      "document.querySelectorAll('#peers tbody tr').length === 2 && Number(document.getElementById('acc').dataset.series) === 3",
      undefined,
      { timeout: 60_000 },
    );
    await page.waitForFunction(
      "document.getElementById('filters').naturalWidth > 0 && document.getElementById('samples').naturalWidth > 0",
      undefined,
      { timeout: 60_000 },
    );
    // Other peers' points arrive with their heartbeats: wait until two fine-tuning epochs of every peer are drawn.
    await page.waitForFunction(
      "Number(document.getElementById('loss').dataset.points) >= 6 && Number(document.getElementById('acc').dataset.points) >= 6",
      undefined,
      { timeout: 60_000 },
    );
    t.true(
      procs.every((p) => p.running),
      'the page was read during the run',
    );
    const drawn = (await page.evaluate(`(() => {
    const chart = (id) => {
      const c = document.getElementById(id);
      const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let inked = 0;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 200 && pixels[i + 2] > 100) inked++;
      return { points: Number(c.dataset.points), series: Number(c.dataset.series), inked };
    };
    return {
      recon: chart('recon'),
      loss: chart('loss'),
      acc: chart('acc'),
      rows: [...document.querySelectorAll('#peers tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      title: document.getElementById('title').textContent,
    };
  })()`)) as Drawn;
    await page.screenshot({ path: path.join(dir, 'dashboard.png'), fullPage: true });
    if (process.env['DBN_NODE_UPDATE_SCREENSHOT'] === '1') fs.copyFileSync(path.join(dir, 'dashboard.png'), 'docs/dashboard.png');
    t.deepEqual(errors, []);
    t.regex(drawn.title ?? '', /^dbn-node · alpha \([0-9a-f]{8}\)$/);
    t.is(drawn.recon.series, 3, 'one reconstruction curve per peer');
    t.true(drawn.recon.points >= 3 * 6, `${drawn.recon.points} reconstruction points for 3 peers × 6 epochs`);
    t.true(drawn.loss.points >= 3 * 2 && drawn.acc.points >= 3 * 2);
    t.true(drawn.recon.inked > 50, 'the curves are on the canvas, not only in its data attributes');
    t.deepEqual(
      drawn.rows.map((r) => [r[0], r[3]]),
      [
        ['beta', 'yes'],
        ['gamma', 'yes'],
      ],
    );
    t.true(
      drawn.rows.every((r) => r[8] === '0'),
      `divergence ${drawn.rows.map((r) => r[8]).join(', ')}`,
    );
    t.log(`screenshot: ${path.join(dir, 'dashboard.png')}`);
    for (const p of procs) t.is(await p.exited(120_000), 0, p.lines.slice(-20).join('\n'));
  },
);
