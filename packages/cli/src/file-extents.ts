/**
 * The data extents of a file, found with lseek(SEEK_DATA / SEEK_HOLE), so the holes of a
 * sparse image are never read. Node's fs has no SEEK_DATA, so libc's lseek is called through
 * koffi (a maintained FFI on N-API: its prebuilt binary loads unchanged on every Node version
 * CI runs, where a NAN addon such as fs-ext must be rebuilt per Node ABI). Where the call is
 * missing or the filesystem refuses it, the whole file counts as one data extent: reading it
 * all is slower, never wrong.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
// koffi ships its types as an ES module and its code for require() too; this CommonJS
// package loads it with require, when first needed, so a missing binary only means the fallback.
import type * as Koffi from 'koffi' with { 'resolution-mode': 'import' };

export interface Extent {
  readonly offset: number;
  readonly length: number;
}

/** lseek(2): the new offset, or minus errno (the raw-syscall convention, so errno cannot go stale). */
export type Seek = (fd: number, offset: number, whence: number) => number;

// Linux's values; other systems number them differently (macOS swaps them), so seekData
// is only bound on Linux.
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const { ENXIO, EINVAL, EOPNOTSUPP, ENOTSUP } = constants.errno;

let bound: Seek | null | undefined;

/**
 * libc's lseek, or undefined where it cannot be used: not Linux, the binding does not load,
 * or VMFERRY_SEEK_DATA=off (to compare with plain reads, or for a filesystem whose
 * SEEK_DATA is slow).
 */
export function seekData(): Seek | undefined {
  if (bound === undefined) bound = bind();
  return bound ?? undefined;
}

function bind(): Seek | null {
  if (process.platform !== 'linux' || process.env['VMFERRY_SEEK_DATA'] === 'off') return null;
  try {
    const koffi = createRequire(__filename)('koffi') as typeof Koffi;
    // load(null): the symbols already in the process, so glibc and musl both resolve.
    const lseek = koffi.load(null).func('int64_t lseek(int, int64_t, int)') as (fd: number, offset: number, whence: number) => number;
    return (fd, offset, whence) => {
      const r = lseek(fd, offset, whence);
      return r < 0 ? -koffi.errno() : r;
    };
  } catch {
    return null;
  }
}

/**
 * The data extents of the first `size` bytes of `fd`, in order, computed lazily (two lseek
 * calls per extent). Without `seek` (pass seekData()), one extent of the whole file.
 */
export function* dataExtents(fd: number, size: number, seek: Seek | undefined): Generator<Extent> {
  if (size === 0) return;
  if (seek === undefined) {
    yield { offset: 0, length: size };
    return;
  }
  for (let pos = 0; pos < size;) {
    const data = seek(fd, pos, SEEK_DATA);
    if (data < 0) {
      // ENXIO: no data at or after pos, the rest is a hole.
      if (-data === ENXIO) return;
      if (unsupported(-data)) {
        yield { offset: pos, length: size - pos };
        return;
      }
      throw errnoError(-data, pos);
    }
    if (data >= size) return;
    let hole = seek(fd, data, SEEK_HOLE);
    if (hole < 0) {
      if (!unsupported(-hole)) throw errnoError(-hole, data);
      hole = size;
    }
    const end = Math.min(hole, size);
    yield { offset: data, length: end - data };
    pos = end;
  }
}

function unsupported(errno: number): boolean {
  return errno === EINVAL || errno === EOPNOTSUPP || errno === ENOTSUP;
}

function errnoError(errno: number, offset: number): Error {
  const name = Object.entries(constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
  return Object.assign(new Error(`lseek(SEEK_DATA/SEEK_HOLE) at offset ${offset} failed: ${name}`), { code: name, errno });
}
