/*
 * Authentication of the storage node's management API (the StorageNode service): a bearer
 * token, mutual TLS, or both. The node decides which applies (its config refuses a listener
 * beyond loopback with neither); this file enforces it on every call before any handler runs,
 * so a refused call changes nothing.
 *
 * - Token: every call carries `authorization: Bearer TOKEN` metadata. Compared in constant
 *   time (both sides hashed to 32 bytes first, so the length leaks nothing either). Missing or
 *   wrong: UNAUTHENTICATED saying which.
 * - mTLS: the listener serves the site's certificate and requires a client certificate that
 *   chains to the site CA (checked in the TLS handshake: another CA never gets a call in).
 *   Peer sites' certificates chain to the same CA, so the subject CN must also be allowed
 *   (this site's own, or one of --api-clients): otherwise PERMISSION_DENIED naming the CN.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { peerIdentity, type ServerTlsFiles } from './replication-source-server.js';

/** The metadata key a client's token travels in (lower case, as HTTP/2 carries it). */
export const AUTHORIZATION_METADATA = 'authorization';

export interface ApiAuthOptions {
  /** Every call must carry this bearer token. */
  readonly token?: string;
  /** Serve TLS with these files and require a client certificate from `caFile` whose CN is allowed. */
  readonly tls?: ServerTlsFiles & { readonly allowedIdentities: readonly string[] };
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** The token a call's metadata carries; undefined without an `authorization: Bearer …` entry. */
function bearerOf(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get(AUTHORIZATION_METADATA)[0];
  const m = typeof value === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return m?.[1];
}

/** Why a call may not proceed (its status and words); undefined when it may. */
export function refusalOf(
  auth: ApiAuthOptions,
  metadata: grpc.Metadata,
  identity: () => string | undefined,
): { code: grpc.status; details: string } | undefined {
  if (auth.tls) {
    const cn = identity();
    if (cn === undefined || !auth.tls.allowedIdentities.includes(cn)) {
      return {
        code: grpc.status.PERMISSION_DENIED,
        details: `certificate CN=${cn ?? '(none)'} may not use this node's API (allowed: ${auth.tls.allowedIdentities.join(', ')}; the node's --api-clients adds names)`,
      };
    }
  }
  if (auth.token !== undefined) {
    const given = bearerOf(metadata);
    if (given === undefined) {
      return {
        code: grpc.status.UNAUTHENTICATED,
        details: "this node's API requires a bearer token: give the client --node-token-file FILE (or VMFERRY_NODE_TOKEN_FILE)",
      };
    }
    if (!timingSafeEqual(digest(given), digest(auth.token))) {
      return { code: grpc.status.UNAUTHENTICATED, details: "the bearer token is not this node's API token (--api-token-file on the node)" };
    }
  }
  return undefined;
}

/** A server interceptor that answers a refused call with its status before any handler sees it. */
export function apiAuthInterceptor(auth: ApiAuthOptions): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        let refused = false;
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const refusal = refusalOf(auth, metadata, () => peerIdentity(call));
            if (refusal) {
              refused = true;
              call.sendStatus({ ...refusal, metadata: new grpc.Metadata() });
            } else mdNext(metadata);
          },
          // Nothing of a refused call reaches the handler (it was never started).
          onReceiveMessage: (message, msgNext) => {
            if (!refused) msgNext(message);
          },
          onReceiveHalfClose: (halfNext) => {
            if (!refused) halfNext();
          },
        });
      },
    });
}

/** The listener's credentials: TLS with required client certificates, or plaintext. Rejects when a TLS file cannot be read. */
export async function apiServerCredentials(auth: ApiAuthOptions): Promise<grpc.ServerCredentials> {
  if (!auth.tls) return grpc.ServerCredentials.createInsecure();
  const [cert, key, ca] = await Promise.all([readFile(auth.tls.certFile), readFile(auth.tls.keyFile), readFile(auth.tls.caFile)]);
  return grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true);
}
