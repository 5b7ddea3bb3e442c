/**
 * vDisks over NBD with real clients only: qemu-img (info, convert, compare), qemu-io,
 * nbdinfo (--size, --map, --list), nbdcopy and fio's nbd engine, against a real node process
 * on TCP and on a Unix socket. Data written over NBD reads back hash-equal (over NBD and over
 * the gRPC export); a snapshot taken after NBD writes exports exactly those bytes; snapshots
 * are read-only; unknown exports are refused by name; deleting a VM ends its export only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportDisk, MiB, random, removeDir, sha256, tempDir, type SnapshotJson } from './helpers.js';
import { mustRun, QemuIoSession, tool } from './nbd-helpers.js';

const DISK0 = 64 * MiB;
const DISK1 = 16 * MiB;

describe('NBD with real clients', () => {
  let dir = '';
  let node: NodeProcess;
  let nbd = '';
  let socket = '';
  const url = (name: string): string => `nbd://${nbd}/${name}`;
  const unixUrl = (name: string): string => `nbd+unix:///${name}?socket=${socket}`;
  /** 20 MiB of random data, then holes, then 1 MiB of data at 40 MiB. */
  let image = '';
  let imageBytes = Buffer.alloc(0);

  before(async () => {
    dir = tempDir();
    socket = join(dir, 'nbd.sock');
    node = await startNodeProcess({ dataDir: join(dir, 'data'), extraArgs: ['--nbd-listen', '127.0.0.1:0', '--nbd-socket', socket] });
    assert.ok(node.nbdAddress, `the node prints its NBD address:\n${node.log()}`);
    nbd = node.nbdAddress;
    await cliJson(node.address, ['vm', 'create', 'web', '--disk', '64M', '--disk', '16M']);
    await cliJson(node.address, ['vm', 'create', 'other', '--disk', '16M']);
    imageBytes = Buffer.alloc(DISK0);
    random(20 * MiB).copy(imageBytes, 0);
    random(MiB).copy(imageBytes, 40 * MiB);
    image = join(dir, 'image.raw');
    writeFileSync(image, imageBytes);
  });

  after(async () => {
    await node.stop();
    removeDir(dir);
  });

  test('qemu-img info and nbdinfo --size report the vDisk sizes', async () => {
    const info = JSON.parse(await mustRun('qemu-img', ['info', '--output=json', url('web/0')])) as { 'virtual-size': number };
    assert.equal(info['virtual-size'], DISK0);
    assert.equal((await mustRun('nbdinfo', ['--size', url('web/1')])).trim(), String(DISK1));
    assert.equal((await mustRun('nbdinfo', ['--size', unixUrl('web/0')])).trim(), String(DISK0));
    const list = await mustRun('nbdinfo', ['--list', '--json', `nbd://${nbd}`]);
    const names = (JSON.parse(list) as { exports: { 'export-name': string }[] }).exports.map((e) => e['export-name']);
    assert.deepEqual(names.sort(), ['other/0', 'web/0', 'web/1']);
  });

  test('qemu-img convert writes an image; compare, the gRPC export and nbdinfo --map agree', async () => {
    await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', image, url('web/0')]);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url('web/0')]);
    const exported = await exportDisk(node.address, 'web', dir, 0);
    assert.equal(exported.hash, sha256(imageBytes), 'bytes written over NBD read back hash-equal over gRPC');
    const map = JSON.parse(await mustRun('nbdinfo', ['--map', '--json', url('web/0')])) as { offset: number; length: number; type: number }[];
    // Unwritten (and all-zero) ranges are holes that read as zeros; the data is where it was written.
    assert.deepEqual(
      map.map((e) => [e.offset, e.length, e.type]),
      [
        [0, 20 * MiB, 0],
        [20 * MiB, 20 * MiB, 3],
        [40 * MiB, MiB, 0],
        [41 * MiB, DISK0 - 41 * MiB, 3],
      ],
    );
  });

  test('qemu-io: unaligned pattern writes read back, also over the Unix socket', async () => {
    const out = await mustRun('qemu-io', [
      '-f',
      'raw',
      '-c',
      'write -P 0xab 4096 4096',
      '-c',
      'read -P 0xab 4096 4096',
      '-c',
      'write -P 0xcd 5000 1000',
      '-c',
      'write -z 65536 131072',
      '-c',
      'flush',
      url('web/1'),
    ]);
    assert.match(out, /read 4096\/4096 bytes at offset 4096/);
    await mustRun('qemu-io', ['-f', 'raw', '-c', 'read -P 0xab 4096 904', '-c', 'read -P 0xcd 5000 1000', '-c', 'read -P 0 65536 131072', unixUrl('web/1')]);
    const bytes = readFileSync((await exportDisk(node.address, 'web', dir, 1)).file);
    const expected = Buffer.alloc(DISK1);
    expected.fill(0xab, 4096, 8192);
    expected.fill(0xcd, 5000, 6000);
    assert.equal(sha256(bytes), sha256(expected));
  });

  test('a snapshot taken after NBD writes exports exactly those bytes, and is read-only', async () => {
    const snap = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', 'web', '--label', 's1']);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url('web@s1/0')]);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url(`web@${snap.id}/0`)]);
    // The live disk moves on; the snapshot does not.
    await mustRun('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 65536', url('web/0')]);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url('web@s1/0')]);
    const live = await tool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url('web/0')]);
    assert.equal(live.code, 1, 'the live disk differs from the image now');
    // nbdcopy reads the snapshot out hash-equal.
    const out = join(dir, 'copy.raw');
    await mustRun('nbdcopy', [url('web@s1/0'), out]);
    assert.equal(sha256(readFileSync(out)), sha256(imageBytes));
    // Read-only: the export says so, and qemu-io cannot write it.
    const info = await mustRun('nbdinfo', [url('web@s1/0')]);
    assert.match(info, /is_read_only: true/);
    const w = await tool('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4096', url('web@s1/0')]);
    assert.notEqual(w.code, 0);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url('web@s1/0')]);
  });

  test('nbdcopy writes a live disk over the Unix socket (multi-conn)', async () => {
    const src = join(dir, 'other.raw');
    const bytes = Buffer.alloc(DISK1);
    random(3 * MiB).copy(bytes, 5 * MiB);
    writeFileSync(src, bytes);
    await mustRun('nbdcopy', ['--connections=4', src, unixUrl('other/0')]);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, url('other/0')]);
  });

  test("fio's nbd engine: random writes verified on read-back", async () => {
    await mustRun('fio', [
      '--name=verify',
      '--ioengine=nbd',
      `--uri=${url('other/0')}`,
      '--rw=randwrite',
      '--bs=4k',
      '--size=4M',
      '--iodepth=8',
      '--verify=crc32c',
      '--verify_fatal=1',
      '--do_verify=1',
      '--randrepeat=0',
      '--verify_state_save=0',
    ]);
  });

  test('unknown exports are refused by name; the server goes on', async () => {
    for (const name of ['nope/0', 'web/7', 'web@nosuch/0', 'web', '']) {
      const r = await tool('nbdinfo', [url(name)]);
      assert.notEqual(r.code, 0, `export '${name}' is refused`);
    }
    const q = await tool('qemu-img', ['info', url('nope/0')]);
    assert.notEqual(q.code, 0);
    assert.match(q.stderr, /no export 'nope\/0'/);
    assert.equal((await mustRun('nbdinfo', ['--size', url('web/0')])).trim(), String(DISK0));
  });

  test('deleting a VM ends its open export cleanly; other exports and the node go on', async () => {
    await cliJson(node.address, ['vm', 'create', 'doomed', '--disk', '16M']);
    // One qemu-io connection: a read, then the VM is deleted, then a read and a write.
    const session = new QemuIoSession(url('doomed/0'));
    await session.run('read 0 4096', /read 4096\/4096 bytes at offset 0/);
    const del = await runCli(node.address, ['vm', 'delete', 'doomed']);
    assert.equal(del.code, 0, del.stderr);
    const after = await session.run('read 0 4096', /read failed|read 4096/);
    assert.match(after, /read failed/, 'a read after the delete fails');
    await session.run('write -P 1 0 4096', /write failed|wrote 4096|qemu-io>/).catch(() => undefined);
    await session.quit();
    assert.doesNotMatch(session.output, /wrote 4096/, 'no write lands after the delete');
    assert.match(node.log(), /export 'doomed\/0' is gone/);
    assert.equal((await mustRun('nbdinfo', ['--size', url('web/0')])).trim(), String(DISK0));
    assert.equal(node.child.exitCode, null, 'the node is still running');
  });
});
