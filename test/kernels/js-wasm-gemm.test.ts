// The js backend's WebAssembly SIMD gemm: against a float64 reference within the float32 bound,
// against the asm.js kernel, reproducible, and the fallbacks where WebAssembly is missing.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import test from 'ava';
import { GemmWorkspace, gemmImpl } from '../../src/kernels/js/gemm.js';
import { addRowSigmoid } from '../../src/kernels/js/wasm-passes.js';
import { createJsBackend } from '../../src/kernels/js/index.js';
import { wasmGemmSupport, wasmMacroKernelBytes } from '../../src/kernels/js/wasm-gemm.js';
import { Random } from '../../src/random.js';
import { InvalidOptionError } from '../../src/errors.js';
import { resolveFma } from '../../src/kernels/js/threads-option.js';
import { gemmRef } from './reference.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** `WebAssembly.validate` (Node's types declare `WebAssembly` only with the DOM library). */
const validate = (bytes: Uint8Array): boolean =>
  (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(bytes);
/** How the default description names the thread count (`os.availableParallelism()` unless DBN_JS_THREADS is set). */
const defaultThreads = Number(process.env['DBN_JS_THREADS'] ?? availableParallelism());
const threadsSuffix = defaultThreads > 1 ? `, ${defaultThreads} threads` : '';
/** The float32 unit roundoff. */
const U = 2 ** -24;

/** Runs `lines` as an ES module in a child Node (tsx loaded) started with `flags`, from the repository root. */
function runChild(flags: string[], lines: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [...flags, '--import=tsx', '--input-type=module', '-e', lines.join('\n')], {
    cwd: repo,
    encoding: 'utf8',
  });
}

/** Whether /proc/cpuinfo lists FMA (`undefined` where it cannot be read). */
function cpuHasFma(): boolean | undefined {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return flags === undefined ? undefined : flags.split(/\s+/).includes('fma');
  } catch {
    return undefined;
  }
}

function data(rng: Random, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform() * 2 - 1;
  return out;
}

function bits(x: Float32Array): number[] {
  return Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
}

test('the emitted module validates, and this Node runs it by default', (t) => {
  t.true(validate(wasmMacroKernelBytes(4, 8)));
  // Negative control: the first f32x4.mul (0xfd 0xe6 0x01) replaced by the unary f64x2.convert_low_i32x4_u (0xfd 0xff 0x01) leaves the stack unbalanced.
  const bytes = wasmMacroKernelBytes(4, 8);
  const at = bytes.findIndex((_, i) => bytes[i] === 0xfd && bytes[i + 1] === 0xe6 && bytes[i + 2] === 0x01);
  t.true(at > 0);
  bytes[at + 1] = 0xff;
  t.false(validate(bytes));
  t.throws(() => wasmMacroKernelBytes(4, 6), { instanceOf: RangeError });
  t.true('module' in wasmGemmSupport());
  t.is(new GemmWorkspace().kernel, 'wasm-simd');
  // Node 20 accepts the fused (relaxed SIMD) module once its flag is on: the default
  t.deepEqual([new GemmWorkspace().fma, new GemmWorkspace(undefined, false).fma, new GemmWorkspace('asm.js').fma], [true, false, false]);
  t.true(validate(wasmMacroKernelBytes(4, 8, undefined, true)));
  t.is(createJsBackend().info.description, `js (portable TypeScript, WebAssembly SIMD FMA gemm${threadsSuffix})`);
  t.is(createJsBackend({ gemmKernel: 'wasm-simd', threads: 1 }).info.description, 'js (portable TypeScript, WebAssembly SIMD FMA gemm)');
  t.is(createJsBackend({ threads: 1, fma: false }).info.description, 'js (portable TypeScript, WebAssembly SIMD gemm)');
  t.is(
    createJsBackend({ gemmKernel: 'wasm-simd', threads: 3 }).info.description,
    'js (portable TypeScript, WebAssembly SIMD FMA gemm, 3 threads)',
  );
});

