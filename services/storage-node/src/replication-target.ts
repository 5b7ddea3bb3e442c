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
  ChunkCorruptError,
  childAt,
  decodeNodeChecked,
  FailedPreconditionError,
  FINGERPRINT_BYTES,
  InvalidArgumentError,
  isHole,
  LimitExceededError,
  toHex,
  type Fingerprint,
  type SnapshotRecord,
  type TreeNode,
  type VmRecord,
} from '@vmferry/core';
import type { StoredChunk } from '@vmferry/store-rocksdb';
import type { EngineContext } from './context.js';
import { checkChildKinds, checkReplicaRecords, checkTreeShapes } from './replica-checks.js';

export const PIN_TTL_MS = 24 * 3600 * 1000;
export const MAX_IDS_PER_CALL = 65536;

export interface IncomingChunk {
  readonly id: Buffer;
  readonly record: Buffer;
  readonly node: boolean;
  /** The record is raw (rebuilt by the replicator from packed pages): compress before storing. */
  readonly compress?: boolean;
}

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
  return ctx.chunks.barrier.referencing(async () => {
    const present = await ctx.chunks.has(ids);
    const held = ids.filter((id, i) => present[i] && !isHole(id));
    if (held.length > 0) await ctx.db.commit((b) => ctx.chunks.addPins(b, held, Date.now() + PIN_TTL_MS));
    return ids.filter((id, i) => !present[i] && !isHole(id));
  });
}

export interface PutResult {
  readonly chunksStored: number;
  readonly chunksAlreadyPresent: number;
  readonly bytesStored: number;
}

/** Verifies and stores one batch atomically: all of it, or (on any bad chunk) none. */
export async function putChunks(ctx: EngineContext, incoming: readonly IncomingChunk[]): Promise<PutResult> {
  checkIds(incoming.map((c) => c.id));
  // Children found present stay present until this batch commits (gc.ts, case c).
  return ctx.chunks.barrier.referencing(() => storeVerified(ctx, incoming));
}

async function storeVerified(ctx: EngineContext, incoming: readonly IncomingChunk[]): Promise<PutResult> {
  const unique = [...new Map(incoming.map((c) => [toHex(c.id), c])).values()];
  const present = await ctx.chunks.has(unique.map((c) => c.id));
  const fresh = unique.filter((_, i) => !present[i]);
  const decoded = await ctx.chunks.pool.decode(
    fresh.map((c) => c.record),
    fresh.map((c) => c.id),
  );
  const stored: StoredChunk[] = [];
  const inBatch = new Set(unique.map((c) => toHex(c.id)));
  const nodes = new Map<string, TreeNode>();
  const toCompress: { index: number; raw: Buffer }[] = [];
  for (const [i, c] of fresh.entries()) {
    const d = decoded[i];
    if (!d?.ok) throw new ChunkCorruptError(toHex(c.id), `rejected from the source: ${d?.ok === false ? d.reason : 'undecodable'}`);
    if (c.node) {
      if (c.record[0] !== 0) throw new ChunkCorruptError(toHex(c.id), 'a tree node must be stored raw');
      const node = await checkChildrenPresent(ctx, c.id, d.data, inBatch);
      nodes.set(toHex(c.id), node);
      stored.push({ id: c.id, record: c.record, rawLength: d.data.length, level: node.level });
      continue;
    }
    if (c.compress) toCompress.push({ index: stored.length, raw: d.data });
    stored.push({ id: c.id, record: c.record, rawLength: d.data.length });
  }
  await checkChildKinds(ctx, nodes, inBatch);
  const compressed = await ctx.chunks.pool.encode(toCompress.map((t) => t.raw));
  toCompress.forEach((t, k) => {
    const s = stored[t.index] as StoredChunk;
    stored[t.index] = { ...s, record: compressed[k] as Buffer };
  });
  // Every chunk of the batch is pinned, the ones already here too: a resumed session relies
  // on them as much as on what it sent.
  await ctx.db.commit((b) => {
    ctx.chunks.addPuts(b, stored);
    ctx.chunks.addPins(
      b,
      unique.map((c) => c.id),
      Date.now() + PIN_TTL_MS,
    );
  });
  return {
    chunksStored: stored.length,
    chunksAlreadyPresent: unique.length - fresh.length,
    bytesStored: stored.reduce((n, s) => n + s.record.length, 0),
  };
}

/** Refuses a node whose children are not all here; returns it decoded. */
async function checkChildrenPresent(ctx: EngineContext, id: Fingerprint, raw: Buffer, inBatch: ReadonlySet<string>): Promise<TreeNode> {
  const node = decodeNodeChecked(id, raw);
  const children: Buffer[] = [];
  for (let s = 0; s < node.slots; s++) {
    const child = childAt(node, s);
    if (!isHole(child) && !inBatch.has(toHex(child))) children.push(Buffer.from(child));
  }
  const present = await ctx.chunks.has(children);
  const absent = children.find((_, i) => !present[i]);
  if (absent) {
    throw new FailedPreconditionError(
      `tree node ${toHex(id).slice(0, 12)} references chunk ${toHex(absent).slice(0, 12)}, which is not here yet: send children before their nodes`,
    );
  }
  return node;
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
    const done = existing ? ctx.catalog.snapshot(vm.id, snapshot.id) : undefined;
    if (done) return done;
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
    };
    const updated: VmRecord = base.replicaOf && newest ? { ...base, disks: snapshot.disks, hypervisorConfig: vm.hypervisorConfig } : base;
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
