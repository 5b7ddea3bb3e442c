export * from './gen/vmferry/v1/storage.js';
export {
  ReplicationSourceService,
  ReplicationSourceClient,
  SourceSnapshotRequest,
  SourceSnapshot,
  ChunkSizeList,
  AckReplicaRequest,
  PageSetPart,
  PageSetHandle,
  FetchPackedRequest,
  PackedChunk,
  PackedBatch,
  AckReplicaResponse,
  type ReplicationSourceServer,
} from './gen/vmferry/v1/replication.js';
export { Empty } from './gen/google/protobuf/empty.js';
export { findUnsafeInt64, requestTypeOf } from './unsafe-int64.js';
