/*
 * How the store compresses a chunk (the record format itself is core's stored-record.ts).
 * A chunk is kept raw when zstd saves less than 10 % of it (random or already compressed
 * data), so reading it back costs nothing.
 */
/** Keep zstd output only if it is at most this fraction of the raw size. */
export const MAX_COMPRESSED_FRACTION = 0.9;
export const DEFAULT_ZSTD_LEVEL = 3;
