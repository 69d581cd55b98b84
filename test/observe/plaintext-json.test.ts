/**
 * With `--log-format json`, the `--plaintext` warning is a JSON line on stderr like the run's other
 * warnings (`level: 'warn'`, the process's `--name`), not a text line among JSON ones.
 */
import test from 'ava';
import { lonePlaintextPeer, shortTrain } from '../helpers/short-train.js';

const port = 7700 + (process.pid % 100) * 2;

test('--log-format json: the --plaintext warning is one JSON object on stderr', (t) => {
  const r = shortTrain([...lonePlaintextPeer(port), '--log-format', 'json', '--name', 'bank-a']);
  const lines = r.stderr.split('\n').filter((l) => l.includes('--plaintext'));
  t.is(lines.length, 1, r.stderr);
  const warning = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.is(warning.level, 'warn');
  t.is(warning.name, 'bank-a');
  t.is(warning.event, '--plaintext');
  t.regex(String(warning.detail), /Anyone who can reach these ports can read the model and change it/);
  t.false(Number.isNaN(Date.parse(String(warning.time))));
  t.not(r.status, 0, 'no peer came: the start times out');
});
