/*
 * The vDisk Merkle tree.
 *
 * Leaves are block fingerprints; a level-0 node lists up to `fanout` block fingerprints, a
 * level-L node lists up to `fanout` level-(L-1) node fingerprints, and the root is the single
 * node at level height-1. A subtree that is all holes is recorded as HOLE and never stored.
 * Nodes are chunks like any other: identical subtrees (between snapshots, clones and sites)
 * are stored once, and two trees with equal roots have equal content.
 *
 * Geometry is fixed by the block count and fanout alone, so a snapshot's tree can be walked
 * knowing only its disk size, block size and grid offset.
 *
 * Updating is path copying: applying k changed leaves rewrites at most k·height nodes, so a
 * snapshot costs time proportional to the blocks written since the last one, never to the
 * disk's size. This file has no I/O: nodes come and go through the NodeSource port.
 */
import { MIN_BLOCK_SIZE } from './block-grid.js';
import { fingerprint, HOLE, isHole, toHex, type Fingerprint } from './fingerprint.js';
import { childAt, decodeNode, emptyNode, encodeNode, nonHoleSlots, setChild, type TreeNode } from './tree-codec.js';
import { childrenOf } from './tree-walk.js';

/** Children per tree node. DO NOT CHANGE: it fixes every tree's shape and so every root. */
export const TREE_FANOUT = 1024;

export interface TreeGeometry {
  readonly blocks: number;
  readonly fanout: number;
  readonly height: number;
}

export function treeGeometry(blocks: number, fanout = TREE_FANOUT): TreeGeometry {
  let height = 1;
  let span = fanout;
  while (span < blocks) {
    span *= fanout;
    height++;
  }
  return { blocks, fanout, height };
}

/** The tallest tree any valid disk has (the largest safe size in the smallest blocks). */
export const MAX_TREE_HEIGHT = treeGeometry(Math.ceil(Number.MAX_SAFE_INTEGER / MIN_BLOCK_SIZE)).height;

/** Blocks covered by one node at `level`. */
function span(g: TreeGeometry, level: number): number {
  return g.fanout ** (level + 1);
}

/**
 * Child slots of node `index` at `level` (the last node on a level may be short). Every node
 * of a well-formed tree has exactly this many: a peer's nodes are checked against it.
 */
export function nodeSlots(g: TreeGeometry, level: number, index: number): number {
  const childSpan = span(g, level) / g.fanout;
  const childrenOnLevel = Math.ceil(g.blocks / childSpan);
  return Math.min(g.fanout, childrenOnLevel - index * g.fanout);
}

/** Where tree nodes are read from. Implementations verify and may cache. */
export interface NodeSource {
  /** Resolves to the decoded node; rejects with ChunkMissingError or ChunkCorruptError. */
  getNode(fp: Fingerprint): Promise<TreeNode>;
}

export interface EncodedNode {
  readonly id: Fingerprint;
  readonly bytes: Buffer;
  readonly level: number;
}

function copyNode(n: TreeNode): TreeNode {
  return { level: n.level, slots: n.slots, children: Buffer.from(n.children) };
}

/** Encodes a node and names it. */
export function sealNode(node: TreeNode): EncodedNode {
  const bytes = encodeNode(node);
  return { id: fingerprint(bytes), bytes, level: node.level };
}

export function decodeNodeChecked(id: Fingerprint, bytes: Uint8Array): TreeNode {
  return decodeNode(bytes, toHex(id));
}

/** A change to one leaf: block `block` now has fingerprint `fp` (HOLE for zeros). */
export interface LeafUpdate {
  readonly block: number;
  readonly fp: Fingerprint;
}

/**
 * Applies leaf updates (sorted by block, unique) to the tree under `root` and returns the new
 * root with every node it created. The caller stores the nodes before recording the root.
 */
