/*
 * The receiving side of replication, on the target site's node (called by its replicator).
 *
 * Invariant: a tree node is stored only once every chunk it references is present. So a node
 * present at the target means its whole subtree is present, which lets the replicator skip a
 * subtree the moment the target has its root, and lets commit check just the roots. The
 * replicator sends data chunks first and nodes bottom-up; a node that arrives early is refused.
 *
 * Received chunks are pinned for PIN_TTL_MS so GC leaves them for a retry of a broken
 * session; after that (an abandoned session) GC may free them.
 */
import {
  AlreadyExistsError,
  FailedPreconditionError,
  FINGERPRINT_BYTES,
  InvalidArgumentError,
  LimitExceededError,
  type IncomingChunk,
  type PutResult,
  type SnapshotRecord,
  epochOf,
  type VmRecord,
} from '@vmferry/core';
import type { EngineContext } from './context.js';
import { checkReplicaRecords, checkTreeShapes } from './replica-checks.js';

export const PIN_TTL_MS = 24 * 3600 * 1000;
export const MAX_IDS_PER_CALL = 65536;

function checkIds(ids: readonly Buffer[]): void {
  if (ids.length > MAX_IDS_PER_CALL) throw new InvalidArgumentError(`at most ${MAX_IDS_PER_CALL} chunk ids per call; got ${ids.length}`);
  for (const id of ids) {
    if (id.length !== FINGERPRINT_BYTES) throw new InvalidArgumentError(`chunk id of ${id.length} bytes; ids are ${FINGERPRINT_BYTES} bytes`);
  }
}

/**
 * The ids from `ids` this node does not hold, in input order. The replicator skips the
 * subtree of every node reported present, so those are pinned (like received chunks): GC
 * keeps them and their subtrees until the replica commits or the pin expires (gc.ts, case d).
 */
export async function missingChunks(ctx: EngineContext, ids: readonly Buffer[]): Promise<Buffer[]> {
  checkIds(ids);
  return ctx.chunks.lacking(ids, Date.now() + PIN_TTL_MS);
}

/**
 * Verifies and stores one batch atomically: all of it, or (on any bad chunk) none. The chunk
 * store refuses lying records (peer-records.ts in the store) and pins the batch.
 */
export async function putChunks(ctx: EngineContext, incoming: readonly IncomingChunk[]): Promise<PutResult> {
  checkIds(incoming.map((c) => c.id));
  return ctx.chunks.receive(incoming, Date.now() + PIN_TTL_MS);
}

/**
 * Records `snapshot` (from `sourceSite`) on the replica of `vm`, creating the replica VM on
 * first commit. Idempotent: committing a snapshot already here returns it. The VM keeps its
 * source id; a replica VM's live state follows its newest replicated snapshot. A snapshot
 * of a VM that is local here (failback) is added to it without touching its live state.
 */
export async function commitReplica(ctx: EngineContext, sourceSite: string, vm: VmRecord, snapshot: SnapshotRecord): Promise<SnapshotRecord> {
  // A peer's records meet local rules before anything is looked up or written.
  checkReplicaRecords(ctx, sourceSite, vm, snapshot);
  // The roots found present stay so until the record commits (gc.ts, case d).
  return ctx.chunks.barrier.referencing(() => commitChecked(ctx, sourceSite, vm, snapshot));
}

async function commitChecked(ctx: EngineContext, sourceSite: string, vm: VmRecord, snapshot: SnapshotRecord): Promise<SnapshotRecord> {
  await checkTreeShapes(ctx, sourceSite, snapshot);
  return ctx.vmLock(vm.id).exclusive(async () => {
    const existing = ctx.catalog.vmById(vm.id);
    // Epochs first (core/ownership.ts): a stale source changes nothing; a newer owner fences an owned copy.
    const learned = existing ? epochRule(existing, sourceSite, epochOf(vm)) : undefined;
    const done = existing ? ctx.catalog.snapshot(vm.id, snapshot.id) : undefined;
    if (done) {
      if (learned) await ctx.catalog.commit((tx) => tx.putVm(learned), { durable: true });
      return done;
    }
    const byName = ctx.catalog.vmByName(vm.name);
    if (byName && byName.id !== vm.id) {
      throw new AlreadyExistsError(`a different VM named '${vm.name}' exists here; rename or delete it to receive the replica from ${sourceSite}`);
    }
    if (existing?.replicaOf && existing.replicaOf !== sourceSite) {
      throw new FailedPreconditionError(`VM '${vm.name}' here is a replica of site ${existing.replicaOf}, not of ${sourceSite}`);
    }
    const count = ctx.catalog.snapshotCount(vm.id);
    if (count >= ctx.options.maxSnapshotsPerVm) {
      throw new LimitExceededError(`replica VM '${vm.name}' has ${count} snapshots, the most allowed; delete some first`);
    }
    const record: SnapshotRecord = {
      ...snapshot,
      origin: snapshot.origin.startsWith('replica:') ? snapshot.origin : `replica:${sourceSite}/${snapshot.id}`,
    };
    const newest = ctx.catalog.snapshots(vm.id).every((s) => s.id < snapshot.id);
    const base: VmRecord = existing ?? {
      id: vm.id,
      name: vm.name,
      createdAtMs: vm.createdAtMs,
      homeSite: vm.homeSite,
      hypervisorConfig: vm.hypervisorConfig,
      ...(vm.clonedFrom ? { clonedFrom: vm.clonedFrom } : {}),
      replicaOf: sourceSite,
      disks: snapshot.disks,
      ...(epochOf(vm) > 0 ? { epoch: epochOf(vm) } : {}),
    };
    const owned = learned ?? base;
    const updated: VmRecord =
      owned.replicaOf && newest
        ? { ...owned, disks: snapshot.disks, hypervisorConfig: vm.hypervisorConfig, ...(epochOf(vm) > 0 ? { epoch: epochOf(vm) } : {}) }
        : owned;
    const commit = (): Promise<void> =>
      ctx.catalog.commit(
        (tx) => {
          tx.putSnapshot(record);
          tx.putVm(updated);
        },
        { durable: true },
      );
    await (existing ? commit() : ctx.withVmNames([vm.name], commit));
    return record;
  });
}

/**
 * The epoch rule for a snapshot of `existing` arriving from `sourceSite` at `peerEpoch`:
 * - a replica or fenced copy takes nothing older than the epoch it knows (a stale source);
 * - a copy owned here takes nothing older than its epoch, and on a newer one learns that the
 *   source owns the VM now: the returned record is the copy fenced (committed with the snapshot).
 * @throws FailedPreconditionError naming both epochs when the source is stale.
 */
function epochRule(existing: VmRecord, sourceSite: string, peerEpoch: number): VmRecord | undefined {
  const known = existing.fencedBy?.epoch ?? epochOf(existing);
  if (peerEpoch < known) {
    throw new FailedPreconditionError(
      `site ${sourceSite} sent VM '${existing.name}' at ownership epoch ${peerEpoch}, but this site knows epoch ${known}: ` +
        `${sourceSite}'s copy is stale (superseded by a failover); nothing was changed`,
    );
  }
  if (existing.replicaOf || existing.fencedBy || peerEpoch === epochOf(existing)) return undefined;
  return { ...existing, fencedBy: { site: sourceSite, epoch: peerEpoch } };
}
