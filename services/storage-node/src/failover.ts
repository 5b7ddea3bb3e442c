/*
 * Failover at one node: fencing this site's copy of a VM, and promoting a replica (or a fenced
 * copy) to the writable VM. The epoch rules and the safety argument are in core/ownership.ts;
 * the cross-site order (fence → snapshot → replicate → promote) is the CLI's (failover-commands.ts).
 *
 * Fence: one durable commit of the VM record with `fencedBy`, under the VM's exclusive lock.
 * Live-write batches re-read the record under the shared lock before committing, so none lands
 * after it. Then a snapshot labelled fenced-EPOCH: its freeze comes after the fence commit, so
 * it holds every write acknowledged at this site, and nothing can be written after it. Both
 * steps are idempotent: a fence retried after a crash between them takes the missing snapshot.
 *
 * Promote: the copy's live state becomes the chosen snapshot (as a restore does: live writes
 * cleared), `replicaOf` and `fencedBy` cleared and the new epoch set, in one durable commit
 * under the fold lock and the VM's exclusive lock. The VM keeps its id and name, so its NBD
 * export VM/DISK is writable from the next open on. A fenced copy's live state first becomes a
 * snapshot labelled superseded-EPOCH unless an existing snapshot holds exactly it: writes the
 * new owner never received (an unplanned failover) are kept, not silently dropped.
 */
import {
  FailedPreconditionError,
  NotFoundError,
  checkFence,
  promotionEpoch,
  validateEpoch,
  validateSiteName,
  type SnapshotRecord,
  type VmRecord,
} from '@vmferry/core';
import type { EngineContext } from './context.js';
import { createSnapshot, findSnapshot } from './snapshots.js';
import { resolveVm } from './vms.js';

export interface FenceResult {
  readonly vm: VmRecord;
  /** The snapshot of the live state as fenced (fenced-EPOCH). */
  readonly snapshot: SnapshotRecord;
}

const byLabel = (ctx: EngineContext, vmId: string, label: string): SnapshotRecord | undefined => ctx.catalog.snapshots(vmId).find((s) => s.label === label);

export async function fenceVm(ctx: EngineContext, nameOrId: string, ownerSite: string, ownerEpoch: number): Promise<FenceResult> {
  validateSiteName(ownerSite, 'owner site');
  validateEpoch(ownerEpoch, 'owner epoch');
  const vm0 = resolveVm(ctx, nameOrId);
  if (vm0.importing) throw new FailedPreconditionError(`VM '${vm0.name}' is still importing`);
  const fenced = await ctx.vmLock(vm0.id).exclusive(async () => {
    const vm = resolveVm(ctx, vm0.id);
    if (!checkFence(vm, ctx.options.site, ownerSite, ownerEpoch)) return vm;
    const updated: VmRecord = { ...vm, fencedBy: { site: ownerSite, epoch: ownerEpoch } };
    await ctx.catalog.commit((tx) => tx.putVm(updated), { durable: true });
    return updated;
  });
  const label = `fenced-${ownerEpoch}`;
  const snapshot = byLabel(ctx, fenced.id, label) ?? (await createSnapshot(ctx, fenced.id, { label, origin: `fence:${ownerSite}@${ownerEpoch}` }));
  return { vm: resolveVm(ctx, fenced.id), snapshot };
}

const sameRoots = (a: SnapshotRecord, b: SnapshotRecord): boolean => a.disks.every((d, i) => d.root === b.disks[i]?.root);

/** Keeps a fenced copy's live state as superseded-EPOCH, unless a snapshot holds exactly it already. */
async function keepSuperseded(ctx: EngineContext, vm: VmRecord, epoch: number): Promise<void> {
  const label = `superseded-${epoch}`;
  if (byLabel(ctx, vm.id, label)) return;
  const kept = await createSnapshot(ctx, vm.id, { label, origin: `superseded:${vm.fencedBy?.site ?? ''}@${epoch}` });
  const twin = ctx.catalog.snapshots(vm.id).find((s) => s.id !== kept.id && sameRoots(s, kept));
  if (twin) await ctx.vmLock(vm.id).exclusive(() => ctx.catalog.commit((tx) => tx.deleteSnapshot(vm.id, kept.id), { durable: true }));
}

/** The snapshot a promotion makes live: the one named, or the newest replicated one. */
function chooseSnapshot(ctx: EngineContext, vm: VmRecord, ref: string | undefined): SnapshotRecord {
  if (ref !== undefined && ref !== '') return findSnapshot(ctx, vm, ref);
  const replicated = ctx.catalog.snapshots(vm.id).filter((s) => s.origin.startsWith('replica:'));
  const newest = replicated[replicated.length - 1];
  if (!newest) throw new FailedPreconditionError(`VM '${vm.name}' has no replicated snapshot here to promote; name one with --snapshot`);
  return newest;
}

export async function promoteVm(ctx: EngineContext, nameOrId: string, snapshotRef: string | undefined, requestedEpoch: number): Promise<VmRecord> {
  validateEpoch(requestedEpoch, 'epoch');
  const vm0 = resolveVm(ctx, nameOrId);
  // Checked before anything is written: a VM writable here, or an epoch too low, changes nothing.
  promotionEpoch(vm0, requestedEpoch);
  const chosen = chooseSnapshot(ctx, vm0, snapshotRef);
  if (vm0.fencedBy) await keepSuperseded(ctx, vm0, vm0.fencedBy.epoch);
  return ctx.foldLock(vm0.id).run(() =>
    ctx.vmLock(vm0.id).exclusive(async () => {
      // Again under the locks: a concurrent promotion or fence is seen, not overwritten.
      const vm = resolveVm(ctx, vm0.id);
      const epoch = promotionEpoch(vm, requestedEpoch);
      const snapshot = ctx.catalog.snapshot(vm.id, chosen.id);
      if (!snapshot) throw new NotFoundError('snapshot', `${vm.name}@${chosen.label ?? chosen.id}`);
      const { replicaOf: _replicaOf, fencedBy: _fencedBy, ...owned } = vm;
      const updated: VmRecord = { ...owned, disks: vm.disks.map((d) => snapshot.disks[d.index] ?? d), epoch };
      await ctx.catalog.commit(
        (tx) => {
          tx.putVm(updated);
          for (const d of vm.disks) tx.clearLiveWrites(vm.id, d.index);
        },
        { durable: true },
      );
      for (const d of vm.disks) ctx.live.disk(vm.id, d.index).reset();
      return updated;
    }),
  );
}
