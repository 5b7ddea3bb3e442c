/**
 * Auto-alignment: the same ext4 filesystem at a legacy start sector (63) or behind a GPT
 * label deduplicates against the copy at sector 2048, because the grid follows the partition.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildExtImage, cliJson, makeContentTree, sha256File, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportHash, removeDir, tempDir, type StatsJson, type VmJson } from './helpers.js';

const DISK_MIB = 64;

describe('partition alignment', () => {
  let dir = '';
  let node: NodeProcess | undefined;
  let addr = '';
  const image = (name: string): string => join(dir, `${name}.img`);
  const build = (name: string, startSector: number, label: 'dos' | 'gpt'): void =>
    buildExtImage({ path: image(name), diskMiB: DISK_MIB, startSector, contentDir: join(dir, 'content'), workDir: join(dir, 'work'), label });
  const stored = async (): Promise<number> => (await cliJson<StatsJson>(addr, ['stats'])).storedBytes;

  before(async () => {
    dir = tempDir();
    makeContentTree(join(dir, 'content'), 'alignment', 16);
    build('aligned', 2048, 'dos');
    build('legacy', 63, 'dos');
    build('gpt', 2088, 'gpt'); // GPT reserves sectors below 2048 in sfdisk's default layout
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    addr = node.address;
  });

  after(async () => {
    await node?.stop();
    removeDir(dir);
  });

  test('the sector-63 copy of a filesystem adds < 5% stored bytes and gets grid offset 32256', async () => {
    const a = await cliJson<VmJson>(addr, ['vm', 'import', 'aligned', image('aligned')]);
    assert.equal(a.disks[0]?.gridOffset, 0);
    const before = await stored();
    assert.ok(before > 5 * 1024 * 1024, `the first image stores real data (${before})`);

    await cliJson<VmJson>(addr, ['vm', 'import', 'legacy', image('legacy')]);
    const after = await stored();
    assert.ok(after - before < before * 0.05, `sector 63 added ${after - before} bytes to ${before}`);

    const shown = await cliJson<VmJson>(addr, ['vm', 'show', 'legacy']);
    assert.equal(shown.disks[0]?.blockSize, 64 * 1024);
    assert.equal(shown.disks[0]?.gridOffset, 63 * 512);
    assert.equal(shown.disks[0]?.gridOffset, 32256);
  });

  test('the sector-63 VM exports byte-identical to its image', async () => {
    assert.equal(await exportHash(addr, 'legacy', dir), await sha256File(image('legacy')));
    assert.equal(await exportHash(addr, 'aligned', dir), await sha256File(image('aligned')));
  });

  test('a GPT-labelled copy at sector 2088 is aligned from the GPT and dedups too', async () => {
    const before = await stored();
    const v = await cliJson<VmJson>(addr, ['vm', 'import', 'gpt', image('gpt')]);
    assert.equal(v.disks[0]?.gridOffset, (2088 * 512) % (64 * 1024));
    assert.equal(v.disks[0]?.gridOffset, 20480);
    const after = await stored();
    assert.ok(after - before < before * 0.05, `GPT copy added ${after - before} bytes to ${before}`);
    assert.equal(await exportHash(addr, 'gpt', dir), await sha256File(image('gpt')));
  });

  test('without alignment the same copy would not dedup (control)', async () => {
    // A VM created empty and written from offset 64 KiB on never sees its partition table,
    // so its grid stays at 0 and the filesystem at byte 32256 straddles every block.
    const before = await stored();
    await cliJson(addr, ['vm', 'create', 'unaligned', '--disk', `${DISK_MIB}M`]);
    const { readFileSync, writeFileSync } = await import('node:fs');
    const tail = readFileSync(image('legacy')).subarray(64 * 1024);
    const f = join(dir, 'tail.bin');
    writeFileSync(f, tail);
    await cliJson(addr, ['disk', 'write', 'unaligned', '0', f, '--offset', String(64 * 1024)]);
    const shown = await cliJson<VmJson>(addr, ['vm', 'show', 'unaligned']);
    assert.equal(shown.disks[0]?.gridOffset, 0);
    const after = await stored();
    assert.ok(after - before > before * 0.3, `misaligned copy should cost real space: added ${after - before} to ${before}`);
  });
});
