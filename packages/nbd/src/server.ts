/**
 * The NBD listener: TCP and/or a Unix socket, one NbdConnection per client. Closing stops
 * listening, lets each connection answer what it has in flight, and closes them.
 */
import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { FailedPreconditionError, isVmferryError, type BlockExports } from '@vmferry/core';
import { NbdConnection } from './connection.js';

export interface NbdServerOptions {
  readonly exports: BlockExports;
  /** HOST:PORT (port 0 picks a free one). */
  readonly listen?: string;
  /** A Unix socket path (a stale socket there is replaced). */
  readonly socketPath?: string;
  readonly log?: (line: string) => void;
}

export interface RunningNbdServer {
  /** The bound TCP port, when listening on TCP. */
  readonly port?: number;
  readonly socketPath?: string;
  /** Number of open client connections. */
  connections(): number;
  close(): Promise<void>;
}

function listenOn(server: Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Removes a leftover socket file (never anything else) so a restart can bind again. */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new FailedPreconditionError(`NBD socket path ${path} exists and is not a socket`);
  await unlink(path);
}

export async function startNbdServer(options: NbdServerOptions): Promise<RunningNbdServer> {
  const log = options.log ?? (() => undefined);
  const open = new Set<NbdConnection>();
  const accept = (socket: Socket): void => {
    const c = new NbdConnection(socket, options.exports, log);
    open.add(c);
    void c.finished.then(() => open.delete(c));
  };
  const servers: Server[] = [];
  let port: number | undefined;
  try {
    if (options.listen !== undefined) {
      const i = options.listen.lastIndexOf(':');
      const host = options.listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
      const server = createServer(accept);
      servers.push(server);
      await listenOn(server, { host, port: Number(options.listen.slice(i + 1)) });
      const address = server.address();
      port = typeof address === 'object' && address ? address.port : undefined;
    }
    if (options.socketPath !== undefined) {
      await removeStaleSocket(options.socketPath);
      const server = createServer(accept);
      servers.push(server);
      await listenOn(server, { path: options.socketPath });
    }
  } catch (e) {
    await Promise.all(servers.map((s) => (s.listening ? closeServer(s) : Promise.resolve())));
    if (isVmferryError(e)) throw e;
    const where = [options.listen, options.socketPath].filter((x) => x !== undefined).join(' / ');
    throw new FailedPreconditionError(`the NBD server cannot listen on ${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return {
    ...(port === undefined ? {} : { port }),
    ...(options.socketPath === undefined ? {} : { socketPath: options.socketPath }),
    connections: () => open.size,
    close: async () => {
      const closed = Promise.all(servers.map(closeServer));
      await Promise.all([...open].map((c) => c.shutdown()));
      await closed;
    },
  };
}
