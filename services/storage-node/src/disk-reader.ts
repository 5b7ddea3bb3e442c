/*
 * Reading a vDisk (live or snapshot) as a stream of extents: data, or holes that the client
 * keeps sparse. Block fingerprints are collected a window at a time, then chunks are fetched
 * (verified against their fingerprints by the codec workers) a batch ahead of the consumer.
 * Live state is read window by window under the VM's shared lock with the then-current root,
 * so a snapshot taken meanwhile (same content, new root) never tears a read; a block with
 * overlay pages reads as its base chunk with the pages over it (block-source.ts).
 */
import { blockCount, blockIndexAt, blockRange, checkExtent, fromHex, isHole, type BlockLayout, type DiskExtent, type VmRecord } from '@vmferry/core';
import { blockBytes, liveView, viewLeafAt, viewLeaves, viewLeavesWithPages, type DiskView, type ViewLeaf } from './block-source.js';
import type { EngineContext } from './context.js';
import { diskOf } from './vms.js';

/** The data of an extent as one buffer (zeros for a hole). */
export function extentBytes(x: DiskExtent): Buffer {
  return x.parts ? Buffer.concat(x.parts) : Buffer.alloc(x.length);
}

/** Blocks whose fingerprints are collected per window. */
const WINDOW_BLOCKS = 1024;
/** Chunks fetched and decoded per batch. */
const FETCH_CHUNKS = 64;
/** Batches in flight ahead of the consumer (keeps both codec workers busy). */
const PREFETCH_BATCHES = 4;
/** Data extents are coalesced up to this size. */
const MAX_EXTENT_BYTES = 1024 * 1024;

export type ViewSource = { kind: 'snapshot'; view: DiskView } | { kind: 'live'; vm: VmRecord; diskIndex: number };

/** Leaves of [from, to) in windows: arrays of non-hole blocks in order. */
async function* leafWindows(ctx: EngineContext, source: ViewSource, from: number, to: number): AsyncGenerator<ViewLeaf[]> {
  if (source.kind === 'snapshot') {
    let window: ViewLeaf[] = [];
    for await (const leaf of viewLeaves(ctx, source.view, from, to)) {
      window.push(leaf);
      if (window.length >= WINDOW_BLOCKS) {
        yield window;
        window = [];
      }
    }
    if (window.length > 0) yield window;
    return;
  }
  for (let w = from; w < to; w += WINDOW_BLOCKS) {
    const end = Math.min(to, w + WINDOW_BLOCKS);
    const leaves = await ctx.vmLock(source.vm.id).shared(async () => {
      const current = ctx.catalog.vmById(source.vm.id) ?? source.vm;
      return viewLeavesWithPages(ctx, liveView(current, source.diskIndex), w, end);
    });
    if (leaves.length > 0) yield leaves;
  }
}

function layoutOf(source: ViewSource): BlockLayout {
  return source.kind === 'snapshot' ? source.view.layout : diskOf(source.vm, source.diskIndex);
}

/**
 * Extents covering exactly [offset, offset + length) in order (length 0: to the end).
 * Throws OutOfRangeError for a range outside the disk; rejects with ChunkMissingError or
 * ChunkCorruptError when stored data is damaged.
 */
