import { ChunkMissingError, FailedPreconditionError, fromHex, nodeFromRecord, toHex, type Fingerprint, type TreeNode } from '@vmferry/core';
import type { ChunkIndexEntry } from './chunk-index.js';
import { ChunkPipeline } from './chunk-pipeline.js';
import type { ChunkStorePort } from './chunk-store-port.js';
import type { WriteBatch } from './database.js';
import { InlineCodec } from './inline-codec.js';
import type { StoredChunk } from './stored-chunk.js';

/** What the store holds, by hex id. */
interface State {
  readonly chunks: Map<string, StoredChunk>;
  readonly pins: Map<string, number>;
  /** A commit's other entries (a caller's own keys, by hex key): kept so a test can read them. */
  readonly other: Map<string, Buffer>;
}

/** A batch of a MemoryChunkStore: its changes, applied together when the commit's fill returns. */
class MemoryBatch implements WriteBatch {
  readonly changes: ((s: State) => void)[] = [];
  constructor(readonly store: MemoryChunkStore) {}
  tryPut(key: Buffer, value: Buffer): void {
    const k = toHex(key);
    this.changes.push((s) => s.other.set(k, Buffer.from(value)));
  }
  tryDelete(key: Buffer): void {
    const k = toHex(key);
    this.changes.push((s) => s.other.delete(k));
  }
  tryDeleteRange(start: Buffer, end: Buffer): void {
    const [from, to] = [toHex(start), toHex(end)];
    // Hex strings sort as their bytes do.
    this.changes.push((s) => [...s.other.keys()].filter((k) => k >= from && k < to).forEach((k) => s.other.delete(k)));
  }
}

const byHex = <T>(m: ReadonlyMap<string, T>): [string, T][] => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * A chunk store in memory, for fast in-process tests of what builds on a chunk store: the
 * same pipeline steps as the RocksDB store (ingest.ts, peer-records.ts, the GC barrier) over
 * maps, with the codec on the calling thread. It passes the same conformance suite.
 *
 * Limit: writes are staged into the store's own batches (`commit`), so it cannot share a batch
 * with a RocksDB Catalog. The storage engine's commits put a snapshot's or a write's catalog
 * entries and its chunks in one RocksDB batch, so the engine keeps the RocksDB ChunkStore;
 * staging into any other batch fails with FailedPreconditionError rather than losing writes.
 */
export class MemoryChunkStore extends ChunkPipeline implements ChunkStorePort {
  private readonly state: State = { chunks: new Map(), pins: new Map(), other: new Map() };

  constructor(options: { readonly zstdLevel?: number } = {}) {
    super(new InlineCodec(options.zstdLevel));
  }

  /** Writes one batch: `fill`'s changes all land, or (when it throws) none. */
  commit(fill: (batch: WriteBatch) => void): Promise<void> {
    return this.write(fill);
  }

  protected write(fill: (batch: WriteBatch) => void): Promise<void> {
    const batch = new MemoryBatch(this);
    fill(batch);
    for (const change of batch.changes) change(this.state);
    return Promise.resolve();
  }

  /** A value a commit put under `key` outside the chunk store's own entries. */
  value(key: Buffer): Buffer | undefined {
    return this.state.other.get(toHex(key));
  }

  /** For tests: replaces the stored record of `id` (simulated damage). */
  overwriteRecord(id: Fingerprint, record: Buffer): void {
    const held = this.state.chunks.get(toHex(id));
    if (!held) throw new ChunkMissingError(toHex(id));
    this.state.chunks.set(toHex(id), { ...held, record });
  }

  private own(batch: WriteBatch): MemoryBatch {
    if (batch instanceof MemoryBatch && batch.store === this) return batch;
    throw new FailedPreconditionError('the in-memory chunk store stages only into its own batches (its commit), never into a RocksDB batch');
  }

  indexed(id: Fingerprint): Promise<boolean> {
    return Promise.resolve(this.state.chunks.has(toHex(id)));
  }

  has(ids: readonly Fingerprint[]): Promise<boolean[]> {
    this.barrier.record(ids);
    return Promise.resolve(ids.map((id) => this.state.chunks.has(toHex(id))));
  }

  entries(ids: readonly Fingerprint[]): Promise<(ChunkIndexEntry | undefined)[]> {
    return Promise.resolve(
      ids.map((id) => {
        const c = this.state.chunks.get(toHex(id));
        return c && entryOf(c);
      }),
    );
  }

  records(ids: readonly Fingerprint[]): Promise<Buffer[]> {
    return Promise.resolve(
      ids.map((id) => {
        const c = this.state.chunks.get(toHex(id));
        if (!c) throw new ChunkMissingError(toHex(id));
        return c.record;
      }),
    );
  }

  async getNode(fp: Fingerprint): Promise<TreeNode> {
    const [record] = await this.records([fp]);
    return nodeFromRecord(fp, record as Buffer);
  }

  async *index(): AsyncGenerator<ChunkIndexEntry> {
    for (const [, c] of byHex(this.state.chunks)) yield await Promise.resolve(entryOf(c));
  }

  async *pins(nowMs: number): AsyncGenerator<Fingerprint> {
    for (const [hex, until] of byHex(this.state.pins)) if (until > nowMs) yield await Promise.resolve(fromHex(hex));
  }

  pinned(ids: readonly Fingerprint[], nowMs: number): Promise<boolean[]> {
    return Promise.resolve(ids.map((id) => (this.state.pins.get(toHex(id)) ?? 0) > nowMs));
  }

  addDeletes(batch: WriteBatch, ids: readonly Fingerprint[]): void {
    const hexes = ids.map(toHex);
    this.own(batch).changes.push((s) => hexes.forEach((h) => (s.chunks.delete(h), s.pins.delete(h))));
  }

  protected addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void {
    const own = this.own(batch);
    this.barrier.record(chunks.map((c) => c.id));
    // Copied: a caller's buffers (a peer's records) are its own to reuse.
    const copies = chunks.map((c) => ({ ...c, record: Buffer.from(c.record) }));
    own.changes.push((s) => copies.forEach((c) => s.chunks.set(toHex(c.id), c)));
  }

  protected addPins(batch: WriteBatch, ids: readonly Fingerprint[], expiresAtMs: number): void {
    const own = this.own(batch);
    this.barrier.record(ids);
    const until = Math.floor(expiresAtMs);
    const hexes = ids.map(toHex);
    own.changes.push((s) => hexes.forEach((h) => s.pins.set(h, until)));
  }
}

function entryOf(c: StoredChunk): ChunkIndexEntry {
  const base = { id: c.id, storedBytes: c.record.length, rawBytes: c.rawLength };
  return c.level === undefined ? base : { ...base, level: c.level };
}
