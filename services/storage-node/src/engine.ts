import { mkdir } from 'node:fs/promises';
import {
  assertOwned,
  checkExtent,
  FailedPreconditionError,
  InvalidArgumentError,
  parseRef,
  StoreDamagedError,
  type CreateVmInput,
  type DiskExtent,
  type GcReport,
  type IncomingChunk,
  type NodeStats,
  type PutResult,
  type SiteRecord,
  type SnapshotRecord,
  type VerifyReport,
  type VmRecord,
} from '@vmferry/core';
import { Catalog, ChunkStore, Database } from '@vmferry/store-rocksdb';
import { EngineContext, type EngineOptions } from './context.js';
import { readExtents, snapshotView } from './disk-reader.js';
import { ExtentWriter } from './disk-writer.js';
import { LiveFolder, type LiveFolderOptions } from './live-fold.js';
import { collectGarbage } from './gc.js';
import { createNodeMetrics, observeEngine } from './metrics.js';
import { cloneVm, createSnapshot, deleteSnapshot, labelSnapshot, resolveSnapshotRef, restore, type SnapshotOptions } from './snapshots.js';
import { computeStats } from './stats.js';
import { verifyStore } from './verify.js';
import { commitReplica, missingChunks, putChunks } from './replication-target.js';
import { deleteSite, listSites, putSite } from './sites.js';
import { recordBase, recordPending } from './replication-bases.js';
import { createVm, deleteVm, diskOf, resolveVm, setVmConfig } from './vms.js';
import { fenceVm, promoteVm, type FenceResult } from './failover.js';

export interface OpenOptions extends Partial<EngineOptions> {
  readonly dataDir: string;
  readonly codecThreads?: number;
  readonly zstdLevel?: number;
  /** The background fold of the page overlay (live-fold.ts); `false` turns it off (tests). */
  readonly liveFold?: LiveFolderOptions | false;
}

/**
 * The storage node's domain API: VMs, live vDisk I/O, snapshots, clones, restore, space,
 * GC and verify over one data folder. The gRPC server is a thin adapter over this.
 */
export class StorageEngine {
  /** The collection running now, which a second `gc()` call joins. */
  private gcRun: Promise<GcReport> | undefined;

  private folder: LiveFolder | undefined;

  /** Removes the catalog gauges (metrics.ts). */
  private unobserve: () => void = () => undefined;

  private constructor(readonly ctx: EngineContext) {}

  static async open(options: OpenOptions): Promise<StorageEngine> {
    await mkdir(options.dataDir, { recursive: true });
    const db = await Database.open(options.dataDir);
    const chunks = new ChunkStore(db, {
      ...(options.codecThreads === undefined ? {} : { threads: options.codecThreads }),
      ...(options.zstdLevel === undefined ? {} : { zstdLevel: options.zstdLevel }),
    });
    // A root written by any catalog commit is reported to a running GC (its write barrier).
    const catalog = await loadCatalog(db, options.dataDir, (roots) => chunks.reference(roots)).catch(async (e: unknown) => {
      await chunks.close();
      await db.close();
      throw e;
    });
    const site = options.site ?? 'local';
    const ctx = new EngineContext(db, chunks, catalog, { maxSnapshotsPerVm: options.maxSnapshotsPerVm ?? 1024, site }, createNodeMetrics(site));
    const engine = new StorageEngine(ctx);
    // A failed start-up must release the codec threads and RocksDB, or the process never exits.
    await engine.recover().catch(async (e: unknown) => {
      await engine.close().catch(() => undefined);
      throw e;
    });
    engine.unobserve = observeEngine(ctx, options.dataDir);
    if (options.liveFold !== false) {
      engine.folder = new LiveFolder(ctx, options.liveFold);
      engine.folder.start();
    }
    return engine;
  }

