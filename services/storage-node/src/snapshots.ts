/*
 * Snapshots: freezing live state, and what stands on snapshots (clones, restore).
 *
 * Taking a snapshot runs under the VM's exclusive lock: for each vDisk, the blocks written
 * since the last snapshot are applied to the live base tree by path copying (cost ∝ dirty
 * blocks × tree height, never disk size); the new nodes, the snapshot record, the VM's new
 * live roots and the deletion of its dirty blocks go into one RocksDB batch, and the WAL is
 * synced before the snapshot is reported. A crash before that leaves no trace of it; after
 * it, the snapshot is whole.
 */
import {
  AlreadyExistsError,
  blockCount,
  FailedPreconditionError,
  fromHex,
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  parseRef,
  toHex,
  treeGeometry,
  applyUpdates,
  validateLabel,
  validateVmName,
  type Consistency,
  type EncodedNode,
  type LeafUpdate,
  type SnapshotDisk,
  type SnapshotRecord,
  type VmRecord,
} from '@vmferry/core';
import type { EngineContext } from './context.js';
import { buildVm, diskOf, resolveVm } from './vms.js';
import { assertNotBase } from './replication-bases.js';

export interface SnapshotOptions {
  readonly label?: string;
  readonly origin?: string;
  /** 'vm' when the caller quiesced the guest around this call. */
  readonly consistency?: Consistency;
  readonly consistencyNote?: string;
}

async function dirtyUpdates(ctx: EngineContext, vmId: string, disk: number): Promise<LeafUpdate[]> {
  const out: LeafUpdate[] = [];
  for await (const u of ctx.catalog.liveWrites.entries(vmId, disk, { capacity: 4096 })) out.push(u);
  return out;
}

export function findSnapshot(ctx: EngineContext, vm: VmRecord, idOrLabel: string): SnapshotRecord {
  const byId = ctx.catalog.snapshot(vm.id, idOrLabel);
  if (byId) return byId;
  const byLabel = ctx.catalog.snapshots(vm.id).find((s) => s.label === idOrLabel);
  if (!byLabel) throw new NotFoundError('snapshot', `${vm.name}@${idOrLabel}`);
  return byLabel;
}

/** Resolves `VM@SNAPSHOT`; throws InvalidArgumentError when the ref names no snapshot. */
export function resolveSnapshotRef(ctx: EngineContext, ref: string): { vm: VmRecord; snapshot: SnapshotRecord } {
  const parsed = parseRef(ref);
  const vm = resolveVm(ctx, parsed.vm);
  if (parsed.snapshot === undefined) {
    throw new InvalidArgumentError(`'${ref}' names a VM's live state; a snapshot reference is VM@SNAPSHOT`);
  }
  return { vm, snapshot: findSnapshot(ctx, vm, parsed.snapshot) };
}

function checkLabelFree(ctx: EngineContext, vm: VmRecord, label: string): void {
  validateLabel(label);
  if (ctx.catalog.snapshots(vm.id).some((s) => s.label === label || s.id === label)) {
    throw new AlreadyExistsError(`VM '${vm.name}' already has a snapshot labelled '${label}'`);
  }
}

/** Takes a crash-consistent snapshot of every vDisk of the VM at one instant. */
export async function createSnapshot(ctx: EngineContext, vmNameOrId: string, options: SnapshotOptions = {}): Promise<SnapshotRecord> {
  const started = performance.now();
  const vm0 = resolveVm(ctx, vmNameOrId);
  if (vm0.importing) throw new FailedPreconditionError(`VM '${vm0.name}' is still importing`);
  // The new nodes are recorded for GC as they are staged and exist once the batch lands: a
  // sweep batch must not run in between (gc.ts, case a), hence the barrier, taken before the
  // VM's lock like every writer's.
  const snapshot = await ctx.chunks.barrier.referencing(() =>
    ctx.vmLock(vm0.id).exclusive(async () => {
      const vm = resolveVm(ctx, vm0.id);
      const count = ctx.catalog.snapshotCount(vm.id);
      if (count >= ctx.options.maxSnapshotsPerVm) {
        throw new LimitExceededError(
          `VM '${vm.name}' has ${count} snapshots, the most allowed (maxSnapshotsPerVm); delete some first. Nothing was deleted automatically.`,
        );
      }
      if (options.label !== undefined) checkLabelFree(ctx, vm, options.label);
      let dirtyBlocks = 0;
      const created: EncodedNode[] = [];
      const disks: SnapshotDisk[] = [];
      for (const d of vm.disks) {
        const updates = await dirtyUpdates(ctx, vm.id, d.index);
        dirtyBlocks += updates.length;
        const result = await applyUpdates(fromHex(d.root), treeGeometry(blockCount(d)), updates, ctx.chunks);
        created.push(...result.created);
        disks.push({ ...d, root: toHex(result.root) });
      }
      const record: SnapshotRecord = {
        id: ctx.ids.next(),
        vmId: vm.id,
        createdAtMs: Date.now(),
        ...(options.label === undefined ? {} : { label: options.label }),
        consistency: options.consistency ?? 'crash',
        ...(options.consistencyNote ? { consistencyNote: options.consistencyNote } : {}),
        origin: options.origin ?? 'manual',
        disks,
        dirtyBlocks,
      };
      await ctx.catalog.commit(
        (tx) => {
          ctx.chunks.stageNodes(tx.batch, created);
          tx.putSnapshot(record);
          tx.putVm({ ...vm, disks });
          if (dirtyBlocks > 0) tx.clearLiveWrites(vm.id);
        },
        { durable: true },
      );
      return record;
    }),
  );
  ctx.metrics.snapshotDuration.record(performance.now() - started);
  return snapshot;
}

