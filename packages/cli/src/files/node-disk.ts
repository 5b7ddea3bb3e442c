/*
 * A read-only view of one vDisk through the node's ReadDisk calls, for the filesystem
 * libraries: random reads of the ranges they ask for, never the whole disk. Reads are served
 * from a page cache; a run of sequential reads (a file's data) fetches ahead, at most half as
 * many bytes as the run has consumed so far (capped), so prefetch adds at most half of what a
 * reader asked for. A random read (metadata: inodes, directory blocks, a small file) fetches
 * the whole vDisk block around it: the node decodes whole blocks (chunks) anyway, and the
 * neighbours are often the next inodes or files asked for. Every byte fetched from the node,
 * and every vDisk block touched, is counted for `--stats`.
 */
import { Disk, type ReadResult, type WriteResult } from 'file-disk';
import { blockIndexAt, blockRange, FailedPreconditionError, OutOfRangeError, type BlockLayout } from '@vmferry/core';
import type { StorageNodeClient } from '@vmferry/grpc-edge';

/** Cache page: the smallest unit fetched (a 4 KiB filesystem block). */
export const PAGE_BYTES = 4096;
/** Most bytes fetched ahead of a sequential run. */
const MAX_READAHEAD_BYTES = 4 * 1024 * 1024;
/** Pages kept (64 MiB); the least recently used are dropped first. */
const CACHE_PAGES = 16384;

/** What reading cost: bytes and calls that went to the node. */
export interface DiskReadStats {
  /** Bytes the node was asked for (data and holes). */
  bytesFetched: number;
  /** ReadDisk calls made. */
  calls: number;
  /** Reads the filesystem library made (served from cache or fetched). */
  reads: number;
  /** Distinct vDisk blocks the fetches covered: at most the chunks the node read from its store. */
  blocksTouched: number;
  /** blocksTouched × block size: at most the bytes the node decoded (its cache and holes make it less). */
  storeBytes: number;
}

export interface DiskTarget extends BlockLayout {
  readonly ref: string;
  readonly diskIndex: number;
}

export class NodeDisk extends Disk {
  readonly stats: DiskReadStats = { bytesFetched: 0, calls: 0, reads: 0, blocksTouched: 0, storeBytes: 0 };
  private readonly pages = new Map<number, Buffer>();
  private readonly blocks = new Set<number>();
  /** Where the last read ended, and how many bytes the current sequential run has read. */
  private runEnd = -1;
  private runBytes = 0;

  constructor(
    private readonly client: StorageNodeClient,
    readonly target: DiskTarget,
  ) {
    super(true, false, false, false);
  }

  protected override _getCapacity(): Promise<number> {
    return Promise.resolve(this.target.size);
  }

  protected override async _read(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<ReadResult> {
    this.stats.reads++;
    const end = Math.min(fileOffset + length, this.target.size);
    if (fileOffset < 0 || fileOffset > this.target.size)
      throw new OutOfRangeError(`read at ${fileOffset} is outside vDisk ${this.target.diskIndex} of ${this.target.ref} (${this.target.size} bytes)`);
    this.runBytes = fileOffset === this.runEnd ? this.runBytes + (end - fileOffset) : end - fileOffset;
    this.runEnd = end;
    await this.ensure(fileOffset, end);
    for (let at = fileOffset; at < end;) {
      const page = Math.floor(at / PAGE_BYTES);
      const bytes = this.touch(page);
      const inPage = at - page * PAGE_BYTES;
      const n = Math.min(end - at, PAGE_BYTES - inPage);
      bytes.copy(buffer, bufferOffset + (at - fileOffset), inPage, inPage + n);
      at += n;
    }
    return { bytesRead: end - fileOffset, buffer };
  }

  protected override _write(): Promise<WriteResult> {
    return Promise.reject(new FailedPreconditionError('file-level restore opens vDisks read-only'));
  }

  protected override _flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Fetches the pages of [from, to) not cached, plus read-ahead for a sequential run. */
  private async ensure(from: number, to: number): Promise<void> {
    const first = Math.floor(from / PAGE_BYTES);
    const last = Math.ceil(to / PAGE_BYTES);
    let missingFrom = -1;
    let missingTo = -1;
    for (let p = first; p < last; p++) {
      if (this.pages.has(p)) continue;
      if (missingFrom < 0) missingFrom = p;
      missingTo = p + 1;
    }
    if (missingFrom < 0) return;
    const sequential = this.runBytes > to - from;
    if (!sequential) {
      // The whole vDisk block(s) around a random read.
      missingFrom = Math.floor(blockRange(this.target, blockIndexAt(this.target, missingFrom * PAGE_BYTES)).start / PAGE_BYTES);
      const last = blockRange(this.target, blockIndexAt(this.target, Math.min(missingTo * PAGE_BYTES, this.target.size) - 1));
      missingTo = Math.max(missingTo, Math.ceil((last.start + last.length) / PAGE_BYTES));
    }
    const ahead = sequential ? Math.ceil(Math.min(this.runBytes / 2, MAX_READAHEAD_BYTES) / PAGE_BYTES) : 0;
    const lastPage = Math.ceil(this.target.size / PAGE_BYTES);
    let stop = Math.min(lastPage, missingTo + ahead);
    // Read-ahead stops at the first page already cached: no byte is fetched twice.
    for (let p = missingTo; p < stop; p++) {
      if (this.pages.has(p)) {
        stop = p;
        break;
      }
    }
    await this.fetch(missingFrom, stop);
  }

  private async fetch(firstPage: number, endPage: number): Promise<void> {
    const offset = firstPage * PAGE_BYTES;
    const length = Math.min(endPage * PAGE_BYTES, this.target.size) - offset;
    const bytes = Buffer.alloc(endPage * PAGE_BYTES - offset);
    this.stats.calls++;
    this.stats.bytesFetched += length;
    for (let b = blockIndexAt(this.target, offset); b <= blockIndexAt(this.target, offset + length - 1); b++) this.blocks.add(b);
    this.stats.blocksTouched = this.blocks.size;
    this.stats.storeBytes = this.blocks.size * this.target.blockSize;
    for await (const x of this.client.readDisk({ ref: this.target.ref, diskIndex: this.target.diskIndex, offset, length })) {
      if (x.data.length > 0) x.data.copy(bytes, x.offset - offset);
    }
    for (let p = firstPage; p < endPage; p++) this.remember(p, bytes.subarray((p - firstPage) * PAGE_BYTES, (p - firstPage + 1) * PAGE_BYTES));
  }

  private remember(page: number, bytes: Buffer): void {
    this.pages.set(page, bytes);
    if (this.pages.size > CACHE_PAGES) {
      const oldest = this.pages.keys().next();
      if (!oldest.done) this.pages.delete(oldest.value);
    }
  }

  /** A cached page, moved to the most recently used end. */
  private touch(page: number): Buffer {
    const bytes = this.pages.get(page);
    if (!bytes) throw new Error(`page ${page} was not fetched`);
    this.pages.delete(page);
    this.pages.set(page, bytes);
    return bytes;
  }
}