export async function applyUpdates(
  root: Fingerprint,
  g: TreeGeometry,
  updates: readonly LeafUpdate[],
  source: NodeSource,
): Promise<{ root: Fingerprint; created: EncodedNode[] }> {
  const created: EncodedNode[] = [];
  if (updates.length === 0) return { root, created };

  const rewrite = async (fp: Fingerprint, level: number, index: number, lo: number, hi: number): Promise<Fingerprint> => {
    const slots = nodeSlots(g, level, index);
    // Copy: nodes from the source may be shared (cached); they are never mutated in place.
    const fresh = isHole(fp);
    const node = fresh ? emptyNode(level, slots) : copyNode(await source.getNode(fp));
    const touched: number[] = [];
    const childSpan = span(g, level) / g.fanout;
    const first = index * span(g, level);
    // Children are rewritten concurrently: their node reads overlap (a snapshot of scattered
    // writes touches thousands of nodes) and each rewrite sets only its own slot.
    const pending: Promise<void>[] = [];
    let i = lo;
    while (i < hi) {
      const slot = Math.floor(((updates[i] as LeafUpdate).block - first) / childSpan);
      let j = i + 1;
      while (j < hi && Math.floor(((updates[j] as LeafUpdate).block - first) / childSpan) === slot) j++;
      touched.push(slot);
      if (level === 0) {
        setChild(node, slot, (updates[j - 1] as LeafUpdate).fp);
      } else {
        const child = Buffer.from(childAt(node, slot));
        const [from, to] = [i, j];
        pending.push(rewrite(child, level - 1, index * g.fanout + slot, from, to).then((fp) => setChild(node, slot, fp)));
      }
      i = j;
    }
    await Promise.all(pending);
    // A node made from a hole holds only the slots just set (ascending): no need to scan it.
    const used = fresh ? touched.filter((slot) => !isHole(childAt(node, slot))) : nonHoleSlots(node);
    if (used.length === 0) return HOLE;
    const bytes = encodeNode(node, used);
    const sealed = { id: fingerprint(bytes), bytes, level: node.level };
    created.push(sealed);
    return sealed.id;
  };

  return { root: await rewrite(root, g.height - 1, 0, 0, updates.length), created };
}

/** Reads one leaf: the fingerprint of block `block` (HOLE when unwritten or zero). */
export async function leafAt(root: Fingerprint, g: TreeGeometry, block: number, source: NodeSource): Promise<Fingerprint> {
  let fp = root;
  for (let level = g.height - 1; level >= 0; level--) {
    if (isHole(fp)) return HOLE;
    const node = await source.getNode(fp);
    const childSpan = span(g, level) / g.fanout;
    const slot = Math.floor(block / childSpan) % g.fanout;
    fp = Buffer.from(childAt(node, slot));
  }
  return fp;
}

/** Visits the non-hole leaves with from ≤ block < to, in block order, skipping hole subtrees. */
export async function* leaves(root: Fingerprint, g: TreeGeometry, source: NodeSource, from = 0, to = g.blocks): AsyncGenerator<LeafUpdate> {
  async function* walk(fp: Fingerprint, level: number, index: number): AsyncGenerator<LeafUpdate> {
    if (isHole(fp)) return;
    const first = index * span(g, level);
    if (first >= to || first + span(g, level) <= from) return;
    const node = await source.getNode(fp);
    // Only the slots that overlap [from, to): with 1024 slots a node, scanning them all made
    // a 4 KiB read cost ~1000 subarray+compare per level.
    const childSpan = span(g, level) / g.fanout;
    const lo = Math.max(0, Math.floor((from - first) / childSpan));
    const hi = Math.min(node.slots, Math.ceil((to - first) / childSpan));
    for (let s = lo; s < hi; s++) {
      const child = childAt(node, s);
      if (isHole(child)) continue;
      if (level === 0) {
        const block = first + s;
        if (block >= from && block < to) yield { block, fp: Buffer.from(child) };
      } else {
        yield* walk(Buffer.from(child), level - 1, index * g.fanout + s);
      }
    }
  }
  yield* walk(root, g.height - 1, 0);
}

/**
 * Visits every node of the tree once per call (depth first), then its non-hole leaves:
 * `onNode` sees node ids, `onLeaf` block fingerprints. Returning false from `onNode` skips
 * that subtree (already visited elsewhere), which makes marking many trees O(unique nodes).
 */
export async function walkTree(
  root: Fingerprint,
  source: NodeSource,
  onNode: (id: Fingerprint) => boolean | Promise<boolean>,
  onLeaf: (fp: Fingerprint) => void | Promise<void>,
): Promise<void> {
  const walk = async (fp: Fingerprint): Promise<void> => {
    if (isHole(fp)) return;
    if (!(await onNode(fp))) return;
    const node = await source.getNode(fp);
    for (const child of childrenOf(node)) {
      if (node.level === 0) await onLeaf(child.id);
      else await walk(child.id);
    }
  };
  await walk(root);
}
