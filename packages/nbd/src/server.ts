/**
 * The NBD listener: TCP and/or a Unix socket, one NbdConnection per client. Closing stops
 * listening, lets each connection answer what it has in flight, and closes them.
 *
 * TLS: with `tls`, the TCP listener requires it (FORCEDTLS: a plaintext client is answered
 * NBD_REP_ERR_TLS_REQD and cannot reach an export). Without it, the TCP listener must be on
 * loopback (loopback.ts): plaintext NBD is unauthenticated. The Unix socket is always plain,
 * guarded by its file permissions, and answers STARTTLS with ERR_UNSUP.
 */
import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { FailedPreconditionError, isVmferryError, type BlockExports } from '@vmferry/core';
import { NbdConnection } from './connection.js';
import { isLoopbackHost, splitHostPort } from './loopback.js';
import type { NbdTls } from './tls.js';

export interface NbdServerOptions {
  readonly exports: BlockExports;
  /** HOST:PORT (port 0 picks a free one). */
  readonly listen?: string;
  /** A Unix socket path (a stale socket there is replaced). */
  readonly socketPath?: string;
  /** TLS for the TCP listener, then required there; needed when `listen` is beyond loopback. */
  readonly tls?: NbdTls;
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
  const acceptWith =
    (tls: NbdTls | undefined) =>
    (socket: Socket): void => {
      const c = new NbdConnection(socket, options.exports, log, tls);
      open.add(c);
      void c.finished.then(() => open.delete(c));
    };
  const servers: Server[] = [];
  let port: number | undefined;
  try {
    if (options.listen !== undefined) {
      const { host, port: wanted } = splitHostPort(options.listen);
      if (options.tls === undefined && !isLoopbackHost(host)) {
        throw new FailedPreconditionError(`the NBD server refuses to listen on ${options.listen} without TLS: plaintext NBD is served on loopback only`);
      }
      const server = createServer(acceptWith(options.tls));
      servers.push(server);
      await listenOn(server, { host, port: wanted });
      const address = server.address();
      port = typeof address === 'object' && address ? address.port : undefined;
    }
    if (options.socketPath !== undefined) {
      await removeStaleSocket(options.socketPath);
      const server = createServer(acceptWith(undefined));
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
