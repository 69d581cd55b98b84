/**
 * Peer training as a user runs it (not part of `npm test`): `dbn-node train` with its defaults
 * (784-500-500, 5 pretraining epochs per layer, 30 fine-tuning epochs with early stopping, the
 * bundled digits 8,000 train / 2,000 test), once as one process on all rows, then as N peer
 * processes on loopback, each with `--shard i/N`, started together. Reports each run's test
 * accuracy (from the CLI's own line), wall time, and the largest difference between the peers'
 * saved weights.
 *
 * Usage: tsx bench/peer-parity.ts [--peers 2,3,4] [--data digits|fashion] [--extra "--epochs 2"]
 * Prints one JSON object per run, then a summary object.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readModelFile } from '../src/rbm/model-file.js';
import { loopbackPeerFlags } from './loopback-peers.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '2,3,4' },
    data: { type: 'string', default: 'digits' },
    extra: { type: 'string', default: '' },
  },
});
const counts = values.peers.split(',').map(Number);
const extra = [...(values.data === 'digits' ? [] : ['--data', values.data]), ...values.extra.split(' ').filter((s) => s !== '')];
const bin = path.resolve('bin/dbn-node.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-parity-'));

interface Run {
  readonly accuracy: number;
  readonly seconds: number;
  readonly out: string;
}

function train(name: string, args: readonly string[]): Promise<Run> {
  const out = path.join(root, name);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', bin, 'train', ...args, ...extra, '--out', out, '--no-pictures'], {
      env: { ...process.env, DBN_NODE_DEV: '1' },
    });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString()));
    child.stderr.on('data', (b: Buffer) => (text += b.toString()));
    child.on('exit', (code) => {
      const m = /^test accuracy ([\d.]+)%/m.exec(text);
      if (code !== 0 || m === null) reject(new Error(`${name} exited ${code}:\n${text.slice(-3000)}`));
      else resolve({ accuracy: Number(m[1]) / 100, seconds: (performance.now() - t0) / 1000, out });
    });
  });
}

function largestDifference(files: readonly string[]): number {
  const models = files.map((f) => readModelFile(f));
  let max = 0;
  for (const [name, t] of models[0]!.tensors) {
    for (const m of models.slice(1)) {
      const u = m.tensors.get(name)!;
      for (let i = 0; i < t.data.length; i++) max = Math.max(max, Math.abs(t.data[i]! - u.data[i]!));
    }
  }
  return max;
}

// Peers train no associative layer (see `dbn-node train --help`): neither does the process they are compared with.
const one = await train('one', ['--associative', '0']);
console.log(JSON.stringify({ run: 'one process', accuracy: one.accuracy, seconds: Number(one.seconds.toFixed(1)) }));
const rows: Record<string, unknown>[] = [];
for (const n of counts) {
  const base = 7600 + n * 10;
  const ports = Array.from({ length: n }, (_, i) => base + i);
  const runs = await Promise.all(ports.map((_, i) => train(`n${n}-p${i + 1}`, loopbackPeerFlags(ports, i))));
  const diff = largestDifference(runs.map((r) => path.join(r.out, 'model.dbn')));
  const row = {
    run: `${n} peers`,
    accuracies: runs.map((r) => r.accuracy),
    gapPoints: Number(((one.accuracy - runs[0]!.accuracy) * 100).toFixed(2)),
    largestWeightDifference: diff,
    seconds: runs.map((r) => Number(r.seconds.toFixed(1))),
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.log(JSON.stringify({ bench: 'peer-parity', data: values.data, extra, machine: machine(), oneProcess: one.accuracy, runs: rows }));
fs.rmSync(root, { recursive: true, force: true });
