/**
 * The soak's model of one vDisk's bytes: an immutable, copy-on-write array of 64 KiB blocks.
 * Snapshots of the model share every block they have in common with the live image, so a
 * client can keep many snapshots' exact expected content in little memory.
 */
import { createHash } from 'node:crypto';

/** Model block size; independent of the node's grid (its blocks may be offset). */
export const MODEL_BLOCK = 64 * 1024;

/** An immutable disk image; `null` blocks read as zeros. */
export class DiskImage {
  private hash: string | undefined;

  private constructor(
    readonly size: number,
    private readonly blocks: readonly (Buffer | null)[],
  ) {}

  /** An all-zero image of `size` bytes. */
  static empty(size: number): DiskImage {
    return new DiskImage(size, new Array<Buffer | null>(Math.ceil(size / MODEL_BLOCK)).fill(null));
  }

  /**
   * The image whose bytes are `bytes`, reusing the blocks of `candidates` that hold the same
   * bytes (so adopting an exported disk after an interrupted write keeps the sharing).
   */
  static adopt(bytes: Buffer, candidates: readonly DiskImage[] = []): DiskImage {
    const blocks: (Buffer | null)[] = [];
    for (let i = 0, off = 0; off < bytes.length; i++, off += MODEL_BLOCK) {
      const part = bytes.subarray(off, Math.min(off + MODEL_BLOCK, bytes.length));
      const reuse = candidates.map((c) => c.blocks[i]).find((b) => b !== undefined && b !== null && b.equals(part));
      blocks.push(reuse ?? (isZero(part) ? null : Buffer.from(part)));
    }
    return new DiskImage(bytes.length, blocks);
  }

  /** A new image with `data` written at `offset` (the bytes past the end are dropped). */
  write(offset: number, data: Buffer): DiskImage {
    const blocks = [...this.blocks];
    const end = Math.min(offset + data.length, this.size);
    for (let i = Math.floor(offset / MODEL_BLOCK); i * MODEL_BLOCK < end; i++) {
      const start = i * MODEL_BLOCK;
      const block = this.block(i);
      const from = Math.max(offset, start);
      const to = Math.min(end, start + block.length);
      data.copy(block, from - start, from - offset, to - offset);
      blocks[i] = isZero(block) ? null : block;
    }
    return new DiskImage(this.size, blocks);
  }

  /** Block `i` as a fresh, writable copy. */
  private block(i: number): Buffer {
    const len = Math.min(MODEL_BLOCK, this.size - i * MODEL_BLOCK);
    const b = this.blocks[i];
    return b ? Buffer.from(b) : Buffer.alloc(len);
  }

  /** The image's bytes. */
  toBuffer(): Buffer {
    const out = Buffer.alloc(this.size);
    this.blocks.forEach((b, i) => b?.copy(out, i * MODEL_BLOCK));
    return out;
  }

  /** sha256 (hex) of the image's bytes, computed once. */
  sha256(): string {
    if (this.hash === undefined) {
      const h = createHash('sha256');
      const zero = Buffer.alloc(MODEL_BLOCK);
      this.blocks.forEach((b, i) => h.update(b ?? zero.subarray(0, Math.min(MODEL_BLOCK, this.size - i * MODEL_BLOCK))));
      this.hash = h.digest('hex');
    }
    return this.hash;
  }
}

/** True when every byte of `b` is zero. */
export function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Checks an exported disk after a write whose outcome is unknown: the node commits a write
 * block by block on its own grid (`gridOffset`, `blockSize`), so each grid block must hold
 * either its old or its new bytes. Returns the first offending byte range, or undefined.
 */
export function blockwiseOldOrNew(got: Buffer, old: Buffer, next: Buffer, gridOffset: number, blockSize: number): { start: number; end: number } | undefined {
  if (got.length !== old.length) return { start: 0, end: Math.max(got.length, old.length) };
  const ranges: [number, number][] = gridOffset > 0 ? [[0, gridOffset]] : [];
  for (let s = gridOffset; s < got.length; s += blockSize) ranges.push([s, Math.min(s + blockSize, got.length)]);
  for (const [start, end] of ranges) {
    const g = got.subarray(start, end);
    if (!g.equals(old.subarray(start, end)) && !g.equals(next.subarray(start, end))) return { start, end };
  }
  return undefined;
}
