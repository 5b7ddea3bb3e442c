/*
 * A storage node's API as promises: every unary call, the import/write uploads with flow
 * control, and the export/verify/read streams. Answers are the node's messages as plain objects
 * (the CLI prints them as its JSON documents); every failure is a core VmferryError made by
 * fromServiceError, so callers branch on `code`, never on a gRPC status.
 */
import * as grpc from '@grpc/grpc-js';
import {
  StorageNodeService,
  type StorageNodeClient as GeneratedClientType,
  type ChunkBatch,
  type ChunkIdList,
  type Empty,
  type ListSnapshotsResponse,
  type ListVmsResponse,
  type SiteList,
  type VmRequest,
  type ChunkRecord as WireChunkRecord,
  type CloneVmRequest,
  type CloneVmResponse,
  type CommitReplicaRequest,
  type CreateSnapshotRequest,
  type CreateVmRequest,
  type DiskExtent,
  type GcReport,
  type ImportVmRequest,
  type LabelSnapshotRequest,
  type NodeInfo,
  type PutChunksResult,
  type ReadDiskRequest,
  type RestoreRequest,
  type FenceVmRequest,
  type FenceVmResponse,
  type PromoteVmRequest,
  type SetVmConfigRequest,
  type Site,
  type Snapshot,
  type Stats,
  type VerifyEvent,
  type VerifyReport,
  type Vm,
  type WriteDiskRequest,
  type WriteDiskResponse,
} from '@vmferry/proto';
import { readStream, unaryCall, upload, type Upload } from './calls.js';
import { decodeExtent, encodeImportRequest } from './wire-transfer.js';

/** The generated client with the transfer codecs (wire-transfer.ts) for import and export. */
const GeneratedClient = grpc.makeGenericClientConstructor(
  {
    ...StorageNodeService,
    importVm: { ...StorageNodeService.importVm, requestSerialize: encodeImportRequest },
    readDisk: { ...StorageNodeService.readDisk, responseDeserialize: decodeExtent },
  },
  'vmferry.v1.StorageNode',
) as unknown as new (address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) => GeneratedClientType;

export type {
  CloneVmResponse as CloneResultView,
  DiskExtent,
  GcReport as GcReportView,
  ImportVmRequest as ImportMessage,
  NodeInfo as NodeInfoView,
  Site as SiteView,
  Snapshot as SnapshotView,
  Stats as StatsView,
  VerifyEvent as VerifyEventView,
  VerifyReport as VerifyReportView,
  Vm as VmView,
  WriteDiskRequest as WriteMessage,
  WriteDiskResponse as WriteResultView,
};
export type { Upload };

/** The node's message cap (8 MiB) both ways; a large window for export's server→client stream. */
const MESSAGE_BYTES = 8 * 1024 * 1024;
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MESSAGE_BYTES,
  'grpc.max_send_message_length': MESSAGE_BYTES,
  'grpc-node.flow_control_window': MESSAGE_BYTES,
};

/**
 * How a client proves itself to a node's API (api-auth.ts on the server): a bearer token,
 * a client certificate (mTLS; the node's certificate is checked against `ca` and the name
 * `serverName`, default the host dialled), or both. None: plaintext, for a loopback node.
 */
export interface NodeCredentials {
  readonly token?: string;
  readonly tls?: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer; readonly serverName?: string };
}

/** Adds `authorization: Bearer TOKEN` to every call's metadata (works on plaintext and TLS channels alike). */
function bearerInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

function channelOf(credentials: NodeCredentials): { creds: grpc.ChannelCredentials; options: Partial<grpc.ClientOptions> } {
  const tls = credentials.tls;
  const creds = tls ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert) : grpc.credentials.createInsecure();
  return {
    creds,
    options: {
      ...CHANNEL_OPTIONS,
      ...(tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {}),
      ...(credentials.token !== undefined ? { interceptors: [bearerInterceptor(credentials.token)] } : {}),
    },
  };
}

