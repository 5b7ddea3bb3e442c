import { toHex, type EncodedNode, type Fingerprint, type IncomingChunk, type PutResult, type TreeNode } from '@vmferry/core';
import type { ChunkIndexEntry } from './chunk-index.js';
import { verifiedBytes, type ChunkCodec } from './codec-ops.js';
import type { WriteBatch } from './database.js';
import { GcBarrier } from './gc-barrier.js';
import { ReadCache } from './read-cache.js';
import { ingestBlocks, prepareWithinSection, type IngestCommit, type IngestDeps, type IngestResult, type PreparedIngest } from './ingest.js';
import { lackingPinned, receivePeerChunks, type ReceiveDeps } from './peer-records.js';
import { nodeChunk, type StoredChunk } from './stored-chunk.js';

/**
 * What every chunk store shares above its storage: the write pipeline (ingest.ts,
 * peer-records.ts) inside the GC barrier, and verified reads through the codec. A store
 * (ChunkStore on RocksDB, MemoryChunkStore) supplies where chunks, index entries and pins are
 * kept and how a batch is written.
 */
/** Bytes of verified chunks kept for reads again (read-cache.ts). */
export const DEFAULT_READ_CACHE_BYTES = 256 * 1024 * 1024;

export abstract class ChunkPipeline {
  /** The write barrier GC and writers share. */
  readonly barrier = new GcBarrier();

  /** Recently read chunks (read-cache.ts). */
  private readonly cache: ReadCache;

  constructor(
    protected readonly codec: ChunkCodec,
    readCacheBytes = DEFAULT_READ_CACHE_BYTES,
  ) {
    this.cache = new ReadCache(readCacheBytes);
  }

  /** For each id, whether the store holds it. Call inside `barrier.referencing` to rely on the answer. */
  abstract has(ids: readonly Fingerprint[]): Promise<boolean[]>;
  /** Stored records for `ids`; rejects with ChunkMissingError for an absent one. */
  abstract records(ids: readonly Fingerprint[]): Promise<Buffer[]>;
  /** Index entries of `ids` (undefined where absent), in order. */
  abstract entries(ids: readonly Fingerprint[]): Promise<(ChunkIndexEntry | undefined)[]>;
  abstract getNode(fp: Fingerprint): Promise<TreeNode>;
  /** Writes one batch to the store's storage. */
  protected abstract write(fill: (batch: WriteBatch) => void): Promise<void>;
  /** Adds chunk puts to `batch`, recording them in the barrier; the pipeline's last step. */
  protected abstract addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void;
  /** Pins `ids` until `expiresAtMs` in `batch`, recording them in the barrier. */
  protected abstract addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void;

  /** What the pipeline steps (ingest.ts, peer-records.ts) use, protected members included. */
  private pipeline(): IngestDeps & ReceiveDeps {
    return {
      pool: this.codec,
      barrier: this.barrier,
      commit: (fill) => this.write(fill),
      has: (ids) => this.has(ids),
      getNode: (id) => this.getNode(id),
      addPuts: (b, c) => this.addPuts(b, c),
      addPins: (b, ids, t) => this.addPins(b, ids, t),
    };
  }

  /**
   * Stores `blocks` (see ingest.ts for the ordering): hashes them, then inside one GC barrier
   * section checks which the store lacks, encodes only those and runs `commit`, which writes
   * them (via its `stage`) with its own references in one batch.
   * Rejects with what `commit` rejects with; nothing is stored then.
   */
  ingest(blocks: readonly Buffer[], commit: IngestCommit): Promise<IngestResult> {
    return ingestBlocks(this.pipeline(), blocks, commit);
  }

  /**
   * The pipeline without its own section or commit, for a caller inside `barrier.referencing`
   * (ingest.ts, prepareWithinSection): the caller's commit must stage the result.
   */
  prepareIngest(blocks: readonly Buffer[]): Promise<PreparedIngest> {
    return prepareWithinSection(this.pipeline(), blocks);
  }

  /**
   * Verifies and stores a peer's chunks in one batch, pinning them (and those already here)
   * until `pinUntilMs`. Rejects with ChunkCorruptError (DATA_LOSS) for a chunk that does not
   * match its id or a malformed tree, FailedPreconditionError for a node sent before its
   * children; nothing of the batch is stored then.
   */
  receive(chunks: readonly IncomingChunk[], pinUntilMs: number): Promise<PutResult> {
    return receivePeerChunks(this.pipeline(), chunks, pinUntilMs);
  }

  /** The ids of `ids` the store lacks (never holes); the held ones are pinned until `pinUntilMs` (peer-records.ts). */
  lacking(ids: readonly Fingerprint[], pinUntilMs: number): Promise<Fingerprint[]> {
    return lackingPinned(this.pipeline(), ids, pinUntilMs);
  }

  /** Stages a snapshot fold's new tree nodes (stored raw) into `batch`. */
  stageNodes(batch: WriteBatch, nodes: readonly EncodedNode[]): void {
    this.addPuts(batch, nodes.map(nodeChunk));
  }

  /** Stored records (codec byte + zstd, or raw when zstd saves little) of `raws`. */
  encode(raws: readonly Buffer[]): Promise<Buffer[]> {
    return this.codec.encode(raws);
  }

  /** Stored sizes of `ids` (0 when absent). */
  async sizes(ids: readonly Fingerprint[]): Promise<number[]> {
    return (await this.entries(ids)).map((e) => e?.storedBytes ?? 0);
  }

  /**
   * Re-reads and re-hashes `ids`: per id, undefined when sound, else why it is corrupt.
   * Rejects with ChunkMissingError for an absent one and ChunkCorruptError for one the store
   * cannot read (then check one by one to tell which).
   */
  async check(ids: readonly Fingerprint[]): Promise<(string | undefined)[]> {
    const decoded = await this.codec.decode(await this.records(ids), ids);
    return decoded.map((d) => (d.ok ? undefined : d.reason));
  }

  /** Raw, verified bytes of `ids`, in order. The buffers may be shared: do not modify them. */
  async get(ids: readonly Fingerprint[]): Promise<Buffer[]> {
    const keys = ids.map((id) => toHex(id));
    const out = keys.map((k) => this.cache.get(k));
    const missing = ids.filter((_, i) => out[i] === undefined);
    if (missing.length === 0) return out as Buffer[];
    const fetched = await verifiedBytes(this.codec, await this.records(missing), missing);
    let k = 0;
    return out.map((hit, i) => {
      if (hit) return hit;
      const data = fetched[k++] as Buffer;
      this.cache.set(keys[i] as string, data);
      return data;
    });
  }

  /** Tells a running GC that `ids` (tree roots, or any chunk) just gained a reference. */
  reference(ids: readonly Fingerprint[]): void {
    this.barrier.record(ids);
  }

  /** Stops the codec (the storage is closed by its owner). */
  close(): Promise<void> {
    return this.codec.close();
  }
}
