/*
 * Writing into a live vDisk.
 *
 * A write stream is cut into batches on block boundaries (of the disk's grid), so batches in
 * flight touch disjoint blocks and can be hashed and compressed in parallel by the codec
 * workers. Only a batch's first and last block can be partial; those go to the page overlay
 * (page-writer.ts), with no read of the block. Whole blocks commit their new chunks and their
 * live-write entries in one RocksDB batch, which also drops any overlay pages of those
 * blocks, under the VM's shared lock and the vDisk's shared gate (live-state.ts), so a
 * snapshot (exclusive) sees a batch entirely or not at all.
 */
import {
  blockIndexAt,
  blockRange,
  blocksOfExtent,
  checkExtent,
  assertOwned,
  FailedPreconditionError,
  gridOffsetFor,
  InvalidArgumentError,
  isHole,
  PARTITION_TABLE_BYTES,
  type Fingerprint,
  type VmRecord,
  type WriteResult,
} from '@vmferry/core';
import { liveView, type DiskView } from './block-source.js';
import type { EngineContext } from './context.js';
import { writePages } from './page-writer.js';
import { diskOf } from './vms.js';

/** Bytes buffered before a batch is dispatched to the codec workers. */
export const WRITE_BATCH_BYTES = 4 * 1024 * 1024;
/** Batches hashed/compressed concurrently per stream (enough to keep two workers busy). */
const MAX_IN_FLIGHT = 6;