test('the FMA kernel rounds each product-sum once, the other twice: a hand-computed 1×2·2×1 product', (t) => {
  // a₀b₀ = −(1 + 2⁻¹¹) exactly; a₁b₁ = (1 + 2⁻¹²)² = 1 + 2⁻¹¹ + 2⁻²⁴, which float32 rounds (a tie, to even) to
  // 1 + 2⁻¹¹. Unfused: −(1 + 2⁻¹¹) + (1 + 2⁻¹¹) = 0. Fused: 2⁻²⁴ exactly.
  if (cpuHasFma() === false) {
    t.pass('this CPU has no FMA: V8 compiles relaxed_madd unfused');
    return;
  }
  const x = 1 + 2 ** -12;
  const got: number[] = [];
  for (const fma of [true, false]) {
    using b = createJsBackend({ fma, threads: 1 });
    const [a, w, c] = [b.alloc(1, 2), b.alloc(2, 1), b.alloc(1, 1)];
    b.write(a, Float32Array.of(-(1 + 2 ** -11), x));
    b.write(w, Float32Array.of(1, x));
    b.gemm(c, a, w);
    const out = new Float32Array(1);
    b.read(c, out);
    got.push(out[0]!);
  }
  t.deepEqual(got, [2 ** -24, 0]);
});

test('fma: the option, else DBN_JS_FMA (0 or 1), else on; anything else is one InvalidOptionError', (t) => {
  t.deepEqual(
    [
      resolveFma(undefined, undefined),
      resolveFma(false, '1'),
      resolveFma(true, '0'),
      resolveFma(undefined, '0'),
      resolveFma(undefined, ' 1 '),
      resolveFma(undefined, ''),
    ],
    [true, false, true, false, true, true],
  );
  for (const bad of ['yes', '2', 'true', '-1']) {
    t.throws(() => resolveFma(undefined, bad), { instanceOf: InvalidOptionError, message: /DBN_JS_FMA .* must be 0 or 1\. Got "/ });
  }
  for (const bad of [1, 'false', null]) {
    t.throws(() => createJsBackend({ fma: bad as unknown as boolean }), {
      instanceOf: InvalidOptionError,
      message: /'fma' option of createJsBackend/,
    });
  }
});

test('WebAssembly SIMD gemm matches a float64 reference within the float32 bound, and the asm.js kernel (every transpose, alpha, beta, edge tiles, blocks)', (t) => {
  const wasm = new GemmWorkspace('wasm-simd');
  const asm = new GemmWorkspace('asm.js');
  const rng = new Random(11);
  // Partial 4×8 tiles (7×13), m = 130 across three 64-row blocks, k = 600 and 300 across several
  // k blocks, n = 1100 and 530 across column blocks of 512.
  const shapes = [
    [1, 1, 1],
    [7, 13, 5],
    [130, 9, 600],
    [5, 1100, 9],
    [67, 530, 300],
  ] as const;
  let cases = 0;
  for (const [m, n, k] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [alpha, beta] of [
          [1, 0],
          [-0.5, 1],
          [2, -3],
          [0.3, 0.7],
        ] as const) {
          const a = { rows: transA ? k : m, cols: transA ? m : k, data: data(rng, m * k) };
          const b = { rows: transB ? n : k, cols: transB ? k : n, data: data(rng, k * n) };
          // With beta = 0, c holds NaN, which must not be read.
          const c = { rows: m, cols: n, data: beta === 0 ? new Float32Array(m * n).fill(Number.NaN) : data(rng, m * n) };
          const want = gemmRef(a, b, c, transA, transB, alpha, beta);
          const got = c.data.slice();
          const other = c.data.slice();
          gemmImpl(wasm, m, n, k, alpha, a.data, transA, b.data, transB, beta, got);
          gemmImpl(asm, m, n, k, alpha, a.data, transA, b.data, transB, beta, other);
          const what = `${m}x${n}x${k} transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}`;
          let bad = 0;
          let worst = '';
          for (let i = 0; i < m * n; i++) {
            // Higham's γₖ for a float32 dot product plus the roundings of alpha·a, beta·c and the block sums, doubled (as the conformance suite).
            const bound = 2 * (k + 4) * U * want.magnitude[i]!;
            const ok = Number.isFinite(got[i]!) && Math.abs(got[i]! - want.value[i]!) <= bound && Math.abs(got[i]! - other[i]!) <= bound;
            if (!ok && bad++ === 0) worst = `[${i}] wasm ${got[i]}, asm.js ${other[i]}, float64 ${want.value[i]}, bound ${bound}`;
          }
          t.is(bad, 0, `${what}: ${worst}`);
          cases++;
        }
      }
    }
  }
  t.is(cases, shapes.length * 16);
});

