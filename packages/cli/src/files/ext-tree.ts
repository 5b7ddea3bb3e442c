/*
 * ext2/3/4 through ext2fs (libext2fs compiled to WebAssembly), reading through a NodeDisk.
 * The library installs process-wide 'uncaughtException' and 'unhandledRejection' handlers
 * when it loads (emscripten's runtime); they are removed again, so its failures stay errors
 * of the call that caused them. Its error messages embed the call's arguments (whole
 * buffers), so only their `code` is ever shown.
 *
 * ext2fs 4.2.5 leaks one open ext2_file (about 12 KiB of its fixed 16 MiB WebAssembly heap)
 * per readdir: its C glue opens the directory and never closes it, so about a thousand
 * listings end in "Aborted(OOM)". A tree therefore counts its listings and, before the
 * budget is spent and while no file is open, unmounts and mounts again on a fresh instance of
 * the module (a new heap); the old instance is garbage once unreferenced.
 *
 * That heap cannot grow (the memory is defined inside the WebAssembly module), and mounting
 * reads the block and inode bitmaps into it: an ext filesystem much over 250 GiB (4 KiB
 * blocks) does not fit, and is refused with RESOURCE_EXHAUSTED saying so.
 */
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import type { Ext2Fs } from 'ext2fs';
import { NotFoundError, VmferryError, InvalidArgumentError } from '@vmferry/core';
import type { NodeDisk } from './node-disk.js';
import { pathCalls, serialised, typeOfMode, type FileEntry, type FileReader, type FileTree } from './file-tree.js';

type Ext2fsModule = typeof import('ext2fs');

/** Listings one module instance serves (about 2.5 MiB of leaked heap, room left for a large filesystem's bitmaps) before a fresh one takes over. */
export const READDIRS_PER_INSTANCE = 200;

const load = createRequire(__filename);

/** A new instance of ext2fs (its own WebAssembly heap), taking back the process handlers it adds. */
function freshExt2fs(): Ext2fsModule {
  const dir = dirname(load.resolve('ext2fs'));
  for (const key of Object.keys(load.cache)) if (key.startsWith(dir + sep)) Reflect.deleteProperty(load.cache, key);
  const before = { ue: process.listeners('uncaughtException'), ur: process.listeners('unhandledRejection') };
  try {
    return load('ext2fs') as Ext2fsModule;
  } finally {
    for (const l of process.listeners('uncaughtException')) if (!before.ue.includes(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.ur.includes(l)) process.removeListener('unhandledRejection', l);
  }
}

const codeOf = (e: unknown): string => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : 'unknown error';
};

/** emscripten's abort when the fixed heap is full. */
const isOutOfMemory = (e: unknown): boolean => e instanceof Error && e.message.startsWith('Aborted(OOM)');

function tooLarge(where: string, e: unknown): VmferryError {
  return new VmferryError(
    'resource-exhausted',
    `the ext filesystem of ${where} does not fit ext2fs's fixed 16 MiB WebAssembly heap (filesystems up to about 250 GiB do): export the disk (vmferry disk export) and read it with debugfs or a loop mount`,
    { cause: e, retryable: false },
  );
}

/** A library failure in our words: missing paths by name, the rest as a damaged filesystem. */
function pathError(e: unknown, path: string, where: string): Error {
  if (e instanceof VmferryError) return e;
  if (isOutOfMemory(e)) return tooLarge(where, e);
  const code = codeOf(e);
  if (code === 'ENOENT') return new NotFoundError('path', path, `no such file or directory '${path}' in ${where}`);
  if (code === 'ENOTDIR') return new NotFoundError('path', path, `'${path}' in ${where}: a part of the path is not a directory`);
  if (code === 'EISDIR') return new InvalidArgumentError(`'${path}' in ${where} is a directory`);
  return new VmferryError('data-loss', `cannot read '${path}' in ${where}: the filesystem looks damaged (${code})`, { cause: e });
}

async function mountFresh(disk: NodeDisk, offset: number, where: string): Promise<{ lib: Ext2fsModule; fs: Ext2Fs }> {
  const lib = freshExt2fs();
  try {
    return { lib, fs: await lib.mount(disk, offset) };
  } catch (e) {
    if (e instanceof VmferryError) throw e;
    if (isOutOfMemory(e)) throw tooLarge(where, e);
    throw new VmferryError('data-loss', `cannot open the ext filesystem of ${where}: it looks damaged (${codeOf(e)})`, { cause: e });
  }
}

/** Mounts the ext filesystem at `offset` of `disk`; `where` names it in errors ("vm@s1 partition 2"). */
export async function openExtTree(disk: NodeDisk, offset: number, where: string): Promise<FileTree & { readonly instances: () => number }> {
  let mounted = await mountFresh(disk, offset, where);
  let instances = 1;
  let readdirs = 0;
  let openFiles = 0;
  const p = (): Ext2Fs['promises'] => mounted.fs.promises;
  /** A fresh instance once the listing budget is spent, between files (an open handle lives in the old heap). */
  const renew = async (): Promise<void> => {
    if (readdirs < READDIRS_PER_INSTANCE || openFiles > 0) return;
    await mounted.lib.umount(mounted.fs).catch(() => undefined);
    mounted = await mountFresh(disk, offset, where);
    instances++;
    readdirs = 0;
  };
  const one = serialised();
  const entry = async (path: string): Promise<FileEntry> => {
    const st = await p().lstat(path);
    const name = path === '/' ? '/' : (path.split('/').pop() ?? path);
    return {
      name,
      path,
      type: typeOfMode(st.mode),
      mode: st.mode & 0o7777,
      size: st.size,
      uid: st.uid,
      gid: st.gid,
      mtimeMs: st.mtime.getTime(),
      atimeMs: st.atime.getTime(),
    };
  };
  const call = pathCalls(one, (e, path) => pathError(e, path, where));
  return {
    filesystem: 'ext',
    stat: (path) => call(path, () => entry(path)),
    list: (path) =>
      call(path, async () => {
        await renew();
        readdirs++;
        const names = (await p().readdir(path)).filter((n) => n !== '.' && n !== '..').sort();
        const out: FileEntry[] = [];
        for (const n of names) out.push(await entry(path === '/' ? `/${n}` : `${path}/${n}`));
        return out;
      }),
    readlink: (path) => call(path, () => p().readlink(path)),
    open: (path) =>
      call(path, async (): Promise<FileReader> => {
        const h = await p().open(path, 'r');
        openFiles++;
        return {
          read: (buf, position) => call(path, async () => (await h.read(buf, 0, buf.length, position)).bytesRead),
          close: () =>
            call(path, async () => {
              openFiles--;
              await h.close();
            }),
        };
      }),
    close: () => one(() => mounted.lib.umount(mounted.fs)),
    instances: () => instances,
  };
}
