/**
 * Bytes each peer sends and receives per epoch as N grows (not part of `npm test`): N
 * `dbn-node train` peer processes on loopback (the default 784-500-500 model, `--limit` rows,
 * a few epochs), read from each peer's closing "peers: …" line. With the sharded all-reduce a
 * peer moves about 2 (N − 1) / N times the gradient per round, so the figure should stay within
 * 2× of N = 2 for any N (all-to-all would grow as N − 1).
 *
 * Usage: tsx bench/peer-bytes.ts [--peers 2,4,8] [--limit 2000] [--epochs 1] [--finetune 1]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loopbackPeerFlags } from './loopback-peers.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '2,4,8' },
    limit: { type: 'string', default: '2000' },
    epochs: { type: 'string', default: '1' },
    finetune: { type: 'string', default: '1' },
  },
});
const bin = path.resolve('bin/dbn-node.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-bytes-'));
const epochs = 2 * Number(values.epochs) + Number(values.finetune);

function peer(args: readonly string[], out: string): Promise<{ sent: number; received: number; rounds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        bin,
        'train',
        ...args,
        '--limit',
        values.limit,
        '--epochs',
        values.epochs,
        '--finetune',
        values.finetune,
        '--patience',
        '1000',
        '--no-pictures',
        '--out',
        out,
      ],
      { env: { ...process.env, DBN_NODE_DEV: '1' } },
    );
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString()));
    child.stderr.on('data', (b: Buffer) => (text += b.toString()));
    child.on('exit', (code) => {
      const m = /peers: (\d+) rounds, \d+ member\(s\) at the end, ([\d.]+) MiB sent, ([\d.]+) MiB received/.exec(text);
      if (code !== 0 || m === null) reject(new Error(`exit ${code}:\n${text.slice(-2000)}`));
      else resolve({ rounds: Number(m[1]), sent: Number(m[2]), received: Number(m[3]) });
    });
  });
}

const rows: Record<string, unknown>[] = [];
for (const n of values.peers.split(',').map(Number)) {
  const ports = Array.from({ length: n }, (_, i) => 7700 + n * 10 + i);
  const res = await Promise.all(ports.map((_, i) => peer(loopbackPeerFlags(ports, i), path.join(root, `n${n}-${i}`))));
  const sent = res.map((r) => r.sent / epochs);
  const row = {
    peers: n,
    rounds: res[0]!.rounds,
    mibSentPerPeerPerEpoch: Number(Math.max(...sent).toFixed(1)),
    mibReceivedPerPeerPerEpoch: Number(Math.max(...res.map((r) => r.received / epochs)).toFixed(1)),
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.log(JSON.stringify({ bench: 'peer-bytes', limit: Number(values.limit), epochs, machine: machine(), rows }));
fs.rmSync(root, { recursive: true, force: true });