  /**
   * Removes VMs whose import never finished (the node stopped mid-import), and finds the
   * blocks that still have overlay pages (a whole-block write must clear them; live-state.ts).
   */
  private async recover(): Promise<void> {
    for (const vm of this.ctx.catalog.vms()) if (vm.importing) await deleteVm(this.ctx, vm.id);
    for await (const p of this.ctx.catalog.liveWrites.pagedBlocks()) this.ctx.live.disk(p.vmId, p.disk).pagedBlocks.add(p.block);
  }

  /** Folds every vDisk's overlay pages now (the background folder does it when a vDisk is quiet). */
  async foldLive(): Promise<void> {
    await new LiveFolder(this.ctx).foldAll();
  }

  async close(): Promise<void> {
    this.unobserve();
    await this.folder?.stop();
    await this.ctx.chunks.close();
    await this.ctx.db.close();
  }

  createVm(input: CreateVmInput): Promise<VmRecord> {
    return createVm(this.ctx, input);
  }

  /**
   * Creates a VM and streams raw images into its vDisks. Until `finish`, the VM is marked
   * importing (hidden from snapshots; removed if the node restarts); `abort` deletes it.
   */
  async beginImport(input: CreateVmInput): Promise<ImportSession> {
    const vm = await createVm(this.ctx, input, { importing: true });
    return new ImportSession(this, vm);
  }

  listVms(): VmRecord[] {
    return this.ctx.catalog.vms().filter((v) => !v.importing);
  }

  getVm(nameOrId: string): VmRecord {
    return resolveVm(this.ctx, nameOrId);
  }

  snapshotCount(vmId: string): number {
    return this.ctx.catalog.snapshotCount(vmId);
  }

  deleteVm(nameOrId: string): Promise<VmRecord> {
    return deleteVm(this.ctx, nameOrId);
  }

  setVmConfig(nameOrId: string, config: Uint8Array): Promise<VmRecord> {
    return setVmConfig(this.ctx, nameOrId, config);
  }

  /** A writer appending at `offset` of the live vDisk (`length` bytes, when known); call end() to finish. */
  openWriter(vmNameOrId: string, diskIndex: number, offset: number, length = 0): ExtentWriter {
    const vm = resolveVm(this.ctx, vmNameOrId);
    if (vm.importing) throw new FailedPreconditionError(`VM '${vm.name}' is still importing`);
    assertWritable(vm);
    // A declared length is checked up front: a write that would end past the disk writes nothing.
    if (length > 0) checkExtent(diskOf(vm, diskIndex), offset, length, 'write');
    return new ExtentWriter(this.ctx, vm, diskIndex, offset);
  }

  /** Import's writer: the VM was created empty by this import and only it writes. */
  openImportWriter(vmId: string, diskIndex: number, offset: number): ExtentWriter {
    return new ExtentWriter(this.ctx, resolveVm(this.ctx, vmId), diskIndex, offset, true);
  }

  /** Reads `VM` (live) or `VM@SNAPSHOT`, disk `diskIndex`, [offset, offset+length) (0: to the end). */
  read(ref: string, diskIndex: number, offset: number, length: number): { size: number; extents: AsyncGenerator<DiskExtent> } {
    const parsed = parseRef(ref);
    if (parsed.snapshot === undefined) {
      const vm = resolveVm(this.ctx, parsed.vm);
      const disk = diskOf(vm, diskIndex);
      return { size: disk.size, extents: readExtents(this.ctx, { kind: 'live', vm, diskIndex }, offset, length) };
    }
    const { vm, snapshot } = resolveSnapshotRef(this.ctx, ref);
    const disk = snapshot.disks[diskIndex] ?? diskOf(vm, diskIndex);
    return { size: disk.size, extents: readExtents(this.ctx, { kind: 'snapshot', view: snapshotView(vm.id, disk) }, offset, length) };
  }

  createSnapshot(vm: string, options: SnapshotOptions = {}): Promise<SnapshotRecord> {
    assertWritable(resolveVm(this.ctx, vm));
    return createSnapshot(this.ctx, vm, options);
  }

