/*
 * A client of a peer site's replication endpoint, as a core SourcePort: mTLS with this site's
 * certificate, the server checked against the identity recorded for the site (not the
 * address's host name), a large pull window, and connections from a chosen local address.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { FailedPreconditionError, InvalidArgumentError, isVmferryError, type SiteRecord, type SourcePort } from '@vmferry/core';
import {
  ReplicationSourceClient,
  type ChunkIdList,
  type ChunkSizeList,
  type PageSetHandle,
  type PageSetPart,
  type SourceSnapshot,
  type SourceSnapshotRequest,
} from '@vmferry/proto';
import { readStream, unaryCall, upload } from './calls.js';
import { boundTarget } from './bind-resolver.js';
import { snapshotFromWire, vmFromWire } from '../convert/records.js';

/** The replicating site's TLS material (PEM files). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** HTTP/2 window for pulls: large, so a stream is not capped at one window per round trip. */
export const PULL_WINDOW_BYTES = 16 * 1024 * 1024;
/** Page hashes per upload message (8 bytes each: 512 KiB). */
const HASHES_PER_PART = 65536;

/** A source site's replication endpoint; close() when done. */
export interface ReplicationSource extends SourcePort {
  close(): void;
}

/**
 * Connects to `source`'s replication endpoint from `bindAddress` when given. Throws
 * FailedPreconditionError when the site has no replication address; reading the TLS files
 * throws their file-system error. Calls fail with core errors (a refused or failed handshake
 * is 'unavailable' or 'permission-denied' with the TLS reason in the message).
 */
export function connectReplicationSource(source: SiteRecord, tls: TlsFiles, bindAddress?: string): ReplicationSource {
  if (!source.replicationAddress) {
    throw new FailedPreconditionError(`site ${source.name} has no replication address: set it with vmferry site add ${source.name} --replication HOST:PORT`);
  }
  const creds = grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert));
  const { target, options } = boundTarget(source.replicationAddress, bindAddress || undefined);
  const client = new ReplicationSourceClient(target, creds, {
    ...options,
    'grpc.ssl_target_name_override': source.identity,
    'grpc.default_authority': source.identity,
    'grpc-node.flow_control_window': PULL_WINDOW_BYTES,
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
  });
  return {
    getSnapshot: async (ref) => {
      const r = await unaryCall<SourceSnapshotRequest, SourceSnapshot>((q, cb) => client.getSnapshot(q, cb), { ref });
      if (!r.vm || !r.snapshot) throw new InvalidArgumentError(`source site ${source.name} answered without the VM or the snapshot of ${ref}`);
      return { site: r.site, vm: vmFromWire(r.vm), snapshot: snapshotFromWire(r.snapshot) };
    },
    fetch: async function* (ids, signal) {
      for await (const batch of readStream(client.fetchChunks({ ids: [...ids] }), signal)) yield batch.chunks.map((c) => ({ id: c.id, record: c.record }));
    },
    sizes: async (ids) => (await unaryCall<ChunkIdList, ChunkSizeList>((q, cb) => client.chunkSizes(q, cb), { ids: [...ids] })).storedBytes,
    ack: async (vmId, snapshotId) => {
      await unaryCall((q, cb) => client.ackReplica(q, cb), { vmId, snapshotId });
    },
    openPageSet: async (hashes) => {
      try {
        const call = upload<PageSetPart, PageSetHandle>((cb) => client.openPageSet(cb));
        for (let i = 0; i < hashes.length; i += HASHES_PER_PART) await call.write({ hashes: Buffer.concat(hashes.slice(i, i + HASHES_PER_PART)) });
        return (await call.end()).token;
      } catch (e) {
        // An older source without packed transfer: fall back to stored chunks.
        if (isVmferryError(e) && e.code === 'unimplemented') return undefined;
        throw e;
      }
    },
    fetchPacked: (ids, pageSet, signal) => readStream(client.fetchPacked({ ids: [...ids], pageSet: pageSet ?? '' }), signal),
    close: () => client.close(),
  };
}
