/*
 * Space accounting. Logical bytes: what the VMs' snapshots and live states would occupy
 * with no dedup or compression (non-hole blocks × block size, counted per tree with a
 * per-node memo so shared subtrees cost nothing to count again). Stored bytes: what the
 * chunk store holds on disk (compressed, deduplicated, before RocksDB's own overhead).
 * Per VM: the stored bytes only it references, versus those it shares with other VMs.
 */
import { childrenOf, isHole, leafAt, toHex, treeGeometry, blockCount, type Fingerprint, type NodeStats, type VmSpace } from '@vmferry/core';
import type { EngineContext } from './context.js';
import { allRootSets, walkRootSet } from './roots.js';
import { resolveVm } from './vms.js';

/** Non-hole leaves under a node, memoised by node id. */
async function leafCount(ctx: EngineContext, fp: Fingerprint, memo: Map<string, number>): Promise<number> {
  if (isHole(fp)) return 0;
  const hex = toHex(fp);
  const known = memo.get(hex);
  if (known !== undefined) return known;
  const node = await ctx.chunks.getNode(fp);
  let n = 0;
  for (const child of childrenOf(node)) n += node.level === 0 ? 1 : await leafCount(ctx, child.id, memo);
  memo.set(hex, n);
  return n;
}

const ratio = (a: number, b: number): number => (b === 0 ? 1 : Math.round((a / b) * 100) / 100);

export async function computeStats(ctx: EngineContext, vmFilter?: string): Promise<NodeStats> {
  const sizes = new Map<string, number>();
  let storedBytes = 0;
  let uncompressedBytes = 0;
  for await (const e of ctx.chunks.index()) {
    sizes.set(toHex(e.id), e.storedBytes);
    storedBytes += e.storedBytes;
    uncompressedBytes += e.rawBytes;
  }

  const memo = new Map<string, number>();
  const sets = allRootSets(ctx);
  const logicalByVm = new Map<string, number>();
  for (const set of sets) {
    let bytes = 0;
    for (const [i, root] of set.roots.entries()) {
      const disk = set.vm.disks[i];
      if (!disk) continue;
      let count = await leafCount(ctx, root, memo);
      if (set.live) count += await liveAdjustment(ctx, set.vm.id, i, root, treeGeometry(blockCount(disk)));
      bytes += count * disk.blockSize;
    }
    logicalByVm.set(set.vm.id, (logicalByVm.get(set.vm.id) ?? 0) + bytes);
  }

  // Each VM's chunk set, then which chunks more than one VM reaches.
  const only = vmFilter === undefined ? undefined : resolveVm(ctx, vmFilter).id;
  const chunkSets = new Map<string, Set<string>>();
  const refCount = new Map<string, number>();
  for (const vm of ctx.catalog.vms()) {
    const seen = new Set<string>();
    const mine = new Set<string>();
    for (const set of sets.filter((s) => s.vm.id === vm.id)) await walkRootSet(ctx, set, seen, (hex) => mine.add(hex));
    for (const hex of mine) refCount.set(hex, (refCount.get(hex) ?? 0) + 1);
    if (only === undefined || only === vm.id) chunkSets.set(vm.id, mine);
  }
  const vms: VmSpace[] = ctx.catalog
    .vms()
    .filter((vm) => chunkSets.has(vm.id))
    .map((vm) => {
      let referenced = 0;
      let unique = 0;
      for (const hex of chunkSets.get(vm.id) ?? []) {
        const size = sizes.get(hex) ?? 0;
        referenced += size;
        if (refCount.get(hex) === 1) unique += size;
      }
      return {
        vmId: vm.id,
        vmName: vm.name,
        logicalBytes: logicalByVm.get(vm.id) ?? 0,
        referencedStoredBytes: referenced,
        uniqueStoredBytes: unique,
        sharedStoredBytes: referenced - unique,
      };
    });

  const logicalBytes = only === undefined ? [...logicalByVm.values()].reduce((a, b) => a + b, 0) : (logicalByVm.get(only) ?? 0);
  return {
    logicalBytes,
    storedBytes,
    uncompressedBytes,
    chunkCount: sizes.size,
    dedupRatio: ratio(logicalBytes, uncompressedBytes),
    compressionRatio: ratio(uncompressedBytes, storedBytes),
    totalRatio: ratio(logicalBytes, storedBytes),
    vmCount: ctx.catalog.vms().length,
    snapshotCount: ctx.catalog.allSnapshots().length,
    vms,
  };
}

/** Live writes change the count: +1 for a new non-hole block, -1 for a block zeroed; a block with only pages over a hole, +1. */
async function liveAdjustment(ctx: EngineContext, vmId: string, disk: number, root: Fingerprint, g: ReturnType<typeof treeGeometry>): Promise<number> {
  let delta = 0;
  const withEntry = new Set<number>();
  for await (const { block, fp } of ctx.catalog.liveWrites.entries(vmId, disk)) {
    withEntry.add(block);
    const before = isHole(await leafAt(root, g, block, ctx.chunks)) ? 0 : 1;
    const after = isHole(fp) ? 0 : 1;
    delta += after - before;
  }
  let last = -1;
  for await (const { block } of ctx.catalog.liveWrites.pages(vmId, disk)) {
    if (block === last || withEntry.has(block)) continue;
    last = block;
    if (isHole(await leafAt(root, g, block, ctx.chunks))) delta += 1;
  }
  return delta;
}
