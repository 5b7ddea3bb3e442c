/**
 * A damaged write-ahead log must never make the node open quietly with fewer snapshots than
 * it reported: it refuses, naming the file; `--recover-wal` then names exactly what it drops.
 * A log cut short after the last durable commit (a power cut's un-synced tail) is normal.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportHash, random, removeDir, tempDir, writeBytes, type SnapshotJson } from './helpers.js';
import { currentWal, flipBytes } from './damage.js';

interface RecoveryJson {
  damage: { file: string; droppedBytes: number }[];
  droppedVms: { name: string }[];
  droppedSnapshots: { id: string; vmName: string }[];
}

/** Four snapshots, each after 192 KiB of new data; the WAL's size after each. */
async function buildNode(node: NodeProcess, data: string, dir: string): Promise<{ id: string; hash: string; walAfter: number }[]> {
  await cliJson(node.address, ['vm', 'create', 'w', '--disk', '4M']);
  const out: { id: string; hash: string; walAfter: number }[] = [];
  for (let i = 0; i < 4; i++) {
    assert.equal((await writeBytes(node.address, 'w', i * 512 * 1024, random(192 * 1024), dir)).code, 0);
    const snap = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', 'w']);
    out.push({ id: snap.id, hash: await exportHash(node.address, `w@${snap.id}`, dir), walAfter: currentWal(data).size });
  }
  return out;
}

describe('damaged write-ahead log', () => {
  let dir = '';
  let node: NodeProcess | undefined;

  before(() => {
    dir = tempDir();
  });

  after(async () => {
    await node?.kill();
    removeDir(dir);
  });

  test('bytes flipped mid-WAL: start refuses naming the file; --recover-wal names every dropped snapshot', async () => {
    const data = join(dir, 'mid');
    node = await startNodeProcess({ dataDir: data });
    const snaps = await buildNode(node, data, dir);
    await node.kill(); // the WAL is still the only copy of these commits (no flush happened)
    const wal = currentWal(data);
    // Inside the chunk data written for snapshot 2: snapshots 0 and 1 precede the damage.
    flipBytes(wal.path, (snaps[2]?.walAfter ?? 0) - 60_000, 32);

    // A node that starts anyway is kept in `node` so `after` stops it.
    const refused = await startNodeProcess({ dataDir: data }).then(
      (n) => ((node = n), undefined),
      (e: unknown) => e as Error,
    );
    assert.ok(refused, 'the node must refuse to open a damaged WAL');
    assert.match(refused.message, /exited with 1/);
    assert.ok(refused.message.includes(wal.path), `start-up error names the WAL file: ${refused.message}`);
    assert.ok(refused.message.includes('--recover-wal'), `start-up error says what to do: ${refused.message}`);

    const r = await runCli('127.0.0.1:1', ['--json', 'node', '--data', data, '--recover-wal']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as RecoveryJson;
    assert.ok(
      report.damage.some((d) => d.file === wal.path),
      `recovery names the damaged WAL: ${r.stdout}`,
    );
    assert.deepEqual(
      report.droppedSnapshots.map((s) => s.id).sort(),
      snaps
        .slice(2)
        .map((s) => s.id)
        .sort(),
      'every snapshot after the damage is named',
    );
    assert.deepEqual(report.droppedVms, []);

    node = await startNodeProcess({ dataDir: data });
    const listed = (await cliJson<SnapshotJson[]>(node.address, ['snapshot', 'list', 'w'])).map((s) => s.id);
    assert.deepEqual(
      listed,
      snaps.slice(0, 2).map((s) => s.id),
    );
    for (const s of snaps.slice(0, 2)) assert.equal(await exportHash(node.address, `w@${s.id}`, dir), s.hash);
    await node.stop();
  });

  test('an un-synced tail cut short (power cut) opens with every reported snapshot', async () => {
    const data = join(dir, 'torn');
    node = await startNodeProcess({ dataDir: data });
    const snaps = await buildNode(node, data, dir);
    const synced = snaps[3]?.walAfter ?? 0;
    // A live write after the last snapshot is not reported durable: its tail may be lost.
    assert.equal((await writeBytes(node.address, 'w', 3 * 1024 * 1024, random(100_000), dir)).code, 0);
    const written = currentWal(data).size;
    await node.kill();
    truncateSync(currentWal(data).path, synced + Math.floor((written - synced) / 2));

    node = await startNodeProcess({ dataDir: data });
    for (const s of snaps) assert.equal(await exportHash(node.address, `w@${s.id}`, dir), s.hash, `snapshot ${s.id}`);
    await node.stop();
  });
});
