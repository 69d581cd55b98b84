/**
 * The GPU drivers' own stderr messages: silenced by default, shown with `driverLogs: true`
 * (the CLI's `--debug`). The webgpu mode needs a display: run under `xvfb-run -a`.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { quietDriverLogs } from '../../src/kernels/gpu/drivers.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WAYLAND_NOISE = /XDG_RUNTIME_DIR is invalid or not set/;

test('quietDriverLogs sets only unset variables, to a private absolute folder, and is idempotent', (t) => {
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin' };
  t.deepEqual(quietDriverLogs(env).sort(), ['EGL_LOG_LEVEL', 'XDG_RUNTIME_DIR']);
  t.is(env['EGL_LOG_LEVEL'], 'fatal');
  const dir = env['XDG_RUNTIME_DIR']!;
  t.true(dir.startsWith('/'));
  const st = fs.statSync(dir);
  t.true(st.isDirectory());
  t.is(st.mode & 0o777, 0o700);
  t.deepEqual(fs.readdirSync(dir), []);
  t.deepEqual(quietDriverLogs(env), []);
  t.is(env['XDG_RUNTIME_DIR'], dir);

  const user: NodeJS.ProcessEnv = { EGL_LOG_LEVEL: 'debug', XDG_RUNTIME_DIR: '/run/user/1000' };
  t.deepEqual(quietDriverLogs(user), []);
  t.deepEqual(user, { EGL_LOG_LEVEL: 'debug', XDG_RUNTIME_DIR: '/run/user/1000' });
  t.deepEqual(
    quietDriverLogs({ XDG_RUNTIME_DIR: 'relative' }),
    ['EGL_LOG_LEVEL', 'XDG_RUNTIME_DIR'],
    'a relative path is as good as unset to libwayland',
  );
});

/** Starts the webgpu mode in a fresh process without the user's driver variables; its stdout and stderr. */
function startWebGpu(driverLogs: boolean): { ok: boolean; stdout: string; stderr: string } {
  const gpu = pathToFileURL(path.join(root, 'src', 'kernels', 'gpu', 'index.ts')).href;
  const script = `
import { createGpuBackend } from '${gpu}';
try {
  const b = createGpuBackend({ mode: 'webgpu', driverLogs: ${driverLogs} });
  console.log('started', b.info.description);
  b.dispose();
} catch (err) { console.log('unavailable', err.message); }
`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-drivers-'));
  const file = path.join(dir, 'start.mts');
  fs.writeFileSync(file, script);
  const env = { ...process.env };
  delete env['XDG_RUNTIME_DIR'];
  delete env['EGL_LOG_LEVEL'];
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', env, timeout: 120_000 });
    return { ok: r.stdout.startsWith('started'), stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('the webgpu mode does not pass the drivers\u2019 wayland/EGL messages to stderr unless driverLogs is set', (t) => {
  const quiet = startWebGpu(false);
  if (!quiet.ok) {
    t.log(`webgpu does not start here, skipped: ${quiet.stdout.trim()}`);
    t.pass();
    return;
  }
  t.notRegex(quiet.stderr, WAYLAND_NOISE, quiet.stderr);
  t.notRegex(quiet.stderr, /libEGL warning/, quiet.stderr);
  const loud = startWebGpu(true);
  t.true(loud.ok, loud.stdout);
  if (WAYLAND_NOISE.test(loud.stderr)) t.pass('with driverLogs the drivers speak, so the quiet run shows the silencing works');
  else t.log('the drivers here print nothing even with driverLogs: true (no Vulkan/EGL wayland probe); the quiet run proves less');
});
