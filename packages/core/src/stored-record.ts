/*
 * The stored record of a chunk: byte 0 names the codec, the rest is the payload.
 *
 * FORMAT — DO NOT CHANGE. These bytes are on disk (the RocksDB 'c' values of format version
 * 2) and on the wire (ChunkRecord.record of FetchChunks and PutChunks, PackedBatch.literals).
 * A codec number keeps its meaning forever; a new codec takes a new number (and an upgrade).
 *
 *   0  raw   the payload is the chunk's bytes (tree nodes are always raw)
 *   1  zstd  the payload is one zstd frame of the chunk's bytes
 *
 * This file is the only place the numbers appear; everything else goes through its helpers.
 */

export const CODEC_RAW = 0;
export const CODEC_ZSTD = 1;
export type Codec = typeof CODEC_RAW | typeof CODEC_ZSTD;

/** A parsed stored record: which codec, and the payload (a view into the record). */
export interface ParsedRecord {
  readonly codec: Codec;
  readonly payload: Buffer;
}

function view(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The stored record holding `raw` uncompressed. */
export function rawRecord(raw: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(CODEC_RAW), raw]);
}

/** The stored record holding `frame`, one zstd frame of the chunk's bytes. */
export function zstdRecord(frame: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(CODEC_ZSTD), frame]);
}

/** Parses `record`; undefined when it is empty or names a codec this build does not know. */
export function parseRecord(record: Uint8Array): ParsedRecord | undefined {
  const codec = record[0];
  if (codec !== CODEC_RAW && codec !== CODEC_ZSTD) return undefined;
  return { codec, payload: view(record).subarray(1) };
}

/** The payload of a raw record, or undefined when `record` is not raw. */
export function rawPayload(record: Uint8Array): Buffer | undefined {
  const parsed = parseRecord(record);
  return parsed?.codec === CODEC_RAW ? parsed.payload : undefined;
}

/**
 * The chunk's bytes in `record`, with `inflate` for a zstd payload (the caller owns the
 * decompressor: core has no native zstd). Returns undefined for an unknown codec; whatever
 * `inflate` throws passes through.
 */
export function recordBytes(record: Uint8Array, inflate: (frame: Buffer) => Buffer): Buffer | undefined {
  const parsed = parseRecord(record);
  if (!parsed) return undefined;
  return parsed.codec === CODEC_RAW ? parsed.payload : inflate(parsed.payload);
}
