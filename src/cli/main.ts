/**
 * The `dbn-node` command line: parses arguments and calls the library. One top-level catch prints
 * one line (the stack only with `--debug`) and sets a non-zero exit code.
 */
import yargs, { type CommandModule } from 'yargs';
import { DbnError } from '../errors.js';
import { escapeText } from './escape.js';
import { evaluateCommand } from './commands/evaluate.js';
import { infoCommand } from './commands/info.js';
import { keygenCommand } from './commands/keygen.js';
import { filtersCommand } from './commands/pictures.js';
import { predictCommand } from './commands/predict.js';
import { sampleCommand } from './commands/sample.js';
import { statusCommand } from './commands/status.js';
import { trainCommand } from './commands/train.js';
import { transformCommand } from './commands/transform.js';
import { packageVersion } from './common.js';
import { relayGpuRun } from './quiet-gpu.js';

/** A command-line usage error (unknown flag, missing argument). */
export class UsageError extends DbnError {
  constructor(message: string) {
    super(message, 'EUSAGE');
  }
}

/** Runs the CLI on `argv` (without `node` and the script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const relayed = await relayGpuRun(argv);
  if (relayed !== undefined) return relayed;
  const debug = argv.includes('--debug');
  const parser = yargs([...argv])
    .scriptName('dbn-node')
    .usage(
      '$0 <command> [options]\n\nDeep belief networks for Node.js: BLAS/GPU kernels, and serverless peer-to-peer training over ZeroMQ.',
    )
    .option('debug', { type: 'boolean', default: false, describe: 'print stack traces', global: true })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress bars or summary lines', global: true })
    .command(trainCommand as CommandModule)
    .command(evaluateCommand as CommandModule)
    .command(sampleCommand as CommandModule)
    .command(filtersCommand as CommandModule)
    .command(infoCommand as CommandModule)
    .command(keygenCommand as CommandModule)
    .command(predictCommand as CommandModule)
    .command(transformCommand as CommandModule)
    .command(statusCommand as CommandModule)
    .demandCommand(1, 'Name a command: train, evaluate, predict, transform, sample, filters, info, keygen or status (dbn-node --help).')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .epilogue('Each command has its own --help with examples.')
    .fail((msg: string | null, err: Error | undefined) => {
      if (err !== undefined) throw err.name === 'YError' ? new UsageError(err.message) : err;
      throw new UsageError(msg ?? 'invalid arguments');
    });
  try {
    await parser.parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as Error;
    const prefix = err instanceof DbnError ? `dbn-node: ${e.name}` : 'dbn-node: error';
    process.stderr.write(`${prefix}: ${escapeText(e.message)}\n`);
    if (debug && e.stack !== undefined) process.stderr.write(`${e.stack.split('\n').map(escapeText).join('\n')}\n`);
    else if (!(err instanceof DbnError)) process.stderr.write('(run with --debug for the stack trace)\n');
    return err instanceof UsageError ? 2 : 1;
  }
}
