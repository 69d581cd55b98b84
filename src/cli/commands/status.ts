/** `dbn-node status --url http://host:port`: a running peer's `/status` as a table (or JSON). */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { InvalidOptionError } from '../../errors.js';
import type { GlobalArgs } from '../common.js';
import { fetchStatus, formatStatusTable } from '../observe/status-table.js';

interface StatusArgs extends GlobalArgs {
  readonly url: string;
  readonly json: boolean;
  readonly 'timeout-ms': number;
}

async function handler(a: ArgumentsCamelCase<StatusArgs>): Promise<void> {
  const timeout = a['timeout-ms'];
  if (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > 600_000)
    throw new InvalidOptionError(`--timeout-ms must be an integer in [1, 600000], got ${timeout}.`);
  const doc = await fetchStatus(a.url, timeout);
  process.stdout.write(a.json ? `${JSON.stringify(doc, null, 2)}\n` : formatStatusTable(doc));
}

/** The `status` command. */
export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status',
  describe: 'show a running peer: its progress, the peers it hears, divergence and traffic (train --metrics-port)',
  builder: ((y: Argv) =>
    y
      .option('url', { type: 'string', demandOption: true, describe: "the peer's --metrics-port server, e.g. http://127.0.0.1:9100" })
      .option('json', { type: 'boolean', default: false, describe: 'print the /status document as JSON' })
      .option('timeout-ms', { type: 'number', default: 5000, describe: 'longest wait for the answer' })
      .example('$0 status --url http://10.0.0.2:9100', 'one row per peer it hears')) as unknown as CommandModule<
    GlobalArgs,
    StatusArgs
  >['builder'],
  handler,
};
