import test from 'ava';
import { spawnSync } from 'node:child_process';

test('examples/library-usage.ts runs and its reloaded model predicts identically', (t) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/library-usage.ts'], { encoding: 'utf8', timeout: 180_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /backend: /);
  t.regex(r.stdout, /test accuracy \d+\.\d\d% on 400 digits/);
  t.regex(r.stdout, /predictions identical/);
});
