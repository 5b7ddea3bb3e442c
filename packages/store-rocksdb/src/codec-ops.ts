/*
 * The chunk codec's work on one chunk, shared by the worker threads (codec-worker.ts) and the
 * in-process codec (inline-codec.ts): hash, encode (zstd unless it saves little), and decode
 * with verification against the fingerprint.
 */
import type * as zstd from 'zstd-napi';
import {
  ChunkCorruptError,
  chunkMatches,
  fingerprint,
  FINGERPRINT_BYTES,
  InvalidArgumentError,
  isZero,
  rawRecord,
  recordBytes,
  toHex,
  zstdRecord,
  type Fingerprint,
} from '@vmferry/core';
import { MAX_COMPRESSED_FRACTION } from './chunk-codec.js';

/** Result of decoding one stored record: the raw bytes, or why they were rejected. */
export type Decoded = { ok: true; data: Buffer } | { ok: false; reason: string };

/** What the store asks of a codec: batches of chunks hashed, encoded, decoded and checked. */
export interface ChunkCodec {
  /** Fingerprints of `blocks`, HOLE for all-zero blocks. */
  hash(blocks: readonly Uint8Array[]): Promise<Fingerprint[]>;
  /** Stored records (codec byte + payload) for `blocks`. */
  encode(blocks: readonly Uint8Array[]): Promise<Buffer[]>;
  /** Raw bytes of stored records, each checked against its fingerprint. */
  decode(records: readonly Uint8Array[], fps: readonly Fingerprint[]): Promise<Decoded[]>;
  close(): Promise<void>;
}

/** The fingerprint of `block`, or all zeros (HOLE) for an all-zero block. */
export function hashBlock(block: Uint8Array): Buffer {
  return isZero(block) ? Buffer.alloc(FINGERPRINT_BYTES) : fingerprint(block);
}

/** The stored record of `block`: zstd, or raw when zstd saves less than 10 %. */
export function encodeBlock(cctx: zstd.Compressor, block: Buffer): Buffer {
  const z = cctx.compress(block);
  return z.length <= block.length * MAX_COMPRESSED_FRACTION ? zstdRecord(z) : rawRecord(block);
}

/** The raw bytes of `record` if they hash to `want`, else why not. */
export function decodeChecked(dctx: zstd.Decompressor, record: Buffer, want: Fingerprint): Decoded {
  try {
    const raw = recordBytes(record, (frame) => dctx.decompress(frame));
    if (raw === undefined) throw new InvalidArgumentError(`unknown codec ${String(record[0])}`);
    return chunkMatches(want, raw) ? { ok: true, data: raw } : { ok: false, reason: 'content does not match its fingerprint' };
  } catch (e) {
    return { ok: false, reason: `cannot decode: ${(e as Error).message}` };
  }
}

/** `buf` cut into consecutive pieces of `lens` bytes (views, not copies). */
export function split(buf: ArrayBuffer, lens: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of lens) {
    out.push(Buffer.from(buf, at, n));
    at += n;
  }
  return out;
}

/** Raw, verified bytes of `records` (of `ids`); rejects with ChunkCorruptError for the first bad one. */
export async function verifiedBytes(codec: ChunkCodec, records: readonly Buffer[], ids: readonly Fingerprint[]): Promise<Buffer[]> {
  const decoded = await codec.decode(records, ids);
  return decoded.map((d, i) => {
    if (!d.ok) throw new ChunkCorruptError(toHex(ids[i] as Fingerprint), d.reason);
    return d.data;
  });
}
