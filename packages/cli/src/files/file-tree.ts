/** One guest filesystem, opened read-only: what `vmferry files` needs of ext2fs and fatfs alike. */
import { posix } from 'node:path';
import { InvalidArgumentError } from '@vmferry/core';

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileEntry {
  readonly name: string;
  /** Absolute path inside the filesystem. */
  readonly path: string;
  readonly type: EntryType;
  /** Permission bits (07777); the type is in `type`. */
  readonly mode: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeMs: number;
  readonly atimeMs: number;
}

export interface FileReader {
  /** Bytes read into `buf` from `position`; 0 at the end. */
  read(buf: Buffer, position: number): Promise<number>;
  close(): Promise<void>;
}

/** Paths are absolute inside the filesystem; every method rejects with NotFoundError('path') for a missing one. */
export interface FileTree {
  readonly filesystem: 'ext' | 'fat';
  /** The entry itself (a symlink is not followed). */
  stat(path: string): Promise<FileEntry>;
  /** A directory's entries, sorted by name, without '.' and '..'. */
  list(path: string): Promise<FileEntry[]>;
  readlink(path: string): Promise<string>;
  open(path: string): Promise<FileReader>;
  close(): Promise<void>;
}

/** `path` (as typed by a user) as an absolute, normalised path; refuses NUL bytes. */
export function guestPath(path: string): string {
  if (path.includes('\0')) throw new InvalidArgumentError(`path '${path.replace(/\0/g, '\\0')}' holds a NUL byte`);
  const p = posix.normalize(`/${path}`);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

export function typeOfMode(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

/** Runs calls one at a time: the filesystem libraries keep per-call state in module globals. */
export function serialised(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** Calls on one path, run through `one`, with a library failure turned into the filesystem's own error naming the path. */
export function pathCalls(
  one: <T>(fn: () => Promise<T>) => Promise<T>,
  toError: (e: unknown, path: string) => Error,
): <T>(path: string, fn: () => Promise<T>) => Promise<T> {
  return <T>(path: string, fn: () => Promise<T>): Promise<T> =>
    one(async () => {
      try {
        return await fn();
      } catch (e) {
        throw toError(e, path);
      }
    });
}
