/**
 * The TLS upgrade after NBD_OPT_STARTTLS. The server always asks for a client certificate
 * and accepts only one that chains to the configured CA (mTLS, like the node's replication
 * endpoint); `authorize` may then refuse a verified certificate by its identity.
 *
 * A bare `new TLSSocket(socket, { isServer: true })` does not check the client's chain (it
 * reports `authorized: false` for any certificate, and never rejects one), so the socket is
 * handed to a throw-away tls.Server that is never listening: node's server path runs the
 * verification and reports the result in `authorized` / `authorizationError`.
 */
import type { Socket } from 'node:net';
import { createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { PermissionDeniedError } from '@vmferry/core';

export interface NbdTls {
  /** PEM: the server's certificate (chain), its private key, and the CA client certificates must chain to. */
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  /** Decides on a verified client certificate: undefined allows it, a string refuses it (the reason, shown to the client). */
  readonly authorize?: (peer: PeerCertificate) => string | undefined;
}

/** Resolves with the TLS socket once the handshake is done and the client's certificate verified. */
export function upgradeToTls(raw: Socket, tls: NbdTls): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const server = createServer({ cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    server.once('secureConnection', (socket: TLSSocket) => {
      if (socket.authorized) {
        resolve(socket);
        return;
      }
      socket.destroy();
      // A verification code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE (typed as an Error, a string at run time).
      const why: unknown = socket.authorizationError;
      reject(new PermissionDeniedError(`the client certificate was refused: ${why instanceof Error ? why.message : String(why)}`));
    });
    server.once('tlsClientError', (e: Error) => reject(new PermissionDeniedError(`TLS handshake failed: ${e.message}`)));
    server.emit('connection', raw);
  });
}
