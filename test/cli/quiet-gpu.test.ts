/**
 * Dawn's adapter warnings (the gpu backend's webgpu mode) are held back from a CLI run's stderr
 * unless `--debug`. The webgpu mode needs a display: without one, the run goes under `xvfb-run -a`.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { wantsGpu } from '../../src/cli/quiet-gpu.js';
import { Dbn } from '../../src/dbn/index.js';
import { DawnLogFilter } from '../../src/kernels/gpu/dawn-log.js';
import { createBackend } from '../../src/kernels/index.js';

const bin = path.resolve('bin/dbn-node.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbn-quiet-gpu-'));
const DAWN_LINE = /^(?:Warning|Info): |^ - While |^\s+at \w+ \(.*dawn/m;

/** What Dawn 0.6 printed on this project's CI machine (Mesa lavapipe + llvmpipe), between lines of ours. */
const RECORDED = [
  'backend: gpu (webgpu)',
  'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.',
  ' - While initializing adapter (backend=BackendType::Vulkan)',
  '    at InitializeImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)',
  '',
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.',
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 80 to 16 to fit dynamic offset allocation limit.',
  '(node:4242) Warning: a warning of Node itself',
  '',
  'Error: an error Dawn reports stays visible',
  ' - While calling [Device].CreateBuffer',
  'dbn-node: BackendUnavailableError: a message of ours, mentioning Warning: in the middle',
  'last line without a newline',
].join('\n');

test('DawnLogFilter holds back exactly Dawn’s Debug/Info/Warning records, whatever the chunking', (t) => {
  const want = [
    'backend: gpu (webgpu)',
    '(node:4242) Warning: a warning of Node itself',
    '',
    'Error: an error Dawn reports stays visible',
    ' - While calling [Device].CreateBuffer',
    'dbn-node: BackendUnavailableError: a message of ours, mentioning Warning: in the middle',
    'last line without a newline',
  ].join('\n');
  for (const size of [1, 7, 64, RECORDED.length]) {
    const filter = new DawnLogFilter();
    let out = '';
    for (let i = 0; i < RECORDED.length; i += size) out += filter.push(RECORDED.slice(i, i + size));
    out += filter.end();
    t.is(out, want, `chunks of ${size}`);
    t.is(filter.held, 6);
  }
});

test('wantsGpu: only a gpu --backend', (t) => {
  t.true(wantsGpu(['train', '--backend', 'gpu:webgpu']));
  t.true(wantsGpu(['sample', '--backend=gpu']));
  t.false(wantsGpu(['train', '--backend', 'native']));
  t.false(wantsGpu(['train', '--out', 'gpu']));
  t.false(wantsGpu(['train', '--backend']));
});

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const useXvfb = !process.env['DISPLAY'] && spawnSync('sh', ['-c', 'command -v xvfb-run'], { stdio: 'ignore' }).status === 0;
  const node = [process.execPath, '--import', 'tsx', bin, ...args];
  const [cmd, argv] = useXvfb ? ['xvfb-run', ['-a', ...node]] : [node[0]!, node.slice(1)];
  const env: NodeJS.ProcessEnv = { ...process.env, DBN_NODE_DEV: '1' };
  delete env['DBN_NODE_DAWN_LOGS'];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('a --backend gpu:webgpu CLI run has no Dawn lines on stderr; --debug shows them; errors and exit codes pass through', async (t) => {
  const model = path.join(dir, 'tiny.dbn');
  const backend = createBackend('js');
  const dbn = new Dbn({ nVisible: 16, layers: [{ nHidden: 4, epochs: 1, monitorSize: 0 }], backend, seed: 1 });
  await dbn.pretrain({ rows: 20, cols: 16, data: new Float32Array(320).map((_, i) => ((i * 7) % 3 === 0 ? 1 : 0)) });
  dbn.save(model);
  dbn.dispose();
  backend.dispose();
  const csv = path.join(dir, 'out.csv');
  const args = ['sample', '--model', model, '--backend', 'gpu:webgpu', '--count', '2', '--steps', '2', '--csv', csv, '--force'];
  const quiet = cli(args);
  if (quiet.code !== 0) {
    t.regex(quiet.stderr, /BackendUnavailableError/, quiet.stderr);
    t.log(`webgpu does not start here; checked only that its error passes through: ${quiet.stderr.trim()}`);
    return;
  }
  t.regex(quiet.stdout, /wrote .*out\.csv \(2 rows\)/);
  t.notRegex(quiet.stderr, DAWN_LINE, quiet.stderr);
  t.is(fs.readFileSync(csv, 'utf8').trim().split('\n').length, 2);
  const loud = cli([...args, '--debug']);
  t.is(loud.code, 0, loud.stderr);
  if (DAWN_LINE.test(loud.stderr)) t.pass('with --debug Dawn speaks, so the quiet run shows the filter works');
  else t.log('Dawn printed nothing here even with --debug; the quiet run proves less');
  const missing = cli(['sample', '--model', path.join(dir, 'none.dbn'), '--backend', 'gpu:webgpu']);
  t.not(missing.code, 0);
  t.regex(missing.stderr, /^dbn-node: .*none\.dbn/m, 'the relay passes the error line through');
});
