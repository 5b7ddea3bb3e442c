/*
 * A VM's live state since its last snapshot, over the snapshot's tree:
 *
 * - live writes ('d' keys, keys.ts): per vDisk and block, the chunk id now there (HOLE for a
 *   block written with zeros over data);
 * - the page overlay ('w' keys): raw 4 KiB pages written into a block since it was last
 *   folded. A page wins over the block's 'd' entry or tree leaf; the rest of the block reads
 *   from those. Small guest writes land here, cheaply; folding turns a block's pages into a
 *   new chunk and a 'd' entry (storage-node live-fold.ts).
 *
 * Big-endian numbers make key order block order, so a range read is a block range. The table
 * reads through the database or through a snapshot of it (`at`), so a fold reads one instant.
 */
import type { Fingerprint, LeafUpdate } from '@vmferry/core';
import type { RangeReader, WriteBatch } from '../database.js';
import {
  blockOfDirtyKey,
  blockOfPageKey,
  dirtyDiskPrefix,
  dirtyKey,
  dirtyVmPrefix,
  diskOfPageKey,
  PAGE_PREFIX,
  pageBlockPrefix,
  pageDiskPrefix,
  pageKey,
  pageOfPageKey,
  pageVmPrefix,
  prefixRange,
  vmOfPageKey,
} from '../keys.js';

/** Read options: the block range [from, to) and how many entries per native read. */
export interface LiveWriteRange {
  readonly from?: number;
  readonly to?: number;
  readonly capacity?: number;
}

/** One overlay page: page `page` (4 KiB units from the block's start) of block `block`. */
export interface StoredPage {
  readonly block: number;
  readonly page: number;
  /** The page's bytes; empty for a page of zeros. */
  readonly data: Buffer;
}

/** Point reads, where the reader has them (the database; not a snapshot view). */
interface PointReader {
  getMany(keys: readonly Buffer[]): Promise<(Buffer | null)[]>;
}

/** Ranges of at most this many blocks are first narrowed to the blocks that may have a live write (MaybeDirty). */
const FILTERED_BLOCKS = 1024;
/** Blocks listed per vDisk at most (MaybeDirty); past it the vDisk's reads do their point reads. */
const MAX_LISTED_BLOCKS = 1 << 18;

/** At most this many such blocks are read by key, not by iterator (an iterator costs three native calls). */
const POINT_READ_KEYS = 64;

/**
 * Which blocks of a vDisk may have a live write, so a guest's small read of a block that has
 * none (most blocks of a clone) skips the RocksDB point read of its 'd' key: under 4 KiB
 * random reads that read was one of the two native round trips of every request.
 *
 * A superset, never less: a block is listed if its 'd' key was found by a scan of the vDisk
 * (run once, at its first read) or staged in this process (stagePut, before the batch is
 * written). Recording starts before this process stages anything, so a key either was
 * committed before the scan's iterator opened (the scan sees it) or was staged here (recorded
 * first). Deleting a key does not unlist its block: that only costs a point read.
 * Keyed by the database, so every table over it shares one record.
 */
class MaybeDirty {
  private readonly staged = new Map<string, Set<number>>();
  private readonly scanned = new Map<string, Set<number> | Promise<Set<number> | undefined>>();
  /**
   * vDisks with more listed blocks than MAX_LISTED_BLOCKS: no longer listed, every read of
   * theirs does its point read. Keeps memory bounded (a 2 TiB import stages 32 M blocks, past
   * a Set's 2^24 entries) at the cost of the shortcut, never of correctness.
   */
  private readonly unlisted = new Set<string>();

  note(vmId: string, disk: number, block: number): void {
    const k = `${vmId}/${disk}`;
    if (this.unlisted.has(k)) return;
    let set = this.staged.get(k);
    if (!set) this.staged.set(k, (set = new Set()));
    set.add(block);
    if (set.size > MAX_LISTED_BLOCKS) this.unlist(k);
  }

