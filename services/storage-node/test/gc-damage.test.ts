/**
 * GC over a damaged tree (gc.ts): a walk that meets a corrupt tree node aborts the run before
 * anything is deleted, since what that node referenced is unknown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkCorruptError, childrenOf, fromHex, rawRecord, toHex, type Fingerprint } from '@vmferry/core';
import { keys } from '@vmferry/store-rocksdb';
import { StorageEngine } from '../src/engine.js';
import { random, removeDir, tempDir } from './helpers.js';

const BLOCK = 4096;
const BLOCKS = 1100; // two levels: a root over two level-0 nodes

async function chunkCount(engine: StorageEngine): Promise<number> {
  let n = 0;
  for await (const _ of engine.ctx.chunks.index()) n++;
  return n;
}

test('a GC that meets a corrupt tree node deletes nothing and says which', async () => {
  const dir = tempDir();
  let engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1 });
  try {
    for (const name of ['kept', 'garbage']) {
      await engine.createVm({ name, disks: [{ size: BLOCKS * BLOCK, blockSize: BLOCK }] });
      const w = engine.openWriter(name, 0, 0);
      await w.write(random(BLOCKS * BLOCK));
      await w.end();
      await engine.createSnapshot(name);
    }
    await engine.deleteVm('garbage');
    const root = fromHex(engine.listSnapshots(engine.getVm('kept').id)[0]?.disks[0]?.root ?? '');
    const level0 = [...childrenOf(await engine.ctx.chunks.getNode(root))].map((c) => c.id);
    assert.equal(level0.length, 2);
    const victim = level0[1] as Fingerprint;
    // Bytes that do not hash to the node's id.
    await engine.ctx.db.commit((b) => b.tryPut(keys.chunkKey(victim), rawRecord(Buffer.alloc(64, 7))));
    await engine.close();
    engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1 }); // no cached nodes
    const before = await chunkCount(engine);
    await assert.rejects(engine.gc(), (e: unknown) => e instanceof ChunkCorruptError && e.chunkId === toHex(victim));
    assert.equal(await chunkCount(engine), before, 'nothing deleted, the garbage VM included');
  } finally {
    await engine.close();
    removeDir(dir);
  }
});
