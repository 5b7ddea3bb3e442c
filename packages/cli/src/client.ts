/** A typed, promise-returning storage node client over grpc-js. */
import * as grpc from '@grpc/grpc-js';
import {
  StorageNodeClient,
  type CloneVmRequest,
  type CloneVmResponse,
  type CreateSnapshotRequest,
  type CreateVmRequest,
  type Empty,
  type GcReport,
  type LabelSnapshotRequest,
  type ListSnapshotsResponse,
  type ListVmsResponse,
  type NodeInfo,
  type RestoreRequest,
  type Site,
  type SiteList,
  type SiteRequest,
  type Snapshot,
  type SnapshotRequest,
  type Stats,
  type StatsRequest,
  type Vm,
  type VmRequest,
} from '@vmferry/proto';

export const DEFAULT_NODE = '127.0.0.1:7400';

export function connect(address: string): StorageNodeClient {
  return new StorageNodeClient(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    // Large client window: export is a server→client stream.
    'grpc-node.flow_control_window': 8 * 1024 * 1024,
  });
}

type Callback<Res> = (err: grpc.ServiceError | null, res: Res) => void;

function promised<Req, Res>(fn: (req: Req, cb: Callback<Res>) => unknown): (req: Req) => Promise<Res> {
  return (req) => new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

/** The node's unary calls as promises. */
export function api(c: StorageNodeClient) {
  return {
    createVm: promised<CreateVmRequest, Vm>((r, cb) => c.createVm(r, cb)),
    listVms: promised<Empty, ListVmsResponse>((r, cb) => c.listVms(r, cb)),
    getVm: promised<VmRequest, Vm>((r, cb) => c.getVm(r, cb)),
    deleteVm: promised<VmRequest, Empty>((r, cb) => c.deleteVm(r, cb)),
    createSnapshot: promised<CreateSnapshotRequest, Snapshot>((r, cb) => c.createSnapshot(r, cb)),
    listSnapshots: promised<VmRequest, ListSnapshotsResponse>((r, cb) => c.listSnapshots(r, cb)),
    getSnapshot: promised<SnapshotRequest, Snapshot>((r, cb) => c.getSnapshot(r, cb)),
    deleteSnapshot: promised<SnapshotRequest, Empty>((r, cb) => c.deleteSnapshot(r, cb)),
    labelSnapshot: promised<LabelSnapshotRequest, Snapshot>((r, cb) => c.labelSnapshot(r, cb)),
    cloneVm: promised<CloneVmRequest, CloneVmResponse>((r, cb) => c.cloneVm(r, cb)),
    restore: promised<RestoreRequest, Vm>((r, cb) => c.restore(r, cb)),
    getStats: promised<StatsRequest, Stats>((r, cb) => c.getStats(r, cb)),
    runGc: promised<Empty, GcReport>((r, cb) => c.runGc(r, cb)),
    getNodeInfo: promised<Empty, NodeInfo>((r, cb) => c.getNodeInfo(r, cb)),
    putSite: promised<Site, Site>((r, cb) => c.putSite(r, cb)),
    listSites: promised<Empty, SiteList>((r, cb) => c.listSites(r, cb)),
    deleteSite: promised<SiteRequest, Empty>((r, cb) => c.deleteSite(r, cb)),
  };
}


/** A person-readable message for a failed call (the server's own words where it sent any). */
export function describeError(e: unknown, node: string, what = `the storage node at ${node}`): string {
  const err = e as Partial<grpc.ServiceError>;
  if (err.code === grpc.status.UNAVAILABLE) {
    const why = err.details && !/^No connection established/.test(err.details) ? `: ${err.details}` : '';
    return `cannot reach ${what}${why} (UNAVAILABLE; is it running? check --node / VMFERRY_NODE, addresses and certificates)`;
  }
  if (typeof err.code === 'number' && err.details) return `${err.details} (${grpc.status[err.code]})`;
  return e instanceof Error ? e.message : String(e);
}
