/*
 * Verify: re-read and re-hash every stored chunk; then say which VMs and snapshots reference
 * each bad one, and which referenced chunks are missing altogether.
 *
 * Damage in RocksDB's own files must not abort the run: if the chunk index cannot be
 * iterated to its end (an SST block fails its checksum, and re-seeking lands in the same
 * block), every chunk the walk of the roots reaches that the index scan did not cover is
 * checked directly (its index entry and its record), so the affected VMs and snapshots are
 * still named. The index damage itself is reported with RocksDB's message (file and offset).
 */
import { ChunkMissingError, fromHex, toHex, type CorruptChunk, type Fingerprint, type VerifyReport } from '@vmferry/core';
import type { EngineContext } from './context.js';
import { allRootSets, rootSetExists, walkRootSet, type RootSet } from './roots.js';

/** Stands for the chunk index in `corrupt` when the index itself cannot be read. */
export const CHUNK_INDEX_DAMAGE = '(chunk index)';

const VERIFY_BATCH = 64;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export async function verifyStore(ctx: EngineContext, onProgress: (checked: number) => void = () => undefined): Promise<VerifyReport> {
  const bad = new Map<string, string>();
  const absent = new Set<string>();
  const present = new Set<string>();
  let checked = 0;
  const checkIds = async (ids: Fingerprint[]): Promise<void> => {
    const reasons = await ctx.chunks.check(ids);
    reasons.forEach((reason, i) => {
      if (reason !== undefined) bad.set(toHex(ids[i] as Fingerprint), reason);
    });
  };
  const check = async (ids: Fingerprint[]): Promise<void> => {
    if (ids.length === 0) return;
    // A record the store cannot read fails the whole batch: then check chunk by chunk.
    await checkIds(ids).catch(async () => {
      for (const id of ids) {
        await checkIds([id]).catch((e: unknown) => (e instanceof ChunkMissingError ? absent.add(toHex(id)) : bad.set(toHex(id), messageOf(e))));
      }
    });
    checked += ids.length;
    onProgress(checked);
  };

  let indexDamage: string | undefined;
  const batch: Fingerprint[] = [];
  try {
    for await (const entry of ctx.chunks.index()) {
      present.add(toHex(entry.id));
      batch.push(entry.id);
      if (batch.length >= VERIFY_BATCH) await check(batch.splice(0));
    }
  } catch (e) {
    indexDamage = `the chunk index cannot be read past its first ${present.size} entries: ${messageOf(e)}`;
  }
  await check(batch);

  // Attribute: who reaches each bad or unchecked chunk. A corrupt tree node cannot be walked
  // through; the walk records it as referenced and continues with the other roots.
  const referencedBy = new Map<string, string[]>();
  const walkDamage: CorruptChunk[] = [];
  const sets = allRootSets(ctx);
  const setOf = new Map<string, RootSet>(sets.map((s) => [s.ref, s]));
  const stillThere = (set: RootSet | undefined): boolean => set === undefined || rootSetExists(ctx, set);
  for (const set of sets) {
    const note = (hex: string): void => {
      if (bad.has(hex) || !present.has(hex)) {
        const list = referencedBy.get(hex) ?? [];
        if (!list.includes(set.ref)) list.push(set.ref);
        referencedBy.set(hex, list);
      }
    };
    try {
      await walkRootSet(ctx, set, new Set(), note);
    } catch (e) {
      // A corrupt or missing node is already noted; anything else (an unreadable live-write
      // record) is damage of its own, named with the ref it hides.
      if (!(e instanceof Error && 'chunkId' in e)) walkDamage.push({ chunkId: '', reason: `cannot walk ${set.ref}: ${messageOf(e)}`, referencedBy: [set.ref] });
    }
  }

  // Referenced chunks the index scan did not cover: absent, or hidden by index damage.
  const unindexedRefs = new Set<string>();
  const unchecked = [...referencedBy.keys()].filter((hex) => !present.has(hex) && !bad.has(hex));
  for (const hex of unchecked) {
    const indexEntry = await ctx.chunks.indexed(fromHex(hex)).catch((e: unknown) => {
      bad.set(hex, `its chunk index entry cannot be read: ${messageOf(e)}`);
      for (const ref of referencedBy.get(hex) ?? []) unindexedRefs.add(ref);
      return true;
    });
    if (!bad.has(hex)) await check([fromHex(hex)]);
    if (!indexEntry && !bad.has(hex)) absent.add(hex);
    if (!bad.has(hex) && !absent.has(hex)) referencedBy.delete(hex);
  }

  const corrupt: CorruptChunk[] = [...bad].map(([chunkId, reason]) => ({ chunkId, reason, referencedBy: referencedBy.get(chunkId) ?? [] }));
  if (indexDamage !== undefined) corrupt.push({ chunkId: CHUNK_INDEX_DAMAGE, reason: indexDamage, referencedBy: [...unindexedRefs] });
  corrupt.push(...walkDamage);
  // A chunk absent now is missing only for refs that still exist: GC may free the chunks of a
  // VM or snapshot deleted while verify ran (verify runs alongside every other operation).
  const missing = [...referencedBy]
    .filter(([hex]) => absent.has(hex) && !bad.has(hex))
    .map(([chunkId, refs]) => ({ chunkId, referencedBy: refs.filter((ref) => stillThere(setOf.get(ref))) }))
    .filter((m) => m.referencedBy.length > 0);
  return { chunksChecked: checked, corrupt, missing };
}
