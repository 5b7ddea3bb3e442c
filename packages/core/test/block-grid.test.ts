import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockCount,
  blockIndexAt,
  blockRange,
  blocksOfExtent,
  checkExtent,
  validateBlockSize,
  validateLayout,
  DEFAULT_BLOCK_SIZE,
  InvalidArgumentError,
  OutOfRangeError,
  type BlockLayout,
} from '../src/index.js';

const K = 1024;

/** Every block of a layout, in order. */
function allBlocks(layout: BlockLayout): { index: number; start: number; length: number }[] {
  const out = [];
  for (let i = 0; i < blockCount(layout); i++) out.push(blockRange(layout, i));
  return out;
}

/** Small deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('block grid without offset', () => {
  const layout: BlockLayout = { size: 10 * 4 * K + 100, blockSize: 4 * K, gridOffset: 0 };

  test('block i starts at i*blockSize and the last block is short', () => {
    const blocks = allBlocks(layout);
    assert.equal(blocks.length, 11);
    for (let i = 0; i < 10; i++) assert.deepEqual(blocks[i], { index: i, start: i * 4 * K, length: 4 * K });
    assert.deepEqual(blocks[10], { index: 10, start: 40 * K, length: 100 });
  });

  test('an exact multiple of the block size has no short block', () => {
    const l: BlockLayout = { size: 8 * DEFAULT_BLOCK_SIZE, blockSize: DEFAULT_BLOCK_SIZE, gridOffset: 0 };
    assert.equal(blockCount(l), 8);
    assert.deepEqual(blockRange(l, 7), { index: 7, start: 7 * DEFAULT_BLOCK_SIZE, length: DEFAULT_BLOCK_SIZE });
  });

  test('blockIndexAt maps offsets to blocks', () => {
    assert.equal(blockIndexAt(layout, 0), 0);
    assert.equal(blockIndexAt(layout, 4 * K - 1), 0);
    assert.equal(blockIndexAt(layout, 4 * K), 1);
    assert.equal(blockIndexAt(layout, layout.size - 1), 10);
  });
});

describe('block grid with offset', () => {
  const g = 32256; // a partition starting at sector 63
  const bs = 64 * K;
  const layout: BlockLayout = { size: g + 5 * bs + 777, blockSize: bs, gridOffset: g };

  test('block 0 is the head [0, g), later blocks start at g + (i-1)*bs, the last is short', () => {
    const blocks = allBlocks(layout);
    assert.equal(blocks.length, 7);
    assert.deepEqual(blocks[0], { index: 0, start: 0, length: g });
    for (let i = 1; i <= 5; i++) assert.deepEqual(blocks[i], { index: i, start: g + (i - 1) * bs, length: bs });
    assert.deepEqual(blocks[6], { index: 6, start: g + 5 * bs, length: 777 });
  });

  test('blockIndexAt agrees with blockRange', () => {
    assert.equal(blockIndexAt(layout, 0), 0);
    assert.equal(blockIndexAt(layout, g - 1), 0);
    assert.equal(blockIndexAt(layout, g), 1);
    assert.equal(blockIndexAt(layout, g + bs - 1), 1);
    assert.equal(blockIndexAt(layout, g + bs), 2);
    for (const b of allBlocks(layout)) {
      assert.equal(blockIndexAt(layout, b.start), b.index);
      assert.equal(blockIndexAt(layout, b.start + b.length - 1), b.index);
    }
  });

  test('a disk smaller than the grid offset is one block', () => {
    const small: BlockLayout = { size: 1000, blockSize: bs, gridOffset: g };
    assert.equal(blockCount(small), 1);
    assert.deepEqual(blockRange(small, 0), { index: 0, start: 0, length: 1000 });
  });

  test('a disk ending exactly at the grid offset is one block', () => {
    const l: BlockLayout = { size: g, blockSize: bs, gridOffset: g };
    assert.equal(blockCount(l), 1);
    assert.deepEqual(blockRange(l, 0), { index: 0, start: 0, length: g });
  });

  test('blocks tile the disk with no gaps or overlaps, for many layouts', () => {
    const rand = rng(7);
    for (let n = 0; n < 300; n++) {
      const blockSize = 2 ** (12 + Math.floor(rand() * 11));
      const gridOffset = rand() < 0.3 ? 0 : Math.floor(rand() * blockSize);
      // Whole sectors, as validateLayout requires.
      const size = 512 * (1 + Math.floor((rand() * 20 * blockSize) / 512));
      const l = validateLayout({ size, blockSize, gridOffset });
      let at = 0;
      const blocks = allBlocks(l);
      for (const b of blocks) {
        assert.equal(b.start, at, `layout ${JSON.stringify(l)} block ${b.index}`);
        assert.ok(b.length > 0 && b.length <= blockSize);
        at += b.length;
      }
      assert.equal(at, size);
    }
  });
});

describe('blocksOfExtent', () => {
  const bs = 4 * K;
  const g = 1000;
  const layout: BlockLayout = { size: g + 6 * bs + 123, blockSize: bs, gridOffset: g };

  test('a zero-length extent touches no blocks', () => {
    assert.deepEqual([...blocksOfExtent(layout, 500, 0)], []);
  });

  test('an extent inside one block', () => {
    assert.deepEqual([...blocksOfExtent(layout, g + 10, 20)], [{ index: 1, start: g, length: bs, from: 10, to: 30 }]);
  });

  test('an extent spanning the head block and several grid blocks', () => {
    const got = [...blocksOfExtent(layout, 900, 100 + bs + 5)];
    assert.deepEqual(got, [
      { index: 0, start: 0, length: g, from: 900, to: g },
      { index: 1, start: g, length: bs, from: 0, to: bs },
      { index: 2, start: g + bs, length: bs, from: 0, to: 5 },
    ]);
  });

  test('the whole disk ends with the short last block', () => {
    const got = [...blocksOfExtent(layout, 0, layout.size)];
    assert.equal(got.length, blockCount(layout));
    const last = got[got.length - 1];
    assert.deepEqual(last, { index: 7, start: g + 6 * bs, length: 123, from: 0, to: 123 });
  });

  test('pieces cover exactly the extent, in order, for random extents', () => {
    const rand = rng(42);
    for (const gridOffset of [0, 1, 511, 2048, bs - 1]) {
      const l: BlockLayout = { size: gridOffset + 9 * bs + 333, blockSize: bs, gridOffset };
      for (let n = 0; n < 400; n++) {
        const offset = Math.floor(rand() * l.size);
        const length = 1 + Math.floor(rand() * (l.size - offset));
        checkExtent(l, offset, length);
        let at = offset;
        let prev = -1;
        for (const p of blocksOfExtent(l, offset, length)) {
          assert.deepEqual({ index: p.index, start: p.start, length: p.length }, blockRange(l, p.index));
          assert.ok(p.index > prev, 'blocks in ascending order');
          prev = p.index;
          assert.ok(p.from >= 0 && p.from < p.to && p.to <= p.length, `piece ${JSON.stringify(p)}`);
          assert.equal(p.start + p.from, at, 'pieces are contiguous');
          at = p.start + p.to;
        }
        assert.equal(at, offset + length, `extent ${offset}+${length} in ${JSON.stringify(l)}`);
      }
    }
  });
});

describe('checkExtent', () => {
  const layout: BlockLayout = { size: 100 * K, blockSize: 4 * K, gridOffset: 0 };

  test('accepts extents inside the disk, up to its end', () => {
    checkExtent(layout, 0, 0);
    checkExtent(layout, 0, layout.size);
    checkExtent(layout, layout.size - 1, 1);
    checkExtent(layout, layout.size, 0);
  });

  test('rejects extents past the end with OutOfRangeError', () => {
    assert.throws(() => checkExtent(layout, 0, layout.size + 1), OutOfRangeError);
    assert.throws(() => checkExtent(layout, layout.size, 1), OutOfRangeError);
    assert.throws(() => checkExtent(layout, layout.size + 4096, 0), OutOfRangeError);
    assert.throws(() => checkExtent(layout, layout.size - 10, 11), OutOfRangeError);
  });

  test('rejects negative, fractional or unsafe offsets and lengths', () => {
    assert.throws(() => checkExtent(layout, -1, 10), OutOfRangeError);
    assert.throws(() => checkExtent(layout, 0, -1), OutOfRangeError);
    assert.throws(() => checkExtent(layout, 0.5, 1), OutOfRangeError);
    assert.throws(() => checkExtent(layout, Number.NaN, 1), OutOfRangeError);
    assert.throws(() => checkExtent(layout, 0, 2 ** 53), OutOfRangeError);
  });

  test('errors carry the out-of-range code', () => {
    assert.throws(
      () => checkExtent(layout, 0, layout.size + 1, 'write'),
      (e: unknown) => e instanceof OutOfRangeError && e.code === 'out-of-range' && /write/.test(e.message),
    );
  });
});

describe('validateBlockSize and validateLayout', () => {
  test('accepts powers of two from 4 KiB to 4 MiB', () => {
    for (let bs = 4 * K; bs <= 4 * K * K; bs *= 2) assert.equal(validateBlockSize(bs), bs);
  });

  test('rejects non-powers-of-two, too small and too large sizes', () => {
    for (const bs of [0, -4096, 3 * K, 48 * K, 65535, 65537, 2 * K, 512, 1, 8 * K * K, 1.5 * 4096, Number.NaN, Infinity]) {
      assert.throws(() => validateBlockSize(bs), InvalidArgumentError, `block size ${bs}`);
    }
  });

  test('validateLayout rejects bad sizes and grid offsets', () => {
    const ok: BlockLayout = { size: 1 << 20, blockSize: 64 * K, gridOffset: 0 };
    assert.equal(validateLayout(ok), ok);
    assert.equal(validateLayout({ ...ok, gridOffset: 64 * K - 1 }).gridOffset, 64 * K - 1);
    assert.throws(() => validateLayout({ ...ok, size: 0 }), InvalidArgumentError);
    assert.throws(() => validateLayout({ ...ok, size: -1 }), InvalidArgumentError);
    assert.throws(() => validateLayout({ ...ok, size: 1.5 }), InvalidArgumentError);
    assert.throws(() => validateLayout({ ...ok, size: 1000 }), /disk size 1000 is not a whole number of 512-byte sectors/);
    assert.throws(() => validateLayout({ ...ok, gridOffset: -1 }), InvalidArgumentError);
    assert.throws(() => validateLayout({ ...ok, gridOffset: 64 * K }), InvalidArgumentError);
    assert.throws(() => validateLayout({ ...ok, gridOffset: 0.5 }), InvalidArgumentError);
    assert.throws(() => validateLayout({ ...ok, blockSize: 1000 }), InvalidArgumentError);
  });
});