export class ExtentWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private batchStart: number;
  private written = 0;
  private inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private view: DiskView;
  private alignmentChecked = false;

  /**
   * `onEmptyDisk`: the caller guarantees the vDisk is empty and nothing else writes it (an
   * import), so all-zero blocks need no entry: they already read as holes.
   */
  constructor(
    private readonly ctx: EngineContext,
    private vm: VmRecord,
    private readonly diskIndex: number,
    offset: number,
    private readonly onEmptyDisk = false,
  ) {
    const disk = diskOf(vm, diskIndex);
    checkExtent(disk, offset, 0, 'write');
    this.batchStart = offset;
    this.view = liveView(vm, diskIndex);
  }

  /** Appends `data` at the stream's cursor. Rejects with OutOfRangeError past the disk's end. */
  async write(data: Buffer): Promise<void> {
    if (this.failure !== undefined) throw asError(this.failure);
    checkExtent(this.view.layout, this.batchStart + this.pendingBytes, data.length, 'write');
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) await this.dispatch(false);
  }

  /** Moves the cursor forward to `offset`, leaving the bytes between unwritten. */
  async skipTo(offset: number): Promise<void> {
    const cursor = this.batchStart + this.pendingBytes;
    if (offset < cursor) throw new InvalidArgumentError(`cannot skip back from ${cursor} to ${offset}`);
    checkExtent(this.view.layout, offset, 0, 'write');
    await this.dispatch(true);
    this.batchStart = offset;
  }

  async end(): Promise<WriteResult> {
    await this.dispatch(true);
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) throw asError(this.failure);
    return { bytesWritten: this.written, gridOffset: this.view.layout.gridOffset };
  }

  /**
   * Drops what is buffered and not yet dispatched (a stream that did not finish), waiting
   * for batches in flight so nothing writes after the caller has answered.
   */
  async abandon(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await Promise.allSettled([...this.inFlight]);
  }

  private async dispatch(final: boolean): Promise<void> {
    if (this.pendingBytes === 0) return;
    if (!this.alignmentChecked) await this.maybeAlign();
    const data = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const end = this.batchStart + data.length;
    const cut = final ? end : Math.max(this.batchStart, blockRange(this.view.layout, blockIndexAt(this.view.layout, end)).start);
    if (cut === this.batchStart) return;
    const batch = data.subarray(0, cut - this.batchStart);
    const rest = data.subarray(cut - this.batchStart);
    const start = this.batchStart;
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    this.batchStart = cut;
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure !== undefined) throw asError(this.failure);
    const p: Promise<void> = this.writeBatch(start, batch)
      .then(() => {
        this.written += batch.length;
      })
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /**
   * Auto-alignment: the first write of sector 0 onto an empty vDisk sets the grid offset
   * from the partition table it carries, before any block is cut.
   */
  private async maybeAlign(): Promise<void> {
    this.alignmentChecked = true;
    if (this.batchStart !== 0 || this.pendingBytes < 512) return;
    const head = Buffer.concat(this.pending).subarray(0, PARTITION_TABLE_BYTES);
    const layout = this.view.layout;
    const grid = gridOffsetFor(head, layout.blockSize);
    if (grid === undefined || grid === layout.gridOffset || grid >= layout.size) return;
    await this.ctx.vmLock(this.vm.id).exclusive(async () => {
      const current = this.ctx.catalog.vmById(this.vm.id);
      if (!current) throw new FailedPreconditionError(`VM '${this.vm.name}' was deleted during the write`);
      const disk = diskOf(current, this.diskIndex);
      if (!isHole(Buffer.from(disk.root, 'hex')) || (await this.hasDirty())) return;
      const disks = current.disks.map((d) => (d.index === this.diskIndex ? { ...d, gridOffset: grid } : d));
      const updated = { ...current, disks };
      await this.ctx.catalog.commit((tx) => tx.putVm(updated), { durable: true });
      this.vm = updated;
      this.view = liveView(updated, this.diskIndex);
    });
  }

  private hasDirty(): Promise<boolean> {
    return this.ctx.catalog.liveWrites.any(this.vm.id, this.diskIndex);
  }

  private async writeBatch(start: number, data: Buffer): Promise<void> {
    const blocks = [...blocksOfExtent(this.view.layout, start, data.length)];
    const isWhole = (b: (typeof blocks)[number]): boolean => b.from === 0 && b.to === b.length;
    const slice = (b: (typeof blocks)[number]): Buffer => data.subarray(b.start + b.from - start, b.start + b.to - start);
    const whole = blocks.filter(isWhole);
    // Every part settles before the batch does: a part that fails must not leave another
    // still to land after the caller has been answered.
    const parts = await Promise.allSettled([
      whole.length > 0
        ? this.commitBlocks(
            whole.map((b) => b.index),
            whole.map(slice),
          )
        : undefined,
      ...blocks.filter((b) => !isWhole(b)).map((b) => writePages(this.ctx, this.vm, this.diskIndex, b.index, b.from, slice(b))),
    ]);
    for (const p of parts) if (p.status === 'rejected') throw p.reason;
    this.ctx.metrics.ingestBytes.add(
      whole.reduce((n, b) => n + b.length, 0),
      this.ctx.metrics.attrs,
    );
  }

  /**
   * Stores one batch of whole blocks through the store's pipeline (hash, dedup, encode): the
   * new chunks, the `d` entries and the clearing of those blocks' overlay pages are one batch,
   * committed under the VM's shared lock and the vDisk's shared gate inside the pipeline's GC
   * barrier section (gc.ts, case c).
   */
  private async commitBlocks(indexes: readonly number[], contents: readonly Buffer[]): Promise<void> {
    const { chunks, metrics } = this.ctx;
    const result = await chunks.ingest(contents, (fps, stageChunks) =>
      this.ctx.vmLock(this.vm.id).shared(async () => {
        const current = this.ctx.catalog.vmById(this.vm.id);
        if (!current) throw new FailedPreconditionError(`VM '${this.vm.name}' was deleted during the write`);
        // Re-read under the shared lock: no batch lands after a fence commits (core/ownership.ts, 2).
        assertOwned(current);
        const live = this.ctx.live.disk(this.vm.id, this.diskIndex);
        await live.gate.shared(async () => {
          const table = this.ctx.catalog.liveWrites;
          await this.ctx.db.commit((batch) => {
            stageChunks(batch);
            indexes.forEach((block, i) => {
              const fp = fps[i] as Fingerprint;
              if (!(this.onEmptyDisk && isHole(fp))) table.stagePut(batch, this.vm.id, this.diskIndex, block, fp);
              if (live.pagedBlocks.has(block)) table.stageClearPages(batch, this.vm.id, this.diskIndex, block);
            });
          });
          live.changed(indexes);
        });
      }),
    );
    if (result.newChunks === 0) return;
    metrics.newChunkBytes.add(result.newRawBytes, metrics.attrs);
    metrics.storedChunkBytes.add(result.newStoredBytes, metrics.attrs);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