test('WebAssembly SIMD gemm gives the same bits on every call, in a fresh workspace, and after its memory was released or grown', (t) => {
  const rng = new Random(3);
  const [m, n, k] = [100, 500, 784];
  const a = data(rng, m * k);
  const b = data(rng, k * n);
  const c0 = data(rng, m * n);
  const run = (ws: GemmWorkspace): number[] => {
    const c = c0.slice();
    gemmImpl(ws, m, n, k, 0.25, a, false, b, true, 0.5, c);
    return bits(c);
  };
  const ws = new GemmWorkspace('wasm-simd');
  const first = run(ws);
  t.deepEqual(run(ws), first);
  t.deepEqual(run(new GemmWorkspace('wasm-simd')), first);
  ws.release();
  t.deepEqual(run(ws), first);
  // A larger product grows the memory; the next small one runs in it.
  gemmImpl(ws, 300, 900, 800, 1, data(rng, 300 * 800), false, data(rng, 800 * 900), false, 0, new Float32Array(300 * 900));
  t.deepEqual(run(ws), first);
  // And the result is not trivially constant: a changed input changes it.
  a[0] = a[0]! + 1;
  t.notDeepEqual(run(ws), first);
});

test('without WebAssembly (node --jitless) the default is asm.js, and asking for wasm-simd throws BackendUnavailableError', (t) => {
  const lines = [
    "const { createJsBackend } = await import('./src/kernels/js/index.ts');",
    'let refused = null;',
    "try { createJsBackend({ gemmKernel: 'wasm-simd' }); } catch (e) { refused = { name: e.name, code: e.code, message: e.message }; }",
    'const b = createJsBackend();',
    'const x = b.alloc(2, 3); const y = b.alloc(3, 2); const z = b.alloc(2, 2);',
    'b.write(x, Float32Array.from([1, 2, 3, 4, 5, 6])); b.write(y, Float32Array.from([7, 8, 9, 10, 11, 12]));',
    'b.gemm(z, x, y); const out = new Float32Array(4); b.read(z, out);',
    'console.log(JSON.stringify({ wasm: typeof WebAssembly, description: b.info.description, out: Array.from(out), refused }));',
  ];
  const parse = (run: { status: number | null; stdout: string; stderr: string }): unknown => {
    t.is(run.status, 0, run.stderr);
    return JSON.parse(run.stdout.trim());
  };
  const refused = {
    name: 'BackendUnavailableError',
    code: 'EBACKEND',
    message:
      "Backend 'js' is unavailable: the 'wasm-simd' gemm kernel was asked for, but this JavaScript engine exposes no WebAssembly (as under node --jitless or --no-expose-wasm).",
  };
  // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
  const out = [58, 64, 139, 154];
  t.deepEqual(parse(runChild(['--jitless'], lines)), {
    wasm: 'undefined',
    description: 'js (portable TypeScript, asm.js gemm)',
    out,
    refused,
  });
  t.deepEqual(parse(runChild(['--no-expose-wasm'], lines)), {
    wasm: 'undefined',
    description: 'js (portable TypeScript, asm.js gemm)',
    out,
    refused,
  });
  t.deepEqual(parse(runChild(['--jitless', '--disallow-code-generation-from-strings'], lines)), {
    wasm: 'undefined',
    description: 'js (portable TypeScript, typescript gemm)',
    out,
    refused,
  });
  // Control: the same child without the flag runs the WebAssembly kernel.
  t.deepEqual(parse(runChild([], lines)), {
    wasm: 'object',
    description: `js (portable TypeScript, WebAssembly SIMD FMA gemm${threadsSuffix})`,
    out,
    refused: null,
  });
});

