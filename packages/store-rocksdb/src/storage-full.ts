/*
 * Telling a full filesystem from other write failures. RocksDB reports a failed WAL append
 * only as "Batch was not applied" (and refuses every later write until reopened), so the
 * data directory's free space decides: below FULL_BELOW_BYTES the failure is a full disk.
 */
import { statfs } from 'node:fs/promises';
import { StorageFullError, VmferryError } from '@vmferry/core';

/**
 * Below this much free space a failed write counts as a full disk, and writing resumes only
 * above it: room for a memtable flush to start (flushes write table and blob files).
 */
export const FULL_BELOW_BYTES = 64 * 1024 * 1024;

/** Free bytes for unprivileged writers on the filesystem of `dir` (undefined if unknown). */
export async function freeBytes(dir: string): Promise<number | undefined> {
  const s = await statfs(dir).catch(() => undefined);
  return s === undefined ? undefined : s.bavail * s.bsize;
}

/** The coded error for a write refused on a full `dir`. */
export function storageFull(dir: string, free: number, cause?: unknown): StorageFullError {
  const why = cause instanceof Error ? ` (${cause.message})` : '';
  return new StorageFullError(
    `data directory ${dir} is full: ${free} bytes free${why}. Nothing committed was lost; free space on its filesystem ` +
      `(at least ${FULL_BELOW_BYTES} bytes) and retry: the node resumes writing by itself`,
    { cause },
  );
}

/** `e` as a StorageFullError when `dir` is (nearly) full, else `e` unchanged. */
export async function asStorageFull(dir: string, e: unknown): Promise<unknown> {
  if (e instanceof VmferryError) return e;
  const free = await freeBytes(dir);
  return free !== undefined && free < FULL_BELOW_BYTES ? storageFull(dir, free, e) : e;
}
