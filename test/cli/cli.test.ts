import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';

const bin = path.resolve('bin/dbn-node.js');

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DBN_NODE_DEV: '1' },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-cli-'));
const run = path.join(dir, 'run');
const model = path.join(run, 'model.dbn');

test.serial('train on a slice of the bundled digits writes a model, metrics and pictures', (t) => {
  const metrics = path.join(dir, 'm.jsonl');
  const r = cli([
    'train',
    '--limit',
    '600',
    '--layers',
    '49,25',
    '--associative',
    '40',
    '--epochs',
    '2',
    '--finetune',
    '3',
    '--out',
    run,
    '--metrics',
    metrics,
    '--backend',
    'js',
    '--seed',
    '3',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /backend: js/);
  t.regex(r.stdout, /bundled MNIST digits \(480 train \/ 120 test, 784 features\)/);
  t.regex(r.stdout, /test accuracy \d+\.\d\d%/);
  t.regex(r.stdout, /trained the associative layer in [\d.]+s; free-energy test accuracy \d+\.\d\d%/);
  t.true(fs.existsSync(model));
  const lines = fs
    .readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const pre = lines.filter((l) => l['phase'] === 'pretrain');
  t.deepEqual(
    pre.map((l) => [l['layer'], l['epoch']]),
    [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ],
  );
  t.true(pre.every((l) => typeof l['reconstructionError'] === 'number'));
  t.deepEqual(
    lines.filter((l) => l['phase'] === 'associative').map((l) => l['epoch']),
    [0, 1],
  );
  t.is(lines.filter((l) => l['phase'] === 'finetune').length, 3);
  for (const f of ['filters.png', 'samples.png']) {
    const png = PNG.sync.read(fs.readFileSync(path.join(run, f)));
    t.true(png.width > 28 && png.height > 28, f);
  }
  const samples = PNG.sync.read(fs.readFileSync(path.join(run, 'samples.png')));
  t.deepEqual([samples.width, samples.height], [(10 * 29 + 1) * 2, (10 * 29 + 1) * 2], 'one row of ten per class');
});

test.serial('info, evaluate, sample and filters read the model', (t) => {
  const info = cli(['info', '--model', model]);
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /layer 0: 784 bernoulli → 49 bernoulli, 2 epoch\(s\) trained/);
  t.regex(info.stdout, /layer 1: 49 bernoulli → 25 bernoulli/);
  t.regex(info.stdout, /classifier: softmax over 10 classes/);
  t.regex(
    info.stdout,
    /associative: 25 features \+ 10 labels → 40, 2 epoch\(s\) trained, lr 0\.1, labels clamped in the negative phase, discriminative β 1/,
  );
  const ev = cli(['evaluate', '--model', model, '--limit', '600', '--backend', 'js', '--seed', '3', '--json']);
  t.is(ev.code, 0, ev.stderr);
  const e = JSON.parse(ev.stdout) as { accuracy: number; rows: number; confusionMatrix: number[][] };
  t.is(e.rows, 120);
  t.is(
    e.confusionMatrix.flat().reduce((a, b) => a + b, 0),
    120,
  );
  const out = path.join(dir, 's.png');
  const s = cli(['sample', '--model', model, '--count', '16', '--steps', '50', '--out', out, '--backend', 'js']);
  t.is(s.code, 0, s.stderr);
  const png = PNG.sync.read(fs.readFileSync(out));
  t.is(png.width, (4 * 29 + 1) * 2);
  const f = cli(['filters', '--model', model, '--count', '9', '--out', path.join(dir, 'f.png'), '--backend', 'js']);
  t.is(f.code, 0, f.stderr);
  const all = path.join(dir, 'all.png');
  const csv = path.join(dir, 'sevens.csv');
  const c = cli([
    'sample',
    '--model',
    model,
    '--class',
    'all',
    '--count',
    '3',
    '--steps',
    '20',
    '--out',
    all,
    '--backend',
    'js',
    '--seed',
    '4',
  ]);
  t.is(c.code, 0, c.stderr);
  const grid = PNG.sync.read(fs.readFileSync(all));
  t.deepEqual([grid.width, grid.height], [(3 * 29 + 1) * 2, (10 * 29 + 1) * 2], 'three columns, one row per class');
  const k = cli([
    'sample',
    '--model',
    model,
    '--class',
    '7',
    '--count',
    '5',
    '--steps',
    '20',
    '--csv',
    csv,
    '--backend',
    'js',
    '--seed',
    '4',
  ]);
  t.is(k.code, 0, k.stderr);
  const rows = fs
    .readFileSync(csv, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(',').map(Number));
  t.is(rows.length, 5);
  t.true(rows.every((r) => r.length === 784 && r.every((v) => v >= 0 && v <= 1)));
  t.false(fs.existsSync(path.join(process.cwd(), 'samples.png')), 'no PNG when only --csv is given');
  const again = cli([
    'sample',
    '--model',
    model,
    '--class',
    '7',
    '--count',
    '5',
    '--steps',
    '20',
    '--csv',
    csv,
    '--force',
    '--backend',
    'js',
    '--seed',
    '4',
  ]);
  t.is(again.code, 0, again.stderr);
  t.is(fs.readFileSync(csv, 'utf8'), rows.map((r) => r.map((v) => v.toFixed(6)).join(',')).join('\n') + '\n', 'same seed, same CSV');
  const exact = cli([
    'sample',
    '--model',
    model,
    '--class',
    '7',
    '--count',
    '5',
    '--steps',
    '20',
    '--csv',
    csv,
    '--force',
    '--backend',
    'js',
    '--seed',
    '4',
    '--label-strength',
    '1',
    '--down-pass',
    'mean',
  ]);
  t.is(exact.code, 0, exact.stderr);
  t.not(
    fs.readFileSync(csv, 'utf8'),
    rows.map((r) => r.map((v) => v.toFixed(6)).join(',')).join('\n') + '\n',
    '--label-strength and --down-pass reach Dbn.generate',
  );
});

