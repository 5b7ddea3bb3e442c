/**
 * A user's round trip through the CLI against a real node process: import a real ext4 disk,
 * export it, write, snapshot, restart, clone 100 times, restore, and account for space.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildExtImage, cliJson, makeContentTree, runCli, sha256File, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportDisk, exportHash, MiB, random, removeDir, sha256, tempDir, writeBytes, type SnapshotJson, type StatsJson, type VmJson } from './helpers.js';

const DISK_MIB = 64;

describe('CLI round trip on a real ext4 disk', () => {
  let dir = '';
  let data = '';
  let image = '';
  let node: NodeProcess | undefined;
  let addr = '';
  let source: Buffer = Buffer.alloc(0);
  let sourceHash = '';
  let patched: Buffer = Buffer.alloc(0);
  let patchedHash = '';
  let baseId = '';
  let patchedId = '';
  const PATCH_OFFSET = 12345;
  const patch = random(100_000); // crosses the 64 KiB block boundary at 65536

  before(async () => {
    dir = tempDir();
    data = join(dir, 'data');
    image = join(dir, 'web.img');
    makeContentTree(join(dir, 'content'), 'roundtrip', 16);
    buildExtImage({ path: image, diskMiB: DISK_MIB, startSector: 2048, contentDir: join(dir, 'content'), workDir: join(dir, 'work'), label: 'dos' });
    source = readFileSync(image);
    sourceHash = await sha256File(image);
    patched = Buffer.from(source);
    patch.copy(patched, PATCH_OFFSET);
    patchedHash = sha256(patched);
    node = await startNodeProcess({ dataDir: data });
    addr = node.address;
  });

  after(async () => {
    await node?.stop();
    removeDir(dir);
  });

  test('import a partitioned ext4 image; live export is byte-identical and sparse', async () => {
    const vm = await cliJson<VmJson & { importedBytes: number }>(addr, ['vm', 'import', 'web', image]);
    assert.equal(vm.name, 'web');
    assert.equal(vm.disks.length, 1);
    assert.equal(vm.disks[0]?.size, DISK_MIB * MiB);
    assert.equal(vm.disks[0]?.gridOffset, 0, 'a partition at sector 2048 is already 64K-aligned');
    assert.equal(vm.importedBytes, DISK_MIB * MiB);

    const { file, hash, doc } = await exportDisk(addr, 'web', dir);
    assert.equal(hash, sourceHash);
    const st = statSync(file);
    assert.equal(st.size, DISK_MIB * MiB);
    assert.ok(st.blocks * 512 < st.size / 2, `export should be sparse: ${st.blocks * 512} allocated of ${st.size}`);
    assert.ok(doc.dataBytes < st.size / 2, `export reported ${doc.dataBytes} data bytes`);
    removeDir(file);
  });

  test('write at an unaligned offset, snapshot; each snapshot exports its own bytes', async () => {
    const base = await cliJson<SnapshotJson>(addr, ['snapshot', 'create', 'web', '--label', 'base']);
    baseId = base.id;
    const w = await writeBytes(addr, 'web', PATCH_OFFSET, patch, dir);
    assert.equal(w.code, 0, w.stderr);
    assert.equal((JSON.parse(w.stdout) as { bytesWritten: number }).bytesWritten, patch.length);
    // The live state shows the write before any snapshot.
    assert.equal(await exportHash(addr, 'web', dir), patchedHash);
    const s = await cliJson<SnapshotJson>(addr, ['snapshot', 'create', 'web', '--label', 'patched']);
    patchedId = s.id;
    assert.notEqual(s.disks[0]?.root, base.disks[0]?.root);

    assert.equal(await exportHash(addr, 'web@patched', dir), patchedHash);
    assert.equal(await exportHash(addr, `web@${patchedId}`, dir), patchedHash, 'a snapshot is addressable by id too');
    assert.equal(await exportHash(addr, 'web@base', dir), sourceHash, 'the earlier snapshot is unchanged');

    const list = await cliJson<SnapshotJson[]>(addr, ['snapshot', 'list', 'web']);
    assert.deepEqual(
      list.map((x) => [x.id, x.label]),
      [
        [baseId, 'base'],
        [patchedId, 'patched'],
      ],
    );
  });

  test('a restarted node has the same snapshots and exports the same bytes', async () => {
    assert.equal(await node?.stop(), 0, 'clean stop');
    node = await startNodeProcess({ dataDir: data });
    addr = node.address;
    const list = await cliJson<SnapshotJson[]>(addr, ['snapshot', 'list', 'web']);
    assert.deepEqual(
      list.map((x) => x.id),
      [baseId, patchedId],
    );
    assert.equal(await exportHash(addr, 'web@base', dir), sourceHash);
    assert.equal(await exportHash(addr, 'web@patched', dir), patchedHash);
    assert.equal(await exportHash(addr, 'web', dir), patchedHash);
  });

  test('clone --count 100 is quick, and a clone holds the snapshot bytes', async () => {
    const started = Date.now();
    const r = await cliJson<{ vms: VmJson[]; source: SnapshotJson }>(addr, ['clone', 'web@patched', 'c', '--count', '100']);
    const ms = Date.now() - started;
    assert.ok(ms < 10_000, `100 clones took ${ms} ms`);
    assert.equal(r.source.id, patchedId);
    assert.equal(r.vms.length, 100);
    assert.equal(r.vms[0]?.name, 'c-001');
    assert.equal(r.vms[99]?.name, 'c-100');
    for (const v of r.vms) assert.equal(v.clonedFrom?.snapshotId, patchedId);

    const vms = await cliJson<VmJson[]>(addr, ['vm', 'list']);
    assert.equal(vms.length, 101);
    assert.equal(new Set(vms.map((v) => v.name)).size, 101);
    assert.equal(await exportHash(addr, 'c-057', dir), patchedHash);
  });

  test('writing to a clone changes neither its source nor its siblings', async () => {
    const scribble = random(64 * 1024 + 17);
    const at = 40 * MiB + 3;
    assert.equal((await writeBytes(addr, 'c-001', at, scribble, dir)).code, 0);
    const expected = Buffer.from(patched);
    scribble.copy(expected, at);
    assert.equal(await exportHash(addr, 'c-001', dir), sha256(expected));
    assert.equal(await exportHash(addr, 'c-002', dir), patchedHash);
    assert.equal(await exportHash(addr, 'web', dir), patchedHash);
    assert.equal(await exportHash(addr, 'web@patched', dir), patchedHash);
    // A snapshot of the clone keeps the clone's write.
    await cliJson(addr, ['snapshot', 'create', 'c-001', '--label', 'mine']);
    assert.equal(await exportHash(addr, 'c-001@mine', dir), sha256(expected));
  });

  test('restore reverts live state, whole VM or one vDisk', async () => {
    assert.equal((await writeBytes(addr, 'web', 0, random(4096), dir)).code, 0);
    assert.notEqual(await exportHash(addr, 'web', dir), patchedHash);

    const v = await cliJson<VmJson>(addr, ['restore', 'web@base']);
    assert.equal(v.name, 'web');
    assert.equal(await exportHash(addr, 'web', dir), sourceHash);

    assert.equal((await writeBytes(addr, 'web', 30 * MiB, random(70_000), dir)).code, 0);
    await cliJson(addr, ['restore', 'web@patched', '--disk', '0']);
    assert.equal(await exportHash(addr, 'web', dir), patchedHash);
    // Restoring does not touch the snapshots.
    assert.equal(await exportHash(addr, 'web@base', dir), sourceHash);

    const bad = await runCli(addr, ['restore', 'web@patched', '--disk', '1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /NOT_FOUND/);
  });

  test('stats: 100 clones cost almost nothing in stored bytes', async () => {
    const s = await cliJson<StatsJson>(addr, ['stats']);
    assert.equal(typeof s.logicalBytes, 'number');
    assert.equal(typeof s.storedBytes, 'number');
    assert.equal(s.vmCount, 101);
    // 100 clones + web's 2 snapshots + live + c-001's snapshot: > 100 copies of ~20 MB.
    assert.ok(s.logicalBytes > 100 * 15 * MiB, `logical ${s.logicalBytes}`);
    assert.ok(s.storedBytes > 0);
    assert.ok(s.storedBytes * 50 < s.logicalBytes, `stored ${s.storedBytes} vs logical ${s.logicalBytes}`);
    // Stored bytes are bounded by one image's data (+ the small writes), not by the clone count.
    assert.ok(s.storedBytes < 30 * MiB, `stored ${s.storedBytes}`);
  });
});
