/*
 * In-memory state of the live write path, per vDisk (page-writer.ts, live-fold.ts,
 * snapshots.ts). Nothing here needs to survive a restart: it orders operations of one
 * process, and at start-up the paged-block sets are loaded from the page overlay itself.
 *
 * - `gate`: live writers commit under `shared`; a sub-page read-modify-write and a fold's
 *   commit run under `exclusive`, so nothing commits to the vDisk between their read and their
 *   write being checked.
 * - versions: every commit that changes a block's content sets the block's version to a new
 *   value of one engine-wide counter, after its batch lands and before it leaves the gate —
 *   for the blocks anyone will compare: paged blocks (a fold looks at no other), and every
 *   block while a snapshot of the VM is between freeze and commit. So the map holds what the
 *   overlay and one snapshot's window hold, not every block ever written (a 2 TiB import
 *   would pass a Map's 2^24 entries). A
 *   fold reads a block's version before it reads the block's pages, and commits the fold only
 *   if the version is unchanged then (under the exclusive gate): a write that landed after the
 *   fold's read has moved the version on, so its page is never deleted by a fold that missed
 *   it. A snapshot notes the counter at its freeze; a block whose version is still at most that
 *   value was not written since, so its live entries can go once the snapshot holds them.
 * - paged blocks: blocks that may have overlay pages. A page writer adds its block before its
 *   batch is issued, so a whole-block write issued after the page write was acknowledged sees
 *   it and clears the block's pages; only a fold that deleted them (or a snapshot clean-up)
 *   removes a block from the set.
 */
import { RwLock } from '@vmferry/core';

export class LiveDisk {
  readonly gate = new RwLock();
  readonly pagedBlocks = new Set<number>();
  private readonly versions = new Map<number, number>();
  /** performance.now() of the last write: the folder waits for a quiet vDisk. */
  lastWriteAt = 0;
  /** Snapshots between freeze and commit (set under the VM's exclusive lock). */
  freezes = 0;
  /** When a background fold of this vDisk last failed: the folder backs off. */
  foldFailedAt: number | undefined;

  constructor(private readonly counter: { next(): number }) {}

  versionOf(block: number): number {
    return this.versions.get(block) ?? 0;
  }

  /** Marks `blocks` changed. Call after the batch landed, still inside the gate. */
  changed(blocks: Iterable<number>): void {
    for (const b of blocks) if (this.freezes > 0 || this.pagedBlocks.has(b)) this.versions.set(b, this.counter.next());
    this.lastWriteAt = performance.now();
  }

  /** A snapshot's window closed: versions of blocks without pages are compared by no one now. */
  thawed(): void {
    if (--this.freezes > 0) return;
    for (const b of this.versions.keys()) if (!this.pagedBlocks.has(b)) this.versions.delete(b);
  }

  /** The vDisk's live entries and pages are all gone (a restore). */
  reset(): void {
    this.versions.clear();
    this.pagedBlocks.clear();
  }

  /** The block's pages and live entry are gone (folded, or held by a snapshot's tree now). */
  settled(block: number): void {
    this.versions.delete(block);
    this.pagedBlocks.delete(block);
  }
}

/** Every vDisk's live state, and the counter their versions come from. */
export class LiveDisks {
  private readonly disks = new Map<string, LiveDisk>();
  private seq = 0;
  private readonly counter = { next: (): number => ++this.seq };

  /** The newest version handed out: every change so far has a version at most this. */
  get version(): number {
    return this.seq;
  }

  disk(vmId: string, disk: number): LiveDisk {
    const key = `${vmId}/${disk}`;
    let d = this.disks.get(key);
    if (!d) this.disks.set(key, (d = new LiveDisk(this.counter)));
    return d;
  }

  /** vDisks that may hold overlay pages, for the folder. */
  paged(): { vmId: string; disk: number; live: LiveDisk }[] {
    const out: { vmId: string; disk: number; live: LiveDisk }[] = [];
    for (const [key, live] of this.disks) {
      if (live.pagedBlocks.size === 0) continue;
      const slash = key.lastIndexOf('/');
      out.push({ vmId: key.slice(0, slash), disk: Number(key.slice(slash + 1)), live });
    }
    return out;
  }

  /** Forgets a VM's vDisks (deleted, or restored: its live entries are gone). */
  forget(vmId: string): void {
    for (const key of [...this.disks.keys()]) if (key.startsWith(`${vmId}/`)) this.disks.delete(key);
  }
}
