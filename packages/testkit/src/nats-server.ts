/** Starts a real nats-server (Debian's) with JetStream on a free port in a temp folder. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
  kill(): Promise<void>;
  /** Starts it again on the same port and storage (after stop or kill). */
  restart(): Promise<void>;
}

export function natsServerBinary(): string {
  for (const p of ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']) if (existsSync(p)) return p;
  return 'nats-server';
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, host, r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface NatsOptions {
  readonly port?: number;
  readonly dir?: string;
  /** Extra configuration text appended to the server's config file (leafnodes, gateways…). */
  readonly config?: string;
  readonly name?: string;
  /** Run JetStream here (default true); false for a site's leaf server that uses the hub's. */
  readonly jetstream?: boolean;
  /** JetStream domain name, so leaf-node clients can reach this server's JetStream. */
  readonly domain?: string;
}

export async function startNatsServer(options: NatsOptions = {}): Promise<NatsServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'vmferry-nats-'));
  const port = options.port ?? (await freePort());
  const conf = join(dir, 'nats.conf');
  writeFileSync(
    conf,
    `server_name: ${options.name ?? `vmferry-${port}`}\nlisten: 127.0.0.1:${port}\n` +
      (options.jetstream === false ? '' : `jetstream { store_dir: "${join(dir, 'js')}"${options.domain ? `, domain: ${options.domain}` : ''} }\n`) +
      `${options.config ?? ''}\n`,
  );
  let child!: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn(natsServerBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 15_000);
      child.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${log}`));
      });
    });
  };
  await launch();
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  };
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    get child() {
      return child;
    },
    stop: async () => {
      await halt('SIGTERM');
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
    kill: () => halt('SIGKILL'),
    restart: launch,
  };
}