export async function deleteSnapshot(ctx: EngineContext, ref: string): Promise<SnapshotRecord> {
  const { vm, snapshot } = resolveSnapshotRef(ctx, ref);
  await ctx.vmLock(vm.id).exclusive(async () => {
    await assertNotBase(ctx, vm, snapshot);
    await ctx.catalog.commit((tx) => tx.deleteSnapshot(vm.id, snapshot.id), { durable: true });
  });
  return snapshot;
}

export async function labelSnapshot(ctx: EngineContext, ref: string, label: string): Promise<SnapshotRecord> {
  const { vm, snapshot } = resolveSnapshotRef(ctx, ref);
  return ctx.vmLock(vm.id).exclusive(async () => {
    if (snapshot.label !== label) checkLabelFree(ctx, vm, label);
    const updated = { ...snapshot, label };
    await ctx.catalog.commit((tx) => tx.putSnapshot(updated), { durable: true });
    return updated;
  });
}

/** Names for `count` clones: NAME, or NAME-001 … NAME-N. */
export function cloneNames(name: string, count: number): string[] {
  validateVmName(name);
  if (!Number.isInteger(count) || count < 1 || count > 10000) {
    throw new InvalidArgumentError(`clone count ${count} is invalid: use 1 to 10000`);
  }
  if (count === 1) return [name];
  const width = Math.max(3, String(count).length);
  return Array.from({ length: count }, (_, i) => validateVmName(`${name}-${String(i + 1).padStart(width, '0')}`));
}

/**
 * Makes `count` new VMs whose live state is the source snapshot: metadata only, every chunk
 * shared until a clone writes. All clones are created in one atomic commit, or none.
 */
export async function cloneVm(ctx: EngineContext, ref: string, name: string, count = 1): Promise<{ source: SnapshotRecord; vms: VmRecord[] }> {
  const names = cloneNames(name, count);
  return ctx.withVmNames(names, async () => {
    const parsed = parseRef(ref);
    const parent0 = resolveVm(ctx, parsed.vm);
    const snapshotId = parsed.snapshot === undefined ? (await createSnapshot(ctx, parent0.id, { origin: 'clone' })).id : undefined;
    // Under the source VM's lock its snapshot cannot be deleted before the clones commit, so
    // every chunk the clones reference stays referenced throughout (gc.ts, case b).
    return ctx.vmLock(parent0.id).shared(async () => {
      const parent = resolveVm(ctx, parent0.id);
      const snapshot = findSnapshot(ctx, parent, snapshotId ?? (parsed.snapshot as string));
      const config = Buffer.from(parent.hypervisorConfig, 'base64');
      const vms = names.map((n) => ({
        ...buildVm(ctx, { name: n, disks: snapshot.disks.map((d) => ({ size: d.size, blockSize: d.blockSize })), hypervisorConfig: config }),
        disks: snapshot.disks,
        clonedFrom: { vmId: parent.id, vmName: parent.name, snapshotId: snapshot.id },
      }));
      await ctx.catalog.commit((tx) => vms.forEach((v) => tx.putVm(v)), { durable: true });
      return { source: snapshot, vms };
    });
  });
}

/** Reverts the VM's live state (all vDisks, or one) to the snapshot; unsnapshotted writes are dropped. */
export async function restore(ctx: EngineContext, ref: string, diskIndex?: number): Promise<VmRecord> {
  const { vm } = resolveSnapshotRef(ctx, ref);
  if (diskIndex !== undefined) diskOf(vm, diskIndex);
  return ctx.vmLock(vm.id).exclusive(async () => {
    // Resolved again under the lock: a snapshot deleted meanwhile is not restored from.
    const { snapshot } = resolveSnapshotRef(ctx, ref);
    const current = resolveVm(ctx, vm.id);
    const disks = current.disks.map((d) => (diskIndex === undefined || d.index === diskIndex ? (snapshot.disks[d.index] ?? d) : d));
    const updated = { ...current, disks };
    await ctx.catalog.commit(
      (tx) => {
        tx.putVm(updated);
        for (const d of current.disks) {
          if (diskIndex !== undefined && d.index !== diskIndex) continue;
          tx.clearLiveWrites(vm.id, d.index);
        }
      },
      { durable: true },
    );
    return updated;
  });
}
