/*
 * Retention safety for replication pairs: the newest snapshot both sides of a pair hold is
 * the next incremental's base. Deleting it on either side would force a full resend, so it
 * is refused with the reason. The source learns its peers' bases from their acks after each
 * commit; a replica's newest snapshot is the base on the target side.
 */
import { FailedPreconditionError, NotFoundError, type SnapshotRecord, type VmRecord } from '@vmferry/core';
import type { ReplicationBase } from '@vmferry/store-rocksdb';
import type { EngineContext } from './context.js';

/** A snapshot queued for replication is kept this long at most while waiting for the ack. */
export const PENDING_TTL_MS = 24 * 3600 * 1000;

export async function recordBase(ctx: EngineContext, site: string, vmId: string, snapshotId: string): Promise<void> {
  const vm = ctx.catalog.vmById(vmId);
  if (!vm || !ctx.catalog.snapshot(vmId, snapshotId)) throw new NotFoundError('snapshot', `${vmId}@${snapshotId}`);
  await ctx.catalog.replication.recordBase(vmId, site, snapshotId);
}

/** Marks a snapshot as queued for replication to `site`: retention keeps it until acked. */
export async function recordPending(ctx: EngineContext, vmId: string, snapshotId: string, site: string): Promise<void> {
  await ctx.catalog.replication.recordPending(vmId, snapshotId, site, Date.now());
}

async function pendingSites(ctx: EngineContext, vmId: string, snapshotId: string): Promise<string[]> {
  const pending = await ctx.catalog.replication.pending(vmId, snapshotId);
  return pending.filter((p) => Date.now() - p.queuedAtMs < PENDING_TTL_MS).map((p) => p.site);
}

export function basesOf(ctx: EngineContext, vmId: string): Promise<ReplicationBase[]> {
  return ctx.catalog.replication.bases(vmId);
}

/** Throws FailedPreconditionError when `snapshot` is a replication pair's incremental base. */
export async function assertNotBase(ctx: EngineContext, vm: VmRecord, snapshot: SnapshotRecord): Promise<void> {
  const held = (await basesOf(ctx, vm.id)).find((b) => b.snapshotId === snapshot.id);
  if (held) {
    throw new FailedPreconditionError(
      `snapshot ${vm.name}@${snapshot.label ?? snapshot.id} is the newest one site ${held.site} holds: the base of the next incremental replication. Replicate a newer snapshot to ${held.site} first, then delete this one.`,
    );
  }
  const pending = await pendingSites(ctx, vm.id, snapshot.id);
  if (pending.length > 0) {
    throw new FailedPreconditionError(
      `snapshot ${vm.name}@${snapshot.label ?? snapshot.id} is being replicated to ${pending.join(', ')}; it is kept until the replica is committed (or for ${PENDING_TTL_MS / 3600000} h)`,
    );
  }
  const snaps = ctx.catalog.snapshots(vm.id);
  if (vm.replicaOf && snaps[snaps.length - 1]?.id === snapshot.id) {
    throw new FailedPreconditionError(
      `snapshot ${vm.name}@${snapshot.label ?? snapshot.id} is this replica's newest: the base of the next incremental pull from ${vm.replicaOf}. Delete the replica VM to drop it all.`,
    );
  }
}
