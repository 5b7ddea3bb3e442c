/*
 * The replication endpoint: a separate, read-only gRPC listener on the site's replication
 * address, mTLS only. It serves snapshot metadata and stored chunk records to the peer sites
 * the node knows (a site record whose identity equals the client certificate's subject CN);
 * anyone else is refused before learning anything. Nothing here writes.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { FailedPreconditionError, FINGERPRINT_BYTES, InvalidArgumentError, NotFoundError, PAGE_HASH_BYTES, packChunks, parseRef, PermissionDeniedError } from '@vmferry/core';
import { ReplicationSourceService, type ChunkIdList, type PageSetPart, type ReplicationSourceServer } from '@vmferry/proto';
import { snapshotToWire, vmToWire } from './convert.js';
import type { StorageEngine } from './engine.js';
import { bind, shutdown, toServiceError } from '@vmferry/grpc-edge';
import { withSafeDecode } from './safe-decode.js';

/** Largest ChunkBatch message sent (the client's default receive limit is 4 MiB). */
const BATCH_BYTES = 2 * 1024 * 1024;
const MAX_IDS = 65536;
const SITE_CACHE_MS = 1000;

type AuthContext = ReturnType<grpc.ServerUnaryCall<unknown, unknown>['getAuthContext']>;

export interface EndpointTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** Resolves the caller's site from its certificate, or throws PERMISSION_DENIED. */
function makeAuthorizer(engine: StorageEngine): (call: { getAuthContext(): AuthContext }) => Promise<string> {
  let cache: { at: number; byIdentity: Map<string, string> } | undefined;
  return async (call) => {
    const cert = call.getAuthContext().sslPeerCertificate;
    const cn = cert?.subject?.CN;
    const identity = Array.isArray(cn) ? cn[0] : cn;
    if (!identity) throw new PermissionDeniedError('no verified client certificate: replication needs mTLS');
    if (!cache || Date.now() - cache.at > SITE_CACHE_MS) {
      const sites = await engine.listSites();
      cache = { at: Date.now(), byIdentity: new Map(sites.filter((s) => s.identity).map((s) => [s.identity, s.name])) };
    }
    const site = cache.byIdentity.get(identity);
    if (!site) throw new PermissionDeniedError(`certificate identity '${identity}' is not an allowed peer of site ${engine.site}`);
    return site;
  };
}

function checkIds(req: ChunkIdList): Buffer[] {
  if (req.ids.length > MAX_IDS) throw new InvalidArgumentError(`at most ${MAX_IDS} ids per call`);
  for (const id of req.ids) if (id.length !== FINGERPRINT_BYTES) throw new InvalidArgumentError('chunk ids are 32 bytes');
  return req.ids;
}

