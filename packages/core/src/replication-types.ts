/*
 * What crosses between a replication session and the two sites it talks to, as plain core
 * types: the ports a session needs (a source site to pull from, the local node to store into)
 * and the records they carry. The gRPC edge implements the ports; sessions never see wire types.
 */
import type { SnapshotRecord, VmRecord } from './model.js';
import type { PackedChunkData } from './packing.js';

/** A chunk in its stored form: the codec byte (0 raw, 1 zstd), then the payload. */
export interface ChunkRecord {
  readonly id: Buffer;
  readonly record: Buffer;
}

/** A chunk handed to the target node to store. */
export interface ChunkToStore extends ChunkRecord {
  /** A tree node (false, the default: a data block). */
  readonly node?: boolean;
  /** The record is raw (codec 0) as rebuilt by a replicator: the node compresses it before storing. */
  readonly compress?: boolean;
}

/** A chunk's raw bytes (decoded from its stored form), as the local node reads them back. */
export interface RawChunk {
  readonly id: Buffer;
  readonly raw: Buffer;
}

/** Missing chunks as the source packs them: page references, and the batch's literal pages as one stored record. */
export interface PackedBatch {
  readonly chunks: readonly PackedChunkData[];
  /** Codec byte (0 raw, 1 zstd), then the literal pages of the batch's chunks, in order. */
  readonly literals: Buffer;
}

/** A snapshot as the source site describes it: its own name, the VM and the snapshot. */
export interface SourceSnapshot {
  readonly site: string;
  readonly vm: VmRecord;
  readonly snapshot: SnapshotRecord;
}

/** What the target node did with a stream of chunks. */
export interface PutResult {
  readonly chunksStored: number;
  readonly chunksAlreadyPresent: number;
  readonly bytesStored: number;
}

/** A replica the target node committed: the snapshot record and the VM name it is under there. */
export interface CommittedSnapshot extends SnapshotRecord {
  readonly vmName: string;
}

/** The source site of a replication. Failures are coded VmferryErrors. */
export interface SourcePort {
  /** Throws InvalidArgumentError when the source answers without the VM or the snapshot. */
  getSnapshot(ref: string): Promise<SourceSnapshot>;
  /** Stored records of `ids`, in batches, in order. */
  fetch(ids: readonly Buffer[], signal?: AbortSignal): AsyncIterable<ChunkRecord[]>;
  sizes(ids: readonly Buffer[]): Promise<number[]>;
  /** Tells the source this site now holds the snapshot (its incremental base). */
  ack(vmId: string, snapshotId: string): Promise<void>;
  /** Uploads the page hashes this site holds; undefined when the source cannot pack. */
  openPageSet(hashes: readonly Buffer[]): Promise<string | undefined>;
  /** Missing chunks as packed batches (page references and one compressed literal stream). */
  fetchPacked(ids: readonly Buffer[], pageSet: string | undefined, signal?: AbortSignal): AsyncIterable<PackedBatch>;
}

/** One stream of chunks into the target node. */
export interface PutStream {
  write(batch: readonly ChunkToStore[]): Promise<void>;
  end(): Promise<PutResult>;
  /** Abandons the stream (the node keeps what it already stored, pinned). */
  cancel(): void;
}

/** The local node a replication stores into. Failures are coded VmferryErrors. */
export interface TargetPort {
  missing(ids: readonly Buffer[]): Promise<Buffer[]>;
  put(): PutStream;
  commit(sourceSite: string, vm: VmRecord, snapshot: SnapshotRecord): Promise<CommittedSnapshot>;
  /** This site's snapshots of the VM (empty when it has none). */
  snapshots(vmId: string): Promise<SnapshotRecord[]>;
  /** Raw bytes of chunks this site holds, in batches. */
  readChunks(ids: readonly Buffer[]): AsyncIterable<RawChunk[]>;
}
