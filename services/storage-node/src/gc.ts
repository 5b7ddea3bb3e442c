/*
 * Garbage collection: mark and sweep, safe while every writer keeps running.
 *
 * Moving parts
 *   roots     each VM's live tree + its unsnapshotted writes ('d' entries), every snapshot,
 *             every unexpired pin (chunks of an uncommitted replication, chunks a replicator
 *             was told are here). The catalog's list is taken, and recording begins, inside
 *             the exclusive section: no writer is then between staging and landing a batch
 *             (one that staged under the previous run would record into the wrong run).
 *   barrier   (ChunkStore.barrier) while a GC runs, records every id that is checked (`has`),
 *             written (the store's addPuts, the last step of ingest, receive and stageNodes),
 *             pinned, or newly referenced by a VM/snapshot record (the
 *             catalog reports roots). `referencing(fn)` is a shared section; each sweep batch
 *             runs in the exclusive one.
 *   mark      walks the roots; before each sweep batch it drains the barrier and keeps every
 *             recorded id, walking the whole subtree of each recorded tree node.
 *   sweep     deletes unmarked, unpinned chunks: tree nodes first, highest level first, then
 *             data. So a node is never deleted after its children (closure invariant: a node
 *             present in the store has its whole subtree present, at every committed state).
 *
 * Why no writer can be caught out. A reference is created only by a commit; what it points at
 * is one of:
 *   (a) a chunk the same batch writes: recorded by addPuts; if it is a node, its children are
 *       one of (a)-(d), recursively;
 *   (b) a chunk of the current live state or of an existing snapshot (a snapshot holds one
 *       barrier section from its freeze to its commit, so nothing it froze is swept before
 *       its new nodes reference it, and those are recorded as they are staged; a clone holds
 *       the source VM's lock so its snapshot stays): every such chunk was reachable from a root that
 *       existed when GC began (marked) or from a root committed since (recorded, so its
 *       subtree is kept at the next drain). Unsnapshotted writes folded away before the walk
 *       reached them are reachable from the fold's new nodes, which are recorded;
 *   (c) a chunk found present by a dedup check (`has`) inside a `referencing` section that
 *       also holds the commit (ChunkStore.ingest and ChunkStore.receive run both in one): recorded at the check, and no sweep batch can run between the
 *       check and the commit, so the next batch's drain keeps it;
 *   (d) a tree node found present by a replicator's MissingChunks or a replica commit's root
 *       check, in a `referencing` section: by the closure invariant its subtree is present
 *       then; the answer pins it (recorded), and pins are roots, so it and its subtree stay.
 * A sweep batch drains before it deletes and holds off every section, so whatever a finished
 * section recorded is kept with its subtree. Roots deleted while GC runs are freed by the next
 * run. One GC runs at a time per engine. A walk that meets a missing or corrupt node aborts
 * the run before anything more is deleted (what that node referenced is unknown).
 *
 * Locks taken, in order: barrier (shared, by writers; exclusive, by a sweep batch) before a
 * VM's lock. A sweep batch takes no other lock.
 */
import { toHex, walkLevels, type Fingerprint, type GcReport, type WalkedNode } from '@vmferry/core';
import type { ChunkIndexEntry } from '@vmferry/store-rocksdb';
import type { EngineContext } from './context.js';
import { allRootSets, dirtyChunks, type RootSet } from './roots.js';

const SWEEP_BATCH = 512;
/** Tree nodes read at once while marking. */
const NODE_READS = 64;

/**
 * The set of live chunks, grown by walks from roots and from what the barrier recorded.
 *
 * Pruning at a marked node is sound because a node is marked only by a walk that then marks
 * its whole subtree before `trees` resolves (or rejects, which aborts the run), and walks run
 * one at a time, never across a sweep batch: the mark phase runs before any sweep, and `keep`
 * runs inside the sweep batch that then deletes.
 */
class Marker {
  readonly marked = new Set<string>();

  constructor(private readonly ctx: EngineContext) {}

  /** Marks `roots` and everything under them, level by level (stops at subtrees already marked). */
  async trees(roots: readonly Fingerprint[]): Promise<void> {
    await walkLevels(roots, {
      select: (ids) => Promise.resolve(ids.filter((id) => this.mark(id))),
      load: (ids, found) => loadNodes(this.ctx, ids, found),
      onLeaf: (id) => void this.marked.add(toHex(id)),
    });
  }

  /** Marks `id`; false when it already was. */
  private mark(id: Fingerprint): boolean {
    const hex = toHex(id);
    if (this.marked.has(hex)) return false;
    this.marked.add(hex);
    return true;
  }

