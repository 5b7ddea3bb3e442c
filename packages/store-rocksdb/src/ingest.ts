/*
 * The write pipeline for new blocks: hash → dedup → encode → stage → commit.
 *
 * Ordering (services/storage-node/src/gc.ts, cases a and c): hashing runs first, outside any
 * section (it needs nothing from the store). The dedup check, the encoding of what the store
 * lacks and the caller's commit then run inside ONE `barrier.referencing` section: a chunk
 * found present is still present when the commit referencing it lands (no sweep batch runs in
 * between, and the check recorded it), and the new chunks are recorded as they are staged.
 * Dedup comes before compression, so a block the store holds is never compressed.
 */
import { HOLE, isHole, isZero, toHex, type Fingerprint } from '@vmferry/core';
import type { ChunkCodec } from './codec-ops.js';
import type { WriteBatch } from './database.js';
import type { GcBarrier } from './gc-barrier.js';
import type { StoredChunk } from './stored-chunk.js';

/** What a commit stages: the new chunks, into the caller's batch. */
export type StageChunks = (batch: WriteBatch) => void;

/**
 * The caller's commit, run inside the barrier section: it must write one batch that calls
 * `stage` and holds the entries referencing `ids` (HOLE for all-zero blocks), and resolve once
 * that batch is written. It must not enter `barrier.referencing` itself (sections do not nest).
 */
export type IngestCommit = (ids: readonly Fingerprint[], stage: StageChunks) => Promise<void>;

/** What an ingest stored: each block's id, and the chunks that were new. */
export interface IngestResult {
  readonly ids: readonly Fingerprint[];
  readonly newChunks: number;
  readonly newRawBytes: number;
  readonly newStoredBytes: number;
}

/** The parts of the chunk store an ingest uses. */
export interface IngestDeps {
  readonly pool: ChunkCodec;
  readonly barrier: GcBarrier;
  has(ids: readonly Fingerprint[]): Promise<boolean[]>;
  addPuts(batch: WriteBatch, chunks: readonly StoredChunk[]): void;
}

/** Ids of `blocks` (HOLE for all-zero ones): zero blocks are found here and never hashed. */
async function hashBlocks(pool: ChunkCodec, blocks: readonly Buffer[]): Promise<Fingerprint[]> {
  const nonZero = blocks.map((b, i) => (isZero(b) ? -1 : i)).filter((i) => i >= 0);
  const hashed = await pool.hash(nonZero.map((i) => blocks[i] as Buffer));
  const ids: Fingerprint[] = blocks.map(() => HOLE);
  nonZero.forEach((i, k) => (ids[i] = hashed[k] as Fingerprint));
  return ids;
}

/** Runs the pipeline for `blocks`; rejects with whatever `commit` or the store rejects with. */
export async function ingestBlocks(deps: IngestDeps, blocks: readonly Buffer[], commit: IngestCommit): Promise<IngestResult> {
  const ids = await hashBlocks(deps.pool, blocks);
  const prepared = await deps.barrier.referencing(async () => {
    const p = await encodeMissing(deps, blocks, ids);
    await commit(ids, p.stage);
    return p;
  });
  return prepared.result;
}

/** Blocks ingested inside a section the caller holds: their ids, and the chunks to stage. */
export interface PreparedIngest {
  readonly ids: readonly Fingerprint[];
  /** Stages the new chunks: the caller's commit, in the same section, must call it. */
  readonly stage: StageChunks;
  readonly result: IngestResult;
}

/**
 * The pipeline for a caller already inside `barrier.referencing` (a snapshot folding pages,
 * which must check, stage and commit in the one section it holds): hash, dedup check and
 * encode, with nothing committed. The caller's batch must call `stage` and reference the
 * ids, and land before the section ends.
 */
export async function prepareWithinSection(deps: IngestDeps, blocks: readonly Buffer[]): Promise<PreparedIngest> {
  return encodeMissing(deps, blocks, await hashBlocks(deps.pool, blocks));
}

/** The dedup check and the encoding of what the store lacks (inside a section). */
async function encodeMissing(deps: IngestDeps, blocks: readonly Buffer[], ids: readonly Fingerprint[]): Promise<PreparedIngest> {
  // The first block of each distinct non-hole id.
  const unique = new Map<string, number>();
  ids.forEach((id, i) => {
    if (!isHole(id) && !unique.has(toHex(id))) unique.set(toHex(id), i);
  });
  const candidates = [...unique.values()];
  const present = await deps.has(candidates.map((i) => ids[i] as Fingerprint));
  const fresh = candidates.filter((_, k) => !present[k]);
  const records = await deps.pool.encode(fresh.map((i) => blocks[i] as Buffer));
  const chunks: StoredChunk[] = fresh.map((i, k) => ({
    id: ids[i] as Fingerprint,
    record: records[k] as Buffer,
    rawLength: (blocks[i] as Buffer).length,
  }));
  return {
    ids,
    stage: (batch) => deps.addPuts(batch, chunks),
    result: {
      ids,
      newChunks: chunks.length,
      newRawBytes: chunks.reduce((n, c) => n + c.rawLength, 0),
      newStoredBytes: chunks.reduce((n, c) => n + c.record.length, 0),
    },
  };
}
