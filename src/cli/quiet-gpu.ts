/**
 * Quiet `--backend gpu…` runs. Dawn writes its adapter warnings from native code straight to
 * file descriptor 2, which JavaScript cannot redirect, so the CLI runs itself once more as a child
 * whose stderr it reads, holding back Dawn's records ({@link DawnLogFilter}) and passing
 * everything else through, in order. stdin and stdout are the child's own. `--debug` or
 * `DBN_NODE_DAWN_LOGS=1` runs in one process and shows everything.
 *
 * When stderr is a terminal, the child is told its size (`DBN_NODE_STDERR_TTY=COLSxROWS`) and
 * draws its progress bars as if it wrote to it directly.
 */
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { DawnLogFilter } from '../kernels/gpu/dawn-log.js';

/** Set in the child so that it does not relay again. */
const CHILD_ENV = 'DBN_NODE_STDERR_RELAYED';
const TTY_ENV = 'DBN_NODE_STDERR_TTY';

/** Whether `argv` asks for a gpu backend (`--backend gpu`, `gpu:MODE`, `--backend=gpu…`). */
export function wantsGpu(argv: readonly string[]): boolean {
  return argv.some((a, i) => (a === '--backend' && argv[i + 1]?.startsWith('gpu') === true) || a.startsWith('--backend=gpu'));
}

/**
 * In the child: makes `process.stderr` draw like the parent's terminal. In the parent of a gpu
 * run (the process's own command line is `argv`, not `--debug`, no `DBN_NODE_DAWN_LOGS=1`):
 * runs the child, relays its stderr without Dawn's records and returns its exit code.
 * Otherwise returns undefined (run in this process).
 */
export async function relayGpuRun(argv: readonly string[]): Promise<number | undefined> {
  if (process.env[CHILD_ENV] === '1') {
    actAsTerminal(process.env[TTY_ENV]);
    return undefined;
  }
  const ownCommandLine = process.argv.length === argv.length + 2 && argv.every((a, i) => process.argv[i + 2] === a);
  if (!ownCommandLine || !wantsGpu(argv) || argv.includes('--debug') || process.env['DBN_NODE_DAWN_LOGS'] === '1') return undefined;
  const err = process.stderr;
  const tty = err.isTTY === true ? `${err.columns}x${err.rows}` : '';
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, [CHILD_ENV]: '1', [TTY_ENV]: tty },
  });
  const filter = new DawnLogFilter();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    const out = filter.push(chunk);
    if (out !== '') err.write(out);
  });
  // Ctrl-C at a terminal reaches the child directly (same process group): passing it on too would
  // interrupt twice. Without a terminal, and for SIGTERM, a signal for this process is passed on.
  // Either way this process lives until the child ends, to relay its last words.
  const interactive = process.stdin.isTTY === true;
  const forward = (signal: NodeJS.Signals): void => {
    if (signal !== 'SIGINT' || !interactive) child.kill(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        const rest = filter.end();
        if (rest !== '') err.write(rest);
        resolve(code ?? 128 + (signal === null ? 1 : signalNumber(signal)));
      });
    });
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 1;
}

/** Gives the piped `process.stderr` a terminal's size and cursor methods (they write escape codes). */
function actAsTerminal(size: string | undefined): void {
  const m = /^(\d+)x(\d+)$/.exec(size ?? '');
  if (m === null) return;
  const columns = Number(m[1]);
  const rows = Number(m[2]);
  const stream = process.stderr as NodeJS.WriteStream;
  Object.assign(stream, {
    isTTY: true,
    columns,
    rows,
    getWindowSize: () => [columns, rows],
    hasColors: () => true,
    getColorDepth: () => 8,
    cursorTo: (x: number, y?: number, cb?: () => void) => readline.cursorTo(stream, x, y, cb),
    moveCursor: (dx: number, dy: number, cb?: () => void) => readline.moveCursor(stream, dx, dy, cb),
    clearLine: (dir: -1 | 0 | 1, cb?: () => void) => readline.clearLine(stream, dir, cb),
    clearScreenDown: (cb?: () => void) => readline.clearScreenDown(stream, cb),
  });
}
