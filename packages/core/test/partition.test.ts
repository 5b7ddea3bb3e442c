import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gridOffsetFor, parsePartitions, PARTITION_TABLE_BYTES, SECTOR, type Partition } from '../src/index.js';

const K = 1024;

interface MbrEntry {
  readonly type: number;
  readonly start: number;
  readonly count: number;
}

function mbr(entries: readonly MbrEntry[], bytes = PARTITION_TABLE_BYTES): Buffer {
  const buf = Buffer.alloc(bytes);
  entries.forEach((e, i) => {
    const at = 446 + i * 16;
    buf[at + 4] = e.type;
    buf.writeUInt32LE(e.start, at + 8);
    buf.writeUInt32LE(e.count, at + 12);
  });
  buf[510] = 0x55;
  buf[511] = 0xaa;
  return buf;
}

interface GptEntry {
  readonly first: number;
  readonly last: number;
  readonly type?: Buffer;
}

const LINUX_FS = Buffer.from('af3dc60f838472478e793d69d8477de4', 'hex');

function gpt(entries: readonly (GptEntry | undefined)[], opts: { entriesLba?: number; count?: number; entrySize?: number; bytes?: number } = {}): Buffer {
  const entriesLba = opts.entriesLba ?? 2;
  const count = opts.count ?? 128;
  const entrySize = opts.entrySize ?? 128;
  const buf = mbr([{ type: 0xee, start: 1, count: 0xffffffff }], opts.bytes ?? PARTITION_TABLE_BYTES);
  const h = SECTOR;
  buf.write('EFI PART', h, 'latin1');
  buf.writeUInt32LE(0x00010000, h + 8);
  buf.writeUInt32LE(92, h + 12);
  buf.writeBigUInt64LE(BigInt(entriesLba), h + 72);
  buf.writeUInt32LE(count, h + 80);
  buf.writeUInt32LE(entrySize, h + 84);
  entries.forEach((e, i) => {
    if (!e) return;
    const at = entriesLba * SECTOR + i * entrySize;
    (e.type ?? LINUX_FS).copy(buf, at);
    buf.writeBigUInt64LE(BigInt(e.first), at + 32);
    buf.writeBigUInt64LE(BigInt(e.last), at + 40);
  });
  return buf;
}

const part = (startSector: number, sectors: number): Partition => ({ startBytes: startSector * SECTOR, sizeBytes: sectors * SECTOR });

describe('no partition table', () => {
  test('no 0x55AA signature gives [] and no grid offset', () => {
    const noSig = mbr([{ type: 0x83, start: 63, count: 1000 }]);
    noSig[510] = 0;
    noSig[511] = 0;
    assert.deepEqual(parsePartitions(noSig), []);
    assert.equal(gridOffsetFor(noSig, 64 * K), undefined);
    assert.deepEqual(parsePartitions(Buffer.alloc(PARTITION_TABLE_BYTES)), []);
    assert.equal(gridOffsetFor(Buffer.alloc(PARTITION_TABLE_BYTES), 64 * K), undefined);
  });

  test('a head shorter than a sector or empty gives []', () => {
    assert.deepEqual(parsePartitions(Buffer.alloc(0)), []);
    assert.deepEqual(parsePartitions(mbr([{ type: 0x83, start: 63, count: 1000 }]).subarray(0, 511)), []);
  });

  test('a signature with no used entries gives [] and no grid offset', () => {
    const empty = mbr([
      { type: 0, start: 63, count: 1000 },
      { type: 0x83, start: 2048, count: 0 },
    ]);
    assert.deepEqual(parsePartitions(empty), []);
    assert.equal(gridOffsetFor(empty, 64 * K), undefined);
  });
});

