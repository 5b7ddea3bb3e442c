/*
 * FAT12/16/32 (EFI system partitions, USB-style data disks) through fatfs, reading sectors
 * through a NodeDisk. FAT has no owners, permissions or symlinks: entries read as uid/gid 0,
 * mode 0755 for directories and 0644 for files (fatfs's own mapping is of its process's umask).
 */
import type { FatFs, FatVolume } from 'fatfs';
import { InvalidArgumentError, NotFoundError, VmferryError } from '@vmferry/core';
import type { NodeDisk } from './node-disk.js';
import { pathCalls, serialised, type FileEntry, type FileTree } from './file-tree.js';

const SECTOR = 512;

function volume(disk: NodeDisk, offset: number, size: number): FatVolume {
  return {
    sectorSize: SECTOR,
    numSectors: Math.floor(size / SECTOR),
    readSectors: (sector, dest, cb) => {
      disk.read(dest, 0, dest.length, offset + sector * SECTOR).then(
        () => cb(null, dest),
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
      );
    },
  };
}

const promised = <T>(fn: (cb: (err: Error | null, value: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

function pathError(e: unknown, path: string, where: string): Error {
  if (e instanceof VmferryError) return e;
  // fatfs names codes without the leading E ('NOENT').
  const raw = (e as { code?: unknown } | null)?.code;
  const code = typeof raw === 'string' && !raw.startsWith('E') ? `E${raw}` : raw;
  if (code === 'ENOENT') return new NotFoundError('path', path, `no such file or directory '${path}' in ${where}`);
  if (code === 'ENOTDIR') return new NotFoundError('path', path, `'${path}' in ${where}: a part of the path is not a directory`);
  if (code === 'EISDIR') return new InvalidArgumentError(`'${path}' in ${where} is a directory`);
  const why = typeof code === 'string' ? code : e instanceof Error ? e.message.slice(0, 200) : 'unknown error';
  return new VmferryError('data-loss', `cannot read '${path}' in ${where}: the filesystem looks damaged (${why})`, { cause: e });
}

/** Opens the FAT filesystem in [offset, offset + size) of `disk`. */
export async function openFatTree(disk: NodeDisk, offset: number, size: number, where: string): Promise<FileTree> {
  let fs: FatFs | undefined;
  try {
    fs = await new Promise<FatFs>((resolve, reject) => {
      const made: FatFs = createFs(volume(disk, offset, size), (err) => (err ? reject(err) : resolve(made)));
    });
  } catch (e) {
    if (e instanceof VmferryError) throw e;
    throw new VmferryError(
      'data-loss',
      `cannot open the FAT filesystem of ${where}: it looks damaged (${e instanceof Error ? e.message.slice(0, 200) : String(e)})`,
      {
        cause: e,
      },
    );
  }
  const f = fs;
  const one = serialised();
  const call = pathCalls(one, (e, path) => pathError(e, path, where));
  const entry = async (path: string): Promise<FileEntry> => {
    // fatfs cannot stat the root directory (it has no directory entry of its own).
    if (path === '/') return { name: '/', path, type: 'dir', mode: 0o755, size: 0, uid: 0, gid: 0, mtimeMs: 0, atimeMs: 0 };
    // fatfs's stat refuses directories (ISDIR); its internal '\\r' flag opens either kind.
    const fd = await promised<number>((cb) => f.open(path, '\\r', cb));
    const st = await promised<Parameters<Parameters<FatFs['fstat']>[1]>[1]>((cb) => f.fstat(fd, cb)).finally(() => f.close(fd, () => undefined));
    const dir = st.isDirectory();
    const name = path === '/' ? '/' : (path.split('/').pop() ?? path);
    return {
      name,
      path,
      type: dir ? 'dir' : 'file',
      mode: dir ? 0o755 : 0o644,
      size: dir ? 0 : st.size,
      uid: 0,
      gid: 0,
      mtimeMs: st.mtime.getTime(),
      atimeMs: st.atime.getTime(),
    };
  };
  return {
    filesystem: 'fat',
    stat: (path) => call(path, () => entry(path)),
    list: (path) =>
      call(path, async () => {
        if ((await entry(path)).type !== 'dir') throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
        const names = (await promised<string[]>((cb) => f.readdir(path, cb))).filter((n) => n !== '.' && n !== '..').sort();
        const out: FileEntry[] = [];
        for (const n of names) out.push(await entry(path === '/' ? `/${n}` : `${path}/${n}`));
        return out;
      }),
    readlink: (path) => Promise.reject(new InvalidArgumentError(`'${path}' in ${where} is not a symlink (FAT has none)`)),
    open: (path) =>
      call(path, async () => {
        const fd = await promised<number>((cb) => f.open(path, 'r', cb));
        return {
          read: (buf, position) => call(path, () => promised<number>((cb) => f.read(fd, buf, 0, buf.length, position, cb))),
          close: () => call(path, () => promised<undefined>((cb) => f.close(fd, (err) => cb(err, undefined)))),
        };
      }),
    close: () => Promise.resolve(),
  };
}

function createFs(vol: FatVolume, cb: (err: Error | null) => void): FatFs {
  // Loaded here so `vmferry` starts without it; fatfs is CommonJS.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lib = require('fatfs') as typeof import('fatfs');
  return lib.createFileSystem(vol, { ro: true, umask: 0o022, uid: 0, gid: 0 }, cb);
}
