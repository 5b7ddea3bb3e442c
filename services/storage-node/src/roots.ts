import { fromHex, isHole, toHex, walkTree, type Fingerprint, type VmRecord } from '@vmferry/core';
import type { EngineContext } from './context.js';

/** A thing that keeps chunks alive: a snapshot or a VM's live state. */
export interface RootSet {
  readonly vm: VmRecord;
  /** `VM@SNAPSHOT` or `VM` (live). */
  readonly ref: string;
  /** Tree roots, one per vDisk. */
  readonly roots: readonly Fingerprint[];
  /** Live only: the chunks of blocks written since the last snapshot. */
  readonly live: boolean;
  /** The snapshot's id (absent for live state). */
  readonly snapshotId?: string;
}

/** Whether `set` still exists: a VM or snapshot deleted meanwhile may have lost its chunks to GC. */
export function rootSetExists(ctx: EngineContext, set: RootSet): boolean {
  if (!ctx.catalog.vmById(set.vm.id)) return false;
  return set.snapshotId === undefined || ctx.catalog.snapshot(set.vm.id, set.snapshotId) !== undefined;
}

/** Every root on the node: each VM's live state and each of its snapshots. */
export function allRootSets(ctx: EngineContext): RootSet[] {
  const out: RootSet[] = [];
  for (const vm of ctx.catalog.vms()) {
    out.push({ vm, ref: vm.name, roots: vm.disks.map((d) => fromHex(d.root)), live: true });
    for (const s of ctx.catalog.snapshots(vm.id)) {
      out.push({ vm, ref: `${vm.name}@${s.label ?? s.id}`, roots: s.disks.map((d) => fromHex(d.root)), live: false, snapshotId: s.id });
    }
  }
  return out;
}

/** Chunks of a VM's unsnapshotted writes. */
export async function* dirtyChunks(ctx: EngineContext, vmId: string): AsyncGenerator<Fingerprint> {
  for await (const fp of ctx.catalog.liveWrites.ids(vmId)) if (!isHole(fp)) yield fp;
}

/**
 * Visits every chunk (nodes and blocks) reachable from `set`, calling `visit` with its hex id.
 * `seenNodes` lets a caller skip subtrees already walked (pass a fresh set per attribution).
 */
export async function walkRootSet(ctx: EngineContext, set: RootSet, seenNodes: Set<string>, visit: (hex: string) => void): Promise<void> {
  for (const root of set.roots) {
    await walkTree(
      root,
      ctx.chunks,
      (id) => {
        const hex = toHex(id);
        if (seenNodes.has(hex)) return false;
        seenNodes.add(hex);
        visit(hex);
        return true;
      },
      (fp) => visit(toHex(fp)),
    );
  }
  if (set.live) for await (const fp of dirtyChunks(ctx, set.vm.id)) visit(toHex(fp));
}