  listSnapshots(vm: string): SnapshotRecord[] {
    return this.ctx.catalog.snapshots(resolveVm(this.ctx, vm).id);
  }

  getSnapshot(ref: string): { vm: VmRecord; snapshot: SnapshotRecord } {
    return resolveSnapshotRef(this.ctx, ref);
  }

  deleteSnapshot(ref: string): Promise<SnapshotRecord> {
    return deleteSnapshot(this.ctx, ref);
  }

  labelSnapshot(ref: string, label: string): Promise<SnapshotRecord> {
    return labelSnapshot(this.ctx, ref, label);
  }

  clone(ref: string, name: string, count = 1): Promise<{ source: SnapshotRecord; vms: VmRecord[] }> {
    return cloneVm(this.ctx, ref, name, count);
  }

  restore(ref: string, diskIndex?: number): Promise<VmRecord> {
    assertWritable(resolveVm(this.ctx, parseRef(ref).vm));
    return restore(this.ctx, ref, diskIndex);
  }

  /** Fences this site's copy of `vm`: `ownerSite` owns it at `ownerEpoch` now (failover.ts). */
  fenceVm(vm: string, ownerSite: string, ownerEpoch: number): Promise<FenceResult> {
    return fenceVm(this.ctx, vm, ownerSite, ownerEpoch);
  }

  /** Promotes a replica or fenced copy of `vm` to the writable VM, owned here (failover.ts). */
  promoteVm(vm: string, snapshot: string | undefined, epoch: number): Promise<VmRecord> {
    return promoteVm(this.ctx, vm, snapshot, epoch);
  }

  get site(): string {
    return this.ctx.options.site;
  }

  missingChunks(ids: readonly Buffer[]): Promise<Buffer[]> {
    return missingChunks(this.ctx, ids);
  }

  putChunks(chunks: readonly IncomingChunk[]): Promise<PutResult> {
    return putChunks(this.ctx, chunks);
  }

  commitReplica(sourceSite: string, vm: VmRecord, snapshot: SnapshotRecord): Promise<SnapshotRecord> {
    return commitReplica(this.ctx, sourceSite, vm, snapshot);
  }

  /** Stored records of `ids` in order (for the replication endpoint); NOT_FOUND if absent. */
  chunkRecords(ids: readonly Buffer[]): Promise<Buffer[]> {
    return this.ctx.chunks.records(ids);
  }

  /** Raw, verified bytes of `ids` (tree nodes or data), in order. */
  rawChunks(ids: readonly Buffer[]): Promise<Buffer[]> {
    return this.ctx.chunks.get(ids);
  }

  /** Stored records (codec byte + zstd, or raw when zstd saves little) of `raws`. */
  encodeRecords(raws: readonly Buffer[]): Promise<Buffer[]> {
    return this.ctx.chunks.encode(raws);
  }

  /** Stored sizes of `ids` (0 when absent). */
  chunkSizes(ids: readonly Buffer[]): Promise<number[]> {
    return this.ctx.chunks.sizes(ids);
  }

  /** A peer `site` reports it now holds `snapshotId` of `vmId` (its incremental base). */
  recordReplicationBase(site: string, vmId: string, snapshotId: string): Promise<void> {
    return recordBase(this.ctx, site, vmId, snapshotId);
  }

  /** The snapshot was queued for replication to `site`: keep it from retention until acked. */
  markReplicationPending(vmId: string, snapshotId: string, site: string): Promise<void> {
    return recordPending(this.ctx, vmId, snapshotId, site);
  }

  putSite(site: SiteRecord): Promise<SiteRecord> {
    return putSite(this.ctx, site);
  }

  listSites(): Promise<SiteRecord[]> {
    return listSites(this.ctx);
  }

  deleteSite(name: string): Promise<SiteRecord> {
    return deleteSite(this.ctx, name);
  }

