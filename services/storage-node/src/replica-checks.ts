/*
 * Checks on what a peer sends for a replica, called at the top of the replication target's
 * RPCs (kept apart from their bodies, which take locks and pins).
 *
 * Tree shape is checked in two places, each where the facts are known:
 *  - put: a node of level L > 0 may only reference tree nodes of level L-1 (in the same batch,
 *    or already stored, which by the children-first invariant were checked the same way), and
 *    every child but its last is a complete subtree: only the right edge of a tree is short,
 *    so such a child and each node down its own right edge has fanout slots (the rest of it
 *    was checked when it was stored). A level-0 node's children are data, which may hold any
 *    bytes, even bytes that happen to decode as a tree node, so they are not inspected.
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
  MAX_TREE_HEIGHT,
  nodeSlots,
  shortId,
  toHex,
  TREE_FANOUT,
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

/** A decoded tree node of this batch, by hex id. */
export type BatchNodes = ReadonlyMap<string, TreeNode>;

/**
 * Checks that every node of a put batch references children of the right kind: level L-1
 * tree nodes for L > 0, full except the last. Throws ChunkCorruptError naming the parent.
 */
export async function checkChildKinds(ctx: EngineContext, nodes: BatchNodes, inBatch: ReadonlySet<string>): Promise<void> {
  for (const [hex, node] of nodes) {
    if (node.level >= MAX_TREE_HEIGHT) throw new ChunkCorruptError(hex, `tree node of level ${node.level}: no disk has a tree that tall`);
    if (node.level === 0) continue;
    for (let s = 0; s < node.slots; s++) {
      const child = childAt(node, s);
      if (isHole(child)) continue;
      const c = await childNode(ctx, hex, node.level, Buffer.from(child), nodes, inBatch);
      if (c.level !== node.level - 1) {
        throw new ChunkCorruptError(hex, `level-${node.level} tree node references tree node ${shortId(child)} of level ${c.level} at slot ${s}`);
      }
      if (s < node.slots - 1) await checkComplete(ctx, hex, s, c, nodes, inBatch);
    }
  }
}

/** A child that is not its parent's last must be complete: it and its right edge have fanout slots. */
async function checkComplete(ctx: EngineContext, parent: string, slot: number, child: TreeNode, nodes: BatchNodes, inBatch: ReadonlySet<string>): Promise<void> {
  let n = child;
  for (;;) {
    if (n.slots !== TREE_FANOUT) {
      throw new ChunkCorruptError(parent, `the subtree at slot ${slot} has a level-${n.level} node of ${n.slots} slots; only a tree's right edge may have nodes of fewer than ${TREE_FANOUT}`);
    }
    const last = childAt(n, n.slots - 1);
    if (n.level === 0 || isHole(last)) return;
    n = await childNode(ctx, parent, n.level, Buffer.from(last), nodes, inBatch);
  }
}

async function childNode(ctx: EngineContext, parent: string, level: number, child: Fingerprint, nodes: BatchNodes, inBatch: ReadonlySet<string>): Promise<TreeNode> {
  const hex = toHex(child);
  const sent = nodes.get(hex);
  if (sent) return sent;
  const notANode = (why: string): ChunkCorruptError =>
    new ChunkCorruptError(parent, `level-${level} tree node references chunk ${shortId(child)}, which is not a tree node (${why})`);
  // In the batch but sent as data (not stored raw as nodes are), or already held: read it back.
  if (inBatch.has(hex) && !(await ctx.chunks.has([child]))[0]) throw notANode('it was sent as data');
  try {
    return await ctx.chunks.getNode(child);
  } catch (e) {
    throw notANode(e instanceof Error ? e.message : String(e));
  }
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
