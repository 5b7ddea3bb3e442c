/*
 * Verify: re-read and re-hash every stored chunk; then say which VMs and snapshots reference
 * each bad one, and which referenced chunks are missing altogether.
 */
import { toHex, type Fingerprint } from '@vmferry/core';
import type { EngineContext } from './context.js';
import { allRootSets, walkRootSet } from './roots.js';

export interface CorruptChunk {
  readonly chunkId: string;
  readonly reason: string;
  readonly referencedBy: string[];
}

export interface VerifyReport {
  readonly chunksChecked: number;
  readonly corrupt: CorruptChunk[];
  /** Referenced by a root but absent from the store, with who references them. */
  readonly missing: { chunkId: string; referencedBy: string[] }[];
}

const VERIFY_BATCH = 64;

export async function verifyStore(ctx: EngineContext, onProgress: (checked: number) => void = () => undefined): Promise<VerifyReport> {
  const bad = new Map<string, string>();
  const present = new Set<string>();
  let checked = 0;
  let batch: Fingerprint[] = [];
  const checkIds = async (ids: Fingerprint[]): Promise<void> => {
    const records = await ctx.chunks.records(ids);
    const decoded = await ctx.chunks.pool.decode(records, ids);
    decoded.forEach((d, i) => {
      if (!d.ok) bad.set(toHex(ids[i] as Fingerprint), d.reason);
    });
  };
  const check = async (): Promise<void> => {
    if (batch.length === 0) return;
    const ids = batch;
    batch = [];
    // A record the store cannot read fails the whole batch: then check chunk by chunk.
    await checkIds(ids).catch(async () => {
      for (const id of ids) {
        await checkIds([id]).catch((e: unknown) => bad.set(toHex(id), e instanceof Error ? e.message : String(e)));
      }
    });
    checked += ids.length;
    onProgress(checked);
  };
  for await (const entry of ctx.chunks.index()) {
    present.add(toHex(entry.id));
    batch.push(entry.id);
    if (batch.length >= VERIFY_BATCH) await check();
  }
  await check();

  // Attribute: who reaches each bad or missing chunk. A corrupt tree node cannot be walked
  // through; the walk records it as referenced and continues with the other roots.
  const referencedBy = new Map<string, string[]>();
  for (const set of allRootSets(ctx)) {
    const note = (hex: string): void => {
      if (bad.has(hex) || !present.has(hex)) {
        const list = referencedBy.get(hex) ?? [];
        if (!list.includes(set.ref)) list.push(set.ref);
        referencedBy.set(hex, list);
      }
    };
    try {
      await walkRootSet(ctx, set, new Set(), note);
    } catch {
      // The walk hit a corrupt or missing node, already noted above.
    }
  }
  const corrupt = [...bad].map(([chunkId, reason]) => ({ chunkId, reason, referencedBy: referencedBy.get(chunkId) ?? [] }));
  const missing = [...referencedBy]
    .filter(([hex]) => !present.has(hex))
    .map(([chunkId, refs]) => ({ chunkId, referencedBy: refs }));
  return { chunksChecked: checked, corrupt, missing };
}
