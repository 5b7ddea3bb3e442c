/**
 * A format-1 data folder (tree nodes' index entries without their level) is upgraded in place
 * on open: every node gets its level back, data stays data, and GC then keeps everything a
 * snapshot references.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, keys } from '@vmferry/store-rocksdb';
import { StorageEngine } from '../src/engine.js';
import { readAll, sha } from './engine-helpers.js';
import { random, removeDir, tempDir } from './helpers.js';

/** Index entries by kind: how many carry a level (nodes) and how many do not. */
async function indexKinds(engine: StorageEngine): Promise<{ nodes: number; data: number }> {
  let nodes = 0;
  let data = 0;
  for await (const e of engine.ctx.chunks.index()) {
    if (e.level === undefined) data++;
    else nodes++;
  }
  return { nodes, data };
}

describe('format 1 → 2 upgrade', () => {
  let dir = '';
  let engine: StorageEngine;

  before(async () => {
    dir = tempDir();
  });

  after(async () => {
    await engine?.close();
    removeDir(dir);
  });

  test('node levels are restored and GC keeps every referenced chunk', async () => {
    engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1 });
    // 2,000 blocks of 4 KiB: a two-level tree (level-1 root over two level-0 nodes).
    await engine.createVm({ name: 'vm', disks: [{ size: 2000 * 4096, blockSize: 4096 }] });
    const w = engine.openWriter('vm', 0, 0);
    await w.write(random(2000 * 4096));
    await w.end();
    await engine.createSnapshot('vm', { label: 's1' });
    const hash = sha(await readAll(engine, 'vm@s1'));
    const before = await indexKinds(engine);
    assert.equal(before.nodes, 3, 'a root and two level-0 nodes');
    await engine.close();

    // Make it a format-1 folder: 8-byte index entries for everything, version record 1.
    const db = await Database.open(dir);
    const rewrites: { key: Buffer; value: Buffer }[] = [];
    for await (const { key, value } of db.entries(keys.prefixRange(keys.CHUNK_INDEX_PREFIX))) {
      if (value.length > 8) rewrites.push({ key: Buffer.from(key), value: Buffer.from(value.subarray(0, 8)) });
    }
    await db.commit((b) => {
      for (const r of rewrites) b.tryPut(r.key, r.value);
      b.tryPut(keys.metaKey('format'), Buffer.from('1'));
    });
    await db.close();

    engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1 });
    assert.deepEqual(await indexKinds(engine), before);
    const report = await engine.gc();
    assert.equal(report.chunksSwept, 0);
    assert.equal(sha(await readAll(engine, 'vm@s1')), hash);
    assert.equal((await engine.ctx.db.get(keys.metaKey('format')))?.toString(), String(keys.FORMAT_VERSION));
  });
});
