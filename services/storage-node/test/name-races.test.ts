/**
 * VM names are unique under concurrency: of two creators racing for one name (create, clone,
 * clone --count, import), exactly one wins and the other gets ALREADY_EXISTS; after a restart
 * the node still holds each name once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmferryError } from '@vmferry/core';
import { StorageEngine } from '../src/engine.js';
import { removeDir, tempDir } from './helpers.js';

const DISK = { size: 1024 * 1024, blockSize: 4096 };

/** Settles all, then returns how many succeeded and the error codes of the rest. */
async function race(ops: Promise<unknown>[]): Promise<{ won: number; codes: string[] }> {
  const results = await Promise.allSettled(ops);
  const codes = results.flatMap((r) => (r.status === 'rejected' ? [isVmferryError(r.reason) ? r.reason.code : String(r.reason)] : []));
  return { won: results.filter((r) => r.status === 'fulfilled').length, codes };
}

describe('VM names under concurrency', () => {
  let dir = '';
  let engine: StorageEngine;

  before(async () => {
    dir = tempDir();
    engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1 });
    await engine.createVm({ name: 'gold', disks: [DISK] });
    await engine.createSnapshot('gold', { label: 's1' });
  });

  after(async () => {
    await engine?.close();
    removeDir(dir);
  });

  const names = (): string[] => engine.listVms().map((v) => v.name);

  test('two vm create of one name: one wins, one ALREADY_EXISTS', async () => {
    const r = await race([engine.createVm({ name: 'web', disks: [DISK] }), engine.createVm({ name: 'web', disks: [DISK] })]);
    assert.deepEqual(r, { won: 1, codes: ['already-exists'] });
  });

  test('two clone to one name: one wins', async () => {
    const r = await race([engine.clone('gold@s1', 'desk'), engine.clone('gold@s1', 'desk'), engine.clone('gold', 'desk')]);
    assert.deepEqual(r, { won: 1, codes: ['already-exists', 'already-exists'] });
  });

  test('overlapping clone --count and a create: names never doubled', async () => {
    const r = await race([engine.clone('gold@s1', 'vdi', 3), engine.clone('gold@s1', 'vdi', 2), engine.createVm({ name: 'vdi-002', disks: [DISK] })]);
    assert.equal(r.won, 1, `exactly one of the overlapping creators wins: ${JSON.stringify(r)}`);
    assert.deepEqual(r.codes, ['already-exists', 'already-exists']);
  });

  test('an import racing a create of its name', async () => {
    const r = await race([engine.beginImport({ name: 'imp', disks: [DISK] }).then((s) => s.finish()), engine.createVm({ name: 'imp', disks: [DISK] })]);
    assert.deepEqual(r, { won: 1, codes: ['already-exists'] });
  });

  test('after a restart each name is held once', async () => {
    await engine.close();
    engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1 });
    const all = names();
    assert.deepEqual(all, [...new Set(all)], `duplicate names after restart: ${all.join(', ')}`);
    for (const n of ['web', 'desk', 'imp']) assert.equal(all.filter((x) => x === n).length, 1, n);
  });
});
