/*
 * Chunk verification, in one place: a chunk's bytes must hash to its id, and a tree node must
 * be stored raw and decode. Every reader of chunks from disk or from a peer (the store's
 * codec workers and node reads, the replication receive, the replicator's walk and its packed
 * rebuild) checks through these functions.
 */
import { ChunkCorruptError } from './errors.js';
import { fingerprint, toHex, type Fingerprint } from './fingerprint.js';
import { rawPayload } from './stored-record.js';
import { decodeNode, type TreeNode } from './tree-codec.js';

/** Whether `raw` hashes to `id`. */
export function chunkMatches(id: Fingerprint, raw: Uint8Array): boolean {
  return fingerprint(raw).equals(id);
}

/** Throws ChunkCorruptError(`id`, `reason`) unless `raw` hashes to `id`. */
export function verifyChunk(id: Fingerprint, raw: Uint8Array, reason = 'content does not match its fingerprint'): void {
  if (!chunkMatches(id, raw)) throw new ChunkCorruptError(toHex(id), reason);
}

/**
 * The tree node stored as `record` under `id`: raw, hashing to `id`, decoding as a node.
 * Throws ChunkCorruptError with `reason` when it is not raw or does not hash to its id, and
 * with the decoder's reason when it does not decode.
 */
export function nodeFromRecord(id: Fingerprint, record: Uint8Array, reason = 'tree node content does not match its fingerprint'): TreeNode {
  const raw = rawPayload(record);
  if (raw === undefined || !chunkMatches(id, raw)) throw new ChunkCorruptError(toHex(id), reason);
  return decodeNode(raw, toHex(id));
}
