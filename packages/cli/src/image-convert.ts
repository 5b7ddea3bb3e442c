/**
 * What `vm import` reads: raw images as they are; a qcow2, VMDK, VHDX, VHD or VDI container
 * refused unless `--format` names it, then converted to a sparse raw file by the real
 * `qemu-img convert` (QEMU's own reader of those formats) in a temporary folder, imported from
 * there and removed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { detectImageFormat, FailedPreconditionError, IMAGE_HEAD_BYTES, IMAGE_TAIL_BYTES, InvalidArgumentError, type ImageFormat } from '@vmferry/core';

/** The values `--format` takes: raw (import the bytes as they are) or a container to convert. */
export const IMPORT_FORMATS: readonly string[] = ['raw', 'qcow2', 'qcow', 'vmdk', 'vhdx', 'vpc', 'vdi'];

/** The container format `file` starts (or, for VHD, ends) with, or undefined for a raw disk. */
export async function sniffImage(file: string): Promise<ImageFormat | undefined> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(IMAGE_HEAD_BYTES, size));
    await fh.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(IMAGE_TAIL_BYTES, size));
    await fh.read(tail, 0, tail.length, size - tail.length);
    return detectImageFormat(head, tail);
  } finally {
    await fh.close();
  }
}

function qemuImg(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('qemu-img', args, { maxBuffer: 4 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) resolve();
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new FailedPreconditionError('--format needs qemu-img, which is not installed (Debian/Ubuntu: apt-get install qemu-utils)'));
      else reject(new InvalidArgumentError(`qemu-img could not convert ${args.at(-2) ?? ''}: ${stderr.trim() || err.message}`));
    });
  });
}

export interface ImportSources {
  /** The raw files to import, one per vDisk, in the order given. */
  readonly files: readonly string[];
  /** Removes the converted copies (a no-op when nothing was converted). */
  cleanup(): Promise<void>;
}

/**
 * The raw files to import for `images`. Without `format`, a recognised container is refused
 * naming its format; with `raw`, the bytes are taken as they are; with a container format,
 * each image is converted by qemu-img into `workDir` (default: the system's temp folder).
 */
export async function importSources(
  images: readonly string[],
  format: string | undefined,
  workDir: string | undefined,
  log: (line: string) => void,
): Promise<ImportSources> {
  if (format === 'raw') return { files: images, cleanup: () => Promise.resolve() };
  if (format === undefined) {
    for (const file of images) {
      const found = await sniffImage(file);
      if (found)
        throw new InvalidArgumentError(
          `${file} is a ${found} image, not a raw disk: add --format ${found} to convert it with qemu-img while importing ` +
            `(or --format raw to import its bytes as they are)`,
        );
    }
    return { files: images, cleanup: () => Promise.resolve() };
  }
  const dir = await mkdtemp(join(workDir ?? tmpdir(), 'vmferry-import-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const files: string[] = [];
    for (const [i, file] of images.entries()) {
      const out = join(dir, `${i}-${basename(file)}.raw`);
      log(`converting ${file} (${format}) to raw with qemu-img`);
      // -S 4k: runs of zeros become holes, which the import then skips without reading.
      await qemuImg(['convert', '-q', '-S', '4k', '-f', format, '-O', 'raw', file, out]);
      files.push(out);
    }
    return { files, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
