/*
 * Garbage collection: mark and sweep.
 *
 * Mark walks every root (each VM's live tree and unsnapshotted writes, every snapshot);
 * shared subtrees are walked once. Sweep deletes every indexed chunk that was not marked.
 *
 * Safe while writes continue: from the moment GC starts, the chunk store records every id it
 * is asked about (dedup checks) or writes (new chunks, new tree nodes) and the sweep spares
 * them. A chunk can only gain a reference through one of those paths, so a chunk referenced
 * by anything created after marking began is never swept. Roots deleted during GC are freed
 * by the next run. Only one GC runs at a time. Chunks pinned by an uncommitted replication
 * (until the pin's expiry) are spared too, so a retry can resume from what already arrived.
 */
import { fromHex } from '@vmferry/core';
import type { EngineContext } from './context.js';
import { allRootSets, walkRootSet } from './roots.js';

export interface GcReport {
  readonly chunksMarked: number;
  readonly chunksSwept: number;
  readonly bytesFreed: number;
  readonly durationMs: number;
}

const SWEEP_BATCH = 512;
let running: Promise<GcReport> | undefined;

export function runGc(ctx: EngineContext): Promise<GcReport> {
  running ??= collect(ctx).finally(() => (running = undefined));
  return running;
}

async function collect(ctx: EngineContext): Promise<GcReport> {
  const started = performance.now();
  const touched = ctx.chunks.beginGc();
  try {
    const marked = new Set<string>();
    const seenNodes = new Set<string>();
    for (const set of allRootSets(ctx)) await walkRootSet(ctx, set, seenNodes, (hex) => marked.add(hex));

    let swept = 0;
    let bytesFreed = 0;
    let doomed: { id: Buffer; bytes: number }[] = [];
    const flush = async (): Promise<void> => {
      const candidates = doomed.filter((d) => !touched.has(d.id.toString('hex')));
      doomed = [];
      const pinned = await ctx.chunks.pinned(candidates.map((d) => d.id), Date.now());
      const victims = candidates.filter((_, i) => !pinned[i]);
      if (victims.length === 0) return;
      await ctx.db.commit((b) => ctx.chunks.addDeletes(b, victims.map((d) => d.id)));
      swept += victims.length;
      bytesFreed += victims.reduce((n, d) => n + d.bytes, 0);
    };
    for await (const entry of ctx.chunks.index()) {
      const hex = entry.id.toString('hex');
      if (marked.has(hex) || touched.has(hex)) continue;
      doomed.push({ id: fromHex(hex), bytes: entry.storedBytes });
      if (doomed.length >= SWEEP_BATCH) await flush();
    }
    await flush();
    return { chunksMarked: marked.size, chunksSwept: swept, bytesFreed, durationMs: Math.round(performance.now() - started) };
  } finally {
    ctx.chunks.endGc();
  }
}
