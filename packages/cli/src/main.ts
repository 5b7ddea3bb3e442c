/**
 * The vmferry command's entry: runs the command tree (program.ts) and reports a failure once:
 * a sentence on stderr, with --json also `{"error":{code,message,retryable,exitCode}}` on
 * stdout, and the exit code of its kind (exit-codes.ts).
 */
import { CommanderError } from 'commander';
import { isVmferryError } from '@vmferry/core';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { fromFileError } from './failures.js';
import { printJson } from './output.js';
import { buildProgram } from './program.js';

const program = buildProgram();

/** --json as parsed, or on the command line when parsing stopped before it was read. */
const wantsJson = (): boolean => program.opts<{ json?: boolean }>().json === true || process.argv.slice(2).includes('--json');

function report(e: unknown): void {
  if (e instanceof CommanderError) {
    // --help and --version end through here too, with exit code 0; commander printed them.
    if (e.exitCode === 0) return;
    // Commander printed the message and the usage hint on stderr already.
    if (wantsJson()) printJson({ error: { code: 'usage', message: e.message.replace(/^error: /, ''), retryable: false, exitCode: EXIT.usage } });
    process.exitCode = EXIT.usage;
    return;
  }
  const err = fromFileError(e) ?? e;
  const message = err instanceof Error ? err.message : String(err);
  const code = isVmferryError(err) ? err.code : 'internal';
  const exitCode = exitCodeFor(code);
  process.stderr.write(`vmferry: ${message}\n`);
  if (wantsJson()) printJson({ error: { code, message, retryable: isVmferryError(err) && err.retryable, exitCode } });
  process.exitCode = exitCode;
}

program.parseAsync(process.argv).catch(report);
