/** What a replication session needs from the source site and from the local (target) node. */
import type { ChunkRecord, PackedBatch, PutChunksResult, Snapshot, SourceSnapshot, Vm } from '@vmferry/proto';

export interface SourcePort {
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

export interface PutStream {
  write(batch: ChunkRecord[]): Promise<void>;
  end(): Promise<PutChunksResult>;
  /** Abandons the stream (the node keeps what it already stored, pinned). */
  cancel(): void;
}

export interface TargetPort {
  missing(ids: readonly Buffer[]): Promise<Buffer[]>;
  put(): PutStream;
  commit(sourceSite: string, vm: Vm, snapshot: Snapshot): Promise<Snapshot>;
  /** This site's snapshots of the VM (empty when it has none). */
  snapshots(vmId: string): Promise<Snapshot[]>;
  /** Raw bytes of chunks this site holds, in batches. */
  readChunks(ids: readonly Buffer[]): AsyncIterable<{ id: Buffer; raw: Buffer }[]>;
}