test.serial('bad flags and files: one line on stderr, non-zero exit, nothing overwritten', (t) => {
  const before = fs.readFileSync(model);
  const cases: [string[], RegExp][] = [
    [['train', '--out', run, '--limit', '50'], /exists; pass --force/],
    [['train', '--layers', '10,x', '--out', path.join(dir, 'x')], /--layers must be a comma-separated list of positive integers/],
    [['train', '--backend', 'cuda', '--out', path.join(dir, 'y'), '--limit', '50'], /Unknown backend 'cuda'/],
    [['train', '--data', path.join(dir, 'nope.csv'), '--out', path.join(dir, 'z')], /nope\.csv/],
    [['train', '--epochz', '3'], /Unknown argument: epochz/],
    [['evaluate', '--model', path.join(dir, 'missing.dbn')], /no such file/],
    [['info', '--model', path.join(run, 'filters.png')], /not a dbn-node model file/],
    [['sample', '--model', model, '--out', path.join(run, 'samples.png')], /exists; pass --force/],
    [
      ['sample', '--model', model, '--class', '10', '--out', path.join(dir, 'c.png')],
      /--class must be 'all' or an integer in \[0, 9\], got '10'/,
    ],
    [['sample', '--model', model, '--class', 'x', '--out', path.join(dir, 'c.png')], /--class must be 'all'/],
    [
      ['sample', '--model', model, '--class', '3', '--label-strength', '-1', '--out', path.join(dir, 'c.png')],
      /--label-strength must be 'auto' or a number >= 0, got '-1'/,
    ],
    [
      ['sample', '--model', model, '--class', '3', '--label-strength', 'strong', '--out', path.join(dir, 'c.png')],
      /--label-strength must be 'auto' or a number >= 0, got 'strong'/,
    ],
    [['sample', '--model', model, '--class', '3', '--down-pass', 'up', '--out', path.join(dir, 'c.png')], /down-pass.*up/],
    [[], /Name a command/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    t.not(r.code, 0, args.join(' '));
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn'));
    t.regex(r.stderr, re, args.join(' '));
    t.is(lines.length, 1, `exactly one line: ${args.join(' ')}: ${r.stderr}`);
    t.true(lines[0]!.startsWith('dbn-node: '), args.join(' '));
    t.false(/^\s+at /m.test(r.stderr), `no stack trace without --debug: ${args.join(' ')}`);
  }
  t.deepEqual(fs.readFileSync(model), before);
});

test('--help lists every command with examples', (t) => {
  const r = cli(['--help']);
  t.is(r.code, 0);
  for (const c of ['train', 'evaluate', 'predict', 'transform', 'sample', 'filters', 'info', 'keygen'])
    t.regex(r.stdout, new RegExp(`dbn-node ${c}`));
  const tr = cli(['train', '--help']);
  t.regex(tr.stdout, /Examples:/);
});
