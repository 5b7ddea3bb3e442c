/*
 * Stored form of a chunk. DO NOT CHANGE codec numbers: they are on disk.
 *   byte 0: codec (0 raw, 1 zstd), then the payload.
 * A chunk is kept raw when zstd saves less than MIN_SAVING of it (random or already
 * compressed data), so reading it back costs nothing.
 */
export const CODEC_RAW = 0;
export const CODEC_ZSTD = 1;
/** Keep zstd output only if it is at most this fraction of the raw size. */
export const MAX_COMPRESSED_FRACTION = 0.9;
export const DEFAULT_ZSTD_LEVEL = 3;
