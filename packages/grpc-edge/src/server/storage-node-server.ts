/*
 * The storage node's gRPC server: each StorageNode method translates its wire request to a
 * call of the StorageNodeApi and the result back to the wire. No decisions are made here
 * beyond the protocol's own rules (upload-streams.ts); errors become statuses (errors.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, type ChunkBytes, type DiskRead, type StorageNodeApi, type VmRecord } from '@vmferry/core';
import { StorageNodeService, type ChunkBatch, type StorageNodeServer } from '@vmferry/proto';
import { bind, raiseReceiveWindow, shutdown } from '../listen.js';
import { sendAll, serveStream, serveUnary } from './handlers.js';
import { siteFromWire, siteToWire, snapshotFromWire, snapshotToWire, vmFromWire, vmToWire } from '../convert/records.js';
import { statsToWire, verifyReportToWire } from '../convert/reports.js';
import { withSafeDecode } from './safe-decode.js';
import { receiveImport, receiveWrite } from './upload-streams.js';
import { encodeExtent, type ExtentMessage } from './wire-extent.js';
import { apiAuthInterceptor, apiServerCredentials, type ApiAuthOptions } from './api-auth.js';

/** Largest message the node accepts; clients send data in ≤ 1 MiB pieces. */
export const MAX_RECEIVE_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Chunks verified between progress events of a Verify stream. */
const VERIFY_PROGRESS_EVERY = 1024;

/** ReadDisk's messages: the first carries the disk size; an empty range still sends one. */
async function* extentMessages(read: DiskRead, offset: number): AsyncGenerator<ExtentMessage> {
  let first = true;
  for await (const x of read.extents) {
    yield { offset: x.offset, parts: x.parts ?? [], holeLength: x.parts ? 0 : x.length, diskSize: first ? read.size : 0 };
    first = false;
  }
  if (first) yield { offset, parts: [], holeLength: 0, diskSize: read.size };
}

async function* chunkBatches(groups: AsyncIterable<readonly ChunkBytes[]>): AsyncGenerator<ChunkBatch> {
  for await (const group of groups) yield { chunks: group.map((c) => ({ id: c.id, record: c.bytes, node: false, compress: false })) };
}

/** What GetNodeInfo reports besides the site: the NBD endpoints are asked for per call (NBD starts after the API). */
export interface NodeInfoOptions {
  readonly replicationAddress?: string;
  readonly nbd?: () => { readonly address?: string; readonly socket?: string };
}

/** How the API listens: NodeInfoOptions plus who may call (api-auth.ts; none: anyone who reaches it). */
export interface StorageNodeServerOptions extends NodeInfoOptions {
  readonly auth?: ApiAuthOptions;
}

