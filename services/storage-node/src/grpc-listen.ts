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