/** Distance from `got` to the float64 `want`, in units of the float32 spacing at `want` (subnormal spacing below 2⁻¹²⁶). */
function ulps(got: number, want: number): number {
  const w = Math.abs(Math.fround(want));
  const spacing = w < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(w)) - 23);
  return Math.abs(got - want) / spacing;
}

test('the WebAssembly sigmoid is within 2 float32 ulps of float64 1/(1 + e^−z) from −120 to 30, subnormals included, with NaN, ±∞ and ±0 right', (t) => {
  const ws = new GemmWorkspace('wasm-simd');
  const zs: number[] = [];
  for (let z = -120; z <= 30; z += 1 / 1024) zs.push(z);
  const cols = 13; // not a multiple of 4: the padded tail lanes must not leak into the next row
  const rows = Math.ceil(zs.length / cols);
  const x = new Float32Array(rows * cols);
  x.set(zs);
  // A bias of −1 on every column: σ(z − 1) checks that the bias is added (once) before σ.
  const bias = new Float32Array(cols).fill(-1);
  const y = x.slice();
  addRowSigmoid(ws, y, bias, rows, cols);
  let worst = 0;
  let where = 0;
  for (let i = 0; i < x.length; i++) {
    const z = Math.fround(x[i]! - 1);
    const e = ulps(y[i]!, 1 / (1 + Math.exp(-z)));
    if (e > worst) [worst, where] = [e, z];
  }
  t.true(worst <= 2, `worst ${worst} ulps at z = ${where}`);
  t.true(worst > 0, 'not bit-identical to the float64 expression (a different code path ran)');
  const special = Float32Array.of(Number.NaN, Infinity, -Infinity, 0, -0, -103, -104, -200, 200);
  addRowSigmoid(ws, special, new Float32Array(special.length), 1, special.length);
  t.true(Number.isNaN(special[0]!));
  t.deepEqual(Array.from(special.subarray(1)), [1, 0, 0.5, 0.5, Math.fround(1 / (1 + Math.exp(103))), 0, 0, 1]);
  // The asm.js workspace keeps the float64 expression: the same inputs give its bits exactly.
  const asm = new GemmWorkspace('asm.js');
  const y2 = x.slice();
  addRowSigmoid(asm, y2, bias, rows, cols);
  t.true(y2.every((v, i) => v === Math.fround(1 / (1 + Math.exp(-(x[i]! + bias[i % cols]!))))));
});

test('linearSigmoid, addRowSigmoid and gemm + addRowSigmoid give the same bits on the js backend (1 and 2 threads)', (t) => {
  const rng = new Random(5);
  for (const threads of [1, 2]) {
    const b = createJsBackend({ threads });
    const [m, k, n] = [37, 300, 203];
    const x = b.alloc(m, k);
    const w = b.alloc(n, k);
    const bias = b.alloc(1, n);
    b.write(x, data(rng, m * k));
    b.write(w, data(rng, n * k));
    b.write(bias, data(rng, n));
    const fused = b.alloc(m, n);
    const separate = b.alloc(m, n);
    b.linearSigmoid!(fused, x, w, bias, true);
    b.gemm(separate, x, w, { transB: true });
    b.addRowSigmoid(separate, separate, bias);
    const [f, s] = [new Float32Array(m * n), new Float32Array(m * n)];
    b.read(fused, f);
    b.read(separate, s);
    t.deepEqual(bits(f), bits(s), `${threads} threads`);
    b.dispose();
  }
});
