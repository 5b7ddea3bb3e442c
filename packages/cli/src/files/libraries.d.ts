/* The parts of the untyped filesystem libraries that file-level restore uses. */
declare module 'ext2fs' {
  import type { Disk } from 'file-disk';
  interface Ext2Stats {
    mode: number;
    size: number;
    uid: number;
    gid: number;
    ino: number;
    nlink: number;
    atime: Date;
    mtime: Date;
    isDirectory(): boolean;
    isFile(): boolean;
    isSymbolicLink(): boolean;
  }
  interface Ext2FileHandle {
    read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
    close(): Promise<void>;
  }
  interface Ext2Promises {
    lstat(path: string): Promise<Ext2Stats>;
    readdir(path: string): Promise<string[]>;
    readlink(path: string): Promise<string>;
    open(path: string, flags: string): Promise<Ext2FileHandle>;
  }
  export interface Ext2Fs {
    promises: Ext2Promises;
  }
  export function mount(disk: Disk, offset: number): Promise<Ext2Fs>;
  export function umount(fs: Ext2Fs): Promise<void>;
}

declare module 'fatfs' {
  interface FatStats {
    mode: number;
    size: number;
    uid: number;
    gid: number;
    atime: Date;
    mtime: Date;
    isDirectory(): boolean;
    isFile(): boolean;
  }
  type Callback<T> = (err: (Error & { code?: string }) | null, value: T) => void;
  export interface FatVolume {
    sectorSize: number;
    numSectors: number;
    readSectors(sector: number, dest: Buffer, cb: (err: Error | null, dest?: Buffer) => void): void;
  }
  export interface FatFs {
    lstat(path: string, cb: Callback<FatStats>): void;
    fstat(fd: number, cb: Callback<FatStats>): void;
    readdir(path: string, cb: Callback<string[]>): void;
    open(path: string, flags: string, cb: Callback<number>): void;
    read(fd: number, buffer: Buffer, offset: number, length: number, position: number, cb: (err: Error | null, bytesRead: number) => void): void;
    close(fd: number, cb: (err: Error | null) => void): void;
  }
  export function createFileSystem(
    volume: FatVolume,
    opts: { ro: boolean; umask?: number; uid?: number; gid?: number },
    cb: (err: Error | null) => void,
  ): FatFs;
}
