/*
 * The page-hash index of a base snapshot at the receiving site: for every full 4 KiB page of
 * its data chunks, the page's 8-byte hash → (chunk, page). Uploaded to the source as a page
 * set so missing chunks can travel as references to pages the target already holds; used
 * again to rebuild them. Built from the local node when first needed; a PageIndexCache owned
 * with the target's client keeps it for the next sessions into that target.
 */
import { decodeNodeChecked, fromHex, fullPages, PAGE_SIZE, toHex, walkLevels, type SnapshotRecord } from '@vmferry/core';
import type { TargetPort } from './ports.js';

const READ_BATCH = 256;
/** Base chunks kept in memory for rebuilding (64 KiB each: 64 MiB). */
const CHUNK_CACHE = 1024;

export class PageIndex {
  readonly pages = new Map<string, { chunk: Buffer; page: number }>();
  private readonly cache = new Map<string, Buffer>();

  private constructor(
    private readonly target: TargetPort,
    readonly baseId: string,
  ) {}

  /** Indexes every data chunk reachable from the base snapshot's roots. */
  static async build(target: TargetPort, base: SnapshotRecord): Promise<PageIndex> {
    const index = new PageIndex(target, base.id);
    const data = new Map<string, Buffer>();
    // The local node's ReadChunks verifies each chunk; the walk only decodes the nodes.
    await walkLevels(
      base.disks.map((d) => fromHex(d.root)),
      {
        load: async (ids, found) => {
          for await (const batch of target.readChunks(ids)) for (const { id, raw } of batch) found({ id, node: decodeNodeChecked(id, raw) });
        },
        onLeaf: (id) => data.set(toHex(id), id),
      },
    );
    const ids = [...data.values()];
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      for await (const batch of target.readChunks(ids.slice(i, i + READ_BATCH))) {
        for (const { id, raw } of batch) for (const p of fullPages(raw)) index.pages.set(p.hash.toString('hex'), { chunk: id, page: p.index });
      }
    }
    return index;
  }

  hashes(): Buffer[] {
    return [...this.pages.keys()].map((h) => Buffer.from(h, 'hex'));
  }

  /** Loads the base chunks holding `hashes` (a batch's references) into the cache. */
  async load(hashes: Iterable<string>): Promise<void> {
    const need = new Map<string, Buffer>();
    for (const h of hashes) {
      const at = this.pages.get(h);
      if (at && !this.cache.has(toHex(at.chunk))) need.set(toHex(at.chunk), at.chunk);
    }
    if (need.size === 0) return;
    for await (const batch of this.target.readChunks([...need.values()])) {
      for (const { id, raw } of batch) {
        this.cache.set(toHex(id), raw);
        if (this.cache.size > CHUNK_CACHE) this.cache.delete(this.cache.keys().next().value as string);
      }
    }
  }

  /** The bytes of a page the index holds (after load()), or undefined. */
  page(hash: string): Buffer | undefined {
    const at = this.pages.get(hash);
    if (!at) return undefined;
    return this.cache.get(toHex(at.chunk))?.subarray(at.page * PAGE_SIZE, (at.page + 1) * PAGE_SIZE);
  }
}

/** Base indexes a cache keeps by default (a VM's base moves one snapshot per session). */
const DEFAULT_KEPT = 2;

/**
 * Page indexes of base snapshots, kept for the next sessions into one target (the newest
 * few). A PageIndex reads base chunks through the target it was built with, so a cache is
 * bound to one TargetPort and owned by whoever owns that target's client (the replicator
 * service): it lives and dies with the client, and no session into another target (or after
 * the client closed) can reach it.
 */
export class PageIndexCache {
  private readonly kept = new Map<string, PageIndex>();

  constructor(
    readonly target: TargetPort,
    private readonly capacity = DEFAULT_KEPT,
  ) {}

  /** The index of `base`, built on first use; rejects with what reading the base rejects with. */
  async indexFor(base: SnapshotRecord): Promise<PageIndex> {
    const known = this.kept.get(base.id);
    if (known) return known;
    const index = await PageIndex.build(this.target, base);
    this.kept.set(base.id, index);
    while (this.kept.size > this.capacity) this.kept.delete(this.kept.keys().next().value as string);
    return index;
  }

  /** Drops every index (call when the target's client closes). */
  clear(): void {
    this.kept.clear();
  }
}
