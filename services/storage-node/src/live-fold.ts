/*
 * Folding the page overlay: a block's pages, laid over its base (live write or tree leaf),
 * become one new chunk (hashed, deduplicated, compressed like any block) and the block's live
 * write, and the pages go, in one batch. Reads see the same bytes before and after
 * (block-source.ts, viewLeavesWithPages); the fold only makes the block cheap to read and
 * ready for the snapshot tree.
 *
 * Ordering with writers (live-state.ts): a block's version is read before its pages, and the
 * commit runs under the vDisk's exclusive gate only for blocks whose version is unchanged. A
 * block written after the read is skipped and stays paged for the next round. The fold lock
 * keeps snapshots and restores out meanwhile, so the live root does not move under a fold.
 * GC: the new chunks and the live writes referencing them are one ingest, inside its barrier
 * section (gc.ts, case c), like any live write.
 */
import { isHole, type Fingerprint, type VmRecord } from '@vmferry/core';
import { blockBytes, liveView, viewLeavesWithPages, type ViewLeaf } from './block-source.js';
import type { EngineContext } from './context.js';
import type { LiveDisk } from './live-state.js';

/** Blocks folded per ingest (one commit, one short exclusive gate). */
const FOLD_GROUP_BLOCKS = 64;

/** Folds up to `maxBlocks` paged blocks of one vDisk, lowest first; returns how many it folded. */
export function foldPagedBlocks(ctx: EngineContext, vmId: string, diskIndex: number, maxBlocks = Number.MAX_SAFE_INTEGER): Promise<number> {
  return ctx.foldLock(vmId).run(async () => {
    const vm = ctx.catalog.vmById(vmId);
    if (!vm?.disks[diskIndex]) return 0;
    const live = ctx.live.disk(vmId, diskIndex);
    const blocks = [...live.pagedBlocks].sort((a, b) => a - b).slice(0, maxBlocks);
    let folded = 0;
    for (let i = 0; i < blocks.length; i += FOLD_GROUP_BLOCKS) folded += await foldGroup(ctx, vm, diskIndex, live, blocks.slice(i, i + FOLD_GROUP_BLOCKS));
    return folded;
  });
}

interface FoldItem {
  readonly block: number;
  readonly version: number;
  /** The block as read: undefined when it has no pages (a whole-block write cleared them). */
  readonly leaf: ViewLeaf | undefined;
}

async function foldGroup(ctx: EngineContext, vm: VmRecord, diskIndex: number, live: LiveDisk, blocks: readonly number[]): Promise<number> {
  // Versions first, then the pages (live-state.ts).
  const versions = blocks.map((b) => live.versionOf(b));
  const read = await ctx.vmLock(vm.id).shared(async () => {
    const current = ctx.catalog.vmById(vm.id);
    if (!current) return undefined;
    const view = liveView(current, diskIndex);
    const items: FoldItem[] = [];
    for (const [i, block] of blocks.entries()) {
      const [leaf] = await viewLeavesWithPages(ctx, view, block, block + 1);
      items.push({ block, version: versions[i] as number, leaf: leaf?.pages ? leaf : undefined });
    }
    return { items, layout: view.layout };
  });
  if (!read) return 0;
  const paged = read.items.filter((it) => it.leaf !== undefined);
  const bases = await ctx.chunks.get(paged.filter((it) => !isHole((it.leaf as ViewLeaf).fp)).map((it) => (it.leaf as ViewLeaf).fp));
  let k = 0;
  const contents = paged.map((it) => {
    const leaf = it.leaf as ViewLeaf;
    return blockBytes(read.layout, leaf, isHole(leaf.fp) ? undefined : bases[k++]);
  });
  let folded = 0;
  const table = ctx.catalog.liveWrites;
  const result = await ctx.chunks.ingest(contents, (fps, stageChunks) =>
    ctx.vmLock(vm.id).shared(async () => {
      if (!ctx.catalog.vmById(vm.id)) return;
      await live.gate.exclusive(async () => {
        const unchanged = new Set(read.items.filter((it) => live.versionOf(it.block) === it.version).map((it) => it.block));
        await ctx.db.commit((batch) => {
          stageChunks(batch);
          paged.forEach((it, i) => {
            if (!unchanged.has(it.block)) return;
            table.stagePut(batch, vm.id, diskIndex, it.block, fps[i] as Fingerprint);
            for (const p of (it.leaf as ViewLeaf).pages ?? []) table.stageDeletePage(batch, vm.id, diskIndex, it.block, p.page);
          });
        });
        for (const block of unchanged) live.settled(block);
        folded = paged.filter((it) => unchanged.has(it.block)).length;
      });
    }),
  );
  if (result.newChunks > 0) {
    ctx.metrics.newChunkBytes.add(result.newRawBytes, ctx.metrics.attrs);
    ctx.metrics.storedChunkBytes.add(result.newStoredBytes, ctx.metrics.attrs);
  }
  return folded;
}

