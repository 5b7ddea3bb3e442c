import { ChunkCorruptError, ChunkMissingError, nodeFromRecord, toHex, type Fingerprint, type TreeNode } from '@vmferry/core';
import { ChunkPipeline } from './chunk-pipeline.js';
import type { ChunkStorePort } from './chunk-store-port.js';
import { CodecPool, type CodecPoolOptions } from './codec-pool.js';
import type { Database, WriteBatch } from './database.js';
import { decodeIndexValue, encodeIndexValue, type ChunkIndexEntry } from './chunk-index.js';
import { CHUNK_INDEX_PREFIX, chunkIndexKey, chunkKey, fpOfIndexKey, fpOfPinKey, PIN_PREFIX, pinKey, prefixRange } from './keys.js';
import { LruCache } from './lru.js';
import type { StoredChunk } from './stored-chunk.js';

export type { ChunkIndexEntry } from './chunk-index.js';
export type { StoredChunk } from './stored-chunk.js';

const NODE_CACHE_ENTRIES = 4096;

/**
 * Content-addressed chunks on RocksDB, and the one owner of the chunk pipeline: new blocks
 * enter through `ingest` (hash, dedup, encode, commit), a peer's records through `receive`
 * (verify, store, pin), tree nodes of a snapshot fold through `stageNodes` (chunk-pipeline.ts).
 * Every chunk read is checked against its fingerprint (ChunkCorruptError otherwise), in the
 * codec workers or, for tree nodes, by core's nodeFromRecord. Writing a chunk that exists
 * changes nothing.
 *
 * Invariant (closure): a tree node is stored only with or after every chunk it references,
 * and GC deletes a node no later than its children, so a node present in the store always
 * has its whole subtree present.
 *
 * GC safety: every id this store is asked about (`has`), writes (`addPuts`), pins, or is told
 * is referenced (`reference`) is recorded in the barrier while a collection runs; see
 * services/storage-node/src/gc.ts for the ordering argument.
 */
export class ChunkStore extends ChunkPipeline implements ChunkStorePort {
  private readonly nodes = new LruCache<string, TreeNode>(NODE_CACHE_ENTRIES);

  /** Starts the codec worker threads (hashing, compression, verification); `close()` stops them. */
  constructor(
    private readonly db: Database,
    codec: CodecPoolOptions = {},
  ) {
    super(new CodecPool(codec));
  }

  protected write(fill: (batch: WriteBatch) => void): Promise<void> {
    return this.db.commit(fill);
  }

  /**
   * Whether the chunk index lists `id` (one read of its entry). Rejects (StoreDamagedError)
   * when RocksDB cannot read the entry.
   */
  async indexed(id: Fingerprint): Promise<boolean> {
    return (await this.db.get(chunkIndexKey(id))) !== null;
  }

  async has(ids: readonly Fingerprint[]): Promise<boolean[]> {
    this.barrier.record(ids);
    const values = await this.db.getMany(ids.map(chunkIndexKey));
    return values.map((v) => v !== null);
  }

  async entries(ids: readonly Fingerprint[]): Promise<(ChunkIndexEntry | undefined)[]> {
    const values = await this.db.getMany(ids.map(chunkIndexKey));
    return values.map((v, i) => (v === null ? undefined : decodeIndexValue(ids[i] as Fingerprint, v)));
  }

  /** Adds chunk puts to `batch` (chunk record and index entry); the pipeline's last step. */
  protected addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void {
    this.barrier.record(chunks.map((c) => c.id));
    for (const c of chunks) {
      batch.tryPut(chunkKey(c.id), c.record);
      batch.tryPut(chunkIndexKey(c.id), encodeIndexValue(c.record.length, c.rawLength, c.level));
    }
  }

  async records(ids: readonly Fingerprint[]): Promise<Buffer[]> {
    const values = await this.db.getLarge(ids.map(chunkKey)).catch(() => this.recordsOneByOne(ids));
    return values.map((v, i) => {
      if (v === null) throw new ChunkMissingError(toHex(ids[i] as Fingerprint));
      return v;
    });
  }

  /**
   * A batch read failed (RocksDB refuses a record whose block or blob checksum does not
   * match): read each record alone so the damaged chunk is named as ChunkCorruptError.
   */
  private recordsOneByOne(ids: readonly Fingerprint[]): Promise<(Buffer | null)[]> {
    return Promise.all(
      ids.map((id) =>
        this.db.get(chunkKey(id)).catch((e: unknown) => {
          throw new ChunkCorruptError(toHex(id), `the store cannot read it (${e instanceof Error ? e.message : String(e)})`);
        }),
      ),
    );
  }

  async getNode(fp: Fingerprint): Promise<TreeNode> {
    const hex = toHex(fp);
    const cached = this.nodes.get(hex);
    if (cached) return cached;
    const [record] = await this.records([fp]);
    const node = nodeFromRecord(fp, record as Buffer);
    this.nodes.set(hex, node);
    return node;
  }

  /** Every chunk in the store, from the index, in key order. */
  async *index(): AsyncGenerator<ChunkIndexEntry> {
    for await (const { key, value } of this.db.entries(prefixRange(CHUNK_INDEX_PREFIX))) {
      yield decodeIndexValue(Buffer.from(fpOfIndexKey(key)), value);
    }
  }

  /** Ids with an unexpired pin. */
  async *pins(nowMs: number): AsyncGenerator<Fingerprint> {
    for await (const { key, value } of this.db.entries(prefixRange(PIN_PREFIX))) {
      if (Number(value.readBigUInt64BE(0)) > nowMs) yield Buffer.from(fpOfPinKey(key));
    }
  }

  /**
   * Pins chunks until `expiresAtMs`: GC keeps them, and the subtrees of pinned tree nodes
   * (chunks of a replication not yet committed, and chunks a replicator was told are here).
   */
  protected addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void {
    this.barrier.record(ids);
    const value = Buffer.alloc(8);
    value.writeBigUInt64BE(BigInt(Math.floor(expiresAtMs)));
    for (const id of ids) batch.tryPut(pinKey(id), value);
  }

  /** For each id, whether an unexpired pin protects it (expired pins are reported as absent). */
  async pinned(ids: readonly Fingerprint[], nowMs: number): Promise<boolean[]> {
    const values = await this.db.getMany(ids.map(pinKey));
    return values.map((v) => v !== null && Number(v.readBigUInt64BE(0)) > nowMs);
  }

  addDeletes(batch: WriteBatch, ids: readonly Fingerprint[]): void {
    for (const id of ids) {
      batch.tryDelete(chunkKey(id));
      batch.tryDelete(chunkIndexKey(id));
      batch.tryDelete(pinKey(id));
      this.nodes.delete(toHex(id));
    }
  }
}
