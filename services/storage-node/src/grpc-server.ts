/** The storage node's gRPC API: a thin adapter from wire messages to the engine. */
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '@vmferry/core';
import { StorageNodeService, type StorageNodeServer } from '@vmferry/proto';
import { siteFromWire, siteToWire, snapshotFromWire, snapshotToWire, statsToWire, verifyReportToWire, vmFromWire, vmToWire } from './convert.js';
import type { StorageEngine } from './engine.js';
import { bind, raiseReceiveWindow, shutdown, toServiceError } from '@vmferry/grpc-edge';
import { withSafeDecode } from './safe-decode.js';
import { encodeExtent, type ExtentMessage } from './wire-extent.js';

/** Largest message the node accepts; clients send data in ≤ 1 MiB pieces. */
export const MAX_RECEIVE_MESSAGE_BYTES = 8 * 1024 * 1024;

type UnaryCallback<T> = (err: Partial<grpc.ServiceError> | null, value?: T) => void;

function unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: UnaryCallback<Res>): void => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(e)),
      );
  };
}

async function writeWithBackpressure<T>(call: grpc.ServerWritableStream<unknown, T>, msg: T): Promise<void> {
  if (!call.write(msg)) await once(call, 'drain');
}

export function storageNodeHandlers(engine: StorageEngine, replicationAddress?: string): StorageNodeServer {
  const vmOut = (vm: Parameters<typeof vmToWire>[0]) => vmToWire(vm, engine.snapshotCount(vm.id));
  return {
    createVm: unary(async (req) =>
      vmOut(await engine.createVm({ name: req.name, disks: req.disks, hypervisorConfig: req.hypervisorConfig })),
    ),

    importVm: (call, callback) => {
      void (async () => {
        let session: Awaited<ReturnType<StorageEngine['beginImport']>> | undefined;
        try {
          // Only the client's end marker commits: on a cancel, grpc-js can end this loop
          // normally before `call.cancelled` is set, so "the loop ended" proves nothing.
          let ended = false;
          let dataBytes = 0;
          for await (const msg of call as AsyncIterable<import('@vmferry/proto').ImportVmRequest>) {
            const kind = msg.kind;
            if (ended) throw new InvalidArgumentError('import stream sent a message after its end marker');
            if (kind?.$case === 'header') {
              if (session) throw new InvalidArgumentError('import stream sent a second header');
              session = await engine.beginImport({ name: kind.value.name, disks: kind.value.disks, hypervisorConfig: kind.value.hypervisorConfig });
            } else if (kind?.$case === 'data') {
              if (!session) throw new InvalidArgumentError('import stream must start with a header');
              await session.write(kind.value.diskIndex, kind.value.offset, kind.value.data);
              dataBytes += kind.value.data.length;
            } else if (kind?.$case === 'end') {
              if (!session) throw new InvalidArgumentError('import stream must start with a header');
              if (kind.value.dataBytes !== dataBytes) {
                throw new InvalidArgumentError(`import of VM '${session.vm.name}': end marker declares dataBytes ${kind.value.dataBytes}, the stream carried ${dataBytes}`);
              }
              ended = true;
            }
          }
          if (!session) throw new InvalidArgumentError('import stream was empty');
          if (call.cancelled) throw new InvalidArgumentError(`import of VM '${session.vm.name}' cancelled by the client`);
          if (!ended) {
            throw new InvalidArgumentError(
              `import of VM '${session.vm.name}' ended without its end marker (cancelled, or a client older than the end marker); nothing was committed`,
            );
          }
          callback(null, vmOut(await session.finish()));
        } catch (e) {
          await session?.abort();
          callback(toServiceError(e));
        }
      })();
    },

    listVms: unary(() => ({ vms: engine.listVms().map(vmOut) })),
    getVm: unary((req) => vmOut(engine.getVm(req.vm))),
    deleteVm: unary(async (req) => {
      await engine.deleteVm(req.vm);
      return {};
    }),

    writeDisk: (call, callback) => {
      void (async () => {
        let writer: ReturnType<StorageEngine['openWriter']> | undefined;
        try {
          let declared = 0;
          let received = 0;
          for await (const msg of call as AsyncIterable<import('@vmferry/proto').WriteDiskRequest>) {
            const kind = msg.kind;
            if (kind?.$case === 'header') {
              if (writer) throw new InvalidArgumentError('write stream sent a second header');
              writer = engine.openWriter(kind.value.vm, kind.value.diskIndex, kind.value.offset, kind.value.length);
              declared = kind.value.length;
            } else if (kind?.$case === 'data') {
              if (!writer) throw new InvalidArgumentError('write stream must start with a header');
              received += kind.value.length;
              if (declared > 0 && received > declared) throw new InvalidArgumentError(`write stream carried more than its declared length ${declared}`);
              await writer.write(kind.value);
            }
          }
          if (!writer) throw new InvalidArgumentError('write stream was empty');
          // A cancel can end the loop like a half-close; a declared length tells them apart.
          // The undispatched tail is dropped; batches already committed stay (a live disk
          // write is not atomic, like a power cut during a write to a real disk).
          if (call.cancelled || (declared > 0 && received !== declared)) {
            await writer.abandon();
            throw new InvalidArgumentError(`write stream ended after ${received} of its declared length ${declared} bytes; the tail was not written`);
          }
          const r = await writer.end();
          callback(null, { bytesWritten: r.bytesWritten, gridOffset: r.gridOffset });
        } catch (e) {
          await writer?.abandon().catch(() => undefined);
          callback(toServiceError(e));
        }
      })();
    },

    readDisk: (call) => {
      void (async () => {
        try {
          const req = call.request;
          const { size, extents } = engine.read(req.ref, req.diskIndex, req.offset, req.length);
          let first = true;
          // Written as ExtentMessage: the service definition below swaps in encodeExtent.
          const out = call as unknown as grpc.ServerWritableStream<unknown, ExtentMessage>;
          for await (const x of extents) {
            if (call.cancelled) return;
            await writeWithBackpressure(out, {
              offset: x.offset,
              parts: x.parts ?? [],
              holeLength: x.parts ? 0 : x.length,
              diskSize: first ? size : 0,
            });
            first = false;
          }
          if (first) out.write({ offset: req.offset, parts: [], holeLength: 0, diskSize: size });
          call.end();
        } catch (e) {
          // emit('error'), not destroy(err): grpc-js sends the status from the error event;
          // a destroyed stream never sends one and the client waits forever.
          call.emit('error', toServiceError(e));
        }
      })();
    },

    createSnapshot: unary(async (req) => {
      const s = await engine.createSnapshot(req.vm, req.label === '' ? {} : { label: req.label });
      return snapshotToWire(s, engine.getVm(s.vmId).name);
    }),
    listSnapshots: unary((req) => {
      const vm = engine.getVm(req.vm);
      return { snapshots: engine.listSnapshots(vm.id).map((s) => snapshotToWire(s, vm.name)) };
    }),
    getSnapshot: unary((req) => {
      const { vm, snapshot } = engine.getSnapshot(req.ref);
      return snapshotToWire(snapshot, vm.name);
    }),
    deleteSnapshot: unary(async (req) => {
      await engine.deleteSnapshot(req.ref);
      return {};
    }),
    labelSnapshot: unary(async (req) => {
      const s = await engine.labelSnapshot(req.ref, req.label);
      return snapshotToWire(s, engine.getVm(s.vmId).name);
    }),

    cloneVm: unary(async (req) => {
      const { source, vms } = await engine.clone(req.ref, req.name, req.count || 1);
      return { vms: vms.map(vmOut), source: snapshotToWire(source, engine.getVm(source.vmId).name) };
    }),
    restore: unary(async (req) => vmOut(await engine.restore(req.ref, req.diskIndex))),

    getStats: unary(async (req) => statsToWire(await engine.stats(req.vm === '' ? undefined : req.vm))),
    getNodeInfo: unary(() => ({ site: engine.site, replicationAddress: replicationAddress ?? '' })),

    missingChunks: unary(async (req) => ({ ids: await engine.missingChunks(req.ids) })),
    putChunks: (call, callback) => {
      void (async () => {
        const total = { chunksStored: 0, chunksAlreadyPresent: 0, bytesStored: 0 };
        try {
          for await (const batch of call as AsyncIterable<import('@vmferry/proto').ChunkBatch>) {
            const r = await engine.putChunks(batch.chunks);
            total.chunksStored += r.chunksStored;
            total.chunksAlreadyPresent += r.chunksAlreadyPresent;
            total.bytesStored += r.bytesStored;
          }
          callback(null, total);
        } catch (e) {
          callback(toServiceError(e));
        }
      })();
    },
    readChunks: (call) => {
      void (async () => {
        try {
          const ids = call.request.ids;
          for (let i = 0; i < ids.length && !call.cancelled; i += 32) {
            const slice = ids.slice(i, i + 32);
            const raws = await engine.rawChunks(slice);
            await writeWithBackpressure(call, { chunks: raws.map((raw, k) => ({ id: slice[k] as Buffer, record: raw, node: false, compress: false })) });
          }
          call.end();
        } catch (e) {
          call.emit('error', toServiceError(e));
        }
      })();
    },
    commitReplica: unary(async (req) => {
      if (!req.vm || !req.snapshot) throw new InvalidArgumentError('commit needs the VM and the snapshot');
      const s = await engine.commitReplica(req.sourceSite, vmFromWire(req.vm), snapshotFromWire(req.snapshot));
      return snapshotToWire(s, req.vm.name);
    }),

    putSite: unary(async (req) => siteToWire(await engine.putSite(siteFromWire(req)))),
    listSites: unary(async () => ({ sites: (await engine.listSites()).map(siteToWire) })),
    deleteSite: unary(async (req) => {
      await engine.deleteSite(req.name);
      return {};
    }),
    runGc: unary(async () => engine.gc()),
    verify: (call) => {
      void (async () => {
        try {
          let last = 0;
          const report = await engine.verify((checked) => {
            if (checked - last >= 1024) {
              last = checked;
              call.write({ kind: { $case: 'progress', value: { chunksChecked: checked, chunksTotal: 0 } } });
            }
          });
          call.write({ kind: { $case: 'report', value: verifyReportToWire(report) } });
          call.end();
        } catch (e) {
          // emit('error'), not destroy(err): grpc-js sends the status from the error event;
          // a destroyed stream never sends one and the client waits forever.
          call.emit('error', toServiceError(e));
        }
      })();
    },
  };
}

export interface StartedServer {
  readonly server: grpc.Server;
  readonly port: number;
  stop(): Promise<void>;
}

/** Binds the API on `address` (HOST:PORT; port 0 picks a free one). */
export async function startGrpcServer(engine: StorageEngine, address: string, replicationAddress?: string): Promise<StartedServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_RECEIVE_MESSAGE_BYTES,
  });
  const service = { ...StorageNodeService, readDisk: { ...StorageNodeService.readDisk, responseSerialize: encodeExtent } };
  const safe = withSafeDecode('vmferry.v1.StorageNode', service, storageNodeHandlers(engine, replicationAddress));
  server.addService(safe.definition, safe.handlers);
  const port = await bind(server, address, grpc.ServerCredentials.createInsecure());
  raiseReceiveWindow(server);
  return { server, port, stop: () => shutdown(server) };
}
