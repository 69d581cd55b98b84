/**
 * Crash safety of model and checkpoint files: child processes save a DBN model (`Dbn.save`), a
 * checkpoint with training state and a single-layer `.rbm` over and over, and are killed with
 * SIGKILL at random moments; after every kill each of the three files must still load (as the
 * previous or the new version). The control mode writes the same bytes naively (truncate, then
 * write in 64 KiB chunks, as a streaming writer would) to show that the check does see broken
 * files.
 *
 * A SIGKILL tests what survives a crashed process (the page cache survives); it does not test a
 * power cut, which the fsyncs are for.
 *
 *     npx tsx bench/crash-safety.ts [--kills 100] [--control-kills 30] [--parallel 10] [--seed 1]
 *
 * Prints one JSON object: the machine, then for each mode the kills, the files checked, the
 * unreadable ones (must be 0 for the library's writer) and the temporary files left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dbn } from '../src/dbn/index.js';
import { createBackend } from '../src/kernels/index.js';
import type { Backend } from '../src/kernels/index.js';
import { Random } from '../src/random.js';
import { Rbm } from '../src/rbm/index.js';
import { machine } from './machine.js';

/** How the child writes: through the library (`atomic`) or naively in place (`naive`, the control). */
export type WriteMode = 'atomic' | 'naive';

/** Options of {@link crashSafety}. */
export interface CrashSafetyOptions {
  readonly mode: WriteMode;
  /** Children killed in all. */
  readonly kills: number;
  /** Children running (and killed) at once, each in its own directory. */
  readonly parallel: number;
  /** Seed of the kill delays. */
  readonly seed: number;
  /** A child is killed after a delay drawn uniformly from [0, maxDelayMs) once it has saved every file once. */
  readonly maxDelayMs: number;
}

/** What {@link crashSafety} found. */
export interface CrashSafetyResult {
  readonly mode: WriteMode;
  readonly kills: number;
  readonly filesChecked: number;
  readonly unreadable: number;
  /** Up to 5 examples: file and error code. */
  readonly examples: readonly string[];
  /** Most temporary files seen in one directory after a kill (a killed save leaves one; the next save of that file removes it). */
  readonly maxTempFiles: number;
  /** Kills that left a temporary file: the writer was killed in the middle of a save. */
  readonly killsMidSave: number;
  readonly elapsedS: number;
}

const FILES = ['model.dbn', 'checkpoint.dbn', 'layer0.rbm'] as const;
const CHILD_FLAG = '--crash-safety-child';
const SELF = fileURLToPath(import.meta.url);

/** Runs the experiment: `kills` children, `parallel` at a time, each killed at a random moment. */
export async function crashSafety(opts: CrashSafetyOptions): Promise<CrashSafetyResult> {
  const t0 = performance.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `dbn-crash-${opts.mode}-`));
  const rng = new Random(opts.seed);
  const backend = createBackend('js');
  let filesChecked = 0;
  let unreadable = 0;
  let maxTempFiles = 0;
  let killsMidSave = 0;
  const examples: string[] = [];
  try {
    for (let done = 0; done < opts.kills; ) {
      const batch = Math.min(opts.parallel, opts.kills - done);
      const delays = Array.from({ length: batch }, () => rng.uniform() * opts.maxDelayMs);
      const dirs = delays.map((_, i) => path.join(root, `w${i}`));
      await Promise.all(dirs.map((dir, i) => killAfter(dir, opts.mode, delays[i]!)));
      for (const dir of dirs) {
        for (const name of FILES) {
          filesChecked++;
          const problem = loadProblem(path.join(dir, name), backend);
          if (problem !== undefined) {
            unreadable++;
            if (examples.length < 5) examples.push(`${path.basename(dir)}/${name}: ${problem}`);
          }
        }
        const temps = fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')).length;
        maxTempFiles = Math.max(maxTempFiles, temps);
        if (temps > 0) killsMidSave++;
      }
      done += batch;
    }
  } finally {
    backend.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return {
    mode: opts.mode,
    kills: opts.kills,
    filesChecked,
    unreadable,
    examples,
    maxTempFiles,
    killsMidSave,
    elapsedS: (performance.now() - t0) / 1000,
  };
}

/** Starts a writer in `dir`, waits until it has saved every file once, then SIGKILLs it after `delayMs`. */
async function killAfter(dir: string, mode: WriteMode, delayMs: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, CHILD_FLAG, mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await ready(child);
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill('SIGKILL');
  await exited;
}

function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the writer exited (${code}) before it was ready`)));
  });
}

/** Why `file` does not load as the model it should hold, or undefined when it loads. */
function loadProblem(file: string, backend: Backend): string | undefined {
  try {
    const name = path.basename(file);
    if (name === 'layer0.rbm') Rbm.load(file, { backend }).dispose();
    else if (name === 'checkpoint.dbn') Dbn.resume(file, { backend }).dispose();
    else Dbn.load(file, { backend }).dispose();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

/** The child: saves the three files once, says `ready`, then saves them again and again until killed. */
function child(mode: WriteMode, dir: string): void {
  const backend = createBackend('js');
  const dbn = new Dbn({ nVisible: 784, layers: [{ nHidden: 256 }, { nHidden: 128 }], seed: 7, backend });
  const paths = FILES.map((f) => path.join(dir, f));
  const saveAll = (iteration: number): void => {
    dbn.metadata = { iteration };
    dbn.save(paths[0]!, { overwrite: true });
    dbn.save(paths[1]!, { overwrite: true, trainingState: true });
    dbn.layers[0]!.save(paths[2]!, { overwrite: true });
  };
  saveAll(0);
  process.stdout.write('ready\n');
  if (mode === 'atomic') {
    for (let i = 1; ; i++) saveAll(i);
  }
  const contents = paths.map((p) => fs.readFileSync(p));
  for (;;) {
    paths.forEach((p, k) => {
      const fd = fs.openSync(p, 'w');
      const bytes = contents[k]!;
      for (let off = 0; off < bytes.length; off += 65536) fs.writeSync(fd, bytes, off, Math.min(65536, bytes.length - off));
      fs.closeSync(fd);
    });
  }
}

function avx512(): boolean {
  try {
    return /\bavx512f\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const common = { parallel: flag('--parallel', 10), seed: flag('--seed', 1), maxDelayMs: flag('--max-delay-ms', 400) };
  const atomic = await crashSafety({ mode: 'atomic', kills: flag('--kills', 100), ...common });
  const naive = await crashSafety({ mode: 'naive', kills: flag('--control-kills', 30), ...common });
  process.stdout.write(
    `${JSON.stringify({ bench: 'crash-safety', machine: { ...machine(), avx512: avx512() }, ...common, atomic, naive }, null, 2)}\n`,
  );
}

if (process.argv[2] === CHILD_FLAG) {
  child(process.argv[3] as WriteMode, process.argv[4]!);
} else if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === SELF) {
  await main();
}
