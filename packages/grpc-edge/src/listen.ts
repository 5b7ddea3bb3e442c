import type { EventEmitter } from 'node:events';
import type { Http2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';

/** In-flight calls get this long to finish on stop before the server cancels them. */
export const STOP_GRACE_MS = 5000;

/** Binds `server` on `address` (port 0 picks one); resolves to the bound port. */
export function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, p) => (err ? reject(err) : resolve(p))));
}

/** Stops accepting calls, lets in-flight ones finish for STOP_GRACE_MS, then cancels them. */
export function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), STOP_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

/** HTTP/2 receive window the node grants each client connection and stream. */
export const RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;

/**
 * grpc-js has no server option for the HTTP/2 receive window (it stays at 64 KiB; docs/design.md),
 * which caps client→server streams (import, write) at one window per event-loop turn. Until
 * grpc-js grows the option, raise it on each new session of the server's HTTP/2 listeners.
 * Reaching into `http2Servers` is a private field: if a grpc-js upgrade renames it, this
 * becomes a no-op (slower imports, nothing breaks).
 */
export function raiseReceiveWindow(server: grpc.Server): void {
  const listeners = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  for (const listener of listeners?.keys() ?? []) {
    listener.on('session', (session: Http2Session) => {
      session.setLocalWindowSize(RECEIVE_WINDOW_BYTES);
      session.settings({ initialWindowSize: RECEIVE_WINDOW_BYTES });
    });
  }
}
