import type { EncodedNode, Fingerprint, IncomingChunk, NodeSource, PutResult, TreeNode } from '@vmferry/core';
import type { ChunkIndexEntry } from './chunk-index.js';
import type { WriteBatch } from './database.js';
import type { GcBarrier } from './gc-barrier.js';
import type { IngestCommit, IngestResult, PreparedIngest } from './ingest.js';

/**
 * What the storage engine asks of a chunk store: content-addressed chunks, verified on every
 * read, the write pipeline (ingest, receive, lacking), pins, and the GC write barrier. The
 * RocksDB ChunkStore and the in-memory MemoryChunkStore implement it; the conformance suite
 * (test/chunk-store-conformance.ts) checks both against the same expectations.
 *
 * A port of this package rather than core's, because writes are staged into a `WriteBatch`:
 * `ingest`'s commit, `stageNodes` and `addDeletes` add to a batch that the store's own
 * storage writes (for the RocksDB store, one batch with the catalog's entries).
 *
 * GC safety (services/storage-node/src/gc.ts): every id the store is asked about (`has`),
 * writes, pins, or is told is referenced (`reference`) is recorded in `barrier` while a
 * collection runs.
 */
export interface ChunkStorePort extends NodeSource {
  /** The write barrier GC and writers share. */
  readonly barrier: GcBarrier;
  /** Hash, dedup, encode, then `commit` (which calls its `stage`) in one barrier section. */
  ingest(blocks: readonly Buffer[], commit: IngestCommit): Promise<IngestResult>;
  /** The pipeline inside a section the caller holds; the caller's commit stages the result. */
  prepareIngest(blocks: readonly Buffer[]): Promise<PreparedIngest>;
  /** Verifies and stores a peer's chunks in one batch, pinning them until `pinUntilMs`. */
  receive(chunks: readonly IncomingChunk[], pinUntilMs: number): Promise<PutResult>;
  /** The ids the store lacks (never holes); the ones it holds are pinned until `pinUntilMs`. */
  lacking(ids: readonly Fingerprint[], pinUntilMs: number): Promise<Fingerprint[]>;
  /** Stages a snapshot fold's new tree nodes (stored raw) into `batch`. */
  stageNodes(batch: WriteBatch, nodes: readonly EncodedNode[]): void;
  /** Stored records of `raws`, encoded as the store would store them. */
  encode(raws: readonly Buffer[]): Promise<Buffer[]>;
  /** Whether the chunk index lists `id`. */
  indexed(id: Fingerprint): Promise<boolean>;
  /** Stored sizes of `ids` (0 when absent). */
  sizes(ids: readonly Fingerprint[]): Promise<number[]>;
  /** Per id, undefined when sound, else why it is corrupt; rejects ChunkMissingError for an absent one. */
  check(ids: readonly Fingerprint[]): Promise<(string | undefined)[]>;
  /** For each id, whether the store holds it (recorded in the barrier). */
  has(ids: readonly Fingerprint[]): Promise<boolean[]>;
  /** Index entries of `ids` (undefined where absent), in order. */
  entries(ids: readonly Fingerprint[]): Promise<(ChunkIndexEntry | undefined)[]>;
  /** Tells a running GC that `ids` just gained a reference. */
  reference(ids: readonly Fingerprint[]): void;
  /** Stored records of `ids`; rejects with ChunkMissingError for an absent one. */
  records(ids: readonly Fingerprint[]): Promise<Buffer[]>;
  /** Raw, verified bytes of `ids`, in order. */
  get(ids: readonly Fingerprint[]): Promise<Buffer[]>;
  getNode(fp: Fingerprint): Promise<TreeNode>;
  /** Every chunk in the store, in id order. */
  index(): AsyncGenerator<ChunkIndexEntry>;
  /** Ids with a pin unexpired at `nowMs`, in id order. */
  pins(nowMs: number): AsyncGenerator<Fingerprint>;
  /** For each id, whether an unexpired pin protects it. */
  pinned(ids: readonly Fingerprint[], nowMs: number): Promise<boolean[]>;
  /** Stages the deletion of `ids` (record, index entry and pin) into `batch`. */
  addDeletes(batch: WriteBatch, ids: readonly Fingerprint[]): void;
  /** Releases what the store holds besides its storage (codec workers). */
  close(): Promise<void>;
}
