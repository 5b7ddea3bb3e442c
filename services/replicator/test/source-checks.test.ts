/** The replicator's tree-shape expectations accept every honest tree and refuse a misplaced node. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyUpdates, childAt, decodeNodeChecked, fingerprint, HOLE, isHole, toHex, treeGeometry, type Fingerprint, type TreeNode } from '@vmferry/core';
import { checkNodeShape, childExpectation, rootExpectation, type NodeExpectation } from '../src/source-checks.js';

const BLOCK = 4096;

async function tree(blocks: number, written: readonly number[]): Promise<{ root: Fingerprint; nodes: Map<string, TreeNode> }> {
  const nodes = new Map<string, TreeNode>();
  const g = treeGeometry(blocks);
  const updates = [...new Set(written)].sort((x, y) => x - y).map((block) => ({ block, fp: fingerprint(Buffer.from(`block ${block}`)) }));
  const r = await applyUpdates(HOLE, g, updates, { getNode: (fp) => Promise.resolve(nodes.get(toHex(fp)) as TreeNode) });
  for (const n of r.created) nodes.set(toHex(n.id), decodeNodeChecked(n.id, n.bytes));
  return { root: r.root, nodes };
}

/** Walks like the session does: every node checked against where it sits. */
function walk(nodes: Map<string, TreeNode>, fp: Fingerprint, e: NodeExpectation): number {
  const node = nodes.get(toHex(fp)) as TreeNode;
  checkNodeShape('siteA', fp, node, e);
  let seen = 1;
  if (node.level === 0) return seen;
  for (let s = 0; s < node.slots; s++) {
    const child = childAt(node, s);
    if (!isHole(child)) seen += walk(nodes, Buffer.from(child), childExpectation(e, s, node.slots));
  }
  return seen;
}

describe('source tree-shape expectations', () => {
  for (const blocks of [1, 5, 1024, 1025, 1024 * 1024, 1024 * 1024 + 5, 3 * 1024 * 1024 + 1]) {
    test(`an honest tree of ${blocks} blocks passes, right edge included`, async () => {
      const last = blocks - 1;
      const t = await tree(blocks, [0, Math.floor(blocks / 2), Math.max(0, last - 1024), last]);
      const disk = { index: 0, size: blocks * BLOCK, blockSize: BLOCK, gridOffset: 0, root: toHex(t.root) };
      assert.equal(walk(t.nodes, t.root, rootExpectation(disk)), t.nodes.size);
    });
  }

  test('the root of a smaller disk presented as a bigger one is refused, naming the source site', async () => {
    const t = await tree(256, [0, 255]);
    const disk = { index: 0, size: 1024 ** 4, blockSize: 64 * 1024, gridOffset: 0, root: toHex(t.root) };
    assert.throws(() => walk(t.nodes, t.root, rootExpectation(disk)), /source site siteA sent a tree node of level 0 with 256 slots where .* level 2 with 16/);
  });
});
