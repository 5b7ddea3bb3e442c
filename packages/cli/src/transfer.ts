/** Streaming a file into a vDisk (import, write) and a vDisk out to a sparse file (export). */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { InvalidArgumentError, isZero, SECTOR } from '@vmferry/core';
import type { StorageNodeClient, VmView, WriteResultView } from '@vmferry/grpc-edge';
import { dataExtents, seekData, type Seek } from './file-extents.js';
import type { Progress } from './progress.js';

/**
 * Size of each data message, and the grid the file is cut on: 4 MiB-aligned pieces cover
 * whole blocks for every block size (4 KiB to 4 MiB) when the disk's grid starts at 0, so a
 * hole skipped between pieces leaves no partial block for the node to patch (a grid shifted
 * by auto-alignment gets two per skip, as before). Well under the node's 8 MiB message limit.
 */
const PIECE_BYTES = 4 * 1024 * 1024;
/** What a hole reads as, shared: it is only ever read from. */
const ZEROS = Buffer.alloc(PIECE_BYTES);

export interface PieceOptions {
  /** Pieces with no data extent are not yielded (import: a new disk already reads as zeros). */
  readonly skipHoles: boolean;
  /** All-zero pieces (zeros written as data, not holes) are not yielded either. */
  readonly skipZero: boolean;
  /** lseek for SEEK_DATA; absent: seekData(); undefined: the whole file is read (the fallback). */
  readonly seek?: Seek | undefined;
  /** Counts the bytes read from the file. */
  readonly onRead?: (bytes: number) => void;
}

/**
 * The file in PIECE_BYTES-aligned pieces with their offsets. Only the file's data extents
 * are read: the rest of a piece is zero-filled in memory, and a piece with no data at all
 * is skipped or, when the receiver needs the bytes, is the shared ZEROS. A yielded buffer is
 * not reused (the caller may still hold it); an all-zero one that was skipped is.
 */
export async function* pieces(file: string, o: PieceOptions): AsyncGenerator<{ offset: number; data: Buffer }> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const extents = dataExtents(fh.fd, size, 'seek' in o ? o.seek : seekData());
    let ext = extents.next();
    let buf = Buffer.allocUnsafe(PIECE_BYTES);
    for (let start = 0; start < size;) {
      if (ext.done === true || ext.value.offset >= start + PIECE_BYTES) {
        // No data from here to the piece holding the next extent.
        const next = ext.done === true ? size : ext.value.offset - (ext.value.offset % PIECE_BYTES);
        if (!o.skipHoles) {
          for (let s = start; s < next; s += PIECE_BYTES) yield { offset: s, data: ZEROS.subarray(0, Math.min(PIECE_BYTES, size - s)) };
        }
        start = next;
        continue;
      }
      const end = Math.min(start + PIECE_BYTES, size);
      let filled = start;
      while (ext.done !== true && ext.value.offset < end) {
        const from = Math.max(ext.value.offset, start);
        const to = Math.min(ext.value.offset + ext.value.length, end);
        buf.fill(0, filled - start, from - start);
        await readFully(fh, buf, from - start, to - from, from);
        o.onRead?.(to - from);
        filled = to;
        // An extent running on into the next piece is kept for it.
        if (ext.value.offset + ext.value.length > end) break;
        ext = extents.next();
      }
      buf.fill(0, filled - start, end - start);
      const data = buf.subarray(0, end - start);
      start = end;
      if (o.skipZero && isZero(data)) continue;
      yield { offset: end - data.length, data };
      buf = Buffer.allocUnsafe(PIECE_BYTES);
    }
  } finally {
    await fh.close();
  }
}

async function readFully(fh: FileHandle, buf: Buffer, at: number, length: number, position: number): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesRead } = await fh.read(buf, at + done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`the file ended at ${position + done} while it was read (it shrank)`);
    done += bytesRead;
  }
}

