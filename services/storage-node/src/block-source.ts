import {
  blockCount,
  blockRange,
  fromHex,
  HOLE,
  isHole,
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

/** The fingerprint of one block in the view. */
export async function blockFingerprint(ctx: EngineContext, view: DiskView, block: number): Promise<Fingerprint> {
  for await (const leaf of viewLeaves(ctx, view, block, block + 1)) return leaf.fp;
  return HOLE;
}

/** The bytes of one block (zeros for a hole), full block length. */
export async function readBlock(ctx: EngineContext, view: DiskView, block: number): Promise<Buffer> {
  const fp = await blockFingerprint(ctx, view, block);
  const length = blockRange(view.layout, block).length;
  if (isHole(fp)) return Buffer.alloc(length);
  const [data] = await ctx.chunks.get([fp]);
  return data as Buffer;
}

export function liveView(
  vm: { id: string; disks: readonly { index: number; size: number; blockSize: number; gridOffset: number; root: string }[] },
  diskIndex: number,
): DiskView {
  const d = vm.disks[diskIndex];
  if (!d) throw new NotFoundError('disk', `${vm.id}/${diskIndex}`, `no disk ${diskIndex}`);
  return { vmId: vm.id, diskIndex, layout: d, root: fromHex(d.root), live: true };
}
