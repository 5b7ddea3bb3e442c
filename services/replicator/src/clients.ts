import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { FailedPreconditionError, type SiteRecord } from '@vmferry/core';
import { ReplicationSourceClient, StorageNodeClient } from '@vmferry/proto';
import { boundTarget } from './bind-resolver.js';

/** The replicating site's TLS material (PEM files). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** HTTP/2 window for pulls: large, so a stream is not capped at one window per round trip. */
export const PULL_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * A client of `source`'s replication endpoint: mTLS with this site's certificate, the
 * server checked against the site's identity, connections from `bindAddress` when given.
 */
export function sourceClient(source: SiteRecord, tls: TlsFiles, bindAddress?: string): ReplicationSourceClient {
  if (!source.replicationAddress) throw new FailedPreconditionError(`site ${source.name} has no replication address: set it with vmferry site add ${source.name} --replication HOST:PORT`);
  const creds = grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert));
  const { target, options } = boundTarget(source.replicationAddress, bindAddress || undefined);
  return new ReplicationSourceClient(target, creds, {
    ...options,
    'grpc.ssl_target_name_override': source.identity,
    'grpc.default_authority': source.identity,
    'grpc-node.flow_control_window': PULL_WINDOW_BYTES,
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
  });
}

/** A client of this site's storage node API (local, plaintext). */
export function nodeClient(address: string): StorageNodeClient {
  return new StorageNodeClient(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    'grpc.max_send_message_length': 8 * 1024 * 1024,
  });
}

export function unary<Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}