export async function* readExtents(ctx: EngineContext, source: ViewSource, offset: number, length: number): AsyncGenerator<DiskExtent> {
  const layout = layoutOf(source);
  const len = length === 0 ? layout.size - offset : length;
  checkExtent(layout, offset, len, 'read');
  if (len === 0) return;
  const end = offset + len;
  const fromBlock = blockIndexAt(layout, offset);
  const toBlock = Math.min(blockCount(layout), blockIndexAt(layout, end - 1) + 1);
  if (toBlock - fromBlock === 1) {
    yield await oneBlockExtent(ctx, source, layout, fromBlock, offset, len);
    return;
  }

  let cursor = offset;
  let pending: Buffer[] = [];
  let pendingStart = offset;
  let pendingBytes = 0;
  const flushData = function* (): Generator<DiskExtent> {
    if (pendingBytes > 0) yield { offset: pendingStart, parts: pending, length: pendingBytes };
    pending = [];
    pendingBytes = 0;
  };
  const emitHoleTo = function* (to: number): Generator<DiskExtent> {
    if (to > cursor) {
      yield* flushData();
      yield { offset: cursor, length: to - cursor };
      cursor = to;
    }
  };

  // Prefetch: the next PREFETCH_BATCHES batches load (and decode on the workers) while the
  // current one is consumed.
  const batches = chunkBatches(leafWindows(ctx, source, fromBlock, toBlock));
  const queue: Promise<{ leaves: ViewLeaf[]; data: Buffer[] } | undefined>[] = [];
  let exhausted = false;
  const fill = (): void => {
    while (!exhausted && queue.length < PREFETCH_BATCHES) {
      const f = batches.next().then(async (n) => {
        if (n.done) {
          exhausted = true;
          return undefined;
        }
        return { leaves: n.value, data: await blocksOf(ctx, layout, n.value) };
      });
      f.catch(() => undefined); // surfaced when awaited; never unhandled if the reader stops early
      queue.push(f);
    }
  };
  for (;;) {
    fill();
    const batch = await queue.shift();
    if (!batch) break;
    fill();
    const { leaves: batchLeaves, data } = batch;
    for (let i = 0; i < batchLeaves.length; i++) {
      const leaf = batchLeaves[i] as ViewLeaf;
      const br = blockRange(layout, leaf.block);
      const lo = Math.max(br.start, offset);
      const hi = Math.min(br.start + br.length, end);
      yield* emitHoleTo(lo);
      if (pendingBytes === 0) pendingStart = lo;
      const chunk = data[i] as Buffer;
      pending.push(chunk.subarray(lo - br.start, hi - br.start));
      pendingBytes += hi - lo;
      cursor = hi;
      if (pendingBytes >= MAX_EXTENT_BYTES) yield* flushData();
    }
  }
  yield* emitHoleTo(end);
  yield* flushData();
}

/**
 * A read within one block (a guest's 4 KiB read): the same lookups as the windowed path
 * (live write, pages, tree leaf; under the VM's shared lock for live state), without its
 * generators and prefetch queue, whose per-request cost showed in 4 KiB random-read profiles.
 */
async function oneBlockExtent(ctx: EngineContext, source: ViewSource, layout: BlockLayout, block: number, offset: number, length: number): Promise<DiskExtent> {
  const leaf =
    source.kind === 'snapshot'
      ? await viewLeafAt(ctx, source.view, block)
      : await ctx.vmLock(source.vm.id).shared(() => viewLeafAt(ctx, liveView(ctx.catalog.vmById(source.vm.id) ?? source.vm, source.diskIndex), block));
  if (!leaf) return { offset, length };
  const [data] = await blocksOf(ctx, layout, [leaf]);
  const at = offset - blockRange(layout, block).start;
  return { offset, length, parts: [(data as Buffer).subarray(at, at + length)] };
}

/** Each leaf's block bytes: its chunk, with overlay pages applied where it has them. */
async function blocksOf(ctx: EngineContext, layout: BlockLayout, leaves: readonly ViewLeaf[]): Promise<Buffer[]> {
  const withChunk = leaves.filter((l) => !isHole(l.fp));
  const chunks = await ctx.chunks.get(withChunk.map((l) => l.fp));
  let k = 0;
  return leaves.map((l) => blockBytes(layout, l, isHole(l.fp) ? undefined : chunks[k++]));
}

async function* chunkBatches(windows: AsyncIterable<ViewLeaf[]>): AsyncGenerator<ViewLeaf[]> {
  for await (const w of windows) {
    for (let i = 0; i < w.length; i += FETCH_CHUNKS) yield w.slice(i, i + FETCH_CHUNKS);
  }
}

export function snapshotView(vmId: string, disk: { index: number; size: number; blockSize: number; gridOffset: number; root: string }): DiskView {
  return { vmId, diskIndex: disk.index, layout: disk, root: fromHex(disk.root), live: false };
}
