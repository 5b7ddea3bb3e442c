/*
 * `vmferry node --data DIR --recover-wal`: the explicit, reported way past a damaged WAL.
 *
 * RocksDB can read past a damaged record (skip-any mode, read-only: nothing on disk changes),
 * so it still sees most commits logged after the damage; point-in-time recovery keeps only
 * what precedes the damage. The difference between the two catalogs is what recovery drops,
 * named VM by VM and snapshot by snapshot. Records inside the damaged stretch itself are
 * unreadable either way; the report gives its file and size.
 */
import type { SnapshotRecord, VmRecord } from '@vmferry/core';
import { Database, WalRecovery } from './database.js';
import { prefixRange, SNAPSHOT_PREFIX, VM_PREFIX } from './keys.js';
import { walDamageFromLog, type WalDamage } from './open-failure.js';

/** What `recoverWal` discarded. */
export interface WalRecoveryReport {
  readonly dataDir: string;
  /** The damaged WAL stretches RocksDB skipped (file, bytes, reason). */
  readonly damage: WalDamage[];
  /** VMs readable past the damage that are gone, or left half-imported (removed on start). */
  readonly droppedVms: { id: string; name: string }[];
  /** Snapshots readable past the damage that are gone. */
  readonly droppedSnapshots: { vmId: string; vmName: string; id: string; label: string }[];
}

interface CatalogView {
  readonly vms: Map<string, VmRecord>;
  readonly snapshots: Map<string, SnapshotRecord>;
}

async function readCatalog(db: Database): Promise<CatalogView> {
  const vms = new Map<string, VmRecord>();
  const snapshots = new Map<string, SnapshotRecord>();
  for await (const { value } of db.entries(prefixRange(VM_PREFIX))) {
    const vm = JSON.parse(value.toString()) as VmRecord;
    vms.set(vm.id, vm);
  }
  for await (const { value } of db.entries(prefixRange(SNAPSHOT_PREFIX))) {
    const s = JSON.parse(value.toString()) as SnapshotRecord;
    snapshots.set(`${s.vmId}/${s.id}`, s);
  }
  return { vms, snapshots };
}

async function withDb<T>(db: Database, fn: (db: Database) => Promise<T>): Promise<T> {
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Opens `dir` with point-in-time WAL recovery and reports what that dropped. */
export async function recoverWal(dir: string): Promise<WalRecoveryReport> {
  const readable = await withDb(await Database.open(dir, { walRecovery: WalRecovery.SKIP_ANY, readOnly: true }), readCatalog);
  const pointInTime = await Database.open(dir, { walRecovery: WalRecovery.POINT_IN_TIME });
  // The LOG now holds this open's account of the damage it stopped at.
  const damage = await walDamageFromLog(dir);
  const kept = await withDb(pointInTime, readCatalog);
  const droppedVms = [...readable.vms.values()]
    .filter((vm) => !vm.importing && (kept.vms.get(vm.id) === undefined || kept.vms.get(vm.id)?.importing === true))
    .map((vm) => ({ id: vm.id, name: vm.name }));
  const droppedSnapshots = [...readable.snapshots]
    .filter(([key]) => !kept.snapshots.has(key))
    .map(([, s]) => ({ vmId: s.vmId, vmName: readable.vms.get(s.vmId)?.name ?? s.vmId, id: s.id, label: s.label ?? '' }));
  return { dataDir: dir, damage, droppedVms, droppedSnapshots };
}
