/*
 * A replication session: bring one snapshot of a VM from a source site into the local node.
 *
 *   1. Read the snapshot's metadata from the source.
 *   2. Walk its trees top-down: ask the target which nodes it lacks (a node present at the
 *      target means its whole subtree is, by the target's children-first invariant), fetch
 *      only those, decode them (checked against their ids) to find the next level.
 *   3. Ask which data chunks the target lacks; fetch them over `streams` parallel server
 *      streams (throttled by the link's token bucket, which slows reading and so, through
 *      HTTP/2 flow control, the source) and store them at the target, which re-hashes each.
 *   4. Store the fetched nodes bottom-up, then commit: the snapshot appears whole or not at all.
 *
 * Resuming is re-running: whatever arrived before a break is present (and pinned), so the
 * next run asks for, and moves, only the rest. Incremental runs cost O(changed × height).
 */
import { Decompressor } from 'zstd-napi';
import {
  ChunkCorruptError,
  childrenOf,
  InvalidArgumentError,
  isHole,
  nodeFromRecord,
  rawRecord,
  recordBytes,
  referencedPages,
  toHex,
  fromHex,
  unpackChunks,
  walkLevels,
} from '@vmferry/core';
import type { ChunkRecord, ChunkToStore, CommittedSnapshot, PackedBatch, SnapshotRecord, VmRecord } from '@vmferry/core';
import { PageIndex, type PageIndexCache } from './page-index.js';
import { checkNodeShape, checkSourceMetadata, childExpectation, rootExpectation, sameExpectation, type NodeExpectation } from './source-checks.js';
import type { SourcePort, TargetPort } from './ports.js';
import type { TokenBucket } from './token-bucket.js';

export const DEFAULT_STREAMS = 4;
const MISSING_BATCH = 8192;
const FETCH_BATCH = 512;

export type Phase = 'metadata' | 'walk' | 'data' | 'nodes' | 'commit' | 'done';

export interface Progress {
  readonly phase: Phase;
  /** Stored (compressed) bytes received so far. */
  readonly bytesDone: number;
  /** Bytes this session will move, once known (after the walk). */
  readonly bytesTotal: number;
  readonly chunksDone: number;
  readonly chunksTotal: number;
}

export interface SessionOptions {
  readonly source: SourcePort;
  readonly target: TargetPort;
  /** The source site's name, recorded on the replica. */
  readonly sourceSite: string;
  /** VM@SNAPSHOT or VM@latest. */
  readonly ref: string;
  readonly streams?: number;
  readonly bucket?: TokenBucket;
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
  /** Packed transfer (page references + batch compression) when the source offers it; default true. */
  readonly packed?: boolean;
  /** Base page indexes kept across sessions into `target` (its cache); default: built per session. */
  readonly pageIndexes?: PageIndexCache;
}

export interface SessionResult {
  readonly snapshot: CommittedSnapshot;
  readonly vmName: string;
  readonly bytesReceived: number;
  readonly chunksReceived: number;
  readonly nodesReceived: number;
  /** Data chunks the target already had (moved nothing). */
  readonly chunksSkipped: number;
  /** Whether the source recorded this snapshot as the pair's base (protected from deletion). */
  readonly baseRecordedAtSource: boolean;
  /** Whether data chunks travelled packed, and how many base pages they could reference. */
  readonly packed: boolean;
  readonly basePages: number;
  readonly seconds: number;
}

async function missingIn(target: TargetPort, ids: readonly Buffer[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < ids.length; i += MISSING_BATCH) out.push(...(await target.missing(ids.slice(i, i + MISSING_BATCH))));
  return out;
}

/** Runs `work` over `items` with at most `n` in flight; rejects on the first failure. */
async function pool<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(runners);
}

