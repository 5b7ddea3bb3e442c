import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyUpdates,
  ChunkCorruptError,
  chunkMatches,
  CODEC_RAW,
  CODEC_ZSTD,
  childrenOf,
  decodeNodeChecked,
  fingerprint,
  HOLE,
  leaves,
  nodeFromRecord,
  parseRecord,
  rawPayload,
  rawRecord,
  recordBytes,
  toHex,
  treeGeometry,
  verifyChunk,
  walkLevels,
  zstdRecord,
  type EncodedNode,
  type Fingerprint,
  type NodeSource,
  type TreeNode,
} from '../src/index.js';

class MapSource implements NodeSource {
  readonly nodes = new Map<string, TreeNode>();
  add(created: readonly EncodedNode[]): void {
    for (const n of created) this.nodes.set(toHex(n.id), decodeNodeChecked(n.id, n.bytes));
  }
  getNode(fp: Fingerprint): Promise<TreeNode> {
    const n = this.nodes.get(toHex(fp));
    if (!n) return Promise.reject(new Error('absent'));
    return Promise.resolve(n);
  }
}

const leafFp = (i: number): Fingerprint => fingerprint(Buffer.from(`block ${i}`));

async function tree(blocks: number[], total: number): Promise<{ root: Fingerprint; source: MapSource }> {
  const source = new MapSource();
  const updates = blocks.map((block) => ({ block, fp: leafFp(block) }));
  const { root, created } = await applyUpdates(HOLE, treeGeometry(total), updates, source);
  source.add(created);
  return { root, source };
}

describe('walkLevels', () => {
  test('visits every node once, top level first, and every leaf of the tree', async () => {
    const { root, source } = await tree([0, 5, 1023, 1024, 2_000_000, 3_000_000], 4_000_000);
    const levels: number[] = [];
    const seenLeaves: string[] = [];
    await walkLevels([root, root], {
      load: async (ids, found) => {
        for (const id of ids) found({ id, node: await source.getNode(id) });
      },
      onNode: (n) => levels.push(n.node.level),
      onLeaf: (id) => seenLeaves.push(toHex(id)),
    });
    assert.deepEqual(
      levels,
      [...levels].sort((a, b) => b - a),
      'levels come top-down',
    );
    assert.equal(levels.length, source.nodes.size, 'each node once, though the root was given twice');
    const expected: string[] = [];
    for await (const l of leaves(root, treeGeometry(4_000_000), source)) expected.push(toHex(l.fp));
    assert.deepEqual(seenLeaves.sort(), expected.sort());
  });

  test('select prunes: an unselected node is neither loaded nor descended into', async () => {
    const { root, source } = await tree([0, 2_000_000], 4_000_000);
    const loaded: number[] = [];
    await walkLevels([root, HOLE], {
      select: (ids) => Promise.resolve(ids.filter((id) => id.equals(root))),
      load: async (ids, found) => {
        for (const id of ids) {
          const node = await source.getNode(id);
          loaded.push(node.level);
          found({ id, node });
        }
      },
    });
    assert.equal(loaded.length, 1, 'only the root');
  });

  test('childrenOf yields the non-hole children with their slots', async () => {
    const { root, source } = await tree([3, 7], 1024);
    const node = await source.getNode(root);
    assert.deepEqual(
      [...childrenOf(node)].map((c) => c.slot),
      [3, 7],
    );
  });
});

describe('stored records and chunk checks', () => {
  test('raw and zstd records parse back to their codec and payload', () => {
    const raw = rawRecord(Buffer.from('abc'));
    assert.equal(parseRecord(raw)?.codec, CODEC_RAW);
    assert.equal(rawPayload(raw)?.toString(), 'abc');
    const z = zstdRecord(Buffer.from('frame'));
    assert.equal(parseRecord(z)?.codec, CODEC_ZSTD);
    assert.equal(rawPayload(z), undefined, 'a zstd record has no raw payload');
    assert.equal(recordBytes(z, (f) => Buffer.concat([f, Buffer.from('!')]))?.toString(), 'frame!');
    assert.equal(parseRecord(Buffer.of(7, 1, 2)), undefined, 'an unknown codec');
    assert.equal(parseRecord(Buffer.alloc(0)), undefined, 'an empty record');
  });

  test('verification refuses bytes that do not hash to their id, and a node not stored raw', async () => {
    const data = Buffer.from('chunk');
    const id = fingerprint(data);
    assert.ok(chunkMatches(id, data));
    assert.throws(() => verifyChunk(id, Buffer.from('chunk!')), ChunkCorruptError);
    const { root, source } = await tree([1], 1024);
    const bytes = (await applyUpdates(HOLE, treeGeometry(1024), [{ block: 1, fp: leafFp(1) }], source)).created[0]?.bytes as Buffer;
    assert.equal(nodeFromRecord(root, rawRecord(bytes)).slots, 1024);
    assert.throws(() => nodeFromRecord(root, zstdRecord(bytes)), ChunkCorruptError);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    assert.throws(() => nodeFromRecord(root, rawRecord(flipped)), ChunkCorruptError);
  });
});
