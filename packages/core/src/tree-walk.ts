/*
 * Walking vDisk trees, level by level. The walker is pure: it never reads a node itself but
 * asks the caller's `load` for one level's nodes at a time, so the caller decides where nodes
 * come from (the local store, a peer), how they are verified, and how a level is batched and
 * parallelised (the replicator fetches a level in batches over several streams). Each level's
 * ids are distinct; `select` may prune it (a subtree the target already has is skipped whole).
 *
 * GC's mark walks level by level too (services/storage-node/src/gc.ts). Depth-first visits
 * over a NodeSource (verify's attribution) are `walkTree` in tree.ts; both iterate children
 * with `childrenOf`.
 */
import { isHole, toHex, type Fingerprint } from './fingerprint.js';
import { childAt, type TreeNode } from './tree-codec.js';

/** A node a walk met: its id and decoded contents. */
export interface WalkedNode {
  readonly id: Fingerprint;
  readonly node: TreeNode;
}

/** One non-hole child of a node. */
export interface NodeChild {
  readonly slot: number;
  readonly id: Fingerprint;
}

/** The non-hole children of `node` in slot order (ids copied out of the node's buffer). */
export function* childrenOf(node: TreeNode): Generator<NodeChild> {
  for (let slot = 0; slot < node.slots; slot++) {
    const child = childAt(node, slot);
    if (!isHole(child)) yield { slot, id: Buffer.from(child) };
  }
}

/** What a level-by-level walk asks of its caller. */
export interface LevelWalk {
  /** Of one level's distinct node ids, those to load and descend into (default: all). */
  select?(ids: readonly Fingerprint[]): Promise<readonly Fingerprint[]>;
  /**
   * Loads `ids`, calling `found` once for each node as it arrives (in any order), and
   * resolves when all are loaded. Rejecting (a missing or corrupt node) ends the walk.
   */
  load(ids: readonly Fingerprint[], found: (n: WalkedNode) => void): Promise<void>;
  /** Sees each loaded node before its children are queued; throwing ends the walk. */
  onNode?(n: WalkedNode): void;
  /** Sees each non-hole child of a level-0 node: a data chunk (repeats across nodes). */
  onLeaf?(id: Fingerprint, parent: WalkedNode, slot: number): void;
}

/**
 * Walks the trees under `roots` top-down, one level at a time (roots of different heights
 * are fine: each node's children are queued for the next round). Holes are skipped.
 * Rejects with whatever `select`, `load` or the callbacks throw.
 */
export async function walkLevels(roots: Iterable<Fingerprint>, walk: LevelWalk): Promise<void> {
  let frontier = new Map<string, Fingerprint>();
  for (const r of roots) if (!isHole(r)) frontier.set(toHex(r), r);
  while (frontier.size > 0) {
    const ids = [...frontier.values()];
    const chosen = walk.select ? await walk.select(ids) : ids;
    if (chosen.length === 0) break;
    const next = new Map<string, Fingerprint>();
    await walk.load(chosen, (n) => {
      walk.onNode?.(n);
      for (const c of childrenOf(n.node)) {
        if (n.node.level === 0) walk.onLeaf?.(c.id, n, c.slot);
        else next.set(toHex(c.id), c.id);
      }
    });
    frontier = next;
  }
}
