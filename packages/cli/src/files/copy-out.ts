/*
 * `files get`: a file, a symlink or a directory tree out of a guest filesystem onto the local
 * one, keeping permission bits, modification and access times, and symlinks as symlinks.
 * Names come from the guest (untrusted): one holding '/', NUL, or being '.' or '..' is
 * skipped and reported. Every file is created exclusively ('wx'), so nothing already at the
 * destination is overwritten and no write ever goes through a symlink.
 */
import { lutimes, mkdir, open, symlink, utimes, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { AlreadyExistsError } from '@vmferry/core';
import type { FileEntry, FileTree } from './file-tree.js';

/** Bytes asked of the filesystem per read. */
const READ_BYTES = 1024 * 1024;

export interface CopyReport {
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of file data written. */
  bytes: number;
  /** Entries not restored and why (devices, sockets, unsafe names). */
  skipped: { path: string; reason: string }[];
}

export type CopyProgress = (report: CopyReport) => void;

const safeName = (n: string): boolean => n !== '' && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');

async function copyFile(tree: FileTree, e: FileEntry, dest: string, report: CopyReport, progress: CopyProgress): Promise<void> {
  const reader = await tree.open(e.path);
  const out = await open(dest, 'wx', 0o600).catch(async (err: unknown) => {
    await reader.close();
    throw err;
  });
  try {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (let pos = 0; ;) {
      const n = await reader.read(buf, pos);
      if (n === 0) break;
      await out.write(buf, 0, n, pos);
      pos += n;
      report.bytes += n;
      progress(report);
    }
  } finally {
    await out.close();
    await reader.close();
  }
  await chmod(dest, e.mode);
  await utimes(dest, e.atimeMs / 1000, e.mtimeMs / 1000);
  report.files++;
}

async function copyEntry(tree: FileTree, e: FileEntry, dest: string, report: CopyReport, progress: CopyProgress): Promise<void> {
  switch (e.type) {
    case 'file':
      await copyFile(tree, e, dest, report, progress);
      return;
    case 'symlink':
      await symlink(await tree.readlink(e.path), dest);
      await lutimes(dest, e.atimeMs / 1000, e.mtimeMs / 1000);
      report.symlinks++;
      return;
    case 'dir': {
      await mkdir(dest, { mode: 0o700 });
      for (const child of await tree.list(e.path)) {
        if (!safeName(child.name)) {
          report.skipped.push({ path: child.path, reason: 'unsafe name' });
          continue;
        }
        await copyEntry(tree, child, join(dest, child.name), report, progress);
      }
      // Modes and times last: a read-only directory still gets its children, and their writes do not touch its mtime after.
      await chmod(dest, e.mode);
      await utimes(dest, e.atimeMs / 1000, e.mtimeMs / 1000);
      report.dirs++;
      return;
    }
    case 'other':
      report.skipped.push({ path: e.path, reason: 'not a file, directory or symlink (device, FIFO or socket)' });
      return;
  }
}

/** Copies `entry` (and, for a directory, everything under it) to `dest`, which must not exist. */
export async function copyOut(tree: FileTree, entry: FileEntry, dest: string, progress: CopyProgress = () => undefined): Promise<CopyReport> {
  const report: CopyReport = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: [] };
  try {
    await copyEntry(tree, entry, dest, report, progress);
  } catch (err) {
    const e = err as { code?: string; path?: string };
    if (e.code === 'EEXIST')
      throw new AlreadyExistsError(`'${e.path ?? dest}' exists: file-level restore never overwrites (remove it or pick another destination)`);
    throw err;
  }
  return report;
}
