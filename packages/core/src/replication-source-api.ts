/*
 * What a site's read-only replication endpoint offers its peer sites, in core types: the
 * contract between the gRPC edge (mTLS, streams) and the node (who may ask, what is sent).
 * Pure types. Every method may throw a coded VmferryError; the edge maps it to a status.
 */
import type { SnapshotRecord, VmRecord } from './model.js';
import type { ChunkBytes } from './node-api.js';
import type { PackedChunkData } from './packing.js';

/** A snapshot with its VM, as the source site shows it to a peer. */
export interface SourceSnapshotView {
  readonly site: string;
  readonly vm: VmRecord;
  readonly snapshotCount: number;
  readonly snapshot: SnapshotRecord;
}

/** One message of packed chunks: per-chunk page maps and their literal pages as one stored record. */
export interface PackedBatchData {
  readonly chunks: readonly PackedChunkData[];
  readonly literals: Buffer;
}

/**
 * The replication endpoint API. The edge calls `authorize` first on every call, with the
 * verified client certificate's identity (subject CN), and passes the site it returns on.
 */
export interface ReplicationSourceApi {
  /** The peer site whose certificate identity this is; PERMISSION_DENIED for none or an unknown one. */
  authorize(identity: string | undefined): Promise<string>;
  /** `VM@SNAPSHOT` (id or label) or `VM` / `VM@latest`. */
  getSnapshot(site: string, ref: string): SourceSnapshotView;
  listSnapshots(site: string, vm: string): { readonly vm: VmRecord; readonly snapshots: readonly SnapshotRecord[] };
  /** Stored sizes of `ids` (0 when absent). */
  chunkSizes(site: string, ids: readonly Buffer[]): Promise<number[]>;
  /** The peer now holds `snapshotId` of `vmId` (its next incremental's base). */
  ackReplica(site: string, vmId: string, snapshotId: string): Promise<void>;
  /** Keeps the page hashes the peer uploads (concatenated 8-byte hashes per part) for its FetchPacked calls. */
  openPageSet(site: string, parts: AsyncIterable<Buffer>): Promise<{ readonly token: string; readonly pages: number }>;
  /** Missing chunks packed against the page set `pageSet` ('' for none), in input order. */
  fetchPacked(site: string, ids: readonly Buffer[], pageSet: string): AsyncIterable<PackedBatchData>;
  /** Stored records of `ids`, in groups, in input order; NOT_FOUND for an absent one. */
  fetchChunks(site: string, ids: readonly Buffer[]): AsyncIterable<readonly ChunkBytes[]>;
}
