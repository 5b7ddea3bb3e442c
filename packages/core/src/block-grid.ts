import { InvalidArgumentError, OutOfRangeError } from './errors.js';
import { SECTOR } from './partition.js';

export const DEFAULT_BLOCK_SIZE = 64 * 1024;
export const MIN_BLOCK_SIZE = 4 * 1024;
export const MAX_BLOCK_SIZE = 4 * 1024 * 1024;

/**
 * How a vDisk's bytes are cut into blocks. With a grid offset g > 0, block 0 is a short head
 * block [0, g) and block i ≥ 1 starts at g + (i-1)·blockSize; with g = 0 block i starts at
 * i·blockSize. The last block may be short. Aligning the grid to a partition's start makes a
 * filesystem block map to the same chunk whatever sector its partition starts at.
 */
export interface BlockLayout {
  readonly size: number;
  readonly blockSize: number;
  readonly gridOffset: number;
}

export interface BlockRange {
  readonly index: number;
  readonly start: number;
  readonly length: number;
}

export function validateBlockSize(blockSize: number): number {
  const powerOfTwo = Number.isInteger(blockSize) && blockSize > 0 && (blockSize & (blockSize - 1)) === 0;
  if (!powerOfTwo || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw new InvalidArgumentError(`block size ${blockSize} is invalid: use a power of two from 4 KiB to 4 MiB (default 64 KiB)`);
  }
  return blockSize;
}

/** Checks a layout; throws InvalidArgumentError naming the bad field. */
export function validateLayout(layout: BlockLayout): BlockLayout {
  validateBlockSize(layout.blockSize);
  if (!Number.isSafeInteger(layout.size) || layout.size <= 0) {
    throw new InvalidArgumentError(`disk size ${layout.size} is invalid: it must be a positive number of bytes`);
  }
  // A vDisk is a block device: guests and hypervisors address it in 512-byte sectors.
  if (layout.size % SECTOR !== 0) {
    throw new InvalidArgumentError(`disk size ${layout.size} is not a whole number of ${SECTOR}-byte sectors`);
  }
  if (!Number.isInteger(layout.gridOffset) || layout.gridOffset < 0 || layout.gridOffset >= layout.blockSize) {
    throw new InvalidArgumentError(`grid offset ${layout.gridOffset} must be in [0, block size)`);
  }
  return layout;
}

function headBlocks(layout: BlockLayout): number {
  return layout.gridOffset > 0 ? 1 : 0;
}

export function blockCount(layout: BlockLayout): number {
  const head = headBlocks(layout);
  if (layout.size <= layout.gridOffset) return 1;
  return head + Math.ceil((layout.size - layout.gridOffset) / layout.blockSize);
}

export function blockIndexAt(layout: BlockLayout, offset: number): number {
  if (offset < layout.gridOffset) return 0;
  return headBlocks(layout) + Math.floor((offset - layout.gridOffset) / layout.blockSize);
}

export function blockRange(layout: BlockLayout, index: number): BlockRange {
  const head = headBlocks(layout);
  const start = index < head ? 0 : layout.gridOffset + (index - head) * layout.blockSize;
  const end = index < head ? layout.gridOffset : start + layout.blockSize;
  return { index, start, length: Math.min(end, layout.size) - start };
}

/** Throws OutOfRangeError unless [offset, offset+length) lies inside the disk. */
export function checkExtent(layout: BlockLayout, offset: number, length: number, what = 'extent'): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new OutOfRangeError(`${what} offset ${offset} length ${length} is not a valid byte range`);
  }
  if (offset + length > layout.size) {
    throw new OutOfRangeError(`${what} [${offset}, ${offset + length}) ends past the end of the ${layout.size}-byte disk`);
  }
}

/** The blocks an extent touches, in order, each with the part of the block it covers. */
export function* blocksOfExtent(layout: BlockLayout, offset: number, length: number): Generator<BlockRange & { readonly from: number; readonly to: number }> {
  if (length === 0) return;
  checkExtent(layout, offset, length);
  const end = offset + length;
  for (let i = blockIndexAt(layout, offset); ; i++) {
    const r = blockRange(layout, i);
    const from = Math.max(offset, r.start) - r.start;
    const to = Math.min(end, r.start + r.length) - r.start;
    yield { ...r, from, to };
    if (r.start + r.length >= end) return;
  }
}
