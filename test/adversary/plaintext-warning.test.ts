/**
 * `dbn-node train --plaintext` warns on stderr at start that anyone who can reach the ports can
 * read and change the model; the robust-aggregation flags are checked with one clear error.
 */
import test from 'ava';
import { lonePlaintextPeer, shortTrain as train } from '../helpers/short-train.js';

const port = 7900 + (process.pid % 100) * 2;

test('a --plaintext peer prints a WARN on stderr before it waits for peers', (t) => {
  const r = train(lonePlaintextPeer(port));
  t.regex(r.stderr, /WARN: --plaintext: .*Anyone who can reach these ports can read the model and change it/);
  t.not(r.status, 0, 'no peer came: the start times out');
});

test('--aggregate takes sum, trimmed-mean, median, mean-around-median or multi-krum; --trim only with the rules that drop values', (t) => {
  const base = lonePlaintextPeer(port);
  t.regex(
    train([...base, '--aggregate', 'mode']).stderr,
    /--aggregate must be sum, trimmed-mean, median, mean-around-median or multi-krum, got 'mode'/,
  );
  t.regex(
    train([...base, '--aggregate', 'median', '--trim', '2']).stderr,
    /--trim needs --aggregate trimmed-mean, mean-around-median or multi-krum/,
  );
});
