/**
 * The CLI's former silent traps, each run through the real CLI: evaluate rebuilding the split from
 * its own flags, --config evaluating non-JSON as JavaScript, a CSV label column becoming a feature,
 * transform on untrained weights. Plus predict/transform, text labels, --delimiter, missing cells.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBundledDigits, MinMaxScaler, take, trainTestSplit } from '../../src/data/index.js';
import { Dbn } from '../../src/dbn/index.js';
import { createJsBackend } from '../../src/kernels/js/index.js';

const bin = path.resolve('bin/dbn-node.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-traps-'));
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DBN_NODE_DEV: '1' },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const small = ['--layers', '16', '--epochs', '1', '--backend', 'js', '--quiet', '--pictures', 'false'];
const key = (d: Float32Array, r: number, c: number): string => Array.from(d.subarray(r * c, (r + 1) * c)).join(',');

test('evaluate scores the rows held out at training, not a split rebuilt from its own flags; --all-rows warns about training rows', (t) => {
  const out = path.join(dir, 'digits');
  const tr = cli(['train', '--limit', '300', '--seed', '4', '--finetune', '2', '--out', out, ...small]);
  t.is(tr.code, 0, tr.stderr);
  const model = path.join(out, 'model.dbn');
  const split = trainTestSplit(take(loadBundledDigits(), 300), { testFraction: 0.2, seed: 4, shuffle: true });
  const training = new Set(Array.from({ length: split.train.x.rows }, (_, r) => key(split.train.x.data, r, 784)));

  const ev = cli(['evaluate', '--model', model, '--limit', '50', '--backend', 'js', '--json']);
  t.is(ev.code, 0, ev.stderr);
  t.notRegex(ev.stderr, /WARN/);
  const e = JSON.parse(ev.stdout) as { rows: number; heldOut: boolean; trainingRowsScored: number; accuracy: number };
  t.is(e.rows, 50);
  t.true(e.heldOut);
  t.is(e.trainingRowsScored, 0);
  const dbn = Dbn.load(model, { backend: createJsBackend() });
  const heldOut = take(split.test, 50);
  t.is(e.accuracy, dbn.evaluate(heldOut.x, heldOut.y!).accuracy, 'the same rows as the library split of the first 300');
  dbn.dispose();

  const all = cli(['evaluate', '--model', model, '--all-rows', '--limit', '100', '--backend', 'js', '--json']);
  t.is(all.code, 0, all.stderr);
  const first = take(loadBundledDigits(), 100).x;
  const expected = Array.from({ length: 100 }, (_, r) => key(first.data, r, 784)).filter((k) => training.has(k)).length;
  t.true(expected > 50, `${expected}`);
  t.regex(all.stderr, new RegExp(`^WARN: ${expected} of the 100 rows scored are rows .*model\\.dbn was trained on`, 'm'));
  t.is((JSON.parse(all.stdout) as { trainingRowsScored: number }).trainingRowsScored, expected);
});

test('--config takes JSON only: a YAML file is refused naming it, before anything runs; a JSON file applies', (t) => {
  const yaml = path.join(dir, 'opts.yaml');
  fs.writeFileSync(yaml, 'limit: 100\n');
  const out = path.join(dir, 'cfg-yaml');
  const r = cli(['train', '--config', yaml, '--out', out]);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, new RegExp(`--config: '${yaml.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' is not JSON`));
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.false(fs.existsSync(out), 'no run started');
  const json = path.join(dir, 'opts.json');
  fs.writeFileSync(json, JSON.stringify({ limit: 50, finetune: 0 }));
  const ok = cli(['train', '--config', json, '--out', path.join(dir, 'cfg-json'), ...small.filter((f) => f !== '--quiet')]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /data: bundled MNIST digits \(40 train \/ 10 test, 784 features\)/);
});

const species = ['setosa', 'versicolor', 'virginica'];
function irisLike(n: number, seed: number): string[][] {
  let s = seed;
  const u = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, (_, i) => {
    const k = i % 3;
    return [(k * 2 + u()).toFixed(3), (u() * 3).toFixed(3), species[k]!, (k - u()).toFixed(3), (u() + k * k).toFixed(3)];
  });
}

test('CSV: refused without --label unless --unlabeled; text labels and --delimiter; predict and transform; missing cells named; changed data detected', (t) => {
  const csv = path.join(dir, 'iris.csv');
  const rows = irisLike(90, 7);
  fs.writeFileSync(csv, ['a;b;species;c;d', ...rows.map((r) => r.join(';'))].join('\n'));
  const noLabel = cli(['train', '--data', csv, '--delimiter', ';', '--out', path.join(dir, 'nolabel'), ...small]);
  t.is(noLabel.code, 1);
  t.regex(noLabel.stderr, /name the label column with --label <column>, or pass --unlabeled/);
  const unl = cli(['train', '--data', csv, '--delimiter', ';', '--unlabeled', '--out', path.join(dir, 'unl'), ...small]);
  t.is(unl.code, 1, 'the text column cannot be a feature');
  t.regex(unl.stderr, /column 'species': expected a number, got 'setosa'/);

  const out = path.join(dir, 'iris');
  const tr = cli(['train', '--data', csv, '--delimiter', ';', '--label', 'species', '--finetune', '5', '--out', out, ...small]);
  t.is(tr.code, 0, tr.stderr);
  const model = path.join(out, 'model.dbn');
  const ev = cli(['evaluate', '--model', model, '--backend', 'js', '--json']);
  t.is(ev.code, 0, ev.stderr);
  const e = JSON.parse(ev.stdout) as { rows: number; classNames: string[]; confusionMatrix: number[][] };
  t.deepEqual(e.classNames, species);
  t.is(e.rows, 18);

  // New rows with the columns in another order and no label column.
  const fresh = path.join(dir, 'new.csv');
  const newRows = irisLike(6, 99);
  fs.writeFileSync(fresh, ['d;c;b;a', ...newRows.map((r) => [r[4], r[3], r[1], r[0]].join(';'))].join('\n'));
  const scores = path.join(dir, 'scores.csv');
  const p = cli(['predict', '--model', model, '--data', fresh, '--out', scores, '--backend', 'js', '--quiet']);
  t.is(p.code, 0, p.stderr);
  const lines = fs.readFileSync(scores, 'utf8').trim().split('\n');
  t.is(lines[0], 'row,class,p_setosa,p_versicolor,p_virginica');
  const dbn = Dbn.load(model, { backend: createJsBackend() });
  const scaler = MinMaxScaler.fromJSON((dbn.metadata['scaler'] as { json: Parameters<typeof MinMaxScaler.fromJSON>[0] }).json);
  const x = scaler.transform({ rows: 6, cols: 4, data: Float32Array.from(newRows.flatMap((r) => [r[0], r[1], r[3], r[4]].map(Number))) });
  const proba = dbn.predictProba(x);
  lines.slice(1).forEach((l, r) => {
    const f = l.split(',');
    const pr = Array.from(proba.data.subarray(r * 3, r * 3 + 3));
    t.is(f[0], String(r + 1));
    t.is(f[1], species[pr.indexOf(Math.max(...pr))]);
    f.slice(2).forEach((v, k) => t.true(Math.abs(Number(v) - pr[k]!) < 1e-6, `row ${r} p${k}`));
  });
  const feats = cli(['transform', '--model', model, '--data', fresh, '--backend', 'js', '--quiet']);
  t.is(feats.code, 0, feats.stderr);
  const h = dbn.transform(x);
  const fl = feats.stdout.trim().split('\n');
  t.is(fl[0], `row,${Array.from({ length: 16 }, (_, j) => `h0_${j}`).join(',')}`);
  t.deepEqual(fl[3]!.split(',').slice(1).map(Number), Array.from(h.data.subarray(2 * 16, 3 * 16)));
  dbn.dispose();

  fs.writeFileSync(fresh, 'd;c;b;a\n1;2;3;4\n1;;3;4\n');
  const missing = cli(['predict', '--model', model, '--data', fresh, '--backend', 'js']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /new\.csv: line 3 \(data row 2\), column 'c': missing value \(an empty cell\)/);

  fs.writeFileSync(csv, ['a;b;species;c;d', ...rows.map((r, i) => (i === 0 ? [...r.slice(0, 3), '9', r[4]] : r).join(';'))].join('\n'));
  const changed = cli(['evaluate', '--model', model, '--backend', 'js']);
  t.is(changed.code, 1);
  t.regex(changed.stderr, /no longer holds the rows .* was trained on/);
});

test('transform refuses a model whose layers were never trained (it printed features of random weights)', (t) => {
  const out = path.join(dir, 'untrained');
  const tr = cli([
    'train',
    '--limit',
    '50',
    '--epochs',
    '0',
    '--finetune',
    '0',
    '--out',
    out,
    ...small.filter((f) => f !== '1' && f !== '--epochs'),
  ]);
  t.is(tr.code, 0, tr.stderr);
  const r = cli(['transform', '--model', path.join(out, 'model.dbn'), '--data', 'digits', '--limit', '3', '--backend', 'js']);
  t.is(r.code, 1);
  t.regex(r.stderr, /NotFittedError: Dbn\.transform needs pretrained layers, and layer 0 has no learned weights/);
  t.is(r.stdout, '');
});

test('--version prints the package version', (t) => {
  const r = cli(['--version']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }).version);
});

test('evaluate prints class names from the model escaped: a label holding terminal control sequences cannot drive the terminal', (t) => {
  const csv = path.join(dir, 'hostile-labels.csv');
  const names = ['ok', 'evil\u001b[2J\u001b[31m', 'x\u202eyz'];
  const rows = irisLike(45, 3).map((r) => {
    const k = species.indexOf(r[2]!);
    return [r[0], r[1], names[k], r[3], r[4]];
  });
  fs.writeFileSync(csv, ['a;b;species;c;d', ...rows.map((r) => r.join(';'))].join('\n'));
  const out = path.join(dir, 'hostile');
  const tr = cli(['train', '--data', csv, '--delimiter', ';', '--label', 'species', '--finetune', '2', '--out', out, ...small]);
  t.is(tr.code, 0, tr.stderr);
  const ev = cli(['evaluate', '--model', path.join(out, 'model.dbn'), '--backend', 'js', '--quiet']);
  t.is(ev.code, 0, ev.stderr);
  t.false((ev.stdout + ev.stderr).includes('\u001b') || (ev.stdout + ev.stderr).includes('\u202e'), 'no raw ESC or bidi override printed');
  t.true(ev.stdout.includes('evil\\x1b[2J\\x1b[31m'), ev.stdout);
  t.true(ev.stdout.includes('x\\u{202e}yz'), ev.stdout);
});
