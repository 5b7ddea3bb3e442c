import {
  ChunkCorruptError,
  ChunkMissingError,
  decodeNodeChecked,
  fingerprint,
  toHex,
  type EncodedNode,
  type Fingerprint,
  type NodeSource,
  type TreeNode,
} from '@vmferry/core';
import { CODEC_RAW } from './chunk-codec.js';
import type { CodecPool } from './codec-pool.js';
import type { Database, WriteBatch } from './database.js';
import { decodeIndexValue, encodeIndexValue, type ChunkIndexEntry } from './chunk-index.js';
import { GcBarrier } from './gc-barrier.js';

export type { ChunkIndexEntry } from './chunk-index.js';
import { CHUNK_INDEX_PREFIX, chunkIndexKey, chunkKey, fpOfIndexKey, fpOfPinKey, PIN_PREFIX, pinKey, prefixRange } from './keys.js';
import { LruCache } from './lru.js';

/** A chunk ready to store: its id, stored record, and raw length; `level` for a tree node. */
export interface StoredChunk {
  readonly id: Fingerprint;
  readonly record: Buffer;
  readonly rawLength: number;
  /** The tree level of a node (0: its children are data blocks); absent for data. */
  readonly level?: number;
}


const NODE_CACHE_ENTRIES = 4096;

/**
 * Content-addressed chunks on RocksDB. Every chunk read is checked against its fingerprint
 * (ChunkCorruptError otherwise). Writing a chunk that exists changes nothing.
 *
 * Invariant (closure): a tree node is stored only with or after every chunk it references,
 * and GC deletes a node no later than its children, so a node present in the store always
 * has its whole subtree present.
 *
 * GC safety: every id this store is asked about (`has`), writes (`addPuts`), pins, or is told
 * is referenced (`reference`) is recorded in the barrier while a collection runs; see gc.ts
 * in the storage node for the ordering argument.
 */
export class ChunkStore implements NodeSource {
  private readonly nodes = new LruCache<string, TreeNode>(NODE_CACHE_ENTRIES);
  /** The write barrier GC and writers share. */
  readonly barrier = new GcBarrier();

  constructor(
    private readonly db: Database,
    readonly pool: CodecPool,
  ) {}

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

  /** Adds chunk puts to `batch` (chunk record and index entry). */
  addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void {
    this.barrier.record(chunks.map((c) => c.id));
    for (const c of chunks) {
      batch.tryPut(chunkKey(c.id), c.record);
      batch.tryPut(chunkIndexKey(c.id), encodeIndexValue(c.record.length, c.rawLength, c.level));
    }
  }

  /** Tree nodes are stored raw (fingerprints do not compress). */
  static nodeChunk(node: EncodedNode): StoredChunk {
    return { id: node.id, record: Buffer.concat([Buffer.of(CODEC_RAW), node.bytes]), rawLength: node.bytes.length, level: node.level };
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
    const records = await this.records(ids);
    const decoded = await this.pool.decode(records, ids);
    return decoded.map((d, i) => {
      if (!d.ok) throw new ChunkCorruptError(toHex(ids[i] as Fingerprint), d.reason);
      return d.data;
    });
  }

  async getNode(fp: Fingerprint): Promise<TreeNode> {
    const hex = toHex(fp);
    const cached = this.nodes.get(hex);
    if (cached) return cached;
    const [record] = await this.records([fp]);
    const raw = (record as Buffer).subarray(1);
    if (record?.[0] !== CODEC_RAW || !fingerprint(raw).equals(fp)) {
      throw new ChunkCorruptError(hex, 'tree node content does not match its fingerprint');
    }
    const node = decodeNodeChecked(fp, raw);
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
  addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void {
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
