import type { SnapshotRecord, VmRecord } from '@vmferry/core';
import type { Database, WriteBatch } from './database.js';
import { prefixRange, SNAPSHOT_PREFIX, snapshotKey, VM_PREFIX, vmKey } from './keys.js';
import { LiveWriteTable } from './tables/live-writes.js';
import { ReplicationStateTable } from './tables/replication-state.js';
import { SiteTable } from './tables/sites.js';

function rootsOf(disks: readonly { root: string }[]): Buffer[] {
  return disks.map((d) => Buffer.from(d.root, 'hex'));
}

/** Staged catalog changes; applied to memory only once the batch is written. */
export interface CatalogTx {
  readonly batch: WriteBatch;
  putVm(vm: VmRecord): void;
  deleteVm(vmId: string): void;
  putSnapshot(s: SnapshotRecord): void;
  deleteSnapshot(vmId: string, snapId: string): void;
  /** Drops the live writes of one vDisk of the VM, or of all of them. */
  clearLiveWrites(vmId: string, disk?: number): void;
  /** Drops the VM's replication bases and pending entries. */
  clearReplicationState(vmId: string): void;
}

/**
 * VM and snapshot records: persisted in RocksDB as JSON, mirrored in memory (they are small,
 * and listing, name lookups and the snapshot cap must not scan the database). The node's
 * other tables (live writes, peer sites, replication state) hang off it, so services never
 * build a key or encode a value (every layout is in keys.ts and the tables).
 */
export class Catalog {
  readonly liveWrites: LiveWriteTable;
  readonly sites: SiteTable;
  readonly replication: ReplicationStateTable;
  private readonly vmsById = new Map<string, VmRecord>();
  private readonly vmIdByName = new Map<string, string>();
  /** Per VM, snapshots by id; Map iteration order is id order because ids sort by time. */
  private readonly snapsByVm = new Map<string, Map<string, SnapshotRecord>>();

  private constructor(
    private readonly db: Database,
    private readonly referenced: (roots: Buffer[]) => void,
  ) {
    this.liveWrites = new LiveWriteTable(db);
    this.sites = new SiteTable(db);
    this.replication = new ReplicationStateTable(db);
  }

  /**
   * Loads every record. `referenced` is told the tree roots of each VM or snapshot record a
   * commit writes (GC's write barrier: a root that gains a reference is kept with its subtree).
   */
  static async load(db: Database, referenced: (roots: Buffer[]) => void = () => undefined): Promise<Catalog> {
    const c = new Catalog(db, referenced);
    for await (const { value } of db.entries(prefixRange(VM_PREFIX))) c.setVm(JSON.parse(value.toString()) as VmRecord);
    for await (const { value } of db.entries(prefixRange(SNAPSHOT_PREFIX))) {
      c.setSnapshot(JSON.parse(value.toString()) as SnapshotRecord);
    }
    return c;
  }

  private setVm(vm: VmRecord): void {
    const old = this.vmsById.get(vm.id);
    if (old) this.vmIdByName.delete(old.name);
    this.vmsById.set(vm.id, vm);
    this.vmIdByName.set(vm.name, vm.id);
    if (!this.snapsByVm.has(vm.id)) this.snapsByVm.set(vm.id, new Map<string, SnapshotRecord>());
  }

  private setSnapshot(s: SnapshotRecord): void {
    let m = this.snapsByVm.get(s.vmId);
    if (!m) this.snapsByVm.set(s.vmId, (m = new Map<string, SnapshotRecord>()));
    const fresh = !m.has(s.id);
    m.set(s.id, s);
    // Keep id order when a snapshot is added out of order (replicas, restarts).
    if (fresh && [...m.keys()].some((k, i, a) => i > 0 && (a[i - 1] as string) > k)) {
      const sorted = [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
      m.clear();
      for (const [k, v] of sorted) m.set(k, v);
    }
  }

  vms(): VmRecord[] {
    return [...this.vmsById.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  vmById(id: string): VmRecord | undefined {
    return this.vmsById.get(id);
  }

  vmByName(name: string): VmRecord | undefined {
    const id = this.vmIdByName.get(name);
    return id === undefined ? undefined : this.vmsById.get(id);
  }

  snapshots(vmId: string): SnapshotRecord[] {
    return [...(this.snapsByVm.get(vmId)?.values() ?? [])];
  }

  snapshotCount(vmId: string): number {
    return this.snapsByVm.get(vmId)?.size ?? 0;
  }

  snapshot(vmId: string, snapId: string): SnapshotRecord | undefined {
    return this.snapsByVm.get(vmId)?.get(snapId);
  }

  allSnapshots(): SnapshotRecord[] {
    return [...this.snapsByVm.values()].flatMap((m) => [...m.values()]);
  }

  /** Writes staged changes atomically (and durably when asked), then applies them in memory. */
  async commit(fill: (tx: CatalogTx) => void, options: { durable?: boolean } = {}): Promise<void> {
    const applied: (() => void)[] = [];
    await this.db.commit((batch) => {
      fill({
        batch,
        putVm: (vm) => {
          this.referenced(rootsOf(vm.disks));
          batch.tryPut(vmKey(vm.id), Buffer.from(JSON.stringify(vm)));
          applied.push(() => this.setVm(vm));
        },
        deleteVm: (vmId) => {
          batch.tryDelete(vmKey(vmId));
          applied.push(() => {
            const vm = this.vmsById.get(vmId);
            if (vm) this.vmIdByName.delete(vm.name);
            this.vmsById.delete(vmId);
            this.snapsByVm.delete(vmId);
          });
        },
        putSnapshot: (s) => {
          this.referenced(rootsOf(s.disks));
          batch.tryPut(snapshotKey(s.vmId, s.id), Buffer.from(JSON.stringify(s)));
          applied.push(() => this.setSnapshot(s));
        },
        deleteSnapshot: (vmId, snapId) => {
          batch.tryDelete(snapshotKey(vmId, snapId));
          applied.push(() => this.snapsByVm.get(vmId)?.delete(snapId));
        },
        clearLiveWrites: (vmId, disk) => this.liveWrites.stageClear(batch, vmId, disk),
        clearReplicationState: (vmId) => this.replication.stageClear(batch, vmId),
      });
    }, options);
    for (const apply of applied) apply();
  }
}
