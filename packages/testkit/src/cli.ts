/** Runs the vmferry CLI as a user would, capturing its output. */
import { execFile } from 'node:child_process';
import { VMFERRY_BIN } from './node-process.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(node: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, wrap: readonly string[] = []): Promise<CliResult> {
  const [cmd, ...rest] = [...wrap, process.execPath, VMFERRY_BIN, '--node', node, ...args] as [string, ...string[]];
  return new Promise((resolve) => {
    execFile(cmd, rest, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the CLI with --json and parses its document; throws with stderr when it fails. */
export async function cliJson<T = unknown>(node: string, args: readonly string[], wrap: readonly string[] = []): Promise<T> {
  const r = await runCli(node, ['--json', ...args], {}, wrap);
  if (r.code !== 0) throw new Error(`vmferry ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