  private unlist(k: string): void {
    this.unlisted.add(k);
    this.staged.delete(k);
    this.scanned.delete(k);
  }

  /** The blocks of `blocks` that may have a live write. */
  async filter(db: RangeReader, vmId: string, disk: number, blocks: readonly number[]): Promise<number[]> {
    const k = `${vmId}/${disk}`;
    if (this.unlisted.has(k)) return [...blocks];
    let scanned = this.scanned.get(k);
    if (scanned === undefined) {
      const scan = scanDirty(db, vmId, disk);
      this.scanned.set(k, scan);
      scan.then(
        (set) => {
          if (set && !this.unlisted.has(k)) this.scanned.set(k, set);
          else this.unlist(k);
        },
        () => this.scanned.delete(k),
      );
      scanned = scan;
    }
    const found = scanned instanceof Set ? scanned : await scanned;
    if (!found || this.unlisted.has(k)) return [...blocks];
    const staged = this.staged.get(k);
    return blocks.filter((b) => found.has(b) || staged?.has(b) === true);
  }
}

/** The vDisk's blocks with a 'd' key, or undefined when there are more than MAX_LISTED_BLOCKS. */
async function scanDirty(db: RangeReader, vmId: string, disk: number): Promise<Set<number> | undefined> {
  const set = new Set<number>();
  for await (const { key } of db.entries(prefixRange(dirtyDiskPrefix(vmId, disk)), false, 1024)) {
    set.add(blockOfDirtyKey(key));
    if (set.size > MAX_LISTED_BLOCKS) return undefined;
  }
  return set;
}

const maybeDirtyByDb = new WeakMap<object, MaybeDirty>();

function maybeDirtyOf(db: object): MaybeDirty {
  let m = maybeDirtyByDb.get(db);
  if (!m) maybeDirtyByDb.set(db, (m = new MaybeDirty()));
  return m;
}

/** The live-write table. Key builders throw InvalidArgumentError for a malformed VM id. */
export class LiveWriteTable {
  constructor(
    private readonly db: RangeReader & Partial<PointReader>,
    // A view's table shares its database's record: a put staged through it is recorded there.
    private readonly maybeDirty: MaybeDirty = maybeDirtyOf(db),
  ) {}

  /** The same table read through `view` (a snapshot of the database). */
  at(view: RangeReader): LiveWriteTable {
    return new LiveWriteTable(view, this.maybeDirty);
  }

  /** The live writes of one vDisk in block order (all of them, or those of a block range). */
  async *entries(vmId: string, disk: number, range: LiveWriteRange = {}): AsyncGenerator<LeafUpdate> {
    // An iterator costs three native calls (open, read, close); a few keys cost one, and
    // blocks with no live write (most of a clone's) cost none.
    if (this.db.getMany && range.from !== undefined && range.to !== undefined && range.to - range.from <= FILTERED_BLOCKS) {
      const all = Array.from({ length: Math.max(0, range.to - range.from) }, (_, i) => (range.from as number) + i);
      const blocks = await this.maybeDirty.filter(this.db, vmId, disk, all);
      if (blocks.length <= POINT_READ_KEYS) {
        if (blocks.length === 0) return;
        const values = await this.db.getMany(blocks.map((b) => dirtyKey(vmId, disk, b)));
        for (const [i, v] of values.entries()) if (v) yield { block: blocks[i] as number, fp: Buffer.from(v) };
        return;
      }
    }
    const all = prefixRange(dirtyDiskPrefix(vmId, disk));
    const bounds = {
      gte: range.from === undefined ? all.gte : dirtyKey(vmId, disk, range.from),
      lt: range.to === undefined ? all.lt : dirtyKey(vmId, disk, range.to),
    };
    for await (const { key, value } of this.db.entries(bounds, true, range.capacity)) {
      yield { block: blockOfDirtyKey(key), fp: Buffer.from(value) };
    }
  }

