import {
  ChunkCorruptError,
  ChunkMissingError,
  nodeFromRecord,
  toHex,
  type EncodedNode,
  type Fingerprint,
  type IncomingChunk,
  type PutResult,
  type TreeNode,
} from '@vmferry/core';
import { CodecPool, type CodecPoolOptions } from './codec-pool.js';
import type { Database, WriteBatch } from './database.js';
import { decodeIndexValue, encodeIndexValue, type ChunkIndexEntry } from './chunk-index.js';
import { GcBarrier } from './gc-barrier.js';
import { ingestBlocks, type IngestCommit, type IngestDeps, type IngestResult } from './ingest.js';
import { CHUNK_INDEX_PREFIX, chunkIndexKey, chunkKey, fpOfIndexKey, fpOfPinKey, PIN_PREFIX, pinKey, prefixRange } from './keys.js';
import { LruCache } from './lru.js';
import { lackingPinned, receivePeerChunks, type ReceiveDeps } from './peer-records.js';
import { verifiedBytes } from './codec-ops.js';
import type { ChunkStorePort } from './chunk-store-port.js';
import { nodeChunk, type StoredChunk } from './stored-chunk.js';

export type { ChunkIndexEntry } from './chunk-index.js';
export type { StoredChunk } from './stored-chunk.js';

const NODE_CACHE_ENTRIES = 4096;

/**
 * Content-addressed chunks on RocksDB, and the one owner of the chunk pipeline: new blocks
 * enter through `ingest` (hash, dedup, encode, commit), a peer's records through `receive`
 * (verify, store, pin), tree nodes of a snapshot fold through `stageNodes`. Every chunk read
 * is checked against its fingerprint (ChunkCorruptError otherwise), in the codec workers or,
 * for tree nodes, by core's nodeFromRecord. Writing a chunk that exists changes nothing.
 *
 * Invariant (closure): a tree node is stored only with or after every chunk it references,
 * and GC deletes a node no later than its children, so a node present in the store always
 * has its whole subtree present.
 *
 * GC safety: every id this store is asked about (`has`), writes (`addPuts`), pins, or is told
 * is referenced (`reference`) is recorded in the barrier while a collection runs; see
 * services/storage-node/src/gc.ts for the ordering argument.
 */
export class ChunkStore implements ChunkStorePort {
  private readonly nodes = new LruCache<string, TreeNode>(NODE_CACHE_ENTRIES);
  /** The write barrier GC and writers share. */
  readonly barrier = new GcBarrier();

  /** The codec workers (hashing, compression, verification); private to the store. */
  private readonly pool: CodecPool;

  /** Starts the codec worker threads; `close()` stops them. */
  constructor(
    private readonly db: Database,
    codec: CodecPoolOptions = {},
  ) {
    this.pool = new CodecPool(codec);
  }

  /** What the pipeline steps (ingest.ts, peer-records.ts) use, private members included. */
  private pipeline(): IngestDeps & ReceiveDeps {
    return {
      pool: this.pool,
      barrier: this.barrier,
      commit: (fill) => this.db.commit(fill),
      has: (ids) => this.has(ids),
      getNode: (id) => this.getNode(id),
      addPuts: (b, c) => this.addPuts(b, c),
      addPins: (b, ids, t) => this.addPins(b, ids, t),
    };
  }

  /** Stops the codec workers (the database is closed by its owner). */
  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * Stores `blocks` (see ingest.ts for the ordering): hashes them in the workers, then inside
   * one GC barrier section checks which the store lacks, compresses only those and runs
   * `commit`, which writes them (via its `stage`) with its own references in one batch.
   * Rejects with what `commit` rejects with; nothing is stored then.
   */
  ingest(blocks: readonly Buffer[], commit: IngestCommit): Promise<IngestResult> {
    return ingestBlocks(this.pipeline(), blocks, commit);
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

  /**
   * The ids of `ids` the store lacks (holes never count), in order; the ones it holds are
   * pinned until `pinUntilMs` (a replicator skips their subtrees: gc.ts, case d). The check
   * and the pin are one barrier section.
   */
  lacking(ids: readonly Fingerprint[], pinUntilMs: number): Promise<Fingerprint[]> {
    return lackingPinned(this.pipeline(), ids, pinUntilMs);
  }

  /** Stages a snapshot fold's new tree nodes (stored raw) into `batch`. */
  stageNodes(batch: WriteBatch, nodes: readonly EncodedNode[]): void {
    this.addPuts(batch, nodes.map(nodeChunk));
  }

  /** Stored records (codec byte + zstd, or raw when zstd saves little) of `raws`. */
  encode(raws: readonly Buffer[]): Promise<Buffer[]> {
    return this.pool.encode(raws);
  }

  /**
   * Whether the chunk index lists `id` (one read of its entry). Rejects (StoreDamagedError)
   * when RocksDB cannot read the entry.
   */
  async indexed(id: Fingerprint): Promise<boolean> {
    return (await this.db.get(chunkIndexKey(id))) !== null;
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
    const decoded = await this.pool.decode(await this.records(ids), ids);
    return decoded.map((d) => (d.ok ? undefined : d.reason));
  }

  /** For each id, whether the store holds it. Call inside `barrier.referencing` to rely on the answer. */
  async has(ids: readonly Fingerprint[]): Promise<boolean[]> {
    this.barrier.record(ids);
    const values = await this.db.getMany(ids.map(chunkIndexKey));
    return values.map((v) => v !== null);
  }

  /** Index entries of `ids` (undefined where absent), in order. */
  async entries(ids: readonly Fingerprint[]): Promise<(ChunkIndexEntry | undefined)[]> {
    const values = await this.db.getMany(ids.map(chunkIndexKey));
    return values.map((v, i) => (v === null ? undefined : decodeIndexValue(ids[i] as Fingerprint, v)));
  }

  /** Tells a running GC that `ids` (tree roots, or any chunk) just gained a reference. */
  reference(ids: readonly Fingerprint[]): void {
    this.barrier.record(ids);
  }

  /** Adds chunk puts to `batch` (chunk record and index entry); the pipeline's last step. */
  private addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void {
    this.barrier.record(chunks.map((c) => c.id));
    for (const c of chunks) {
      batch.tryPut(chunkKey(c.id), c.record);
      batch.tryPut(chunkIndexKey(c.id), encodeIndexValue(c.record.length, c.rawLength, c.level));
    }
  }

  /** Stored records for `ids`; rejects with ChunkMissingError for an absent one. */
  async records(ids: readonly Fingerprint[]): Promise<Buffer[]> {
    const values = await this.db.getMany(ids.map(chunkKey)).catch(() => this.recordsOneByOne(ids));
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

  /** Raw, verified bytes of `ids`, in order. */
  async get(ids: readonly Fingerprint[]): Promise<Buffer[]> {
    return verifiedBytes(this.pool, await this.records(ids), ids);
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
  private addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void {
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
