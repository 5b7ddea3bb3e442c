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
import { CHUNK_INDEX_PREFIX, chunkIndexKey, chunkKey, fpOfIndexKey, pinKey, prefixRange } from './keys.js';
import { LruCache } from './lru.js';

/** A chunk ready to store: its id, stored record, and raw length. */
export interface StoredChunk {
  readonly id: Fingerprint;
  readonly record: Buffer;
  readonly rawLength: number;
}

export interface ChunkIndexEntry {
  readonly id: Fingerprint;
  readonly storedBytes: number;
  readonly rawBytes: number;
}

const NODE_CACHE_ENTRIES = 4096;

/**
 * Content-addressed chunks on RocksDB. Every chunk read is checked against its fingerprint
 * (ChunkCorruptError otherwise). Writing a chunk that exists changes nothing.
 *
 * GC safety: while a collection runs, every id this store is asked about or writes is
 * recorded in `touched`, and the sweep spares those: a chunk that gains a reference after
 * marking began (a dedup hit or a new write) is never swept.
 */
export class ChunkStore implements NodeSource {
  private readonly nodes = new LruCache<string, TreeNode>(NODE_CACHE_ENTRIES);
  private touched: Set<string> | undefined;

  constructor(
    private readonly db: Database,
    readonly pool: CodecPool,
  ) {}

  private touch(ids: readonly Fingerprint[]): void {
    if (this.touched) for (const id of ids) this.touched.add(toHex(id));
  }

  /** For each id, whether the store holds it. */
  async has(ids: readonly Fingerprint[]): Promise<boolean[]> {
    this.touch(ids);
    const values = await this.db.getMany(ids.map(chunkIndexKey));
    return values.map((v) => v !== null);
  }

  /** Adds chunk puts to `batch` (chunk record and index entry). */
  addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void {
    this.touch(chunks.map((c) => c.id));
    for (const c of chunks) {
      const index = Buffer.alloc(8);
      index.writeUInt32LE(c.record.length, 0);
      index.writeUInt32LE(c.rawLength, 4);
      batch.tryPut(chunkKey(c.id), c.record);
      batch.tryPut(chunkIndexKey(c.id), index);
    }
  }

  /** Tree nodes are stored raw (fingerprints do not compress). */
  static nodeChunk(node: EncodedNode): StoredChunk {
    return { id: node.id, record: Buffer.concat([Buffer.of(CODEC_RAW), node.bytes]), rawLength: node.bytes.length };
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
      yield { id: Buffer.from(fpOfIndexKey(key)), storedBytes: value.readUInt32LE(0), rawBytes: value.readUInt32LE(4) };
    }
  }

  /** Pins chunks until `expiresAtMs`: GC spares them (chunks of a replication not yet committed). */
  addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void {
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

  /** Starts recording touched ids for a GC run; returns the set the sweep must spare. */
  beginGc(): Set<string> {
    this.touched = new Set();
    return this.touched;
  }

  endGc(): void {
    this.touched = undefined;
  }
}
