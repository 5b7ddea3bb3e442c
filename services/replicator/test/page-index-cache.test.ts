/** The base page-index cache is an object bound to one target, never module state shared across clients. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyUpdates, decodeNodeChecked, fingerprint, HOLE, toHex, treeGeometry, type TreeNode } from '@vmferry/core';
import { PageIndexCache } from '../src/page-index.js';
import type { TargetPort } from '../src/ports.js';

type Base = Parameters<PageIndexCache['indexFor']>[0];

/** A target holding one small tree of 4 KiB-page data chunks; counts its chunk reads. */
async function fakeTarget(): Promise<{ target: TargetPort; base: (id: string) => Base; reads: () => number }> {
  const raw = new Map<string, Buffer>();
  const nodes = new Map<string, TreeNode>();
  const data = [0, 1, 2].map((i) => Buffer.alloc(8192, i + 1));
  for (const d of data) raw.set(toHex(fingerprint(d)), d);
  const updates = data.map((d, block) => ({ block, fp: fingerprint(d) }));
  const { root, created } = await applyUpdates(HOLE, treeGeometry(16), updates, { getNode: (fp) => Promise.resolve(nodes.get(toHex(fp)) as TreeNode) });
  for (const n of created) {
    raw.set(toHex(n.id), n.bytes);
    nodes.set(toHex(n.id), decodeNodeChecked(n.id, n.bytes));
  }
  let reads = 0;
  const refuse = (): never => assert.fail('not used by the page index');
  const target: TargetPort = {
    missing: refuse,
    put: refuse,
    commit: refuse,
    snapshots: refuse,
    async *readChunks(ids) {
      reads += ids.length;
      await Promise.resolve();
      yield ids.map((id) => ({ id, raw: raw.get(toHex(id)) as Buffer }));
    },
  };
  const base = (id: string): Base => ({ id, disks: [{ root: toHex(root) }] }) as unknown as Base;
  return { target, base, reads: () => reads };
}

describe('PageIndexCache', () => {
  test('builds a base index once per cache and serves it to later sessions', async () => {
    const t = await fakeTarget();
    const cache = new PageIndexCache(t.target);
    const first = await cache.indexFor(t.base('s1'));
    const readsAfterBuild = t.reads();
    assert.equal(first.pages.size, 3, 'three distinct pages (each chunk repeats one page)');
    assert.equal(await cache.indexFor(t.base('s1')), first);
    assert.equal(t.reads(), readsAfterBuild, 'the second session read nothing');
  });

  test('two targets never share an index, and a cleared cache builds again', async () => {
    const a = await fakeTarget();
    const b = await fakeTarget();
    const cacheA = new PageIndexCache(a.target);
    const cacheB = new PageIndexCache(b.target);
    await cacheA.indexFor(a.base('s1'));
    await cacheB.indexFor(b.base('s1'));
    assert.ok(b.reads() > 0, "B's index was built through B's own target");
    const before = a.reads();
    cacheA.clear();
    await cacheA.indexFor(a.base('s1'));
    assert.ok(a.reads() > before, 'rebuilt after clear()');
  });

  test('keeps only the newest few bases', async () => {
    const t = await fakeTarget();
    const cache = new PageIndexCache(t.target, 1);
    const s1 = await cache.indexFor(t.base('s1'));
    await cache.indexFor(t.base('s2'));
    assert.notEqual(await cache.indexFor(t.base('s1')), s1, 's1 was evicted and rebuilt');
  });
});
