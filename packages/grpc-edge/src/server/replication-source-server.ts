/*
 * The replication endpoint's gRPC server: a separate, read-only listener, mTLS only (client
 * certificates required). Every call first hands the verified client certificate's identity
 * to the API, which names the peer site or refuses; the edge then translates and streams.
 * Who may ask and what is sent are the API's decisions.
 */
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { ChunkBytes, PackedBatchData, ReplicationSourceApi } from '@vmferry/core';
import { ReplicationSourceService, type ChunkBatch, type ChunkRecord, type PackedBatch, type PageSetPart, type ReplicationSourceServer } from '@vmferry/proto';
import { bind, shutdown } from '../listen.js';
import { sendAll, serveStream, serveUnary } from './handlers.js';
import { snapshotToWire, vmToWire } from '../convert/records.js';
import { withSafeDecode } from './safe-decode.js';
import type { StartedServer } from './storage-node-server.js';

/** Largest ChunkBatch message sent (the client's default receive limit is 4 MiB). */
const BATCH_BYTES = 2 * 1024 * 1024;
/** Largest message sent at all (a packed batch of 64 chunks that did not compress). */
const MAX_SEND_MESSAGE_BYTES = 8 * 1024 * 1024;

type AuthContext = ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']>;

/** The subject CN of the client's verified certificate; undefined without one. */
export function peerIdentity(call: { getAuthContext(): AuthContext }): string | undefined {
  // Typed wider than grpc-js says: nothing guarantees a peer certificate names a subject CN.
  const cert: { readonly subject?: { readonly CN?: string | string[] } } | undefined = call.getAuthContext().sslPeerCertificate;
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** Stored records as ChunkBatch messages of at most BATCH_BYTES (one record may exceed it alone). */
async function* recordBatches(groups: AsyncIterable<readonly ChunkBytes[]>): AsyncGenerator<ChunkBatch> {
  for await (const group of groups) {
    let batch: ChunkRecord[] = [];
    let bytes = 0;
    for (const c of group) {
      if (bytes + c.bytes.length > BATCH_BYTES && batch.length > 0) {
        yield { chunks: batch };
        batch = [];
        bytes = 0;
      }
      batch.push({ id: c.id, record: c.bytes, node: false, compress: false });
      bytes += c.bytes.length;
    }
    if (batch.length > 0) yield { chunks: batch };
  }
}

async function* packedBatches(batches: AsyncIterable<PackedBatchData>): AsyncGenerator<PackedBatch> {
  for await (const b of batches) yield { chunks: b.chunks.map((c) => ({ id: c.id, rawLength: c.rawLength, pageRefs: c.pageRefs })), literals: b.literals };
}

async function* pageHashes(parts: AsyncIterable<PageSetPart>): AsyncGenerator<Buffer> {
  for await (const part of parts) yield part.hashes;
}

/** The ReplicationSource handlers over `api`. */
export function replicationSourceHandlers(api: ReplicationSourceApi): ReplicationSourceServer {
  const authorize = (call: { getAuthContext(): AuthContext }) => api.authorize(peerIdentity(call));
  return {
    getSnapshot: serveUnary(async (call) => {
      const view = api.getSnapshot(await authorize(call), call.request.ref);
      return { site: view.site, vm: vmToWire(view.vm, view.snapshotCount), snapshot: snapshotToWire(view.snapshot, view.vm.name) };
    }),
    listSnapshots: serveUnary(async (call) => {
      const { vm, snapshots } = api.listSnapshots(await authorize(call), call.request.vm);
      return { snapshots: snapshots.map((s) => snapshotToWire(s, vm.name)) };
    }),
    chunkSizes: serveUnary(async (call) => ({ storedBytes: await api.chunkSizes(await authorize(call), call.request.ids) })),
    ackReplica: serveUnary(async (call) => {
      await api.ackReplica(await authorize(call), call.request.vmId, call.request.snapshotId);
      return {};
    }),
    openPageSet: serveUnary(async (call) => {
      const site = await authorize(call);
      return api.openPageSet(site, pageHashes(call as AsyncIterable<PageSetPart>));
    }),
    fetchPacked: serveStream(async (call) => {
      const site = await authorize(call);
      await sendAll(call, packedBatches(api.fetchPacked(site, call.request.ids, call.request.pageSet)));
    }),
    fetchChunks: serveStream(async (call) => {
      const site = await authorize(call);
      await sendAll(call, recordBatches(api.fetchChunks(site, call.request.ids)));
    }),
  };
}

/** PEM files of the endpoint's certificate, its key, and the CA its peers' certificates chain to. */
export interface ServerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/**
 * Serves `api` as the ReplicationSource service on `address` with mTLS (client certificates
 * required). Rejects if a TLS file cannot be read or the address cannot be bound.
 */
export async function startReplicationSourceServer(api: ReplicationSourceApi, address: string, tls: ServerTlsFiles): Promise<StartedServer> {
  const [cert, key, ca] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile), readFile(tls.caFile)]);
  const server = new grpc.Server({ 'grpc.max_send_message_length': MAX_SEND_MESSAGE_BYTES });
  const safe = withSafeDecode('vmferry.v1.ReplicationSource', ReplicationSourceService, replicationSourceHandlers(api));
  server.addService(safe.definition, safe.handlers);
  const creds = grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true);
  const port = await bind(server, address, creds);
  return { port, stop: () => shutdown(server) };
}
