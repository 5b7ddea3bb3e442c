/** SourcePort and TargetPort over grpc-js clients. */
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type {
  AckReplicaRequest,
  AckReplicaResponse,
  ChunkBatch,
  ChunkIdList,
  ChunkRecord,
  ChunkSizeList,
  CommitReplicaRequest,
  ListSnapshotsResponse,
  PackedBatch,
  PageSetHandle,
  PageSetPart,
  VmRequest,
  PutChunksResult,
  ReplicationSourceClient,
  Snapshot,
  SourceSnapshot,
  SourceSnapshotRequest,
  StorageNodeClient,
} from '@vmferry/proto';
import { unary } from './clients.js';
import type { PutStream, SourcePort, TargetPort } from './ports.js';

export function grpcSource(client: ReplicationSourceClient): SourcePort {
  return {
    getSnapshot: (ref) => unary<SourceSnapshotRequest, SourceSnapshot>((r, cb) => client.getSnapshot(r, cb), { ref }),
    async *fetch(ids, signal) {
      const call = client.fetchChunks({ ids: [...ids] });
      const abort = (): void => call.cancel();
      signal?.addEventListener('abort', abort, { once: true });
      try {
        for await (const batch of call as AsyncIterable<ChunkBatch>) yield batch.chunks;
      } finally {
        signal?.removeEventListener('abort', abort);
        call.cancel();
      }
    },
    ack: async (vmId, snapshotId) => {
      await unary<AckReplicaRequest, AckReplicaResponse>((r, cb) => client.ackReplica(r, cb), { vmId, snapshotId });
    },
    async openPageSet(hashes) {
      try {
        let call!: grpc.ClientWritableStream<PageSetPart>;
        const result = new Promise<PageSetHandle>((resolve, reject) => {
          call = client.openPageSet((err, r) => (err ? reject(err) : resolve(r)));
        });
        result.catch(() => undefined);
        for (let i = 0; i < hashes.length; i += 65536) {
          if (!call.write({ hashes: Buffer.concat(hashes.slice(i, i + 65536)) })) await Promise.race([once(call, 'drain'), result]);
        }
        call.end();
        return (await result).token;
      } catch (e) {
        // An older source without packed transfer: fall back to stored chunks.
        if ((e as grpc.ServiceError).code === grpc.status.UNIMPLEMENTED) return undefined;
        throw e;
      }
    },
    async *fetchPacked(ids, pageSet, signal) {
      const call = client.fetchPacked({ ids: [...ids], pageSet: pageSet ?? '' });
      const abort = (): void => call.cancel();
      signal?.addEventListener('abort', abort, { once: true });
      try {
        for await (const batch of call as AsyncIterable<PackedBatch>) yield batch;
      } finally {
        signal?.removeEventListener('abort', abort);
        call.cancel();
      }
    },
    sizes: async (ids) => (await unary<ChunkIdList, ChunkSizeList>((r, cb) => client.chunkSizes(r, cb), { ids: [...ids] })).storedBytes,
  };
}

export function grpcTarget(client: StorageNodeClient): TargetPort {
  return {
    missing: async (ids) => (await unary<ChunkIdList, ChunkIdList>((r, cb) => client.missingChunks(r, cb), { ids: [...ids] })).ids,
    put(): PutStream {
      let call!: grpc.ClientWritableStream<ChunkBatch>;
      const result = new Promise<PutChunksResult>((resolve, reject) => {
        call = client.putChunks((err, r) => (err ? reject(err) : resolve(r)));
      });
      result.catch(() => undefined);
      return {
        write: async (chunks: ChunkRecord[]) => {
          if (!call.write({ chunks })) await Promise.race([once(call, 'drain'), result]);
        },
        end: () => {
          call.end();
          return result;
        },
        cancel: () => call.cancel(),
      };
    },
    snapshots: async (vmId) => {
      try {
        return (await unary<VmRequest, ListSnapshotsResponse>((r, cb) => client.listSnapshots(r, cb), { vm: vmId })).snapshots;
      } catch (e) {
        if ((e as grpc.ServiceError).code === grpc.status.NOT_FOUND) return [];
        throw e;
      }
    },
    async *readChunks(ids) {
      const call = client.readChunks({ ids: [...ids] });
      try {
        for await (const batch of call as AsyncIterable<ChunkBatch>) yield batch.chunks.map((c) => ({ id: c.id, raw: c.record }));
      } finally {
        call.cancel();
      }
    },
    commit: (sourceSite, vm, snapshot) => unary<CommitReplicaRequest, Snapshot>((r, cb) => client.commitReplica(r, cb), { sourceSite, vm, snapshot }),
  };
}
