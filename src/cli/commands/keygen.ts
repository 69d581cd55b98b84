/** `dbn-node keygen`: a CURVE key pair for a peer (like ssh-keygen). */
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { generateKeyPair, PUBLIC_KEY_FILE, SECRET_KEY_FILE, writeKeyPair } from '../../sync/index.js';
import type { GlobalArgs } from '../common.js';

interface KeygenArgs extends GlobalArgs {
  readonly dir: string;
  readonly force: boolean;
}

async function handler(a: ArgumentsCamelCase<KeygenArgs>): Promise<void> {
  const pair = generateKeyPair();
  await writeKeyPair(a.dir, pair, { force: a.force });
  if (!a.quiet) {
    process.stdout.write(
      `wrote ${path.join(a.dir, SECRET_KEY_FILE)} (secret, mode 600) and ${path.join(a.dir, PUBLIC_KEY_FILE)}\n` +
        `public key: ${pair.publicKey}\n` +
        `Give the public key to the other peers: they list it in their allowlist (<keys>/peers/*.pub).\n`,
    );
  }
}

/** The `keygen` command. */
export const keygenCommand: CommandModule<GlobalArgs, KeygenArgs> = {
  command: 'keygen',
  describe: 'write a CURVE key pair for peer-to-peer training (the secret key never leaves this machine)',
  builder: ((y: Argv) =>
    y
      .option('dir', { type: 'string', default: 'keys', describe: 'directory for curve.key and curve.pub' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing key pair' })
      .example('$0 keygen --dir keys/', "then copy keys/curve.pub to the other peers' keys/peers/<name>.pub")) as unknown as CommandModule<
    GlobalArgs,
    KeygenArgs
  >['builder'],
  handler,
};
