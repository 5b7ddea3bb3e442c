/** The local node as a replication target (core TargetPort) over the storage node client. */
import { isVmferryError, type PutStream, type TargetPort } from '@vmferry/core';
import type { StorageNodeClient } from './storage-node-client.js';
import { committedFromWire, snapshotFromWire, snapshotToWire, vmToWire } from '../convert/records.js';

/** `node` as a TargetPort; the caller keeps owning (and closes) the client. */
export function storageNodeTarget(node: StorageNodeClient): TargetPort {
  return {
    missing: (ids) => node.missingChunks(ids),
    put(): PutStream {
      const call = node.putChunks();
      return {
        write: (batch) => call.write({ chunks: batch.map((c) => ({ id: c.id, record: c.record, node: c.node ?? false, compress: c.compress ?? false })) }),
        end: () => call.end(),
        cancel: () => call.cancel(),
      };
    },
    commit: async (sourceSite, vm, snapshot) =>
      committedFromWire(await node.commitReplica({ sourceSite, vm: vmToWire(vm, 0, ''), snapshot: snapshotToWire(snapshot, vm.name) })),
    snapshots: async (vmId) => {
      try {
        return (await node.listSnapshots(vmId)).map(snapshotFromWire);
      } catch (e) {
        // No VM of that id here: it has no snapshots here either.
        if (isVmferryError(e) && e.code === 'not-found') return [];
        throw e;
      }
    },
    readChunks: async function* (ids) {
      for await (const batch of node.readChunks(ids)) yield batch.map((c) => ({ id: c.id, raw: c.record }));
    },
  };
}