export function replicationHandlers(engine: StorageEngine): ReplicationSourceServer {
  const authorize = makeAuthorizer(engine);
  const pageSets = new PageSets();
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res> | Res) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      authorize(call)
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (e: unknown) => callback(toServiceError(e) as grpc.ServiceError),
        );
    };
  const visibleVm = (name: string) => {
    const vm = engine.getVm(name);
    if (vm.importing) throw new NotFoundError('vm', name);
    return vm;
  };
  return {
    getSnapshot: unary((req) => {
      const ref = parseRef(req.ref);
      const vm = visibleVm(ref.vm);
      const snaps = engine.listSnapshots(vm.id);
      const snapshot = ref.snapshot === undefined || ref.snapshot === 'latest' ? snaps[snaps.length - 1] : engine.getSnapshot(req.ref).snapshot;
      if (!snapshot) throw new NotFoundError('snapshot', `${vm.name}@latest`, `VM '${vm.name}' has no snapshots at site ${engine.site}`);
      return { site: engine.site, vm: vmToWire(vm, snaps.length), snapshot: snapshotToWire(snapshot, vm.name) };
    }),
    listSnapshots: unary((req) => {
      const vm = visibleVm(req.vm);
      return { snapshots: engine.listSnapshots(vm.id).map((s) => snapshotToWire(s, vm.name)) };
    }),
    chunkSizes: unary(async (req) => ({ storedBytes: await engine.chunkSizes(checkIds(req)) })),
    ackReplica: (call, callback) => {
      authorize(call)
        .then((site) => engine.recordReplicationBase(site, call.request.vmId, call.request.snapshotId))
        .then(
          () => callback(null, {}),
          (e: unknown) => callback(toServiceError(e) as grpc.ServiceError),
        );
    },
    openPageSet: (call, callback) => {
      void (async () => {
        try {
          const site = await authorize(call);
          const set = new Set<string>();
          for await (const part of call as AsyncIterable<PageSetPart>) {
            if (part.hashes.length % PAGE_HASH_BYTES !== 0) throw new InvalidArgumentError('page hashes are 8 bytes each');
            for (let o = 0; o < part.hashes.length; o += PAGE_HASH_BYTES) set.add(part.hashes.toString('hex', o, o + PAGE_HASH_BYTES));
            if (set.size > MAX_PAGE_SET) throw new InvalidArgumentError(`a page set holds at most ${MAX_PAGE_SET} pages`);
          }
          callback(null, { token: pageSets.add(site, set), pages: set.size });
        } catch (e) {
          callback(toServiceError(e));
        }
      })();
    },
    fetchPacked: (call) => {
      void (async () => {
        try {
          const site = await authorize(call);
          const ids = checkIds({ ids: call.request.ids });
          const set = call.request.pageSet ? pageSets.get(call.request.pageSet, site) : new Set<string>();
          for (let i = 0; i < ids.length && !call.cancelled; i += PACKED_BATCH_CHUNKS) {
            const slice = ids.slice(i, i + PACKED_BATCH_CHUNKS);
            const raws = await engine.rawChunks(slice);
            const packed = packChunks(
              slice.map((id, k) => ({ id, raw: raws[k] as Buffer })),
              (h) => set.has(h),
            );
            const [literals] = await engine.encodeRecords([packed.literals]);
            const msg = { chunks: packed.chunks, literals: literals ?? Buffer.alloc(0) };
            if (!call.write(msg)) await once(call, 'drain');
          }
          call.end();
        } catch (e) {
          call.emit('error', toServiceError(e));
        }
      })();
    },
    fetchChunks: (call) => {
      void (async () => {
        try {
          await authorize(call);
          const ids = checkIds(call.request);
          for (let i = 0; i < ids.length && !call.cancelled; ) {
            // Read up to 64 records at a time; send them in messages of at most BATCH_BYTES.
            const slice = ids.slice(i, i + 64);
            i += slice.length;
            const records = await engine.chunkRecords(slice);
            let batch: { id: Buffer; record: Buffer; node: boolean; compress: boolean }[] = [];
            let bytes = 0;
            for (const [k, record] of records.entries()) {
              if (bytes + record.length > BATCH_BYTES && batch.length > 0) {
                if (!call.write({ chunks: batch })) await once(call, 'drain');
                batch = [];
                bytes = 0;
              }
              batch.push({ id: slice[k] as Buffer, record, node: false, compress: false });
              bytes += record.length;
            }
            if (batch.length > 0 && !call.write({ chunks: batch })) await once(call, 'drain');
          }
          call.end();
        } catch (e) {
          call.emit('error', toServiceError(e));
        }
      })();
    },
  };
}

/** Chunks packed per message (64 × 64 KiB = 4 MiB raw before compression). */
const PACKED_BATCH_CHUNKS = 64;
/** Largest page set a peer may upload (8 bytes each: 128 MiB), about 64 GiB of base data. */
const MAX_PAGE_SET = 16 * 1024 * 1024;
const PAGE_SET_TTL_MS = 30 * 60 * 1000;

/** Page sets uploaded by peers, held in memory for a session (by token, for the same peer). */
class PageSets {
  private readonly sets = new Map<string, { site: string; set: Set<string>; expires: number }>();

  add(site: string, set: Set<string>): string {
    const now = Date.now();
    for (const [t, v] of this.sets) if (v.expires < now) this.sets.delete(t);
    const token = randomUUID();
    this.sets.set(token, { site, set, expires: now + PAGE_SET_TTL_MS });
    return token;
  }

  get(token: string, site: string): Set<string> {
    const v = this.sets.get(token);
    if (!v || v.site !== site || v.expires < Date.now()) {
      throw new FailedPreconditionError('unknown or expired page set: open a new one (OpenPageSet)');
    }
    v.expires = Date.now() + PAGE_SET_TTL_MS;
    return v.set;
  }
}

export interface StartedEndpoint {
  readonly port: number;
  stop(): Promise<void>;
}

/** Binds the replication endpoint on `address` with mTLS (client certificates required). */
export async function startReplicationEndpoint(engine: StorageEngine, address: string, tls: EndpointTls): Promise<StartedEndpoint> {
  const [cert, key, ca] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile), readFile(tls.caFile)]);
  const server = new grpc.Server({ 'grpc.max_send_message_length': 8 * 1024 * 1024 });
  const safe = withSafeDecode('vmferry.v1.ReplicationSource', ReplicationSourceService, replicationHandlers(engine));
  server.addService(safe.definition, safe.handlers);
  const creds = grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true);
  const port = await bind(server, address, creds);
  return { port, stop: () => shutdown(server) };
}
