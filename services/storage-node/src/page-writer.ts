/*
 * Small writes into the page overlay (live-state.ts, store-rocksdb tables/live-writes.ts).
 *
 * A write that covers part of a block lands as that block's 4 KiB pages, raw: one RocksDB
 * batch of the pages it touches, with no chunk read, hash or compression. Whole pages are
 * blind puts under the vDisk's shared gate, so writers of different pages (on any connection)
 * run side by side. A write that covers part of a page merges into the page's current bytes
 * under the exclusive gate, so two sub-page writes of one page never lose each other. The
 * batch is committed before the write returns: visible to every reader, surviving a process
 * kill, and on disk at the next FLUSH or FUA (nbd-exports.ts).
 */
import { assertOwned, blockRange, FailedPreconditionError, pagesTouched, storedPage, type PageData, type VmRecord } from '@vmferry/core';
import { liveView, readBlock } from './block-source.js';
import type { EngineContext } from './context.js';
import { diskOf } from './vms.js';

/** Writes `data` at byte `from` of block `block` (less than the whole block) as overlay pages. */
export async function writePages(ctx: EngineContext, vm: VmRecord, diskIndex: number, block: number, from: number, data: Buffer): Promise<void> {
  const blockLength = blockRange(diskOf(vm, diskIndex), block).length;
  const touched = pagesTouched(blockLength, from, from + data.length);
  const live = ctx.live.disk(vm.id, diskIndex);
  const wholePages = touched.every((p) => p.whole);
  const run = async (): Promise<void> => {
    const current = ctx.catalog.vmById(vm.id);
    if (!current) throw new FailedPreconditionError(`VM '${vm.name}' was deleted during the write`);
    // Re-read under the shared lock: no page lands after a fence commits (core/ownership.ts, 2).
    assertOwned(current);
    let pages: PageData[];
    if (wholePages) {
      pages = touched.map((p) => ({ page: p.page, data: storedPage(data.subarray(p.start - from, p.start - from + p.length)) }));
    } else {
      const bytes = await readBlock(ctx, liveView(current, diskIndex), block);
      data.copy(bytes, from);
      pages = touched.map((p) => ({ page: p.page, data: storedPage(bytes.subarray(p.start, p.start + p.length)) }));
    }
    live.pagedBlocks.add(block);
    await ctx.db.commit((batch) => {
      for (const p of pages) ctx.catalog.liveWrites.stagePutPage(batch, vm.id, diskIndex, block, p.page, p.data);
    });
    live.changed([block]);
  };
  await ctx.vmLock(vm.id).shared(() => (wholePages ? live.gate.shared(run) : live.gate.exclusive(run)));
  ctx.metrics.ingestBytes.add(data.length, ctx.metrics.attrs);
}
