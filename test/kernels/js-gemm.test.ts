// The js backend's two scalar gemm macro-kernels (asm.js, plain TypeScript; the WebAssembly one
// has js-wasm-gemm.test.ts): same bits, asm.js really validated by V8, and the fallback when code
// generation from strings is forbidden.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { InvalidOptionError } from '../../src/errors.js';
import { GemmWorkspace, asmMacroKernelSource, gemmImpl } from '../../src/kernels/js/gemm.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { Random } from '../../src/random.js';
import { runConformance } from './conformance.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs `lines` as an ES module in a child Node (tsx loaded) started with `flags`, from the repository root. */
function runChild(flags: string[], lines: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [...flags, '--import=tsx', '--input-type=module', '-e', lines.join('\n')], {
    cwd: repo,
    encoding: 'utf8',
  });
}

runConformance('js (asm.js gemm)', () => createJsBackend({ gemmKernel: 'asm.js' }));
runConformance('js (typescript gemm)', () => createJsBackend({ gemmKernel: 'typescript' }));

function data(rng: Random, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform() * 2 - 1;
  return out;
}

test('asm.js and TypeScript macro-kernels give the same bits (every transpose, alpha, beta, edge tiles, k blocks)', (t) => {
  const asm = new GemmWorkspace('asm.js');
  const ts = new GemmWorkspace('typescript');
  t.is(asm.kernel, 'asm.js');
  t.is(ts.kernel, 'typescript');
  const rng = new Random(7);
  // Odd sizes leave partial 2×4 tiles; k = 600 and 1100 cut into several k blocks; n = 1100 into several column blocks.
  const shapes = [
    [1, 1, 1],
    [3, 5, 7],
    [67, 130, 600],
    [5, 1100, 9],
    [130, 3, 1100],
    [100, 500, 784],
  ] as const;
  let cases = 0;
  for (const [m, n, k] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [alpha, beta] of [
          [1, 0],
          [-0.5, 1],
          [2, -3],
        ] as const) {
          const a = data(rng, m * k);
          const b = data(rng, k * n);
          const c0 = data(rng, m * n);
          const c1 = c0.slice();
          const c2 = c0.slice();
          gemmImpl(asm, m, n, k, alpha, a, transA, b, transB, beta, c1);
          gemmImpl(ts, m, n, k, alpha, a, transA, b, transB, beta, c2);
          t.deepEqual(
            new Uint32Array(c1.buffer),
            new Uint32Array(c2.buffer),
            `${m}x${n}x${k} transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}`,
          );
          // And both agree with a float64 reference (the conformance suite checks the bound; this is a sanity anchor).
          const i = m - 1;
          const j = n - 1;
          let want = beta === 0 ? 0 : beta * c0[i * n + j]!;
          for (let p = 0; p < k; p++) want += alpha * a[transA ? p * m + i : i * k + p]! * b[transB ? j * k + p : p * n + j]!;
          t.true(
            Math.abs(c1[i * n + j]! - want) <= 1e-5 * (1 + Math.abs(want)) * Math.sqrt(k),
            `${m}x${n}x${k}: ${c1[i * n + j]} vs ${want}`,
          );
          cases++;
        }
      }
    }
  }
  t.is(cases, shapes.length * 12);
});

test('V8 validates the asm.js module (compiled ahead of time, not run as plain JavaScript)', (t) => {
  // %IsAsmWasmCode is true only for a module V8 accepted as asm.js and linked against its heap;
  // a deliberately broken copy (an int where a double is declared) is the negative control.
  const run = runChild(
    ['--allow-natives-syntax'],
    [
      "const { GemmWorkspace, gemmImpl, asmMacroKernelSource } = await import('./src/kernels/js/gemm.ts');",
      "const good = new Function('stdlib', 'foreign', 'heap', asmMacroKernelSource(2, 4));",
      'good(globalThis, undefined, new ArrayBuffer(1 << 16));',
      "const bad = new Function('stdlib', 'foreign', 'heap', asmMacroKernelSource(2, 4).replace('x = 0.0', 'x = 0'));",
      'bad(globalThis, undefined, new ArrayBuffer(1 << 16));',
      "const ws = new GemmWorkspace('asm.js');",
      'gemmImpl(ws, 100, 500, 784, 1, new Float32Array(78400), false, new Float32Array(392000), false, 0, new Float32Array(50000));',
      'console.log(JSON.stringify({ good: %IsAsmWasmCode(good), bad: %IsAsmWasmCode(bad), kernel: ws.kernel }));',
    ],
  );
  t.is(run.status, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout.trim()), { good: true, bad: false, kernel: 'asm.js' });
  // V8 reports an asm.js module it rejects as a process warning: only the broken copy may have one.
  t.is(run.stderr.match(/Invalid asm\.js/g)?.length ?? 0, 1, run.stderr);
  t.true(asmMacroKernelSource(2, 4).startsWith('"use asm";'));
});

test('where code generation from strings is forbidden, asking for asm.js runs the TypeScript kernel with the same results', (t) => {
  const run = runChild(
    ['--disallow-code-generation-from-strings'],
    [
      "const { createJsBackend } = await import('./src/kernels/js/index.ts');",
      "const b = createJsBackend({ gemmKernel: 'asm.js' });",
      'const x = b.alloc(2, 3); const y = b.alloc(3, 2); const z = b.alloc(2, 2);',
      'b.write(x, Float32Array.from([1, 2, 3, 4, 5, 6])); b.write(y, Float32Array.from([7, 8, 9, 10, 11, 12]));',
      'b.gemm(z, x, y); const out = new Float32Array(4); b.read(z, out);',
      'console.log(JSON.stringify({ description: b.info.description, out: Array.from(out) }));',
    ],
  );
  t.is(run.status, 0, run.stderr);
  // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
  t.deepEqual(JSON.parse(run.stdout.trim()), { description: 'js (portable TypeScript, typescript gemm)', out: [58, 64, 139, 154] });
});

test('createJsBackend rejects an unknown gemm kernel with InvalidOptionError', (t) => {
  t.throws(() => createJsBackend({ gemmKernel: 'wasm' as never }), {
    instanceOf: InvalidOptionError,
    message: `createJsBackend: 'gemmKernel' is "wasm", expected 'wasm-simd', 'asm.js', 'typescript'.`,
  });
  t.is(createJsBackend({ gemmKernel: 'typescript' }).info.description, 'js (portable TypeScript, typescript gemm)');
});
