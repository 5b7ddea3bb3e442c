/*
 * Snapshots: freezing live state, and what stands on snapshots (clones, restore).
 *
 * A snapshot pauses the VM's I/O twice, briefly, and folds in between while I/O goes on:
 *
 * 1. Freeze, under the VM's exclusive lock (no write is mid-commit): a RocksDB snapshot of
 *    the database, the VM record (its live roots) and the live version counter
 *    (live-state.ts). Every write acknowledged before the call is in the RocksDB snapshot,
 *    on every vDisk; none that starts after it is. The lock is released at once.
 * 2. Fold, without the VM's lock: from the RocksDB snapshot, each block with overlay pages is
 *    laid over its base and ingested as a chunk (snapshot-fold.ts), and the frozen live writes
 *    are applied to the frozen roots by path copying (cost ∝ dirty blocks × tree height,
 *    never disk size).
 * 3. Commit, under the VM's exclusive lock: the new nodes, the snapshot record and the VM's
 *    new live roots in one batch. The WAL is synced before the snapshot is reported. A crash
 *    before that leaves no trace of it; after it, it is whole.
 * 4. Settle, in groups under the vDisk's exclusive gate (live-state.ts): the live writes and
 *    pages of every frozen block not written since the freeze (its version is still at most
 *    the frozen counter) are dropped, since the new root holds them. Until then, and for a
 *    block written since, the live entries read the same over the new root as over the old,
 *    so this step only frees space, and a crash before it loses nothing (the next snapshot
 *    folds those entries again, to the same bytes).
 *
 * The fold lock keeps other snapshots, the background fold and restores out from step 1 to
 * step 4. GC: steps 1 to 3 run in one barrier section (gc.ts, case a): what the freeze
 * references stays, and the new chunks and nodes are recorded as they are staged.
 */
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  parseRef,
  validateLabel,
  validateVmName,
  type Consistency,
  type SnapshotRecord,
  type VmRecord,
} from '@vmferry/core';
import type { EngineContext } from './context.js';
import { buildVm, diskOf, resolveVm } from './vms.js';
import { assertNotBase } from './replication-bases.js';
import type { ReadView } from '@vmferry/store-rocksdb';
import type { LiveDisk } from './live-state.js';
import { foldFrozen, type FrozenFold } from './snapshot-fold.js';

export interface SnapshotOptions {
  readonly label?: string;
  readonly origin?: string;
  /** 'vm' when the caller quiesced the guest around this call. */
  readonly consistency?: Consistency;
  readonly consistencyNote?: string;
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
  const snapshot = await ctx.foldLock(vm0.id).run(async () => {
    let frozen: Frozen | undefined;
    try {
      const { record, folded } = await ctx.chunks.barrier.referencing(async () => {
        frozen = await ctx.vmLock(vm0.id).exclusive(() => Promise.resolve(freeze(ctx, vm0.id, options)));
        const fold = await foldFrozen(ctx, frozen.vm, frozen.view);
        const committed = await ctx.vmLock(vm0.id).exclusive(() => commitSnapshot(ctx, frozen as Frozen, fold, options));
        return { record: committed, folded: fold };
      });
      await ctx.db.commit(() => undefined, { durable: true });
      await settleFrozen(ctx, frozen as Frozen, folded);
      return record;
    } finally {
      if (frozen) {
        for (const live of frozen.lives) live.thawed();
        await frozen.view.release();
      }
    }
  });
  ctx.metrics.snapshotDuration.record((performance.now() - started) / 1000, ctx.metrics.attrs);
  return snapshot;
}

/** What a snapshot froze (step 1). */
interface Frozen {
  readonly vm: VmRecord;
  readonly lives: readonly LiveDisk[];
  readonly version: number;
  readonly view: ReadView;
}

