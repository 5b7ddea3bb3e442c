/*
 * VM ownership across sites: epochs and fencing (pure rules; the node applies them).
 *
 * Every copy of a VM (same id at several sites) carries an ownership epoch. Exactly one copy is
 * writable: the one promoted last. The safety argument:
 *
 *  1. Epochs only grow. A promotion sets the promoted copy's epoch above every epoch that copy
 *     knows (its own, its source's as replicated, the fence it was given); a fence records the
 *     new owner's epoch, which must be above the fenced copy's own.
 *  2. A copy takes live writes only while it is neither a replica nor fenced. A fence is one
 *     durable catalog commit under the VM's exclusive lock; every live-write batch re-reads the
 *     VM record under the shared lock before it commits (disk-writer.ts, page-writer.ts), so no
 *     write lands after the fence, and every write acknowledged before it is in the fence's
 *     snapshot (its freeze comes after the fence commit).
 *  3. Planned failover orders: fence the source (epoch N+1 named) → snapshot of the fenced
 *     state → replicate it → promote the target at N+1. Between the fence and the promotion
 *     neither copy is writable; at no point are both. Zero loss: the promoted state is the
 *     fenced snapshot, which holds every acknowledged write.
 *  4. Unplanned failover promotes a replica at its source's epoch + 1 while the source may be
 *     writing. The two copies then diverge until the old owner hears of the newer epoch (a fence
 *     call, or any replication from the new owner into it: commitReplica), which fences it. Its
 *     writes after the promoted snapshot are kept as a snapshot (superseded-EPOCH) when it is
 *     promoted again, never silently dropped, but they are not in the VM's history.
 *  5. A peer claiming an epoch not above what a copy knows is refused and changes nothing: a
 *     stale owner cannot fence the current one, nor replicate over it.
 */
import { FailedPreconditionError, InvalidArgumentError } from './errors.js';
import type { VmRecord } from './model.js';

/** The largest epoch accepted (a safe integer; 2^53 failovers will not happen). */
export const MAX_EPOCH = Number.MAX_SAFE_INTEGER - 1;

/** The VM copy's ownership epoch (0 before its first failover). */
export function epochOf(vm: VmRecord): number {
  return vm.epoch ?? 0;
}

/** The highest epoch this copy knows of: its own, or the one it was fenced by. */
export function knownEpoch(vm: VmRecord): number {
  return Math.max(epochOf(vm), vm.fencedBy?.epoch ?? 0);
}

/** Throws InvalidArgumentError unless `epoch` is a whole number in range (peer or user input). */
export function validateEpoch(epoch: number, what: string): number {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH)
    throw new InvalidArgumentError(`${what} ${String(epoch).slice(0, 30)} is not a valid epoch`);
  return epoch;
}

/** Why `vm` takes no live writes, snapshots or restores here; undefined when it is writable. */
export function writeRefusal(vm: VmRecord): string | undefined {
  if (vm.replicaOf) return `VM '${vm.name}' is a read-only replica of site ${vm.replicaOf}; clone it to get a writable copy`;
  if (vm.fencedBy) {
    return (
      `VM '${vm.name}' is fenced here: site ${vm.fencedBy.site} owns it since epoch ${vm.fencedBy.epoch} (this copy: epoch ${epochOf(vm)}); ` +
      `write there, or bring it back with vmferry failback`
    );
  }
  return undefined;
}

/** Throws FailedPreconditionError when `vm` is a replica or fenced (see writeRefusal). */
export function assertOwned(vm: VmRecord): void {
  const why = writeRefusal(vm);
  if (why) throw new FailedPreconditionError(why);
}

/**
 * Checks a fence of `vm` by `site` at `epoch`. Returns false when the copy is already fenced by
 * exactly that (idempotent), true when the fence is to be recorded.
 * @throws FailedPreconditionError when the claim is not above what the copy knows, or names this site.
 */
export function checkFence(vm: VmRecord, localSite: string, site: string, epoch: number): boolean {
  if (vm.fencedBy && vm.fencedBy.site === site && vm.fencedBy.epoch === epoch) return false;
  if (site === localSite) throw new InvalidArgumentError(`a VM cannot be fenced by its own site (${site})`);
  if (vm.replicaOf) throw new FailedPreconditionError(`VM '${vm.name}' here is a replica of site ${vm.replicaOf}: only an owned or fenced copy can be fenced`);
  if (epoch <= knownEpoch(vm)) {
    throw new FailedPreconditionError(
      `site ${site} claims VM '${vm.name}' at epoch ${epoch}, but this copy knows epoch ${knownEpoch(vm)}` +
        (vm.fencedBy ? ` (owned by site ${vm.fencedBy.site})` : ' (owned here)') +
        `: a claim must be above it; nothing was changed`,
    );
  }
  return true;
}

/**
 * The epoch a promotion of `vm` here gets: `requested` (0: the known epoch + 1), which must be
 * above everything the copy knows.
 * @throws FailedPreconditionError when `vm` is writable here already, or `requested` is too low.
 */
export function promotionEpoch(vm: VmRecord, requested: number): number {
  if (!vm.replicaOf && !vm.fencedBy) {
    throw new FailedPreconditionError(
      `VM '${vm.name}' is not a replica or a fenced copy here: it is the writable VM already (epoch ${epochOf(vm)}); nothing to promote`,
    );
  }
  const known = knownEpoch(vm);
  if (requested === 0) return known + 1;
  if (requested <= known) {
    throw new FailedPreconditionError(
      `promotion of VM '${vm.name}' at epoch ${requested} refused: this copy knows epoch ${known}; the new owner's epoch must be above it`,
    );
  }
  return requested;
}
