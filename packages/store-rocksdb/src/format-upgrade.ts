/*
 * In-place upgrade of a data folder from format version 1 to 2.
 *
 * Version 2 records each tree node's level in its chunk-index entry, which GC needs to sweep
 * nodes top-down (a node before its children) and to keep the subtree of a node that gains a
 * reference while it runs. Version 1 wrote the same 8-byte entry for nodes and data; a node
 * is recognised by its stored form: raw codec, the tree-node magic, and a payload that decodes
 * as a node and hashes to its id. The upgrade rewrites those entries and the version record in
 * one durable batch, so a crash part-way leaves a version-1 folder that is upgraded again.
 */
import { chunkMatches, decodeNodeChecked, rawPayload } from '@vmferry/core';
import { encodeIndexValue } from './chunk-index.js';
import type { Database } from './database.js';
import { CHUNK_INDEX_PREFIX, chunkKey, fpOfIndexKey, metaKey, prefixRange } from './keys.js';

const NODE_MAGIC = Buffer.from('VFT', 'latin1');

/** The level of the tree node stored as `record` under `id`, or undefined when it is data. */
function nodeLevel(id: Buffer, record: Buffer): number | undefined {
  const raw = rawPayload(record);
  if (raw === undefined || !raw.subarray(0, 3).equals(NODE_MAGIC) || !chunkMatches(id, raw)) return undefined;
  try {
    return decodeNodeChecked(id, raw).level;
  } catch {
    return undefined;
  }
}

/** Upgrades a version-1 folder to version 2; returns how many tree nodes were found. */
export async function upgradeV1ToV2(db: Database): Promise<number> {
  const updates: { key: Buffer; value: Buffer }[] = [];
  for await (const { key, value } of db.entries(prefixRange(CHUNK_INDEX_PREFIX))) {
    if (value.length !== 8) continue;
    const id = Buffer.from(fpOfIndexKey(key));
    const record = await db.get(chunkKey(id));
    const level = record ? nodeLevel(id, record) : undefined;
    if (level !== undefined) updates.push({ key: Buffer.from(key), value: encodeIndexValue(value.readUInt32LE(0), value.readUInt32LE(4), level) });
  }
  await db.commit(
    (b) => {
      for (const u of updates) b.tryPut(u.key, u.value);
      b.tryPut(metaKey('format'), Buffer.from('2'));
    },
    { durable: true },
  );
  return updates.length;
}
