/*
 * Reading a sparse file by its data extents, on real files in a temp folder: the pieces put
 * back together are the file, byte for byte; only the data extents are read; and the
 * fallback (no SEEK_DATA) reads everything and gives the same bytes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, ftruncateSync, writeSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataExtents, seekData, type Seek } from '../src/file-extents.js';
import { pieces } from '../src/transfer.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB + 12_288; // not a multiple of the 4 MiB piece: the last piece is short
/** Data runs written into the sparse file: one at the start, one across a piece boundary, one at the end. */
const RUNS = [
  { offset: 0, length: 64 * 1024 },
  { offset: 7 * MiB + 8192, length: 2 * MiB },
  { offset: SIZE - 4096, length: 4096 },
];

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function seeded(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24 || 1; // never zero, so no all-zero run hides inside the data
  }
  return b;
}

/** Reassembles what `pieces` yields into a buffer of the file's size. */
async function reassemble(file: string, seek: Seek | undefined, skipHoles: boolean): Promise<{ image: Buffer; read: number; offsets: number[] }> {
  const image = Buffer.alloc(SIZE);
  let read = 0;
  const offsets: number[] = [];
  for await (const { offset, data } of pieces(file, { skipHoles, skipZero: skipHoles, seek, onRead: (n) => (read += n) })) {
    offsets.push(offset);
    data.copy(image, offset);
  }
  return { image, read, offsets };
}

describe('data extents of a sparse file', () => {
  let dir = '';
  let file = '';
  let expected = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-extents-'));
    file = join(dir, 'sparse.img');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, SIZE);
    RUNS.forEach((r, i) => writeSync(fd, seeded(r.length, i + 1), 0, r.length, r.offset));
    closeSync(fd);
    expected = sha(readFileSync(file));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('lseek finds the written runs and nothing else', { skip: seekData() === undefined ? 'no SEEK_DATA binding here' : false }, () => {
    const fd = openSync(file, 'r');
    try {
      const extents = [...dataExtents(fd, SIZE, seekData())];
      const dataBytes = extents.reduce((n, e) => n + e.length, 0);
      for (const r of RUNS) {
        assert.ok(
          extents.some((e) => e.offset <= r.offset && e.offset + e.length >= r.offset + r.length),
          `run at ${r.offset} is inside an extent: ${JSON.stringify(extents)}`,
        );
      }
      // The filesystem may round extents up to its allocation unit, never to the whole file.
      assert.ok(dataBytes < 4 * MiB, `extents hold ${dataBytes} bytes`);
    } finally {
      closeSync(fd);
    }
  });

  test('import pieces: only data extents are read, holes are not yielded, the bytes are the file', { skip: seekData() === undefined }, async () => {
    const { image, read, offsets } = await reassemble(file, seekData(), true);
    assert.equal(sha(image), expected);
    assert.ok(read < 4 * MiB, `read ${read} bytes of a ${SIZE}-byte file`);
    // Pieces at 0, 4 MiB and 8 MiB (the run crossing 8 MiB), and the last one.
    assert.deepEqual(offsets, [0, 4 * MiB, 8 * MiB, 64 * MiB]);
  });

  test('write pieces: every byte of the file is yielded, holes as zeros that were not read', async () => {
    const { image, read, offsets } = await reassemble(file, seekData(), false);
    assert.equal(sha(image), expected);
    assert.equal(offsets.length, Math.ceil(SIZE / (4 * MiB)));
    if (seekData() !== undefined) assert.ok(read < 4 * MiB, `read ${read} bytes`);
  });

  test('fallback without SEEK_DATA: the whole file is read, same bytes', async () => {
    const skipped = await reassemble(file, undefined, true);
    assert.equal(sha(skipped.image), expected);
    assert.equal(skipped.read, SIZE);
    assert.deepEqual(skipped.offsets, [0, 4 * MiB, 8 * MiB, 64 * MiB], 'all-zero pieces are still not sent');
    const whole = await reassemble(file, undefined, false);
    assert.equal(sha(whole.image), expected);
  });

  test('a filesystem that refuses SEEK_DATA (EINVAL) falls back to reading it all', async () => {
    const refusing: Seek = () => -constants.errno.EINVAL;
    const { image, read } = await reassemble(file, refusing, true);
    assert.equal(sha(image), expected);
    assert.equal(read, SIZE);
  });

  test('any other lseek error is reported, not taken for a hole', () => {
    const failing: Seek = () => -constants.errno.EIO;
    assert.throws(() => [...dataExtents(0, SIZE, failing)], /lseek\(SEEK_DATA\/SEEK_HOLE\) at offset 0 failed: EIO/);
  });
});