/** A connected storage node client. */
export interface StorageNodeClient {
  createVm(req: CreateVmRequest): Promise<Vm>;
  listVms(): Promise<Vm[]>;
  getVm(vm: string): Promise<Vm>;
  deleteVm(vm: string): Promise<void>;
  /** Replaces the VM's hypervisor config (template); returns the VM. */
  setVmConfig(req: SetVmConfigRequest): Promise<Vm>;
  createSnapshot(req: CreateSnapshotRequest): Promise<Snapshot>;
  listSnapshots(vm: string): Promise<Snapshot[]>;
  getSnapshot(ref: string): Promise<Snapshot>;
  deleteSnapshot(ref: string): Promise<void>;
  labelSnapshot(req: LabelSnapshotRequest): Promise<Snapshot>;
  cloneVm(req: CloneVmRequest): Promise<CloneVmResponse>;
  restore(req: RestoreRequest): Promise<Vm>;
  fenceVm(req: FenceVmRequest): Promise<FenceVmResponse>;
  promoteVm(req: PromoteVmRequest): Promise<Vm>;
  getStats(vm: string): Promise<Stats>;
  runGc(): Promise<GcReport>;
  getNodeInfo(): Promise<NodeInfo>;
  putSite(site: Site): Promise<Site>;
  listSites(): Promise<Site[]>;
  deleteSite(name: string): Promise<void>;
  /** A new VM from a stream: a header message, data messages, then the end marker (the node commits only on it). */
  importVm(): Upload<ImportVmRequest, Vm>;
  /** Live writes: a header message, then data messages. */
  writeDisk(): Upload<WriteDiskRequest, WriteDiskResponse>;
  /** A vDisk's extents (data and holes), in order. */
  readDisk(req: ReadDiskRequest, signal?: AbortSignal): AsyncGenerator<DiskExtent>;
  /** Progress events, then one report. */
  verify(signal?: AbortSignal): AsyncGenerator<VerifyEvent>;
  /** Replication target calls: the ids of `ids` the node lacks. */
  missingChunks(ids: readonly Buffer[]): Promise<Buffer[]>;
  putChunks(): Upload<ChunkBatch, PutChunksResult>;
  /** Raw (decoded) bytes of chunks the node holds, in `record`, in batches. */
  readChunks(ids: readonly Buffer[], signal?: AbortSignal): AsyncGenerator<WireChunkRecord[]>;
  commitReplica(req: CommitReplicaRequest): Promise<Snapshot>;
  /** Closes the channel; calls in flight fail. */
  close(): void;
}

/**
 * Connects to the node at `address` (HOST:PORT) with `credentials` (default none: plaintext).
 * Connecting is lazy: an unreachable node fails the first call ('unavailable'), a refused
 * token or certificate fails it with 'permission-denied'.
 */
export function connectStorageNode(address: string, credentials: NodeCredentials = {}): StorageNodeClient {
  const ch = channelOf(credentials);
  const c = new GeneratedClient(address, ch.creds, ch.options);
  return {
    createVm: (req) => unaryCall((r, cb) => c.createVm(r, cb), req),
    listVms: async () => (await unaryCall<Empty, ListVmsResponse>((r, cb) => c.listVms(r, cb), {})).vms,
    getVm: (vm) => unaryCall((r, cb) => c.getVm(r, cb), { vm }),
    deleteVm: async (vm) => {
      await unaryCall((r, cb) => c.deleteVm(r, cb), { vm });
    },
    setVmConfig: (req) => unaryCall((r, cb) => c.setVmConfig(r, cb), req),
    createSnapshot: (req) => unaryCall((r, cb) => c.createSnapshot(r, cb), req),
    listSnapshots: async (vm) => (await unaryCall<VmRequest, ListSnapshotsResponse>((r, cb) => c.listSnapshots(r, cb), { vm })).snapshots,
    getSnapshot: (ref) => unaryCall((r, cb) => c.getSnapshot(r, cb), { ref }),
    deleteSnapshot: async (ref) => {
      await unaryCall((r, cb) => c.deleteSnapshot(r, cb), { ref });
    },
    labelSnapshot: (req) => unaryCall((r, cb) => c.labelSnapshot(r, cb), req),
    cloneVm: (req) => unaryCall((r, cb) => c.cloneVm(r, cb), req),
    restore: (req) => unaryCall((r, cb) => c.restore(r, cb), req),
    fenceVm: (req) => unaryCall((r, cb) => c.fenceVm(r, cb), req),
    promoteVm: (req) => unaryCall((r, cb) => c.promoteVm(r, cb), req),
    getStats: (vm) => unaryCall((r, cb) => c.getStats(r, cb), { vm }),
    runGc: () => unaryCall((r, cb) => c.runGc(r, cb), {}),
    getNodeInfo: () => unaryCall((r, cb) => c.getNodeInfo(r, cb), {}),
    putSite: (site) => unaryCall((r, cb) => c.putSite(r, cb), site),
    listSites: async () => (await unaryCall<Empty, SiteList>((r, cb) => c.listSites(r, cb), {})).sites,
    deleteSite: async (name) => {
      await unaryCall((r, cb) => c.deleteSite(r, cb), { name });
    },
    importVm: () => upload((cb) => c.importVm(cb)),
    writeDisk: () => upload((cb) => c.writeDisk(cb)),
    readDisk: (req, signal) => readStream(c.readDisk(req), signal),
    verify: (signal) => readStream(c.verify({}), signal),
    missingChunks: async (ids) => (await unaryCall<ChunkIdList, ChunkIdList>((r, cb) => c.missingChunks(r, cb), { ids: [...ids] })).ids,
    putChunks: () => upload((cb) => c.putChunks(cb)),
    readChunks: async function* (ids, signal) {
      for await (const batch of readStream(c.readChunks({ ids: [...ids] }), signal)) yield batch.chunks;
    },
    commitReplica: (req) => unaryCall((r, cb) => c.commitReplica(r, cb), req),
    close: () => c.close(),
  };
}
