/** What a replication session needs from the source site and from the local (target) node. */
import type { ChunkRecord, PutChunksResult, Snapshot, SourceSnapshot, Vm } from '@vmferry/proto';

export interface SourcePort {
  getSnapshot(ref: string): Promise<SourceSnapshot>;
  /** Stored records of `ids`, in batches, in order. */
  fetch(ids: readonly Buffer[], signal?: AbortSignal): AsyncIterable<ChunkRecord[]>;
  sizes(ids: readonly Buffer[]): Promise<number[]>;
  /** Tells the source this site now holds the snapshot (its incremental base). */
  ack(vmId: string, snapshotId: string): Promise<void>;
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
}
