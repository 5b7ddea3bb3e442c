/**
 * The vmferry command tree. Global options: --node HOST:PORT (env VMFERRY_NODE), --json,
 * --nats URL (env VMFERRY_NATS), and the node API credentials (--node-token-file,
 * --node-tls-*; node-credentials.ts). Commander's exits are turned into exceptions (exitOverride)
 * so main.ts gives every failure, usage errors included, one exit code table and --json form.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_NODE } from './client.js';
import { registerCommands } from './commands.js';
import { registerReplicationCommands } from './replicate-commands.js';
import { registerCoordinationCommands } from './coordination-commands.js';
import { registerFailoverCommands } from './failover-commands.js';
import { registerFilesCommands } from './files/files-commands.js';
import { addNodeCredentialOptions, nodeCredentialsOf } from './node-credentials.js';
import { useNodeCredentials } from './client.js';

/** This package's version (dist/src/program.js → package.json). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vmferry')
    .description('Per-VM snapshots, clones and replication on a deduplicated chunk store')
    .version(cliVersion(), '-V, --version', 'print the version and exit')
    .addOption(new Option('--node <host:port>', 'storage node address').env('VMFERRY_NODE').default(DEFAULT_NODE))
    .option('--json', 'print one JSON document on stdout (errors too: {"error":{…}})')
    .helpOption('-h, --help', 'show help for a command')
    .helpCommand('help [command]', 'show help for a command')
    .showHelpAfterError('(add --help for usage)')
    // Inherited by every subcommand added below.
    .exitOverride();
  addNodeCredentialOptions(program);
  // Every node the command dials gets the credentials its global options name.
  program.hook('preAction', (_program, action) => useNodeCredentials(() => nodeCredentialsOf(action)));

  registerCommands(program);
  registerReplicationCommands(program);
  registerCoordinationCommands(program);
  registerFailoverCommands(program);
  registerFilesCommands(program);
  return program;
}
