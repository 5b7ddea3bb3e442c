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
import { ChunkCorruptError, childAt, decodeNodeChecked, fingerprint, isHole, toHex, fromHex } from '@vmferry/core';
import type { ChunkRecord, Snapshot } from '@vmferry/proto';
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
}

export interface SessionResult {
  readonly snapshot: Snapshot;
  readonly vmName: string;
  readonly bytesReceived: number;
  readonly chunksReceived: number;
  readonly nodesReceived: number;
  /** Data chunks the target already had (moved nothing). */
  readonly chunksSkipped: number;
  /** Whether the source recorded this snapshot as the pair's base (protected from deletion). */
  readonly baseRecordedAtSource: boolean;
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
  const received = async (records: readonly ChunkRecord[]): Promise<void> => {
    const bytes = records.reduce((n, r) => n + r.record.length, 0);
    await o.bucket?.take(bytes, o.signal);
    bytesDone += bytes;
    chunksDone += records.length;
    report();
  };

  report();
  const info = await o.source.getSnapshot(o.ref);
  if (!info.vm || !info.snapshot) throw new Error(`source answered without the snapshot for ${o.ref}`);
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
  await pool(batches(missingData, FETCH_BATCH), streams, async (ids) => {
    const put = o.target.put();
    try {
      for await (const records of o.source.fetch(ids, o.signal)) {
        await received(records);
        await put.write(records);
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
  const committed = await o.target.commit(info.site, info.vm, snapshot);
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
    seconds: (performance.now() - started) / 1000,
  };
}

export interface WalkResult {
  /** Tree nodes the target lacks, fetched and checked, by level. */
  readonly nodesByLevel: Map<number, ChunkRecord[]>;
  /** Every data chunk the missing nodes reference (the target may hold some). */
  readonly dataIds: Map<string, Buffer>;
}

/** Walks the snapshot's trees top-down, fetching only the nodes the target lacks. */
export async function walkMissing(
  o: Pick<SessionOptions, 'source' | 'target' | 'signal'>,
  snapshot: Snapshot,
  streams: number,
  received: (records: readonly ChunkRecord[]) => Promise<void>,
): Promise<WalkResult> {
  const nodesByLevel = new Map<number, ChunkRecord[]>();
  const dataIds = new Map<string, Buffer>();
  let frontier = new Map<string, Buffer>();
  for (const d of snapshot.disks) if (!isHole(fromHex(d.root))) frontier.set(d.root, fromHex(d.root));
  while (frontier.size > 0) {
    const missing = await missingIn(o.target, [...frontier.values()]);
    const next = new Map<string, Buffer>();
    await pool(batches(missing, FETCH_BATCH), streams, async (ids) => {
      for await (const records of o.source.fetch(ids, o.signal)) {
        await received(records);
        for (const r of records) {
          const raw = r.record.subarray(1);
          if (r.record[0] !== 0 || !fingerprint(raw).equals(r.id)) {
            throw new ChunkCorruptError(toHex(r.id), 'the source sent a tree node that does not match its id');
          }
          const node = decodeNodeChecked(r.id, raw);
          const list = nodesByLevel.get(node.level) ?? [];
          list.push({ id: r.id, record: r.record, node: true });
          nodesByLevel.set(node.level, list);
          for (let s = 0; s < node.slots; s++) {
            const child = childAt(node, s);
            if (isHole(child)) continue;
            (node.level === 0 ? dataIds : next).set(toHex(child), Buffer.from(child));
          }
        }
      }
    });
    frontier = next;
  }
  return { nodesByLevel, dataIds };
}

export { missingIn };
