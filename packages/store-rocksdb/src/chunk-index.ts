import type { Fingerprint } from '@vmferry/core';

/** One chunk-index ('i') entry: what GC, stats and dedup read without touching the chunk. */
export interface ChunkIndexEntry {
  readonly id: Fingerprint;
  readonly storedBytes: number;
  readonly rawBytes: number;
  /** Present for tree nodes: their level. GC sweeps nodes top-down by it. */
  readonly level?: number;
}

/** Index value: u32 LE stored length, u32 LE raw length, and for a tree node a u8 level. */
export function encodeIndexValue(storedBytes: number, rawBytes: number, level?: number): Buffer {
  const v = Buffer.alloc(level === undefined ? 8 : 9);
  v.writeUInt32LE(storedBytes, 0);
  v.writeUInt32LE(rawBytes, 4);
  if (level !== undefined) v[8] = level;
  return v;
}

export function decodeIndexValue(id: Fingerprint, v: Buffer): ChunkIndexEntry {
  const base = { id, storedBytes: v.readUInt32LE(0), rawBytes: v.readUInt32LE(4) };
  return v.length > 8 ? { ...base, level: v[8] as number } : base;
}
