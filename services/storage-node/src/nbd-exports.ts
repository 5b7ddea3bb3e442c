/*
 * The node's vDisks as block exports (core/block-export.ts), served over NBD by
 * @vmferry/nbd. Export names: `VM/DISK` is a live vDisk (read-write; read-only for a replica
 * VM or a fenced copy, core/ownership.ts), `VM@SNAPSHOT/DISK` a snapshot's vDisk (read-only; SNAPSHOT is an id or a label, as in
 * every other ref). DISK counts from 0.
 *
 * An opened export holds the VM's (and snapshot's) id, not its name, and resolves it again
 * on every request: once the VM or snapshot is deleted every request fails with not-found,
 * which the NBD server answers with ESHUTDOWN and then closes the connection.
 *
 * Durability: a live write goes through the engine's live-write path (disk-writer.ts: whole
 * blocks as chunks, the rest as overlay pages, page-writer.ts), which commits each batch to
 * RocksDB before it returns — visible to every reader and every connection, and surviving a
 * process kill, but not fsynced (rocksdb-native has no per-write
 * sync; store-rocksdb/src/database.ts). FLUSH and FUA therefore commit an empty durable
 * batch, which fdatasyncs the WAL: WAL writes are sequential, so every write acknowledged
 * before it, on any connection, is on disk once it returns. That is also why the server may
 * advertise NBD_FLAG_CAN_MULTI_CONN: there is no per-connection cache to flush.
 */
import {
  blockIndexAt,
  blockRange,
  NotFoundError,
  parseRef,
  isVmferryError,
  writeRefusal,
  type AllocationRun,
  type BlockExport,
  type BlockExports,
  type BlockLayout,
  type ReadPiece,
  type WriteOptions,
} from '@vmferry/core';
import { liveView, viewLeaves, viewLeavesWithPages, type DiskView } from './block-source.js';
import { snapshotView } from './disk-reader.js';
import type { StorageEngine } from './engine.js';

/** Zeros written per call when a range is zeroed (blocks of zeros are stored as holes). */
const ZERO_PIECE = Buffer.alloc(4 * 1024 * 1024);
/** Blocks whose allocation one BLOCK_STATUS looks up at most (the reply may cover less). */
const MAX_STATUS_BLOCKS = 64 * 1024;

/** Every vDisk of every VM and snapshot, as export names. */
export class EngineExports implements BlockExports {
  constructor(private readonly engine: StorageEngine) {}

  list(): Promise<string[]> {
    const names: string[] = [];
    for (const vm of this.engine.listVms()) {
      for (const d of vm.disks) names.push(`${vm.name}/${d.index}`);
      for (const s of this.engine.listSnapshots(vm.id)) for (const d of s.disks) names.push(`${vm.name}@${s.label ?? s.id}/${d.index}`);
    }
    return Promise.resolve(names);
  }

  open(name: string): Promise<BlockExport> {
    return Promise.resolve().then(() => this.resolve(name));
  }

  private resolve(name: string): BlockExport {
    const unknown = (why: string): NotFoundError =>
      new NotFoundError(
        'disk',
        name,
        `no export '${name}': ${why} (exports are VM/DISK for a live vDisk, VM@SNAPSHOT/DISK for a snapshot; DISK counts from 0)`,
      );
    const slash = name.lastIndexOf('/');
    const diskText = name.slice(slash + 1);
    if (slash < 0 || !/^\d{1,5}$/.test(diskText)) throw unknown('no /DISK index');
    const refText = name.slice(0, slash);
    const diskIndex = Number(diskText);
    let ref;
    try {
      ref = parseRef(refText);
    } catch {
      throw unknown('not a VM or VM@SNAPSHOT reference');
    }
    try {
      if (ref.snapshot === undefined) {
        const vm = this.engine.getVm(ref.vm);
        const disk = vm.disks[diskIndex];
        if (vm.importing) throw unknown(`VM '${vm.name}' is still importing`);
        if (!disk) throw unknown(`VM '${vm.name}' has ${vm.disks.length} vDisks`);
        return new VdiskExport(this.engine, {
          name,
          vmId: vm.id,
          diskIndex,
          size: disk.size,
          blockSize: disk.blockSize,
          readOnly: writeRefusal(vm) !== undefined,
        });
      }
      const { vm, snapshot } = this.engine.getSnapshot(refText);
      const disk = snapshot.disks[diskIndex];
      if (!disk) throw unknown(`snapshot ${snapshot.id} of VM '${vm.name}' has ${snapshot.disks.length} vDisks`);
      return new VdiskExport(this.engine, {
        name,
        vmId: vm.id,
        snapshotId: snapshot.id,
        diskIndex,
        size: disk.size,
        blockSize: disk.blockSize,
        readOnly: true,
      });
    } catch (e) {
      if (isVmferryError(e) && e.code === 'not-found' && !(e instanceof NotFoundError && e.what === name)) throw unknown(e.message);
      throw e;
    }
  }
}

