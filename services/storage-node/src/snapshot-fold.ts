/*
 * A snapshot's fold (snapshots.ts, step 2): the frozen live state of every vDisk, read
 * through a RocksDB snapshot, applied to the frozen roots. Blocks with overlay pages are laid
 * over their base (the frozen live write, else the frozen tree's leaf) and ingested in groups
 * inside the snapshot's barrier section, each group's new chunks committed as their own batch:
 * no sweep runs before the snapshot's section ends (by then its commit references them, or,
 * had it failed, the next GC run frees them), and memory and the final batch stay bounded by
 * the group, not by the overlay.
 */
import type { ReadView, StoredPage } from '@vmferry/store-rocksdb';
import {
  applyUpdates,
  blockCount,
  fromHex,
  isHole,
  leafAt,
  toHex,
  treeGeometry,
  type EncodedNode,
  type Fingerprint,
  type LeafUpdate,
  type VmRecord,
} from '@vmferry/core';
import { blockBytes } from './block-source.js';
import type { EngineContext } from './context.js';

/** Paged blocks ingested per group (bounds the page bytes held at once). */
const GROUP_BLOCKS = 256;

/** A block the snapshot froze: what to drop from the live state once the snapshot holds it. */
export interface FrozenBlock {
  readonly block: number;
  /** It had a live write ('d' entry). */
  readonly hadEntry: boolean;
  /** Its overlay pages. */
  readonly pages: readonly number[];
}

export interface FrozenFold {
  readonly disks: readonly { readonly index: number; readonly root: string; readonly blocks: readonly FrozenBlock[] }[];
  /** The new tree nodes. */
  readonly created: readonly EncodedNode[];
}

export async function foldFrozen(ctx: EngineContext, vm: VmRecord, view: ReadView): Promise<FrozenFold> {
  const table = ctx.catalog.liveWrites.at(view);
  const created: EncodedNode[] = [];
  const disks: FrozenFold['disks'][number][] = [];
  for (const d of vm.disks) {
    const geometry = treeGeometry(blockCount(d));
    const root = fromHex(d.root);
    const entries = new Map<number, Fingerprint>();
    for await (const u of table.entries(vm.id, d.index, { capacity: 4096 })) entries.set(u.block, u.fp);
    const pageIndexes = new Map<number, number[]>();
    const folded = new Map<number, Fingerprint>();
    let group = new Map<number, StoredPage[]>();
    const ingestGroup = async (): Promise<void> => {
      if (group.size === 0) return;
      const blocks = [...group.keys()];
      const bases = await Promise.all(blocks.map(async (b) => entries.get(b) ?? leafAt(root, geometry, b, ctx.chunks)));
      const chunks = await ctx.chunks.get(bases.filter((fp) => !isHole(fp)));
      let k = 0;
      const contents = blocks.map((b, i) => {
        const fp = bases[i] as Fingerprint;
        return blockBytes(d, { block: b, fp, pages: group.get(b) as StoredPage[] }, isHole(fp) ? undefined : chunks[k++]);
      });
      const prepared = await ctx.chunks.prepareIngest(contents);
      await ctx.db.commit((batch) => prepared.stage(batch));
      blocks.forEach((b, i) => folded.set(b, prepared.ids[i] as Fingerprint));
      group = new Map();
    };
    for await (const p of table.pages(vm.id, d.index, { capacity: 1024 })) {
      if (!group.has(p.block) && group.size >= GROUP_BLOCKS) await ingestGroup();
      const list = group.get(p.block);
      if (list) list.push(p);
      else group.set(p.block, [p]);
      const indexes = pageIndexes.get(p.block);
      if (indexes) indexes.push(p.page);
      else pageIndexes.set(p.block, [p.page]);
    }
    await ingestGroup();
    const updates: LeafUpdate[] = [...new Set([...entries.keys(), ...folded.keys()])]
      .sort((a, b) => a - b)
      .map((block) => ({ block, fp: folded.get(block) ?? (entries.get(block) as Fingerprint) }));
    const result = await applyUpdates(root, geometry, updates, ctx.chunks);
    created.push(...result.created);
    disks.push({
      index: d.index,
      root: toHex(result.root),
      blocks: updates.map((u) => ({ block: u.block, hadEntry: entries.has(u.block), pages: pageIndexes.get(u.block) ?? [] })),
    });
  }
  return { disks, created };
}