/** The StorageNode handlers over `api`. */
export function storageNodeHandlers(api: StorageNodeApi, info: NodeInfoOptions = {}): StorageNodeServer {
  const vmOut = (vm: VmRecord) => vmToWire(vm, api.snapshotCount(vm.id));
  const vmName = (vmId: string) => api.getVm(vmId).name;
  return {
    createVm: serveUnary(async ({ request: req }) => vmOut(await api.createVm({ name: req.name, disks: req.disks, hypervisorConfig: req.hypervisorConfig }))),
    importVm: serveUnary(async (call) => vmOut(await receiveImport(api, call))),
    listVms: serveUnary(() => ({ vms: api.listVms().map(vmOut) })),
    getVm: serveUnary(({ request }) => vmOut(api.getVm(request.vm))),
    deleteVm: serveUnary(async ({ request }) => {
      await api.deleteVm(request.vm);
      return {};
    }),
    setVmConfig: serveUnary(async ({ request: req }) => vmOut(await api.setVmConfig(req.vm, req.hypervisorConfig))),

    writeDisk: serveUnary((call) => receiveWrite(api, call)),
    readDisk: serveStream(async (call) => {
      const req = call.request;
      const read = api.read(req.ref, req.diskIndex, req.offset, req.length);
      // Written as ExtentMessage: the service definition swaps in encodeExtent (wire-extent.ts).
      const out = call as unknown as grpc.ServerWritableStream<unknown, ExtentMessage>;
      await sendAll(out, extentMessages(read, req.offset));
    }),

    createSnapshot: serveUnary(async ({ request: req }) => {
      const s = await api.createSnapshot(req.vm, req.label === '' ? {} : { label: req.label });
      return snapshotToWire(s, vmName(s.vmId));
    }),
    listSnapshots: serveUnary(({ request }) => {
      const vm = api.getVm(request.vm);
      return { snapshots: api.listSnapshots(vm.id).map((s) => snapshotToWire(s, vm.name)) };
    }),
    getSnapshot: serveUnary(({ request }) => {
      const { vm, snapshot } = api.getSnapshot(request.ref);
      return snapshotToWire(snapshot, vm.name);
    }),
    deleteSnapshot: serveUnary(async ({ request }) => {
      await api.deleteSnapshot(request.ref);
      return {};
    }),
    labelSnapshot: serveUnary(async ({ request: req }) => {
      const s = await api.labelSnapshot(req.ref, req.label);
      return snapshotToWire(s, vmName(s.vmId));
    }),

    cloneVm: serveUnary(async ({ request: req }) => {
      const { source, vms } = await api.clone(req.ref, req.name, req.count || 1);
      return { vms: vms.map(vmOut), source: snapshotToWire(source, vmName(source.vmId)) };
    }),
    restore: serveUnary(async ({ request: req }) => vmOut(await api.restore(req.ref, req.diskIndex))),
    fenceVm: serveUnary(async ({ request: req }) => {
      const { vm, snapshot } = await api.fenceVm(req.vm, req.ownerSite, req.ownerEpoch);
      return { vm: vmOut(vm), snapshot: snapshotToWire(snapshot, vm.name) };
    }),
    promoteVm: serveUnary(async ({ request: req }) => vmOut(await api.promoteVm(req.vm, req.snapshot === '' ? undefined : req.snapshot, req.epoch))),

    getStats: serveUnary(async ({ request }) => statsToWire(await api.stats(request.vm === '' ? undefined : request.vm))),
    getNodeInfo: serveUnary(() => {
      const nbd = info.nbd?.() ?? {};
      return { site: api.site, replicationAddress: info.replicationAddress ?? '', nbdAddress: nbd.address ?? '', nbdSocket: nbd.socket ?? '' };
    }),

    missingChunks: serveUnary(async ({ request }) => ({ ids: await api.missingChunks(request.ids) })),
    putChunks: serveUnary(async (call) => {
      const total = { chunksStored: 0, chunksAlreadyPresent: 0, bytesStored: 0 };
      for await (const batch of call as AsyncIterable<ChunkBatch>) {
        const r = await api.putChunks(batch.chunks);
        total.chunksStored += r.chunksStored;
        total.chunksAlreadyPresent += r.chunksAlreadyPresent;
        total.bytesStored += r.bytesStored;
      }
      return total;
    }),
    readChunks: serveStream((call) => sendAll(call, chunkBatches(api.readChunks(call.request.ids)))),
    commitReplica: serveUnary(async ({ request: req }) => {
      if (!req.vm || !req.snapshot) throw new InvalidArgumentError('commit needs the VM and the snapshot');
      const s = await api.commitReplica(req.sourceSite, vmFromWire(req.vm), snapshotFromWire(req.snapshot));
      return snapshotToWire(s, req.vm.name);
    }),

    putSite: serveUnary(async ({ request }) => siteToWire(await api.putSite(siteFromWire(request)))),
    listSites: serveUnary(async () => ({ sites: (await api.listSites()).map(siteToWire) })),
    deleteSite: serveUnary(async ({ request }) => {
      await api.deleteSite(request.name);
      return {};
    }),
    runGc: serveUnary(() => api.gc()),
    verify: serveStream(async (call) => {
      let last = 0;
      const report = await api.verify((checked) => {
        if (checked - last >= VERIFY_PROGRESS_EVERY) {
          last = checked;
          call.write({ kind: { $case: 'progress', value: { chunksChecked: checked, chunksTotal: 0 } } });
        }
      });
      call.write({ kind: { $case: 'report', value: verifyReportToWire(report) } });
      call.end();
    }),
  };
}

/** A listening server. */
export interface StartedServer {
  readonly port: number;
  /** Stops accepting calls; in-flight ones get STOP_GRACE_MS (listen.ts) to finish. */
  stop(): Promise<void>;
}

/**
 * Serves `api` as the StorageNode service on `address` (HOST:PORT; port 0 picks a free one),
 * with the receive window raised for uploads: plaintext, or TLS with client certificates when
 * `options.auth.tls` is given; a token and/or certificate checked on every call (api-auth.ts).
 * Rejects if a TLS file cannot be read or the address cannot be bound.
 */
export async function startStorageNodeServer(api: StorageNodeApi, address: string, options: StorageNodeServerOptions = {}): Promise<StartedServer> {
  const auth = options.auth ?? {};
  const creds = await apiServerCredentials(auth);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_RECEIVE_MESSAGE_BYTES,
    ...(auth.token !== undefined || auth.tls ? { interceptors: [apiAuthInterceptor(auth)] } : {}),
  });
  const service = { ...StorageNodeService, readDisk: { ...StorageNodeService.readDisk, responseSerialize: encodeExtent } };
  const safe = withSafeDecode('vmferry.v1.StorageNode', service, storageNodeHandlers(api, options));
  server.addService(safe.definition, safe.handlers);
  const port = await bind(server, address, creds);
  raiseReceiveWindow(server);
  return { port, stop: () => shutdown(server) };
}