describe('MBR', () => {
  test('parses the used entries', () => {
    const head = mbr([
      { type: 0x83, start: 63, count: 1000 },
      { type: 0, start: 0, count: 0 },
      { type: 0x07, start: 4096, count: 200_000 },
    ]);
    assert.deepEqual(parsePartitions(head), [part(63, 1000), part(4096, 200_000)]);
  });

  test('sector 63 with 64 KiB blocks gives grid offset 32256', () => {
    const head = mbr([{ type: 0x83, start: 63, count: 100_000 }]);
    assert.equal(gridOffsetFor(head, 64 * K), 32256);
    assert.equal(gridOffsetFor(head, 4 * K), (63 * 512) % (4 * K));
  });

  test('sector 2048 gives grid offset 0', () => {
    assert.equal(gridOffsetFor(mbr([{ type: 0x83, start: 2048, count: 100_000 }]), 64 * K), 0);
    assert.equal(gridOffsetFor(mbr([{ type: 0x83, start: 2048, count: 100_000 }]), 1024 * K), 0);
  });

  test('the largest partition decides, wherever it is in the table', () => {
    const head = mbr([
      { type: 0x83, start: 2048, count: 1000 },
      { type: 0x83, start: 4000, count: 5000 },
      { type: 0x83, start: 63 + 20_000, count: 900_000 },
      { type: 0x83, start: 1_000_000, count: 10 },
    ]);
    assert.equal(gridOffsetFor(head, 64 * K), ((63 + 20_000) * 512) % (64 * K));
  });

  test('start and count are unsigned 32-bit', () => {
    const head = mbr([{ type: 0x83, start: 0xffff0000, count: 0xfffffff0 }]);
    assert.deepEqual(parsePartitions(head), [part(0xffff0000, 0xfffffff0)]);
  });

  test('works on a view into a larger buffer', () => {
    const head = mbr([{ type: 0x83, start: 63, count: 100 }]);
    const big = Buffer.concat([Buffer.alloc(1000, 0x55), head]);
    const view = new Uint8Array(big.buffer, big.byteOffset + 1000, head.length);
    assert.deepEqual(parsePartitions(view), [part(63, 100)]);
  });
});

describe('GPT', () => {
  test('a protective MBR defers to the GPT entries', () => {
    const head = gpt([{ first: 63, last: 63 + 99_999 }, undefined, { first: 200_000, last: 219_999 }]);
    assert.deepEqual(parsePartitions(head), [part(63, 100_000), part(200_000, 20_000)]);
    assert.equal(gridOffsetFor(head, 64 * K), 32256);
  });

  test('sector 2048 gives grid offset 0', () => {
    const head = gpt([
      { first: 34, last: 2047 },
      { first: 2048, last: 2048 + 500_000 },
    ]);
    assert.equal(gridOffsetFor(head, 64 * K), 0);
  });

  test('the protective entry may be in any MBR slot', () => {
    const head = gpt([{ first: 63, last: 1000 }]);
    head.fill(0, 446, 510);
    head[446 + 3 * 16 + 4] = 0xee;
    assert.deepEqual(parsePartitions(head), [part(63, 938)]);
  });

  test('skips entries with a zero type GUID or last < first', () => {
    const head = gpt([
      { first: 100, last: 199, type: Buffer.alloc(16) },
      { first: 500, last: 400 },
      { first: 1000, last: 1999 },
    ]);
    assert.deepEqual(parsePartitions(head), [part(1000, 1000)]);
  });

  test('honours the entries LBA, count and entry size from the header', () => {
    const head = gpt(
      [
        { first: 64, last: 127 },
        { first: 128, last: 10_000 },
      ],
      { entriesLba: 3, count: 4, entrySize: 256 },
    );
    assert.deepEqual(parsePartitions(head), [part(64, 64), part(128, 9873)]);
    // An entry beyond `count` is ignored.
    const four = gpt([undefined, undefined, undefined, undefined, { first: 128, last: 10_000 }], { count: 4 });
    assert.deepEqual(parsePartitions(four), []);
  });

  test('a protective MBR without an EFI PART header gives []', () => {
    const head = gpt([{ first: 63, last: 1000 }]);
    head.write('NOT PART', SECTOR, 'latin1');
    assert.deepEqual(parsePartitions(head), []);
    assert.equal(gridOffsetFor(head, 64 * K), undefined);
    // Nor does it fall back to reading the protective MBR entry as a partition.
    assert.deepEqual(parsePartitions(mbr([{ type: 0xee, start: 1, count: 1000 }])), []);
  });

  test('implausible headers give []', () => {
    assert.deepEqual(parsePartitions(gpt([{ first: 63, last: 1000 }], { entrySize: 64 })), []);
    assert.deepEqual(parsePartitions(gpt([{ first: 63, last: 1000 }], { count: 5000 })), []);
  });

  test('entries past the end of the head are not read', () => {
    // Entries at LBA 1000: present on the disk, but not in the head the parser is given.
    const far = gpt([{ first: 63, last: 1000 }], { entriesLba: 1000, bytes: 1100 * SECTOR });
    assert.deepEqual(parsePartitions(far), [part(63, 938)]);
    assert.deepEqual(parsePartitions(far.subarray(0, PARTITION_TABLE_BYTES)), []);
    // Only the first sector of entries present: the four entries in it are still read.
    const head = gpt([{ first: 63, last: 1000 }, undefined, undefined, { first: 2000, last: 2999 }, { first: 5000, last: 5999 }]);
    assert.deepEqual(parsePartitions(head.subarray(0, 3 * SECTOR)), [part(63, 938), part(2000, 1000)]);
    // A head too short for the GPT header.
    assert.deepEqual(parsePartitions(head.subarray(0, SECTOR)), []);
  });
});

