import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  childAt,
  decodeNode,
  decodeNodeChecked,
  emptyNode,
  encodeNode,
  fingerprint,
  isEmptyNode,
  sealNode,
  setChild,
  ChunkCorruptError,
  FINGERPRINT_BYTES,
  HOLE,
  MAX_NODE_SLOTS,
  TREE_FANOUT,
  TREE_FORMAT_VERSION,
  type TreeNode,
} from '../src/index.js';

const HEADER = 12;
const fp = (i: number): Buffer => fingerprint(Buffer.from(`child-${i}`));

function nodeWith(level: number, slots: number, used: readonly number[]): TreeNode {
  const n = emptyNode(level, slots);
  for (const s of used) setChild(n, s, fp(s));
  return n;
}

function assertCorrupt(bytes: Uint8Array, why: string): void {
  assert.throws(
    () => decodeNode(bytes, 'ab'.repeat(32)),
    (e: unknown) => e instanceof ChunkCorruptError && e.code === 'data-loss' && e.chunkId === 'ab'.repeat(32),
    why,
  );
}

describe('tree node codec', () => {
  test('a dense node round trips and uses the dense form', () => {
    const all = Array.from({ length: 16 }, (_, i) => i);
    const node = nodeWith(0, 16, all);
    const bytes = encodeNode(node);
    assert.equal(bytes[5], 0, 'dense form');
    assert.equal(bytes.length, HEADER + 16 * FINGERPRINT_BYTES);
    const back = decodeNode(bytes);
    assert.equal(back.level, 0);
    assert.equal(back.slots, 16);
    assert.ok(back.children.equals(node.children));
  });

  test('a sparse node round trips and uses the sparse form', () => {
    const node = nodeWith(3, 1024, [0, 17, 1023]);
    const bytes = encodeNode(node);
    assert.equal(bytes[5], 1, 'sparse form');
    assert.equal(bytes.length, HEADER + 4 + 3 * (4 + FINGERPRINT_BYTES));
    const back = decodeNode(bytes);
    assert.equal(back.level, 3);
    assert.equal(back.slots, 1024);
    assert.ok(back.children.equals(node.children));
    assert.ok(childAt(back, 17).equals(fp(17)));
    assert.ok(childAt(back, 16).equals(HOLE));
  });

  test('header fields are laid out as documented', () => {
    const bytes = encodeNode(nodeWith(2, 300, [5]));
    assert.deepEqual([...bytes.subarray(0, 3)], [0x56, 0x46, 0x54]); // 'VFT'
    assert.equal(bytes[3], TREE_FORMAT_VERSION);
    assert.equal(bytes[4], 2);
    assert.equal(bytes.readUInt16LE(6), 0);
    assert.equal(bytes.readUInt32LE(8), 300);
    assert.equal(bytes.readUInt32LE(HEADER), 1);
    assert.equal(bytes.readUInt32LE(HEADER + 4), 5);
    assert.ok(bytes.subarray(HEADER + 8, HEADER + 8 + 32).equals(fp(5)));
  });

  test('the encoder picks whichever form is smaller, at every fill level', () => {
    const slots = 64;
    for (let used = 0; used <= slots; used++) {
      const node = nodeWith(
        1,
        slots,
        Array.from({ length: used }, (_, i) => (i * 7) % slots).sort((a, b) => a - b),
      );
      // (i*7)%64 visits 64 distinct slots, so `used` distinct slots are set
      const bytes = encodeNode(node);
      const dense = HEADER + slots * FINGERPRINT_BYTES;
      const sparse = HEADER + 4 + used * (4 + FINGERPRINT_BYTES);
      assert.equal(bytes.length, Math.min(dense, sparse), `used=${used}`);
      assert.equal(bytes[5], sparse < dense ? 1 : 0, `used=${used}`);
      assert.ok(decodeNode(bytes).children.equals(node.children), `used=${used}`);
    }
  });

  test('random nodes round trip and re-encode to the same bytes', () => {
    let seed = 1;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 200; n++) {
      const slots = 1 + Math.floor(rand() * 1024);
      const density = rand();
      const used: number[] = [];
      for (let s = 0; s < slots; s++) if (rand() < density) used.push(s);
      const node = nodeWith(Math.floor(rand() * 5), slots, used);
      const bytes = encodeNode(node);
      const back = decodeNode(bytes);
      assert.equal(back.level, node.level);
      assert.equal(back.slots, node.slots);
      assert.ok(back.children.equals(node.children));
      assert.ok(encodeNode(back).equals(bytes), 'one node has exactly one encoding');
    }
  });

  test('decodes from a view into a larger buffer', () => {
    const bytes = encodeNode(nodeWith(0, 10, [1, 2]));
    const big = Buffer.concat([Buffer.from('junk'), bytes, Buffer.from('more junk')]);
    const view = new Uint8Array(big.buffer, big.byteOffset + 4, bytes.length);
    assert.ok(decodeNode(view).children.equals(nodeWith(0, 10, [1, 2]).children));
  });

  test('the decoded node does not alias the input bytes', () => {
    const bytes = encodeNode(nodeWith(0, 4, [0, 1, 2, 3]));
    const back = decodeNode(bytes);
    bytes.fill(0xff, HEADER);
    assert.ok(childAt(back, 0).equals(fp(0)));
  });

  test('isEmptyNode and sealNode', () => {
    assert.ok(isEmptyNode(emptyNode(0, 8)));
    assert.ok(!isEmptyNode(nodeWith(0, 8, [7])));
    const node = nodeWith(0, 8, [7]);
    const sealed = sealNode(node);
    assert.ok(sealed.bytes.equals(encodeNode(node)));
    assert.ok(sealed.id.equals(fingerprint(sealed.bytes)));
    assert.equal(sealed.level, 0);
    assert.ok(decodeNodeChecked(sealed.id, sealed.bytes).children.equals(node.children));
  });
});