interface ExportTarget {
  readonly name: string;
  readonly vmId: string;
  readonly snapshotId?: string;
  readonly diskIndex: number;
  readonly size: number;
  readonly blockSize: number;
  readonly readOnly: boolean;
}

/** One live or snapshot vDisk. Writes are refused by the NBD server first when read-only. */
class VdiskExport implements BlockExport {
  readonly name: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly preferredBlockSize: number;

  constructor(
    private readonly engine: StorageEngine,
    private readonly target: ExportTarget,
  ) {
    this.name = target.name;
    this.size = target.size;
    this.readOnly = target.readOnly;
    this.preferredBlockSize = target.blockSize;
  }

  /** The engine ref by ids: a VM or snapshot deleted (and maybe re-created) is not found. */
  private get ref(): string {
    return this.target.snapshotId === undefined ? this.target.vmId : `${this.target.vmId}@${this.target.snapshotId}`;
  }

  async *read(offset: number, length: number): AsyncGenerator<ReadPiece> {
    if (length === 0) return;
    const { extents } = this.engine.read(this.ref, this.target.diskIndex, offset, length);
    for await (const x of extents) {
      if (!x.parts) {
        yield { offset: x.offset, length: x.length };
        continue;
      }
      // One piece per part (a block's bytes, a view of the shared verified chunk): the server
      // sends each as its own data chunk instead of concatenating a 1 MiB read into a copy.
      let at = x.offset;
      for (const part of x.parts) {
        yield { offset: at, length: part.length, data: part };
        at += part.length;
      }
    }
  }

  async write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    await this.writeParts(offset, data.length, [data]);
    if (options.fua) await this.flush();
  }

  async flush(): Promise<void> {
    // An empty durable batch: fdatasyncs the WAL behind every committed write (header comment).
    await this.engine.ctx.db.commit(() => undefined, { durable: true });
  }

  trim(offset: number, length: number, options: WriteOptions): Promise<void> {
    // A trimmed range may read back as anything; holes (zeros) are the cheapest choice.
    return this.zero(offset, length, options);
  }

  async zero(offset: number, length: number, options: WriteOptions): Promise<void> {
    const parts: Buffer[] = [];
    for (let done = 0; done < length; done += ZERO_PIECE.length) parts.push(ZERO_PIECE.subarray(0, Math.min(ZERO_PIECE.length, length - done)));
    await this.writeParts(offset, length, parts);
    if (options.fua) await this.flush();
  }

  private async writeParts(offset: number, length: number, parts: readonly Buffer[]): Promise<void> {
    const writer = this.engine.openWriter(this.target.vmId, this.target.diskIndex, offset, length);
    try {
      for (const p of parts) await writer.write(p);
      await writer.end();
    } catch (e) {
      await writer.abandon().catch(() => undefined);
      throw e;
    }
  }

  async allocation(offset: number, length: number): Promise<AllocationRun[]> {
    const { layout, leaves } = await this.leavesFrom(offset, length);
    const allocated = new Set(leaves);
    const runs: AllocationRun[] = [];
    const end = offset + length;
    for (let b = blockIndexAt(layout, offset), at = offset; at < end && runs.length < MAX_STATUS_BLOCKS; b++) {
      const r = blockRange(layout, b);
      const to = Math.min(end, r.start + r.length);
      runs.push({ length: to - at, hole: !allocated.has(b) });
      at = to;
    }
    return runs;
  }

  /** The current layout and the non-hole blocks among the (at most MAX_STATUS_BLOCKS) blocks of the range. */
  private async leavesFrom(offset: number, length: number): Promise<{ layout: BlockLayout; leaves: number[] }> {
    const window = async (view: DiskView): Promise<{ layout: BlockLayout; leaves: number[] }> => {
      const from = blockIndexAt(view.layout, offset);
      const to = Math.min(blockIndexAt(view.layout, offset + length - 1) + 1, from + MAX_STATUS_BLOCKS);
      if (view.live) return { layout: view.layout, leaves: (await viewLeavesWithPages(this.engine.ctx, view, from, to)).map((l) => l.block) };
      const leaves: number[] = [];
      for await (const l of viewLeaves(this.engine.ctx, view, from, to)) leaves.push(l.block);
      return { layout: view.layout, leaves };
    };
    const { vmId, diskIndex, snapshotId } = this.target;
    if (snapshotId !== undefined) {
      const { vm, snapshot } = this.engine.getSnapshot(this.ref);
      const disk = snapshot.disks[diskIndex];
      if (!disk) throw new NotFoundError('disk', this.name);
      return window(snapshotView(vm.id, disk));
    }
    // Under the VM's shared lock, like a live read window: a snapshot folding the dirty
    // blocks into a new root cannot run between choosing the root and reading it.
    return this.engine.ctx.vmLock(vmId).shared(() => {
      const vm = this.engine.ctx.catalog.vmById(vmId);
      if (!vm) throw new NotFoundError('vm', vmId, `VM ${vmId} of export '${this.name}' was deleted`);
      return window(liveView(vm, diskIndex));
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
