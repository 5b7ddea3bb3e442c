/*
 * Pages: the unit of the live page overlay. A page is PAGE_SIZE bytes counted from its
 * block's start (not the disk's), so pages follow the block grid, which follows the guest's
 * partition: a guest filesystem's 4 KiB blocks are whole pages even on a disk whose grid
 * starts at sector 63. A block's last page is shorter when the block is.
 */
import { StoreDamagedError } from './errors.js';
import { isZero } from './zero.js';

export const PAGE_SIZE = 4096;

/** A page of a block: its index and its byte range within the block. */
export interface PageSpan {
  readonly page: number;
  readonly start: number;
  readonly length: number;
}

/** One stored page: its index and bytes (empty for a page of zeros). */
export interface PageData {
  readonly page: number;
  readonly data: Buffer;
}

export function pageSpan(blockLength: number, page: number): PageSpan {
  const start = page * PAGE_SIZE;
  return { page, start, length: Math.min(PAGE_SIZE, blockLength - start) };
}

/** The pages a write of [from, to) (block-relative) touches, with whether it covers each whole. */
export function pagesTouched(blockLength: number, from: number, to: number): (PageSpan & { readonly whole: boolean })[] {
  const out: (PageSpan & { whole: boolean })[] = [];
  for (let p = Math.floor(from / PAGE_SIZE); p * PAGE_SIZE < to; p++) {
    const span = pageSpan(blockLength, p);
    out.push({ ...span, whole: from <= span.start && to >= span.start + span.length });
  }
  return out;
}

/** The stored form of a page's bytes: empty when they are all zeros. */
export function storedPage(data: Buffer): Buffer {
  return isZero(data) ? Buffer.alloc(0) : data;
}

/** Writes `pages` over `block` in place (a block's base content: its chunk, or zeros). */
export function applyPages(block: Buffer, pages: readonly PageData[]): Buffer {
  for (const p of pages) {
    const span = pageSpan(block.length, p.page);
    if (span.length <= 0 || (p.data.length !== 0 && p.data.length !== span.length)) {
      throw new StoreDamagedError(`overlay page ${p.page} holds ${p.data.length} bytes; a block of ${block.length} bytes has no such page`);
    }
    if (p.data.length === 0) block.fill(0, span.start, span.start + span.length);
    else p.data.copy(block, span.start);
  }
  return block;
}
