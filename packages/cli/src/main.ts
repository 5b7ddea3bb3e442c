/**
 * The vmferry command. Global options: --node HOST:PORT (env VMFERRY_NODE), --json, and the
 * node API credentials (--node-token-file, --node-tls-*; node-credentials.ts).
 * Every command prints a table (or fields) for people, or one JSON document with --json.
 * Errors go to stderr with a non-zero exit.
 */
import { Command, Option } from 'commander';
import { registerCommands } from './commands.js';
import { registerReplicationCommands } from './replicate-commands.js';
import { registerCoordinationCommands } from './coordination-commands.js';
import { registerFailoverCommands } from './failover-commands.js';
import { registerFilesCommands } from './files/files-commands.js';
import { addNodeCredentialOptions, nodeCredentialsOf } from './node-credentials.js';
import { useNodeCredentials } from './client.js';

const program = new Command();
program
  .name('vmferry')
  .description('Per-VM snapshots, clones and replication on a deduplicated chunk store')
  .addOption(new Option('--node <host:port>', 'storage node address').env('VMFERRY_NODE').default('127.0.0.1:7400'))
  .option('--json', 'print one JSON document on stdout', false)
  .showHelpAfterError();
addNodeCredentialOptions(program);
// Every node the command dials gets the credentials its global options name.
program.hook('preAction', (_program, action) => useNodeCredentials(() => nodeCredentialsOf(action)));

registerCommands(program);
registerReplicationCommands(program);
registerCoordinationCommands(program);
registerFailoverCommands(program);
registerFilesCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`vmferry: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
