/** The storage node client the commands use (the edge's), and its failures in plain words. */
import { isVmferryError } from '@vmferry/core';
import { connectStorageNode, remoteFailure, type NodeCredentials, type StorageNodeClient } from '@vmferry/grpc-edge';

export const DEFAULT_NODE = '127.0.0.1:7400';

let credentialsSource: (() => NodeCredentials) | undefined;
let credentials: NodeCredentials | undefined;

/**
 * Where `connect` takes the node credentials from (the global --node-token-file and
 * --node-tls-* options of the command being run, node-credentials.ts). Read at the first
 * connect, so a command that never dials a node never reads those files.
 */
export function useNodeCredentials(source: () => NodeCredentials): void {
  credentialsSource = source;
  credentials = undefined;
}

/** A client of the node at `address` with the command's credentials; connects on the first call. */
export function connect(address: string): StorageNodeClient {
  credentials ??= credentialsSource?.() ?? {};
  return connectStorageNode(address, credentials);
}

/** A person-readable message for a failed call (the server's own words where it sent any). */
export function describeError(e: unknown, node: string, what = `the storage node at ${node}`): string {
  const remote = remoteFailure(e);
  if (remote && isVmferryError(e)) {
    if (e.code === 'unavailable') {
      const why = remote.details && !/^No connection established/.test(remote.details) ? `: ${remote.details}` : '';
      return `cannot reach ${what}${why} (UNAVAILABLE; is it running? check --node / VMFERRY_NODE, addresses and certificates)`;
    }
    if (remote.details) return `${remote.details} (${remote.status})`;
  }
  return e instanceof Error ? e.message : String(e);
}