  stats(vm?: string): Promise<NodeStats> {
    return computeStats(this.ctx, vm);
  }

  gc(): Promise<GcReport> {
    this.gcRun ??= collectGarbage(this.ctx)
      .then((report) => {
        this.ctx.metrics.lastGc = { atMs: Date.now(), bytesFreed: report.bytesFreed, chunksSwept: report.chunksSwept, seconds: report.durationMs / 1000 };
        return report;
      })
      .finally(() => (this.gcRun = undefined));
    return this.gcRun;
  }

  /** `trigger` labels the run in vmferry_verify_runs_total: the API's verify, or the policy's scheduled one. */
  async verify(onProgress?: (checked: number) => void, trigger: 'manual' | 'scheduled' = 'manual'): Promise<VerifyReport> {
    const started = performance.now();
    const report = await verifyStore(this.ctx, onProgress);
    const damaged = report.corrupt.length + report.missing.length;
    this.ctx.metrics.lastVerify = { atMs: Date.now(), damaged, seconds: (performance.now() - started) / 1000 };
    this.ctx.metrics.verifyRuns.add(1, { ...this.ctx.metrics.attrs, outcome: damaged > 0 ? 'damaged' : 'clean', trigger });
    return report;
  }
}

/**
 * The VM and snapshot records. If RocksDB cannot read them all, the node refuses to start:
 * listing fewer snapshots than it holds would look like they were deleted.
 */
async function loadCatalog(db: Database, dataDir: string, referenced: (roots: Buffer[]) => void): Promise<Catalog> {
  try {
    return await Catalog.load(db, referenced);
  } catch (e) {
    throw new StoreDamagedError(
      `data directory ${dataDir}: the catalog (VM and snapshot records) cannot be read: ${e instanceof Error ? e.message : String(e)}. ` +
        `The node refuses to start rather than list fewer VMs or snapshots than it holds; restore the directory from a backup or re-replicate its VMs from another site`,
      { cause: e },
    );
  }
}

/** Replica VMs and fenced copies take no live writes, snapshots or restores (core/ownership.ts). */
function assertWritable(vm: VmRecord): void {
  assertOwned(vm);
}

export class ImportSession {
  private writer: ExtentWriter | undefined;
  private disk = -1;
  private expectedOffset = 0;

  constructor(
    private readonly engine: StorageEngine,
    readonly vm: VmRecord,
  ) {}

  /** Data must arrive in disk order and, within a disk, in increasing offsets (gaps are holes). */
  async write(diskIndex: number, offset: number, data: Buffer): Promise<void> {
    if (diskIndex !== this.disk) {
      if (diskIndex < this.disk) throw new InvalidArgumentError(`import data for vDisk ${diskIndex} arrived after vDisk ${this.disk}`);
      await this.writer?.end();
      this.writer = this.engine.openImportWriter(this.vm.id, diskIndex, offset);
      this.disk = diskIndex;
      this.expectedOffset = offset;
    }
    if (offset < this.expectedOffset) {
      throw new InvalidArgumentError(`import data for vDisk ${diskIndex} went back to offset ${offset} after ${this.expectedOffset}`);
    }
    // A forward jump skips all-zero data the client chose not to send: on a new disk it is a hole.
    if (offset > this.expectedOffset) await (this.writer as ExtentWriter).skipTo(offset);
    await (this.writer as ExtentWriter).write(data);
    this.expectedOffset += data.length;
  }

  async finish(): Promise<VmRecord> {
    await this.writer?.end();
    const current = this.engine.getVm(this.vm.id);
    const { importing: _importing, ...done } = current;
    await this.engine.ctx.catalog.commit((tx) => tx.putVm(done), { durable: true });
    return done;
  }

  async abort(): Promise<void> {
    await this.writer?.abandon();
    await this.engine.deleteVm(this.vm.id).catch(() => undefined);
  }
}