  async rootSet(set: RootSet): Promise<void> {
    await this.trees(set.roots);
    if (set.live) for await (const fp of dirtyChunks(this.ctx, set.vm.id)) this.marked.add(toHex(fp));
  }

  /**
   * Keeps `ids` (any kind): data is marked, a tree node is marked with its subtree. An id not
   * in the store is not marked: should it be written later, it is recorded again then, and a
   * node must be walked at that point, not taken as kept.
   */
  async keep(ids: readonly Fingerprint[]): Promise<void> {
    const fresh = ids.filter((id) => !this.marked.has(toHex(id)));
    const entries = await this.ctx.chunks.entries(fresh);
    const nodes: Fingerprint[] = [];
    for (const [i, id] of fresh.entries()) {
      const e = entries[i];
      if (e === undefined) continue;
      if (e.level !== undefined) nodes.push(id);
      else this.marked.add(toHex(id));
    }
    await this.trees(nodes);
  }
}

/** Loads one level's nodes through the store's verified, cached `getNode`, NODE_READS at a time. */
async function loadNodes(ctx: EngineContext, ids: readonly Fingerprint[], found: (n: WalkedNode) => void): Promise<void> {
  for (let i = 0; i < ids.length; i += NODE_READS) {
    const batch = ids.slice(i, i + NODE_READS);
    const nodes = await Promise.all(batch.map((id) => ctx.chunks.getNode(id)));
    nodes.forEach((node, k) => found({ id: batch[k] as Fingerprint, node }));
  }
}

/** One collection. The engine runs one at a time (a second caller joins the running one). */
export async function collectGarbage(ctx: EngineContext): Promise<GcReport> {
  const started = performance.now();
  const { chunks } = ctx;
  // The root list is taken, and recording begins, while no section is between staging its
  // batch and landing it: a section that staged its ids under the previous run (or before any
  // run) has landed and so is in the list; every later one records into this run.
  const roots = await chunks.barrier.sweeping(() => {
    chunks.barrier.begin();
    return Promise.resolve(allRootSets(ctx));
  });
  try {
    const mark = new Marker(ctx);
    for (const set of roots) await mark.rootSet(set);
    const pins: Fingerprint[] = [];
    for await (const id of chunks.pins(Date.now())) pins.push(id);
    await mark.keep(pins);

    let swept = 0;
    let bytesFreed = 0;
    /** One sweep batch: drain the barrier, then delete what is still unmarked and unpinned. */
    const sweep = (candidates: readonly ChunkIndexEntry[]): Promise<void> =>
      chunks.barrier.sweeping(async () => {
        await mark.keep(chunks.barrier.drain().map((hex) => Buffer.from(hex, 'hex')));
        const left = candidates.filter((c) => !mark.marked.has(toHex(c.id)));
        const pinned = await chunks.pinned(
          left.map((c) => c.id),
          Date.now(),
        );
        const victims = left.filter((_, i) => !pinned[i]);
        if (victims.length === 0) return;
        await ctx.db.commit((b) =>
          chunks.addDeletes(
            b,
            victims.map((v) => v.id),
          ),
        );
        swept += victims.length;
        bytesFreed += victims.reduce((n, v) => n + v.storedBytes, 0);
      });

    // Tree nodes first, top level first: a node always goes before (or with) its children.
    const nodesByLevel = new Map<number, ChunkIndexEntry[]>();
    for await (const e of chunks.index()) {
      if (e.level === undefined || mark.marked.has(toHex(e.id))) continue;
      const list = nodesByLevel.get(e.level) ?? [];
      list.push(e);
      nodesByLevel.set(e.level, list);
    }
    for (const level of [...nodesByLevel.keys()].sort((a, b) => b - a)) {
      const list = nodesByLevel.get(level) ?? [];
      for (let i = 0; i < list.length; i += SWEEP_BATCH) await sweep(list.slice(i, i + SWEEP_BATCH));
    }
    // Then data.
    let doomed: ChunkIndexEntry[] = [];
    for await (const e of chunks.index()) {
      if (e.level !== undefined || mark.marked.has(toHex(e.id))) continue;
      doomed.push(e);
      if (doomed.length >= SWEEP_BATCH) {
        await sweep(doomed);
        doomed = [];
      }
    }
    await sweep(doomed);
    return { chunksMarked: mark.marked.size, chunksSwept: swept, bytesFreed, durationMs: Math.round(performance.now() - started) };
  } finally {
    chunks.barrier.end();
  }
}