/** Step 1, under the VM's exclusive lock: no write is mid-commit. */
function freeze(ctx: EngineContext, vmId: string, options: SnapshotOptions): Frozen {
  const vm = resolveVm(ctx, vmId);
  checkRoom(ctx, vm, options);
  const lives = vm.disks.map((d) => ctx.live.disk(vm.id, d.index));
  for (const live of lives) live.freezes++;
  return { vm, lives, version: ctx.live.version, view: ctx.db.snapshot() };
}

/** Frozen blocks settled per batch (one short exclusive gate each). */
const SETTLE_GROUP_BLOCKS = 256;

/** Step 4: drops the live entries of frozen blocks not written since the freeze. */
async function settleFrozen(ctx: EngineContext, frozen: Frozen, folded: FrozenFold): Promise<void> {
  const table = ctx.catalog.liveWrites;
  const vmId = frozen.vm.id;
  for (const d of folded.disks) {
    const live = ctx.live.disk(vmId, d.index);
    for (let i = 0; i < d.blocks.length; i += SETTLE_GROUP_BLOCKS) {
      const group = d.blocks.slice(i, i + SETTLE_GROUP_BLOCKS);
      await ctx.vmLock(vmId).shared(() =>
        live.gate.exclusive(async () => {
          if (!ctx.catalog.vmById(vmId)) return;
          const unchanged = group.filter((b) => live.versionOf(b.block) <= frozen.version);
          if (unchanged.length === 0) return;
          await ctx.db.commit((batch) => {
            for (const b of unchanged) {
              if (b.hadEntry) table.stageDelete(batch, vmId, d.index, b.block);
              for (const page of b.pages) table.stageDeletePage(batch, vmId, d.index, b.block, page);
            }
          });
          for (const b of unchanged) live.settled(b.block);
        }),
      );
    }
  }
}

/** Refuses a snapshot past the VM's cap or with a label already taken. */
function checkRoom(ctx: EngineContext, vm: VmRecord, options: SnapshotOptions): void {
  const count = ctx.catalog.snapshotCount(vm.id);
  if (count >= ctx.options.maxSnapshotsPerVm) {
    throw new LimitExceededError(
      `VM '${vm.name}' has ${count} snapshots, the most allowed (maxSnapshotsPerVm); delete some first. Nothing was deleted automatically.`,
    );
  }
  if (options.label !== undefined) checkLabelFree(ctx, vm, options.label);
}

async function commitSnapshot(
  ctx: EngineContext,
  frozen: { readonly vm: VmRecord; readonly version: number },
  folded: FrozenFold,
  options: SnapshotOptions,
): Promise<SnapshotRecord> {
  const vm = resolveVm(ctx, frozen.vm.id);
  checkRoom(ctx, vm, options);
  const rootOf = (index: number): string => folded.disks[index]?.root ?? diskOf(vm, index).root;
  const record: SnapshotRecord = {
    id: ctx.ids.next(),
    vmId: vm.id,
    createdAtMs: Date.now(),
    ...(options.label === undefined ? {} : { label: options.label }),
    consistency: options.consistency ?? 'crash',
    ...(options.consistencyNote ? { consistencyNote: options.consistencyNote } : {}),
    origin: options.origin ?? 'manual',
    disks: frozen.vm.disks.map((d) => ({ ...d, root: rootOf(d.index) })),
    dirtyBlocks: folded.disks.reduce((n, d) => n + d.blocks.length, 0),
  };
  await ctx.catalog.commit((tx) => {
    ctx.chunks.stageNodes(tx.batch, folded.created);
    tx.putSnapshot(record);
    tx.putVm({ ...vm, disks: vm.disks.map((d) => ({ ...d, root: rootOf(d.index) })) });
  });
  return record;
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
  return ctx.foldLock(vm.id).run(() =>
    ctx.vmLock(vm.id).exclusive(async () => {
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
      for (const d of current.disks) if (diskIndex === undefined || d.index === diskIndex) ctx.live.disk(vm.id, d.index).reset();
      return updated;
    }),
  );
}
