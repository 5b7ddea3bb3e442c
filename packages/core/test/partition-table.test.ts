import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultDataPartition,
  guidText,
  parseDiskRef,
  probeFilesystem,
  PROBE_BYTES,
  readPartitionTable,
  PARTITION_TABLE_BYTES,
  InvalidArgumentError,
} from '../src/index.js';

const run = (cmd: string, args: string[], input?: string): void => {
  execFileSync(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], ...(input === undefined ? {} : { input }) });
};

function head(path: string, bytes: number, at = 0): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(bytes);
    const n = readSync(fd, b, 0, bytes, at);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'vmferry-ptable-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('readPartitionTable on tables written by sfdisk and sgdisk', () => {
  test('MBR: numbers, offsets, type bytes and kinds', () =>
    withDir((dir) => {
      const img = join(dir, 'mbr.img');
      run('truncate', ['-s', '64M', img]);
      run(
        'sfdisk',
        ['--quiet', '--no-reread', '--no-tell-kernel', img],
        'label: dos\nstart=2048, size=20480, type=ef\nstart=22528, size=80000, type=83\nstart=102528, size=8192, type=82\nstart=110720, size=8192, type=8e\n',
      );
      const t = readPartitionTable(head(img, PARTITION_TABLE_BYTES));
      assert.equal(t.scheme, 'mbr');
      assert.deepEqual(
        t.partitions.map((p) => [p.number, p.startBytes, p.sizeBytes, p.type, p.kind]),
        [
          [1, 2048 * 512, 20480 * 512, 'ef', 'efi'],
          [2, 22528 * 512, 80000 * 512, '83', 'linux'],
          [3, 102528 * 512, 8192 * 512, '82', 'swap'],
          [4, 110720 * 512, 8192 * 512, '8e', 'lvm'],
        ],
      );
      assert.equal(defaultDataPartition(t.partitions)?.number, 2);
    }));

  test('GPT: type GUIDs in text form, names, and the largest data partition by default', () =>
    withDir((dir) => {
      const img = join(dir, 'gpt.img');
      run('truncate', ['-s', '64M', img]);
      run('sgdisk', [
        '-n',
        '1:2048:+8M',
        '-t',
        '1:EF00',
        '-c',
        '1:EFI',
        '-n',
        '2:0:+20M',
        '-t',
        '2:8300',
        '-c',
        '2:root',
        '-n',
        '3:0:+24M',
        '-t',
        '3:0700',
        '-n',
        '4:0:+4M',
        '-t',
        '4:8200',
        img,
      ]);
      const t = readPartitionTable(head(img, PARTITION_TABLE_BYTES));
      assert.equal(t.scheme, 'gpt');
      assert.deepEqual(
        t.partitions.map((p) => [p.number, p.type, p.kind, p.name]),
        [
          [1, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'efi', 'EFI'],
          [2, '0FC63DAF-8483-4772-8E79-3D69D8477DE4', 'linux', 'root'],
          [3, 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', 'windows', ''],
          [4, '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', 'swap', ''],
        ],
      );
      assert.equal(defaultDataPartition(t.partitions)?.number, 3, 'the Windows data partition is the largest');
      assert.equal(defaultDataPartition(t.partitions.filter((p) => p.kind !== 'linux' && p.kind !== 'windows'))?.number, 1, 'no data partition: the ESP');
      assert.equal(defaultDataPartition(t.partitions.filter((p) => p.kind === 'swap')), undefined);
    }));

  test('no table, or garbage: scheme none, no partitions', () => {
    assert.deepEqual(readPartitionTable(Buffer.alloc(PARTITION_TABLE_BYTES)), { scheme: 'none', partitions: [] });
    assert.deepEqual(readPartitionTable(Buffer.alloc(10)), { scheme: 'none', partitions: [] });
  });

  test('guidText reverses the first three fields', () => {
    assert.equal(guidText(Buffer.from('af3dc60f838472478e793d69d8477de4', 'hex')), '0FC63DAF-8483-4772-8E79-3D69D8477DE4');
  });
});

describe('probeFilesystem on filesystems made by the real tools', () => {
  const probe = (mk: (img: string) => void): string =>
    withDir((dir) => {
      const img = join(dir, 'fs.img');
      run('truncate', ['-s', '40M', img]);
      mk(img);
      return probeFilesystem(head(img, PROBE_BYTES));
    });
  test('ext2, ext3, ext4', () => {
    for (const t of ['ext2', 'ext3', 'ext4'])
      assert.equal(
        probe((img) => run(`mkfs.${t}`, ['-q', '-F', img])),
        'ext',
        t,
      );
  });
  test('FAT12, FAT16, FAT32', () => {
    for (const bits of ['12', '16', '32'])
      assert.equal(
        probe((img) => run('mkfs.vfat', ['-F', bits, img])),
        'fat',
        `FAT${bits}`,
      );
  });
  test('swap, NTFS and nothing', () => {
    assert.equal(
      probe((img) => run('mkswap', [img])),
      'swap',
    );
    assert.equal(
      probe((img) => run('mkntfs', ['-q', '-F', '-f', img])),
      'ntfs',
    );
    assert.equal(
      probe(() => undefined),
      'unknown',
    );
  });
  test('LVM and LUKS labels are recognised (so errors can name them)', () => {
    const lvm = Buffer.alloc(PROBE_BYTES);
    lvm.write('LABELONE', 512, 'latin1');
    assert.equal(probeFilesystem(lvm), 'lvm');
    const luks = Buffer.alloc(PROBE_BYTES);
    Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(luks, 0);
    assert.equal(probeFilesystem(luks), 'luks');
  });
});

describe('parseDiskRef', () => {
  test('REF and REF:DISK', () => {
    assert.deepEqual(parseDiskRef('web'), { ref: 'web', diskIndex: 0 });
    assert.deepEqual(parseDiskRef('web@s1:2'), { ref: 'web@s1', diskIndex: 2 });
    assert.deepEqual(parseDiskRef('web:1'), { ref: 'web', diskIndex: 1 });
  });
  test('bad input names the text', () => {
    for (const bad of ['', 'web:', 'web:x', 'web:-1', 'web:65536', 'web@@s', ':1', 'we b', 'web@s1:1:2'])
      assert.throws(
        () => parseDiskRef(bad),
        (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`'${bad}'`),
        bad,
      );
  });
});
