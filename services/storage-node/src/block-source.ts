import type { StoredPage } from '@vmferry/store-rocksdb';
import {
  applyPages,
  blockCount,
  blockRange,
  fromHex,
  HOLE,
  isHole,
  leafAt,
  leaves,
  NotFoundError,
  treeGeometry,
  type BlockLayout,
  type Fingerprint,
  type LeafUpdate,
} from '@vmferry/core';
import type { EngineContext } from './context.js';

/** What a read sees: a tree (snapshot or live base) and, for live state, the dirty overlay. */
export interface DiskView {
  readonly vmId: string;
  readonly diskIndex: number;
  readonly layout: BlockLayout;
  readonly root: Fingerprint;
  /** True for live state: blocks written since the last snapshot overlay the tree. */
  readonly live: boolean;
}

/** Live writes of [from, to) blocks, in block order. */
async function* dirtyEntries(ctx: EngineContext, view: DiskView, from: number, to: number): AsyncGenerator<LeafUpdate> {
  yield* ctx.catalog.liveWrites.entries(view.vmId, view.diskIndex, { from, to });
}

/**
 * The view's block fingerprints for blocks [from, to), in order, holes omitted: the tree's
 * leaves merged with live writes (a live write wins, and may itself be a hole).
 */
export async function* viewLeaves(ctx: EngineContext, view: DiskView, from = 0, to?: number): AsyncGenerator<LeafUpdate> {
  const end = to ?? blockCount(view.layout);
  const tree = leaves(view.root, treeGeometry(blockCount(view.layout)), ctx.chunks, from, end);
  if (!view.live) {
    yield* tree;
    return;
  }
  const dirty = dirtyEntries(ctx, view, from, end);
  let t = await tree.next();
  let d = await dirty.next();
  while (!t.done || !d.done) {
    if (!d.done && (t.done || d.value.block <= t.value.block)) {
      if (!t.done && t.value.block === d.value.block) t = await tree.next();
      if (!isHole(d.value.fp)) yield d.value;
      d = await dirty.next();
    } else if (!t.done) {
      yield t.value;
      t = await tree.next();
    }
  }
}

/** A block with content: its base chunk (HOLE when only pages are there) and overlay pages. */
export interface ViewLeaf extends LeafUpdate {
  readonly pages?: readonly StoredPage[];
}

/**
 * The view's blocks with content in [from, to), in order: tree leaves merged with live writes
 * (as viewLeaves) and, for live state, each block's overlay pages. Call under the VM's shared
 * lock (the root cannot change meanwhile).
 *
 * Pages are read BEFORE the live writes. A fold commits a block's new live write (which holds
 * its pages) and deletes those pages in one batch; reading pages first, a read sees the old
 * entry with the pages, the new entry with the pages (the same bytes) or the new entry alone,
 * never the old entry without its pages.
 */
export async function viewLeavesWithPages(ctx: EngineContext, view: DiskView, from: number, to: number): Promise<ViewLeaf[]> {
  const pages = new Map<number, StoredPage[]>();
  if (view.live && mayHavePages(ctx, view, from, to)) {
    for await (const p of ctx.catalog.liveWrites.pages(view.vmId, view.diskIndex, { from, to })) {
      const list = pages.get(p.block);
      if (list) list.push(p);
      else pages.set(p.block, [p]);
    }
  }
  const out: ViewLeaf[] = [];
  const paged = [...pages.keys()]; // key order is block order
  let k = 0;
  const pagedBefore = (block: number): void => {
    for (; k < paged.length && (paged[k] as number) < block; k++)
      out.push({ block: paged[k] as number, fp: HOLE, pages: pages.get(paged[k] as number) as StoredPage[] });
  };
  for await (const leaf of viewLeaves(ctx, view, from, to)) {
    pagedBefore(leaf.block);
    const own = pages.get(leaf.block);
    if (own) k++;
    out.push(own ? { ...leaf, pages: own } : leaf);
  }
  pagedBefore(Number.MAX_SAFE_INTEGER);
  return out;
}

/**
 * The view's block `block` if it has content, as viewLeavesWithPages(block, block + 1) gives
 * it, but found by one descent of the tree (leafAt) instead of the merged leaf generators: a
 * guest's 4 KiB read. Live state: under the VM's shared lock.
 */
export async function viewLeafAt(ctx: EngineContext, view: DiskView, block: number): Promise<ViewLeaf | undefined> {
  if (view.live && mayHavePages(ctx, view, block, block + 1)) return (await viewLeavesWithPages(ctx, view, block, block + 1))[0];
  let fp: Fingerprint | undefined;
  if (view.live) for await (const d of dirtyEntries(ctx, view, block, block + 1)) fp = d.fp;
  fp ??= await leafAt(view.root, treeGeometry(blockCount(view.layout)), block, ctx.chunks);
  return isHole(fp) ? undefined : { block, fp };
}

/**
 * Whether any block of [from, to) may have overlay pages: the paged-block set holds every
 * block with pages (a page writer adds its block before its batch is issued; live-state.ts),
 * so a range with none has none, and a read skips the page scan.
 */
function mayHavePages(ctx: EngineContext, view: DiskView, from: number, to: number): boolean {
  const paged = ctx.live.disk(view.vmId, view.diskIndex).pagedBlocks;
  if (paged.size === 0) return false;
  if (paged.size < to - from) {
    for (const b of paged) if (b >= from && b < to) return true;
    return false;
  }
  for (let b = from; b < to; b++) if (paged.has(b)) return true;
  return false;
}

/** A block's bytes from its base chunk (or zeros) and its pages; `chunk` is not modified (without pages it is returned as is). */
export function blockBytes(layout: BlockLayout, leaf: ViewLeaf, chunk: Buffer | undefined): Buffer {
  if (!leaf.pages) return chunk ?? Buffer.alloc(blockRange(layout, leaf.block).length);
  const base = chunk ? Buffer.from(chunk) : Buffer.alloc(blockRange(layout, leaf.block).length);
  return applyPages(base, leaf.pages);
}

/**
 * The bytes of one block (zeros for a hole), full block length, in a buffer the caller owns
 * (chunks from the store are shared: read-cache.ts). Live state: under the VM's shared lock.
 */
export async function readBlock(ctx: EngineContext, view: DiskView, block: number): Promise<Buffer> {
  const [leaf] = await viewLeavesWithPages(ctx, view, block, block + 1);
  if (!leaf) return Buffer.alloc(blockRange(view.layout, block).length);
  const [chunk] = isHole(leaf.fp) ? [undefined] : await ctx.chunks.get([leaf.fp]);
  return leaf.pages || !chunk ? blockBytes(view.layout, leaf, chunk) : Buffer.from(chunk);
}

/** The base of one block (its live write or tree leaf, without pages). Live state: under the VM's shared lock. */
export async function baseFingerprint(ctx: EngineContext, view: DiskView, block: number): Promise<Fingerprint> {
  for await (const leaf of viewLeaves(ctx, view, block, block + 1)) return leaf.fp;
  return HOLE;
}

export function liveView(
  vm: { id: string; disks: readonly { index: number; size: number; blockSize: number; gridOffset: number; root: string }[] },
  diskIndex: number,
): DiskView {
  const d = vm.disks[diskIndex];
  if (!d) throw new NotFoundError('disk', `${vm.id}/${diskIndex}`, `no disk ${diskIndex}`);
  return { vmId: vm.id, diskIndex, layout: d, root: fromHex(d.root), live: true };
}
