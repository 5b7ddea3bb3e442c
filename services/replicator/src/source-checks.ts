/*
 * The replicator's own checks on what a source sends, so a lying source is refused before any
 * chunk moves (the target node checks the same things again: it trusts no replicator either).
 *
 *  - metadata: the VM and snapshot must pass the rules local input meets (validateReplicaRecord);
 *  - tree nodes: walking top-down, each node's level and slot count are fixed by its disk's
 *    geometry and its position: the root is level height-1 with the geometry's slots, nodes on
 *    the right edge have the slots the geometry gives, every other node is full.
 */
import {
  ChunkCorruptError,
  InvalidArgumentError,
  blockCount,
  isVmferryError,
  nodeSlots,
  toHex,
  treeGeometry,
  validateReplicaRecord,
  type DiskRecord,
  type SourceSnapshot,
  type TreeGeometry,
  type TreeNode,
} from '@vmferry/core';

/** Throws InvalidArgumentError naming the source site when its VM or snapshot record is malformed. */
export function checkSourceMetadata(sourceSite: string, info: SourceSnapshot): void {
  try {
    validateReplicaRecord(info.vm, info.snapshot);
  } catch (e) {
    if (isVmferryError(e)) throw new InvalidArgumentError(`source site ${sourceSite} sent a bad replica record: ${e.message}`);
    throw e;
  }
}

/** Where a tree node sits: the level and slot count its position in its disk's tree gives it. */
export interface NodeExpectation {
  readonly level: number;
  readonly slots: number;
  /** Set for nodes on the tree's right edge (their index on the level); others are full. */
  readonly edgeIndex?: number;
  readonly geometry: TreeGeometry;
}

/** What each disk's root must be. */
export function rootExpectation(disk: DiskRecord): NodeExpectation {
  const geometry = treeGeometry(blockCount(disk));
  return { level: geometry.height - 1, slots: nodeSlots(geometry, geometry.height - 1, 0), edgeIndex: 0, geometry };
}

/** What the child at `slot` of a node that met `parent` must be. */
export function childExpectation(parent: NodeExpectation, slot: number, slots: number): NodeExpectation {
  const g = parent.geometry;
  const level = parent.level - 1;
  if (parent.edgeIndex !== undefined && slot === slots - 1) {
    const edgeIndex = parent.edgeIndex * g.fanout + slot;
    return { level, slots: nodeSlots(g, level, edgeIndex), edgeIndex, geometry: g };
  }
  return { level, slots: g.fanout, geometry: g };
}

/** Throws ChunkCorruptError (DATA_LOSS) naming the node and the source site unless `node` meets `e`. */
export function checkNodeShape(sourceSite: string, id: Buffer, node: TreeNode, e: NodeExpectation): void {
  if (node.level !== e.level || node.slots !== e.slots) {
    throw new ChunkCorruptError(
      toHex(id),
      `source site ${sourceSite} sent a tree node of level ${node.level} with ${node.slots} slots where the disk's geometry (${e.geometry.blocks} blocks) has level ${e.level} with ${e.slots}`,
    );
  }
}

/** Equal expectations for one id reached twice (a shared subtree); a conflict is a lie. */
export function sameExpectation(a: NodeExpectation, b: NodeExpectation): boolean {
  return a.level === b.level && a.slots === b.slots;
}