const SFDISK = '/usr/sbin/sfdisk';

describe('images made by sfdisk', { skip: existsSync(SFDISK) ? false : 'sfdisk is not installed' }, () => {
  function image(script: string): { head: Buffer; parts: Partition[] } {
    const dir = mkdtempSync(join(tmpdir(), 'vmferry-part-'));
    try {
      const file = join(dir, 'disk.img');
      writeFileSync(file, '');
      truncateSync(file, 128 * K * K);
      execFileSync(SFDISK, ['--no-reread', '--no-tell-kernel', '--quiet', file], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
      const dump = JSON.parse(execFileSync(SFDISK, ['--json', file], { encoding: 'utf8' })) as {
        partitiontable: { partitions: { start: number; size: number }[] };
      };
      const head = Buffer.alloc(PARTITION_TABLE_BYTES);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, head, 0, head.length, 0);
      } finally {
        closeSync(fd);
      }
      return { head, parts: dump.partitiontable.partitions.map((p) => part(p.start, p.size)) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('GPT: the parser agrees with sfdisk', () => {
    const { head, parts } = image('label: gpt\nfirst-lba: 34\nstart=63, size=100000\nstart=200000, size=20000\n');
    assert.deepEqual(parts, [part(63, 100_000), part(200_000, 20_000)]);
    assert.deepEqual(parsePartitions(head), parts);
    assert.equal(gridOffsetFor(head, 64 * K), 32256);
  });

  test('GPT with default alignment: grid offset 0', () => {
    const { head, parts } = image('label: gpt\nsize=20000\nsize=100000\n');
    assert.equal(parts.length, 2);
    assert.deepEqual(parsePartitions(head), parts);
    assert.equal(gridOffsetFor(head, 64 * K), 0);
  });

  test('MBR: the parser agrees with sfdisk', () => {
    const { head, parts } = image('label: dos\nstart=63, size=1000\nstart=2048, size=50000\nstart=60000, size=4000, type=7\n');
    assert.deepEqual(parts, [part(63, 1000), part(2048, 50_000), part(60_000, 4000)]);
    assert.deepEqual(parsePartitions(head), parts);
    assert.equal(gridOffsetFor(head, 64 * K), 0);
    const { head: head63 } = image('label: dos\nstart=63, size=100000\nstart=110000, size=4000\n');
    assert.equal(gridOffsetFor(head63, 64 * K), 32256);
  });
});
