/*
 * Checks on what a peer sends for a replica, called at the top of the replication target's
 * RPCs (kept apart from their bodies, which take locks and pins).
 *
 * Tree shape is checked in two places, each where the facts are known:
 *  - put: by the chunk store as it receives a batch (packages/store-rocksdb/src/peer-tree-checks.ts):
 *    a node of level L > 0 references only complete level L-1 nodes, but for its last child.
 *  - commit: each root's level and slots must be those of its disk's geometry, and so must each
 *    node down the tree's right edge (at most MAX_TREE_HEIGHT reads). With the put rules this
 *    fixes every node's level and slot count, so a committed tree is walkable by its geometry.
 */
import {
  blockCount,
  ChunkCorruptError,
  childAt,
  FailedPreconditionError,
  fromHex,
  InvalidArgumentError,
  isHole,
  nodeSlots,
  shortId,
  toHex,
  treeGeometry,
  validateReplicaRecord,
  validateSiteName,
  type Fingerprint,
  type SnapshotRecord,
  type TreeNode,
  type VmRecord,
} from '@vmferry/core';
import type { EngineContext } from './context.js';

/** Validates a replica's records before commit; throws InvalidArgumentError naming the field. */
export function checkReplicaRecords(ctx: EngineContext, sourceSite: string, vm: VmRecord, snapshot: SnapshotRecord): void {
  validateSiteName(sourceSite, 'source site');
  validateReplicaRecord(vm, snapshot);
  const existing = ctx.catalog.vmById(vm.id);
  existing?.disks.forEach((d, i) => {
    const s = snapshot.disks[i];
    if (!s || s.size !== d.size || s.blockSize !== d.blockSize || s.gridOffset !== d.gridOffset || snapshot.disks.length !== existing.disks.length) {
      throw new InvalidArgumentError(`snapshot ${snapshot.id} from ${sourceSite} does not match the vDisk layout of VM '${existing.name}' here (vDisk ${i})`);
    }
  });
}

/**
 * Checks each non-hole root of a replica against its disk's geometry: the root and every node
 * down the right edge must have the level and slot count the geometry gives. Throws
 * ChunkCorruptError (DATA_LOSS) naming the snapshot, disk and node.
 */
export async function checkTreeShapes(ctx: EngineContext, sourceSite: string, snapshot: SnapshotRecord): Promise<void> {
  for (const d of snapshot.disks) {
    let fp = fromHex(d.root);
    if (isHole(fp)) continue;
    if (!(await ctx.chunks.has([fp]))[0]) {
      throw new FailedPreconditionError(`snapshot ${snapshot.id} is incomplete here: root ${shortId(fp)} has not arrived`);
    }
    const g = treeGeometry(blockCount(d));
    let index = 0;
    for (let level = g.height - 1; level >= 0 && !isHole(fp); level--) {
      const node = await readNode(ctx, fp, `snapshot ${snapshot.id} from ${sourceSite}, vDisk ${d.index}`);
      const slots = nodeSlots(g, level, index);
      if (node.level !== level || node.slots !== slots) {
        throw new ChunkCorruptError(
          toHex(fp),
          `snapshot ${snapshot.id} from ${sourceSite}, vDisk ${d.index} (${d.size} bytes, ${g.blocks} blocks): ` +
            `tree node has level ${node.level} with ${node.slots} slots where the disk's geometry has level ${level} with ${slots}`,
        );
      }
      index = index * g.fanout + node.slots - 1;
      fp = Buffer.from(childAt(node, node.slots - 1));
      if (level === 0) break;
    }
  }
}

async function readNode(ctx: EngineContext, fp: Fingerprint, what: string): Promise<TreeNode> {
  try {
    return await ctx.chunks.getNode(fp);
  } catch (e) {
    throw new ChunkCorruptError(toHex(fp), `${what}: not a tree node (${e instanceof Error ? e.message : String(e)})`);
  }
}
