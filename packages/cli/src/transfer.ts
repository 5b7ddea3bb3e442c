/** Streaming a file into a vDisk (import, write) and a vDisk out to a sparse file (export). */
import { open, stat } from 'node:fs/promises';
import { InvalidArgumentError, isZero, SECTOR } from '@vmferry/core';
import type { StorageNodeClient, VmView, WriteResultView } from '@vmferry/grpc-edge';
import type { Progress } from './progress.js';

/** Size of each data message; well under the node's 8 MiB message limit. */
const PIECE_BYTES = 4 * 1024 * 1024;

/**
 * The file in PIECE_BYTES pieces with their offsets. With `skipZero`, all-zero pieces are
 * not yielded, and their buffer is reused for the next read (a fresh 4 MiB buffer costs a
 * thousand page faults; a sparse 16 GiB image is mostly zeros).
 */
async function* pieces(file: string, skipZero = false): AsyncGenerator<{ offset: number; data: Buffer }> {
  const fh = await open(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(PIECE_BYTES);
    for (let position = 0; ;) {
      const { bytesRead } = await fh.read(buf, 0, PIECE_BYTES, position);
      if (bytesRead === 0) return;
      const data = bytesRead === PIECE_BYTES ? buf : buf.subarray(0, bytesRead);
      const offset = position;
      position += bytesRead;
      if (skipZero && isZero(data)) continue;
      yield { offset, data };
      buf = Buffer.allocUnsafe(PIECE_BYTES);
    }
  } finally {
    await fh.close();
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
      // A new disk reads as zeros: all-zero pieces need not cross the wire.
      for await (const { offset, data } of pieces(file, true)) {
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
    for await (const { data } of pieces(file)) {
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

/**
 * Exports a vDisk to `file`: data extents are written in place, holes are skipped and the
 * file is sized to the disk, so holes stay sparse on the local filesystem.
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
  try {
    for await (const x of client.readDisk({ ref: req.ref, diskIndex: req.diskIndex, offset: 0, length: 0 })) {
      if (x.diskSize > 0 && size === 0) {
        size = x.diskSize;
        onSize(size);
      }
      if (x.data.length > 0) {
        // Several positioned writes in flight, so disk writes overlap the network stream.
        const w: Promise<unknown> = fh.write(x.data, 0, x.data.length, x.offset).finally(() => writes.delete(w));
        writes.add(w);
        if (writes.size >= 8) await Promise.race(writes);
        dataBytes += x.data.length;
      }
      progress.update(x.offset + (x.data.length || x.holeLength));
    }
    await Promise.all(writes);
    // No fsync: like cp, the export is in the page cache when the command returns.
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  return { size, dataBytes };
}