describe('tree node codec rejects malformed bytes with ChunkCorruptError', () => {
  const dense = encodeNode(nodeWith(0, 8, [0, 1, 2, 3, 4, 5, 6, 7]));
  const sparse = encodeNode(nodeWith(1, 1024, [3, 9, 500]));

  const mutate = (b: Buffer, f: (c: Buffer) => void): Buffer => {
    const c = Buffer.from(b);
    f(c);
    return c;
  };

  test('bad magic', () => {
    assertCorrupt(
      mutate(dense, (c) => (c[0] = 0x57)),
      'magic byte 0',
    );
    assertCorrupt(
      mutate(sparse, (c) => (c[2] = 0)),
      'magic byte 2',
    );
    assertCorrupt(Buffer.from('hello, this is not a tree node at all'), 'text');
  });

  test('wrong version', () => {
    assertCorrupt(
      mutate(dense, (c) => (c[3] = 2)),
      'version 2',
    );
    assertCorrupt(
      mutate(sparse, (c) => (c[3] = 0)),
      'version 0',
    );
  });

  test('unknown form', () => {
    assertCorrupt(
      mutate(dense, (c) => (c[5] = 2)),
      'form 2',
    );
  });

  test('zero slots', () => {
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(0, 8)),
      'slots 0',
    );
  });

  test('truncated or padded bytes, at every length', () => {
    for (const full of [dense, sparse]) {
      for (let len = 0; len < full.length; len++) {
        assertCorrupt(full.subarray(0, len), `truncated to ${len} of ${full.length}`);
      }
      assertCorrupt(Buffer.concat([full, Buffer.alloc(1)]), 'one byte too long');
      assertCorrupt(Buffer.concat([full, Buffer.alloc(36)]), 'one sparse entry too long');
    }
    assertCorrupt(Buffer.alloc(0), 'empty');
  });

  test('a slot count far larger than the bytes hold', () => {
    assertCorrupt(
      mutate(dense, (c) => c.writeUInt32LE(0xffffffff, 8)),
      'dense slots 2^32-1',
    );
    assertCorrupt(
      mutate(dense, (c) => c.writeUInt32LE(9, 8)),
      'dense slots 9 for 8 children',
    );
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(0xffffffff, HEADER)),
      'sparse count 2^32-1',
    );
    // A well-formed sparse body claiming an enormous node must not make the decoder allocate it.
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(0xffffffff, 8)),
      'sparse slots 2^32-1',
    );
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(MAX_NODE_SLOTS + 1, 8)),
      'sparse slots fanout+1',
    );
  });

  test('the largest legal node (fanout slots) decodes', () => {
    assert.equal(MAX_NODE_SLOTS, TREE_FANOUT);
    const full = nodeWith(
      0,
      MAX_NODE_SLOTS,
      Array.from({ length: MAX_NODE_SLOTS }, (_, i) => i),
    );
    assert.ok(decodeNode(encodeNode(full)).children.equals(full.children));
  });

  test('sparse slots out of order, repeated or out of range', () => {
    const at = (i: number): number => HEADER + 4 + i * 36;
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(600, at(1))),
      'descending',
    );
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(3, at(1))),
      'repeated',
    );
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(1024, at(2))),
      'slot == slots',
    );
    assertCorrupt(
      mutate(sparse, (c) => c.writeUInt32LE(0xffffffff, at(2))),
      'slot 2^32-1',
    );
  });

  test('decodeNodeChecked names the chunk in the error', () => {
    const id = fingerprint(Buffer.from('x'));
    assert.throws(
      () => decodeNodeChecked(id, Buffer.from('nope')),
      (e: unknown) => e instanceof ChunkCorruptError && e.chunkId === id.toString('hex'),
    );
  });
});