export interface LiveFolderOptions {
  /** How often the folder looks for vDisks to fold. */
  readonly intervalMs?: number;
  /**
   * A vDisk with no write for this long is folded. Folding a block rewrites all of it, so
   * folding late (more pages per block, and a snapshot folds what it freezes anyway) keeps
   * write amplification down; pages read as fast as chunks meanwhile.
   */
  readonly idleMs?: number;
  /** A vDisk with this many paged blocks is folded even while it is written. */
  readonly busyPagedBlocks?: number;
  /** Blocks folded per vDisk per round, so one busy vDisk does not hold the folder. */
  readonly blocksPerRound?: number;
  /** After a failed fold, the vDisk waits this long before the next try (the error is reported once per try). */
  readonly retryAfterMs?: number;
  readonly onError?: (e: unknown) => void;
}

/**
 * The background fold: every `intervalMs`, each vDisk with overlay pages that is quiet (or
 * has many paged blocks) gets a round. Snapshots fold what they freeze themselves, so this
 * only keeps reads cheap and the overlay small between snapshots.
 */
export class LiveFolder {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  private readonly options: Required<LiveFolderOptions>;

  constructor(
    private readonly ctx: EngineContext,
    options: LiveFolderOptions = {},
  ) {
    this.options = {
      intervalMs: options.intervalMs ?? 250,
      idleMs: options.idleMs ?? 5000,
      busyPagedBlocks: options.busyPagedBlocks ?? 16384,
      blocksPerRound: options.blocksPerRound ?? 512,
      retryAfterMs: options.retryAfterMs ?? 30_000,
      onError: options.onError ?? ((e: unknown) => process.stderr.write(`vmferry: background fold failed (pages stay, reads are unaffected): ${String(e)}\n`)),
    };
  }

  start(): void {
    this.timer = setInterval(() => {
      this.round ??= this.foldDue().finally(() => (this.round = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Folds every paged vDisk now, whatever its state (tests, and a clean stop). */
  async foldAll(): Promise<void> {
    for (const d of this.ctx.live.paged()) await foldPagedBlocks(this.ctx, d.vmId, d.disk);
  }

  private async foldDue(): Promise<void> {
    const now = performance.now();
    for (const d of this.ctx.live.paged()) {
      if (this.stopped) return;
      if (now - d.live.lastWriteAt < this.options.idleMs && d.live.pagedBlocks.size < this.options.busyPagedBlocks) continue;
      if (d.live.foldFailedAt !== undefined && now - d.live.foldFailedAt < this.options.retryAfterMs) continue;
      try {
        await foldPagedBlocks(this.ctx, d.vmId, d.disk, this.options.blocksPerRound);
        d.live.foldFailedAt = undefined;
      } catch (e) {
        // The pages stay and read correctly; a chunk swept under a block rewritten meanwhile
        // heals at the next try, real damage is reported by verify.
        d.live.foldFailedAt = performance.now();
        this.options.onError(e);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.round;
  }
}
