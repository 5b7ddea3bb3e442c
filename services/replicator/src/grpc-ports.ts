/** SourcePort and TargetPort over grpc-js clients. */
import { once } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import type {
  AckReplicaRequest,
  AckReplicaResponse,
  ChunkBatch,
  ChunkIdList,
  ChunkRecord,
  ChunkSizeList,
  CommitReplicaRequest,
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
    commit: (sourceSite, vm, snapshot) => unary<CommitReplicaRequest, Snapshot>((r, cb) => client.commitReplica(r, cb), { sourceSite, vm, snapshot }),
  };
}
