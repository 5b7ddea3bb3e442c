/** The storage node client the commands use (the edge's), and its failures in plain words. */
import { isVmferryError } from '@vmferry/core';
import { connectStorageNode, remoteFailure, type StorageNodeClient } from '@vmferry/grpc-edge';

export const DEFAULT_NODE = '127.0.0.1:7400';

/** A client of the node at `address`; connects on the first call. */
export function connect(address: string): StorageNodeClient {
  return connectStorageNode(address);
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
