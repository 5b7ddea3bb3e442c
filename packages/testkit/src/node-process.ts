/** Starts a real storage node as a separate process (the vmferry CLI), for tests and demos. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

/** The repository's vmferry CLI entry point. */
export const VMFERRY_BIN = join(__dirname, '..', '..', '..', 'cli', 'bin', 'vmferry.js');

export interface NodeProcess {
  readonly address: string;
  /** The replication endpoint's address, when the node serves one. */
  readonly replicationAddress?: string;
  /** The NBD server's HOST:PORT, when started with --nbd-listen. */
  readonly nbdAddress?: string;
  readonly child: ChildProcess;
  /** Everything the node printed on stderr so far. */
  log(): string;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash) and wait for the process to be gone. */
  kill(): Promise<void>;
}

export interface NodeProcessOptions {
  readonly dataDir: string;
  readonly listen?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** A command prefix, e.g. ['ip', 'netns', 'exec', 'siteA'] to run the node in a namespace. */
  readonly wrap?: readonly string[];
}

export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  const argv = [process.execPath, VMFERRY_BIN, 'node', '--data', options.dataDir, '--listen', options.listen ?? '127.0.0.1:0', ...(options.extraArgs ?? [])];
  const [cmd, ...args] = [...(options.wrap ?? []), ...argv] as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...options.env } });
  let stderr = '';
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`storage node did not start in 20 s:\n${stderr}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (\S+),/.exec(stderr);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`storage node exited with ${code} before listening:\n${stderr}`));
    });
  });
  const exited = once(child, 'exit');
  const repl = /replication endpoint \(mTLS, read-only\) on (\S+)/.exec(stderr)?.[1];
  const nbd = /NBD server on (\S+:\d+)/.exec(stderr)?.[1];
  return {
    address,
    ...(repl ? { replicationAddress: repl } : {}),
    ...(nbd ? { nbdAddress: nbd } : {}),
    child,
    log: () => stderr,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