function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function replicateSnapshot(o: SessionOptions): Promise<SessionResult> {
  const started = performance.now();
  const streams = Math.max(1, o.streams ?? DEFAULT_STREAMS);
  let bytesDone = 0;
  let chunksDone = 0;
  let bytesTotal = 0;
  let chunksTotal = 0;
  let phase: Phase = 'metadata';
  const report = (): void => o.onProgress?.({ phase, bytesDone, bytesTotal, chunksDone, chunksTotal });
  const count = (records: readonly ChunkRecord[]): void => {
    bytesDone += records.reduce((n, r) => n + r.record.length, 0);
    chunksDone += records.length;
    report();
  };
  const received = async (records: readonly ChunkRecord[]): Promise<void> => {
    await o.bucket?.take(
      records.reduce((n, r) => n + r.record.length, 0),
      o.signal,
    );
    count(records);
  };

  report();
  const info = await o.source.getSnapshot(o.ref);
  checkSourceMetadata(o.sourceSite, info);
  const snapshot = info.snapshot;

  phase = 'walk';
  const { nodesByLevel, dataIds } = await walkMissing(o, snapshot, streams, received);

  // Data: only what the target lacks.
  const missingData = await missingIn(o.target, [...dataIds.values()]);
  const sizes: number[] = [];
  for (const b of batches(missingData, MISSING_BATCH)) sizes.push(...(await o.source.sizes(b)));
  const nodeRecords = [...nodesByLevel.values()].flat();
  bytesTotal = bytesDone + sizes.reduce((a, b) => a + b, 0);
  chunksTotal = chunksDone + missingData.length;
  phase = 'data';
  report();
  // Packed when the source can: page references against this site's newest snapshot of the
  // VM (the base), literals compressed per batch. Otherwise chunks in their stored form.
  const packing = o.packed === false || missingData.length === 0 ? undefined : await openPacking(o, info.vm);
  // Throttled links are paced by request: each batch's bytes are taken from the link's bucket
  // *before* it is asked for, in batches of about a quarter second of the rate, so the
  // source never has more than that in flight per stream, whatever the HTTP/2 windows allow.
  const sizeOf = new Map(missingData.map((id, i) => [toHex(id), sizes[i] ?? 0]));
  const paced = o.bucket !== undefined && Number.isFinite(o.bucket.bytesPerSecond);
  const avg = missingData.length ? (bytesTotal - bytesDone) / missingData.length || 1 : 1;
  const batchSize = paced ? Math.max(1, Math.min(FETCH_BATCH, Math.floor((o.bucket.bytesPerSecond * 0.25) / avg))) : FETCH_BATCH;
  await pool(batches(missingData, batchSize), streams, async (ids) => {
    const put = o.target.put();
    try {
      if (paced)
        await o.bucket.take(
          ids.reduce((n, id) => n + (sizeOf.get(toHex(id)) ?? 0), 0),
          o.signal,
        );
      if (packing) {
        for await (const batch of o.source.fetchPacked(ids, packing.token, o.signal)) {
          const wire = batch.literals.length + batch.chunks.reduce((n, c) => n + c.id.length + c.pageRefs.length + 4, 0);
          if (!paced) await o.bucket?.take(wire, o.signal);
          bytesDone += wire;
          chunksDone += batch.chunks.length;
          report();
          await put.write(await unpack(batch, packing.index));
        }
      } else {
        for await (const records of o.source.fetch(ids, o.signal)) {
          if (paced) count(records);
          else await received(records);
          await put.write(records);
        }
      }
      await put.end();
    } catch (e) {
      put.cancel();
      throw e;
    }
  });

  // Nodes, children first, then the commit.
  phase = 'nodes';
  report();
  for (const level of [...nodesByLevel.keys()].sort((a, b) => a - b)) {
    for (const b of batches(nodesByLevel.get(level) ?? [], 256)) {
      const put = o.target.put();
      await put.write(b);
      await put.end();
    }
  }
  phase = 'commit';
  report();
  // The site we pulled through (as the target names it, its certificate checked), never the
  // name the source gives itself: that would let one peer add snapshots to another's replicas.
  const committed = await o.target.commit(o.sourceSite, info.vm, snapshot);
  // The source keeps this snapshot (the pair's base) from deletion; a failed ack only weakens
  // that protection, so it does not fail the session.
  const baseRecorded = await o.source.ack(info.vm.id, snapshot.id).then(
    () => true,
    () => false,
  );
  phase = 'done';
  report();
  return {
    snapshot: committed,
    vmName: info.vm.name,
    bytesReceived: bytesDone,
    chunksReceived: chunksDone - nodeRecords.length,
    nodesReceived: nodeRecords.length,
    chunksSkipped: dataIds.size - missingData.length,
    baseRecordedAtSource: baseRecorded,
    packed: packing !== undefined,
    basePages: packing?.index?.pages.size ?? 0,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface WalkResult {
  /** Tree nodes the target lacks, fetched and checked, by level. */
  readonly nodesByLevel: Map<number, ChunkToStore[]>;
  /** Every data chunk the missing nodes reference (the target may hold some). */
  readonly dataIds: Map<string, Buffer>;
}

/** Walks the snapshot's trees top-down, fetching only the nodes the target lacks. */
export async function walkMissing(
  o: Pick<SessionOptions, 'source' | 'target' | 'signal'> & { readonly sourceSite?: string },
  snapshot: SnapshotRecord,
  streams: number,
  received: (records: readonly ChunkRecord[]) => Promise<void>,
): Promise<WalkResult> {
  const nodesByLevel = new Map<number, ChunkToStore[]>();
  const dataIds = new Map<string, Buffer>();
  const site = o.sourceSite ?? 'the source';
  // Each node's level and slots follow from its disk's geometry and its place in the tree.
  const expected = new Map<string, NodeExpectation>();
  const expect = (hex: string, e: NodeExpectation): void => {
    const known = expected.get(hex);
    if (known && !sameExpectation(known, e)) {
      throw new ChunkCorruptError(hex, `source site ${site} sent a tree where this node sits at two places of different shape`);
    }
    if (!known) expected.set(hex, e);
  };
  const roots: Buffer[] = [];
  for (const d of snapshot.disks) {
    if (isHole(fromHex(d.root))) continue;
    roots.push(fromHex(d.root));
    expect(d.root, rootExpectation(d));
  }
  // Level by level: ask the target which of the level's nodes it lacks, fetch those in
  // batches over `streams` parallel streams, check each against its id and expected shape.
  await walkLevels(roots, {
    select: (ids) => missingIn(o.target, ids),
    load: (ids, found) =>
      pool(batches(ids, FETCH_BATCH), streams, async (batch) => {
        for await (const records of o.source.fetch(batch, o.signal)) {
          await received(records);
          for (const r of records) {
            const node = nodeFromRecord(r.id, r.record, 'the source sent a tree node that does not match its id');
            const list = nodesByLevel.get(node.level) ?? [];
            list.push({ id: r.id, record: r.record, node: true, compress: false });
            nodesByLevel.set(node.level, list);
            found({ id: r.id, node });
          }
        }
      }),
    onNode: ({ id, node }) => {
      const e = expected.get(toHex(id));
      if (!e) throw new ChunkCorruptError(toHex(id), `source site ${site} sent a tree node that was not asked for`);
      checkNodeShape(site, id, node, e);
      if (node.level > 0) for (const c of childrenOf(node)) expect(toHex(c.id), childExpectation(e, c.slot, node.slots));
    },
    onLeaf: (id) => dataIds.set(toHex(id), id),
  });
  return { nodesByLevel, dataIds };
}

export { missingIn };

/**
 * The snapshot this site already holds that the new one most likely shares pages with: the
 * VM's newest replica here, else (a clone's first replication) the snapshot it was cloned from.
 */
async function baseSnapshot(target: TargetPort, vm: VmRecord): Promise<SnapshotRecord | undefined> {
  const own = await target.snapshots(vm.id);
  if (own.length > 0) return own[own.length - 1];
  if (!vm.clonedFrom) return undefined;
  return (await target.snapshots(vm.clonedFrom.vmId)).find((s) => s.id === vm.clonedFrom?.snapshotId);
}

interface Packing {
  readonly token: string | undefined;
  readonly index: PageIndex | undefined;
}

/** Builds (or reuses) the base's page index and uploads it; undefined when the source cannot pack. */
async function openPacking(o: SessionOptions, vm: VmRecord): Promise<Packing | undefined> {
  const base = await baseSnapshot(o.target, vm);
  if (o.pageIndexes && o.pageIndexes.target !== o.target) {
    throw new InvalidArgumentError("the page index cache belongs to another target: pass the cache of the session's own target");
  }
  const index = base ? await (o.pageIndexes?.indexFor(base) ?? PageIndex.build(o.target, base)) : undefined;
  const token = await o.source.openPageSet(index ? index.hashes() : []);
  if (token === undefined) return undefined;
  return { token, index };
}

/** Rebuilds a packed batch into raw records for the node (which verifies and compresses them). */
async function unpack(batch: PackedBatch, index: PageIndex | undefined): Promise<ChunkToStore[]> {
  const literals = batch.literals.length === 0 ? batch.literals : recordBytes(batch.literals, (frame) => decompressor.decompress(frame));
  if (literals === undefined) throw new ChunkCorruptError(toHex(batch.chunks[0]?.id ?? Buffer.alloc(0)), 'the source sent packed literals of an unknown codec');
  await index?.load(referencedPages(batch.chunks));
  const chunks = unpackChunks(batch.chunks, literals, (h) => index?.page(h));
  return chunks.map((c) => ({ id: c.id, record: rawRecord(c.raw), node: false, compress: true }));
}

const decompressor = new Decompressor();
