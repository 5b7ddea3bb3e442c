/*
 * The tree-shape rules a received batch must meet (the put side; the commit side, which knows
 * each disk's geometry, is services/storage-node/src/replica-checks.ts): a node of level L > 0
 * may only reference tree nodes of level L-1 (in the same batch, or already stored, which by
 * the children-first invariant were checked the same way), and every child but its last is a
 * complete subtree: only the right edge of a tree is short, so such a child and each node down
 * its own right edge has fanout slots (the rest of it was checked when it was stored). A
 * level-0 node's children are data, which may hold any bytes, even bytes that happen to decode
 * as a tree node, so they are not inspected.
 */
import { ChunkCorruptError, childAt, childrenOf, isHole, MAX_TREE_HEIGHT, shortId, toHex, TREE_FANOUT, type Fingerprint, type TreeNode } from '@vmferry/core';

/** What the checks read from the store. */
export interface NodeReader {
  has(ids: readonly Fingerprint[]): Promise<boolean[]>;
  getNode(id: Fingerprint): Promise<TreeNode>;
}

/** A decoded tree node of this batch, by hex id. */
export type BatchNodes = ReadonlyMap<string, TreeNode>;

/**
 * Checks that every node of a put batch references children of the right kind: level L-1
 * tree nodes for L > 0, full except the last. Throws ChunkCorruptError naming the parent.
 */
export async function checkChildKinds(store: NodeReader, nodes: BatchNodes, inBatch: ReadonlySet<string>): Promise<void> {
  for (const [hex, node] of nodes) {
    if (node.level >= MAX_TREE_HEIGHT) throw new ChunkCorruptError(hex, `tree node of level ${node.level}: no disk has a tree that tall`);
    if (node.level === 0) continue;
    for (const { slot, id } of childrenOf(node)) {
      const c = await childNode(store, hex, node.level, id, nodes, inBatch);
      if (c.level !== node.level - 1) {
        throw new ChunkCorruptError(hex, `level-${node.level} tree node references tree node ${shortId(id)} of level ${c.level} at slot ${slot}`);
      }
      if (slot < node.slots - 1) await checkComplete(store, hex, slot, c, nodes, inBatch);
    }
  }
}

/** A child that is not its parent's last must be complete: it and its right edge have fanout slots. */
async function checkComplete(store: NodeReader, parent: string, slot: number, child: TreeNode, nodes: BatchNodes, inBatch: ReadonlySet<string>): Promise<void> {
  let n = child;
  for (;;) {
    if (n.slots !== TREE_FANOUT) {
      throw new ChunkCorruptError(
        parent,
        `the subtree at slot ${slot} has a level-${n.level} node of ${n.slots} slots; only a tree's right edge may have nodes of fewer than ${TREE_FANOUT}`,
      );
    }
    const last = childAt(n, n.slots - 1);
    if (n.level === 0 || isHole(last)) return;
    n = await childNode(store, parent, n.level, Buffer.from(last), nodes, inBatch);
  }
}

async function childNode(
  store: NodeReader,
  parent: string,
  level: number,
  child: Fingerprint,
  nodes: BatchNodes,
  inBatch: ReadonlySet<string>,
): Promise<TreeNode> {
  const hex = toHex(child);
  const sent = nodes.get(hex);
  if (sent) return sent;
  const notANode = (why: string): ChunkCorruptError =>
    new ChunkCorruptError(parent, `level-${level} tree node references chunk ${shortId(child)}, which is not a tree node (${why})`);
  // In the batch but sent as data (not stored raw as nodes are), or already held: read it back.
  if (inBatch.has(hex) && (await store.has([child]))[0] !== true) throw notANode('it was sent as data');
  try {
    return await store.getNode(child);
  } catch (e) {
    throw notANode(e instanceof Error ? e.message : String(e));
  }
}
