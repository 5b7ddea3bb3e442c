/**
 * Damage inside a RocksDB table file (SST) of a stopped node: `verify` keeps going, names the
 * damaged file and the VMs and snapshots whose chunks it hides, and exits 2; a damaged block
 * of VM and snapshot records stops the node from starting rather than listing fewer of them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprint, toHex } from '@vmferry/core';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportHash, MiB, random, removeDir, tempDir, writeBytes, type SnapshotJson, type VerifyJson } from './helpers.js';
import { filesOf, flipBytes } from './damage.js';

const BLOCK = 64 * 1024;

describe('damaged SST', () => {
  let dir = '';
  let built = '';
  let node: NodeProcess | undefined;
  const images = new Map<string, Buffer>();
  const snaps = new Map<string, { id: string; hash: string }>();

  before(async () => {
    dir = tempDir();
    built = join(dir, 'built');
    node = await startNodeProcess({ dataDir: built });
    // 2 × 128 distinct chunks: the chunk index spans several SST blocks.
    for (const vm of ['a', 'b']) {
      const image = random(8 * MiB);
      images.set(vm, image);
      await cliJson(node.address, ['vm', 'create', vm, '--disk', '8M']);
      assert.equal((await writeBytes(node.address, vm, 0, image, dir)).code, 0);
      const s = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', vm, '--label', 'one']);
      snaps.set(vm, { id: s.id, hash: await exportHash(node.address, `${vm}@one`, dir) });
    }
    await node.stop(); // a clean stop flushes the memtable into SST and blob files
    node = undefined;
  });

  after(async () => {
    await node?.kill();
    removeDir(dir);
  });

  /** A copy of the built data directory with one byte flipped at the last occurrence of `needle` in its SST. */
  function damagedCopy(name: string, needle: Buffer): { data: string; sst: string } {
    const data = join(dir, name);
    cpSync(built, data, { recursive: true });
    for (const { path } of filesOf(data, /\.sst$/)) {
      const at = readFileSync(path).lastIndexOf(needle);
      if (at >= 0) {
        flipBytes(path, at + 8, 1);
        return { data, sst: path };
      }
    }
    throw new Error(`no SST of ${data} holds the needle`);
  }

  test('a damaged chunk-index block: verify names the file, the chunks and their refs, exits 2; exports stay exact', async () => {
    // The median chunk id: its index entry sits mid-index, in a block of index entries only
    // (the last copy of its bytes in the SST; chunk records, keyed 'c', sort before 'i'; the
    // first bytes may be shared with the previous key, so they are not searched for).
    const chunksOf = (vm: string): Buffer[] =>
      Array.from({ length: 128 }, (_, i) => fingerprint((images.get(vm) as Buffer).subarray(i * BLOCK, (i + 1) * BLOCK)));
    const ids = chunksOf('a');
    const all = [...ids, ...chunksOf('b')].sort((x, y) => Buffer.compare(x, y));
    const target = all[Math.floor(all.length / 2)] as Buffer;
    const { data, sst } = damagedCopy('index', target.subarray(4));

    node = await startNodeProcess({ dataDir: data });
    const r = await runCli(node.address, ['--json', 'verify']);
    assert.equal(r.code, 2, `verify exits 2 on damage: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as VerifyJson;
    const index = report.corrupt.find((c) => c.chunkId === '(chunk index)');
    assert.ok(index?.reason.includes(sst), `the index damage names ${sst}: ${r.stdout.slice(0, 2000)}`);
    const hit = report.corrupt.find((c) => c.chunkId === toHex(target));
    assert.ok(hit, 'the chunk whose index entry is unreadable is named');
    const owner = ids.some((id) => id.equals(target)) ? 'a' : 'b';
    assert.deepEqual(hit.referencedBy.sort(), [owner, `${owner}@one`]);
    for (const [vm, s] of snaps) {
      const e = await runCli(node.address, ['--json', 'disk', 'export', `${vm}@${s.id}`, '0', join(dir, `x-${vm}.img`)]);
      if (e.code === 0) assert.equal(await exportHash(node.address, `${vm}@${s.id}`, dir), s.hash, `export of ${vm}`);
      else assert.match(e.stderr, /\(DATA_LOSS\)/);
    }
    await node.stop();
    node = undefined;
  });

  test('a damaged block of snapshot records: start-up fails naming the catalog and the file', async () => {
    const { data, sst } = damagedCopy('catalog', Buffer.from((snaps.get('a') as { id: string }).id));
    const refused = await startNodeProcess({ dataDir: data }).then(
      (n) => ((node = n), undefined),
      (e: unknown) => e as Error,
    );
    assert.ok(refused, 'the node must not start with unreadable snapshot records');
    assert.ok(refused.message.includes(sst), `names the file: ${refused.message}`);
    assert.match(refused.message, /catalog \(VM and snapshot records\)/);
  });
});
