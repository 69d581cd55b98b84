import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { escapeText, showValue } from '../../src/cli/escape.js';
import { asVersion1, writeRawModel } from '../helpers/model-bytes.js';

const bin = path.resolve('bin/dbn-node.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-info-'));

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DBN_NODE_DEV: '1' },
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const ESC = '\u001b';
const rbmTensors = [
  { name: 'weights', rows: 3, cols: 2, data: new Float32Array(6) },
  { name: 'visibleBias', rows: 1, cols: 3, data: new Float32Array(3) },
  { name: 'hiddenBias', rows: 1, cols: 2, data: new Float32Array(2) },
];
const options = { nVisible: 3, nHidden: 2, visible: 'bernoulli', hidden: 'bernoulli', learningRate: 0.1, k: 1 };

test('escapeText shows control characters as \\xNN and leaves the rest', (t) => {
  t.is(escapeText(`a${ESC}[2Jb\nc\td\u0000\u007f\u009b`), 'a\\x1b[2Jb\\x0ac\\x09d\\x00\\x7f\\x9b');
  t.is(escapeText('C:\\runs\\model.dbn é 字'), 'C:\\runs\\model.dbn é 字');
  t.is(escapeText('x\u202ey\u2028'), 'x\\u{202e}y\\u{2028}');
  t.is(showValue({ a: [1, 2] }), '{"a":[1,2]}');
  t.is(showValue('x'.repeat(300), 10), `${'x'.repeat(9)}…`);
});

test('info escapes header strings, prints non-string metadata as JSON and names the format version', (t) => {
  const f = path.join(dir, 'evil.rbm');
  writeRawModel(
    f,
    {
      kind: 'rbm',
      options: { ...options, visible: `bernoulli${ESC}[2J${ESC}[31m` },
      epochsTrained: 2,
      metadata: { data: `digits\ndbn-node: fake line${ESC}]0;title\u0007`, scaler: { min: [0, 1] }, note: 42 },
    },
    rbmTensors,
  );
  const r = cli(['info', '--model', f]);
  t.is(r.code, 0, r.stderr);
  t.false(r.stdout.includes(ESC), 'no raw escape character reaches the terminal');
  t.false(r.stdout.includes('\u0007'));
  t.regex(r.stdout, /format v2 \(CRC-32 0x[0-9a-f]{8} verified\)/);
  t.regex(r.stdout, /layer 0: 3 bernoulli\\x1b\[2J\\x1b\[31m → 2 bernoulli, 2 epoch\(s\) trained/);
  t.regex(r.stdout, /trained on: digits\\x0adbn-node: fake line\\x1b\]0;title\\x07/);
  t.regex(r.stdout, /metadata scaler: \{"min":\[0,1\]\}/);
  t.regex(r.stdout, /metadata note: 42/);
  t.false(r.stdout.includes('[object Object]'));
  t.is(r.stdout.split('\n').filter((l) => l.startsWith('dbn-node')).length, 0, 'a newline in a value cannot start a line');

  const v1 = path.join(dir, 'old.rbm');
  fs.writeFileSync(v1, asVersion1(fs.readFileSync(f)));
  const old = cli(['info', '--model', v1, '--json']);
  t.is(old.code, 0, old.stderr);
  const j = JSON.parse(old.stdout) as { formatVersion: number; checksum: unknown };
  t.is(j.formatVersion, 1);
  t.is(j.checksum, null);
});

test('info on malformed headers: one typed error line or a plain description, never a TypeError', (t) => {
  const dbn = path.join(dir, 'layers5.dbn');
  writeRawModel(dbn, { kind: 'dbn', options: { nVisible: 3, layers: [{ nHidden: 2 }] }, layers: 5 }, []);
  const r = cli(['info', '--model', dbn]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^dbn-node: ModelFileError: .*layers5\.dbn: header must hold one "layers" entry per layer \(1\)\.\n$/);
  const other = path.join(dir, 'other.bin');
  writeRawModel(other, { kind: `x${ESC}[1m`, layers: 5, classifier: 'none', metadata: { data: { rows: 3 } } }, []);
  const o = cli(['info', '--model', other]);
  t.is(o.code, 0, o.stderr);
  t.regex(o.stdout, /dbn-node x\\x1b\[1m model, format v2/);
  t.regex(o.stdout, /trained on: \{"rows":3\}/);
  t.false(o.stdout.includes(ESC));
});

test('error messages quoting a file name or header are escaped onto one line', (t) => {
  const name = path.join(dir, `bad\nname${ESC}[31m.dbn`);
  fs.writeFileSync(name, 'not a model at all');
  const r = cli(['info', '--model', name]);
  t.is(r.code, 1);
  t.false(r.stderr.includes(ESC));
  t.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /bad\\x0aname\\x1b\[31m\.dbn: not a dbn-node model file/);
});