  /** The overlay pages of one vDisk in (block, page) order (all, or those of a block range). */
  async *pages(vmId: string, disk: number, range: LiveWriteRange = {}): AsyncGenerator<StoredPage> {
    const all = prefixRange(pageDiskPrefix(vmId, disk));
    const bounds = {
      gte: range.from === undefined ? all.gte : pageBlockPrefix(vmId, disk, range.from),
      lt: range.to === undefined ? all.lt : pageBlockPrefix(vmId, disk, range.to),
    };
    for await (const { key, value } of this.db.entries(bounds, true, range.capacity)) {
      yield { block: blockOfPageKey(key), page: pageOfPageKey(key), data: Buffer.from(value) };
    }
  }

  /** The chunk ids of every live write of a VM (all vDisks; holes included). */
  async *ids(vmId: string): AsyncGenerator<Fingerprint> {
    for await (const { value } of this.db.entries(prefixRange(dirtyVmPrefix(vmId)))) yield Buffer.from(value);
  }

  /** Whether one vDisk has any live write or overlay page. */
  async any(vmId: string, disk: number): Promise<boolean> {
    for (const prefix of [dirtyDiskPrefix(vmId, disk), pageDiskPrefix(vmId, disk)]) {
      for await (const _ of this.db.entries(prefixRange(prefix), false, 1)) return true;
    }
    return false;
  }

  /** Every block holding overlay pages, once each, in key order (at start-up: what is left to fold). */
  async *pagedBlocks(): AsyncGenerator<{ vmId: string; disk: number; block: number }> {
    let last: Buffer | undefined;
    for await (const { key } of this.db.entries(prefixRange(PAGE_PREFIX), false, 1024)) {
      const blockPart = key.subarray(0, key.length - 2);
      if (last?.equals(blockPart)) continue;
      last = Buffer.from(blockPart);
      yield { vmId: vmOfPageKey(key), disk: diskOfPageKey(key), block: blockOfPageKey(key) };
    }
  }

  /** Stages "block `block` of vDisk `disk` now holds `fp`". */
  stagePut(batch: WriteBatch, vmId: string, disk: number, block: number, fp: Fingerprint): void {
    // Before the batch can be written (MaybeDirty).
    this.maybeDirty.note(vmId, disk, block);
    batch.tryPut(dirtyKey(vmId, disk, block), fp);
  }

  /** Stages dropping a block's live write (its content is in the tree now). */
  stageDelete(batch: WriteBatch, vmId: string, disk: number, block: number): void {
    batch.tryDelete(dirtyKey(vmId, disk, block));
  }

  /** Stages "page `page` of block `block` now holds `data`" (an empty buffer: zeros). */
  stagePutPage(batch: WriteBatch, vmId: string, disk: number, block: number, page: number, data: Buffer): void {
    batch.tryPut(pageKey(vmId, disk, block, page), data);
  }

  /** Stages dropping one overlay page. */
  stageDeletePage(batch: WriteBatch, vmId: string, disk: number, block: number, page: number): void {
    batch.tryDelete(pageKey(vmId, disk, block, page));
  }

  /** Stages dropping every overlay page of one block. */
  stageClearPages(batch: WriteBatch, vmId: string, disk: number, block: number): void {
    const r = prefixRange(pageBlockPrefix(vmId, disk, block));
    batch.tryDeleteRange(r.gte, r.lt);
  }

  /** Stages dropping the live writes and pages of one vDisk, or of every vDisk of the VM. */
  stageClear(batch: WriteBatch, vmId: string, disk?: number): void {
    for (const prefix of disk === undefined ? [dirtyVmPrefix(vmId), pageVmPrefix(vmId)] : [dirtyDiskPrefix(vmId, disk), pageDiskPrefix(vmId, disk)]) {
      const r = prefixRange(prefix);
      batch.tryDeleteRange(r.gte, r.lt);
    }
  }
}