export async function importImages(
  client: StorageNodeClient,
  header: { name: string; blockSize: number; config: Buffer },
  images: readonly string[],
  progress: Progress,
): Promise<VmView> {
  const sizes = await Promise.all(images.map(async (f) => (await stat(f)).size));
  // Refused here, naming the file, rather than by the node as "disk size N".
  images.forEach((f, i) => {
    const size = sizes[i] ?? 0;
    if (size % SECTOR !== 0) throw new InvalidArgumentError(`image ${f} is ${size} bytes, not a whole number of ${SECTOR}-byte sectors (vDisk ${i})`);
  });
  const stream = client.importVm();
  let done = 0;
  let dataBytes = 0;
  try {
    await stream.write({
      kind: {
        $case: 'header',
        value: { name: header.name, disks: sizes.map((size) => ({ size, blockSize: header.blockSize })), hypervisorConfig: header.config },
      },
    });
    for (const [diskIndex, file] of images.entries()) {
      // A new disk reads as zeros: holes and all-zero pieces need not cross the wire (the
      // node skips to the next offset sent).
      for await (const { offset, data } of pieces(file, { skipHoles: true, skipZero: true })) {
        await stream.write({ kind: { $case: 'data', value: { diskIndex, offset, data } } });
        dataBytes += data.length;
        progress.update(done + offset + data.length);
      }
      done += sizes[diskIndex] ?? 0;
      progress.update(done);
    }
    // The node commits only on this marker: a stream cut short by an error here is refused.
    await stream.write({ kind: { $case: 'end', value: { dataBytes } } });
  } catch (e) {
    // Ended without the marker, the node refuses the import: what failed here is the news.
    stream.end().catch(() => undefined);
    throw e;
  }
  return stream.end();
}

export async function writeFile(
  client: StorageNodeClient,
  target: { vm: string; diskIndex: number; offset: number },
  file: string,
  progress: Progress,
): Promise<WriteResultView> {
  const stream = client.writeDisk();
  let done = 0;
  try {
    await stream.write({ kind: { $case: 'header', value: { ...target, length: (await stat(file)).size } } });
    // The stream has no hole message and the disk may hold data there, so holes are sent as
    // zeros, but from memory: the file's holes are not read.
    for await (const { data } of pieces(file, { skipHoles: false, skipZero: false })) {
      await stream.write({ kind: { $case: 'data', value: data } });
      done += data.length;
      progress.update(done);
    }
  } catch (e) {
    stream.end().catch(() => undefined);
    throw e;
  }
  return stream.end();
}

/** Data gathered into one positioned write: a few large pwritev calls, not one per message. */
const WRITE_BYTES = 16 * 1024 * 1024;
/** Buffers per pwritev, under Linux's IOV_MAX (1024). */
const WRITE_PARTS = 512;
/** Positioned writes in flight, so the disk writes overlap the network stream. */
const WRITES_IN_FLIGHT = 4;

/**
 * Exports a vDisk to `file`: runs of adjacent data messages are written with one positioned
 * writev each (the messages' own buffers, no copy into a bigger one), holes are skipped and
 * the file is sized to the disk, so holes stay sparse on the local filesystem.
 */
export async function exportDisk(
  client: StorageNodeClient,
  req: { ref: string; diskIndex: number },
  file: string,
  onSize: (size: number) => void,
  progress: Progress,
): Promise<{ size: number; dataBytes: number }> {
  const fh = await open(file, 'w');
  let size = 0;
  let dataBytes = 0;
  const writes = new Set<Promise<unknown>>();
  let run: Buffer[] = [];
  let runStart = 0;
  let runBytes = 0;
  const flush = async (): Promise<void> => {
    if (runBytes === 0) return;
    const w: Promise<unknown> = writeAll(fh, run, runStart).finally(() => writes.delete(w));
    writes.add(w);
    run = [];
    runBytes = 0;
    if (writes.size >= WRITES_IN_FLIGHT) await Promise.race(writes);
  };
  try {
    for await (const x of client.readDisk({ ref: req.ref, diskIndex: req.diskIndex, offset: 0, length: 0 })) {
      if (x.diskSize > 0 && size === 0) {
        size = x.diskSize;
        onSize(size);
      }
      if (x.data.length > 0) {
        if (runBytes > 0 && x.offset !== runStart + runBytes) await flush();
        if (runBytes === 0) runStart = x.offset;
        run.push(x.data);
        runBytes += x.data.length;
        dataBytes += x.data.length;
        if (runBytes >= WRITE_BYTES || run.length >= WRITE_PARTS) await flush();
      }
      progress.update(x.offset + (x.data.length || x.holeLength));
    }
    await flush();
    await Promise.all(writes);
    // No fsync: like cp, the export is in the page cache when the command returns.
    await fh.truncate(size);
  } finally {
    // A failed write is the error to report; wait for the others before closing the file.
    await Promise.allSettled(writes);
    await fh.close();
  }
  return { size, dataBytes };
}

/** pwritev of `parts` at `position`, resumed after a short write. */
async function writeAll(fh: FileHandle, parts: Buffer[], position: number): Promise<void> {
  let rest = parts;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) {
      skip -= (rest[0] as Buffer).length;
      rest = rest.slice(1);
    }
    if (skip > 0) rest = [(rest[0] as Buffer).subarray(skip), ...rest.slice(1)];
    if (bytesWritten === 0 && rest.length > 0) throw new Error(`writing ${position}: the disk accepted no bytes`);
  }
}
