/**
 * A full filesystem under the data directory (a real small tmpfs): writes fail with
 * RESOURCE_EXHAUSTED naming the directory and its free bytes; what was reported stays; once
 * space is freed the node takes imports and snapshots again without a restart.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statfsSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { assertFailed, exportHash, MiB, random, removeDir, sha256, tempDir, writeBytes, type SnapshotJson } from './helpers.js';

describe('disk full', { skip: process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : false }, () => {
  let dir = '';
  let mnt = '';
  let node: NodeProcess | undefined;

  before(() => {
    dir = tempDir();
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mnt]);
  });

  after(async () => {
    await node?.kill();
    execFileSync('umount', ['-l', mnt]);
    removeDir(dir);
  });

  test('RESOURCE_EXHAUSTED naming the data directory; reported data kept; resumes by itself once space is freed', async () => {
    const data = join(mnt, 'data');
    node = await startNodeProcess({ dataDir: data });
    await cliJson(node.address, ['vm', 'create', 'a', '--disk', '4M']);
    const before = random(2 * MiB);
    assert.equal((await writeBytes(node.address, 'a', 0, before, dir)).code, 0);
    const s1 = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', 'a']);
    const h1 = await exportHash(node.address, `a@${s1.id}`, dir);

    // Fill the filesystem, outside the data directory, to within 4 MiB.
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(statfsSync(mnt).bavail * statfsSync(mnt).bsize - 4 * MiB));
    const image = join(dir, 'big.img');
    writeFileSync(image, random(16 * MiB));
    const full = await runCli(node.address, ['--json', 'vm', 'import', 'big', image]);
    assertFailed(full, 'RESOURCE_EXHAUSTED', data, 'bytes free');
    assert.equal(await exportHash(node.address, `a@${s1.id}`, dir), h1, 'the reported snapshot still exports');

    rmSync(filler);
    const small = random(1 * MiB);
    writeFileSync(image, small);
    const imported = await runCli(node.address, ['--json', 'vm', 'import', 'small', image]);
    assert.equal(imported.code, 0, `import after space is back: ${imported.stderr}`);
    const s2 = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', 'a']);

    await node.stop();
    node = await startNodeProcess({ dataDir: data });
    assert.equal(await exportHash(node.address, `a@${s1.id}`, dir), h1);
    assert.equal(await exportHash(node.address, `a@${s2.id}`, dir), h1);
    assert.equal(await exportHash(node.address, 'small', dir), sha256(small));
    await node.stop();
    node = undefined;
  });
});
