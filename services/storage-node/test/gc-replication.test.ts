/**
 * GC racing a replication receive: the target holds a snapshot's chunks only as garbage (the
 * VM was deleted), and a replicator asks which chunks are missing, is told the root is here,
 * skips the whole tree and commits — while GC marks and sweeps. The committed replica must be
 * whole: a node reported present keeps its subtree (pins), and a sweep never deletes a child
 * before its parent.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { fromHex, walkTree, type Fingerprint } from '@vmferry/core';
import { readAll, sha, tempEngine } from './engine-helpers.js';
import { random } from './helpers.js';

const BLOCK = 4096;
const BLOCKS = 1100; // two levels: a root over two level-0 nodes (fan-out 1,024)
const ROUNDS = 8;

describe('GC during a replication receive', () => {
  const t = tempEngine();

  test(`${ROUNDS} replicas committed over garbage while GC runs are whole`, async () => {
    const { engine } = t;
    // Other VMs, so marking takes a while and the receive lands at different GC phases.
    for (let i = 0; i < 2; i++) {
      await engine.createVm({ name: `bulk${i}`, disks: [{ size: BLOCKS * BLOCK, blockSize: BLOCK }] });
      const w = engine.openWriter(`bulk${i}`, 0, 0);
      await w.write(random(BLOCKS * BLOCK));
      await w.end();
      await engine.createSnapshot(`bulk${i}`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const name = `r${round}`;
      await engine.createVm({ name, disks: [{ size: BLOCKS * BLOCK, blockSize: BLOCK }] });
      const w = engine.openWriter(name, 0, 0);
      const content = random(BLOCKS * BLOCK);
      await w.write(content);
      await w.end();
      const snap = await engine.createSnapshot(name);
      const vm = engine.getVm(name);
      // Every chunk of the snapshot, children first, as a source would send them.
      const order: { id: Fingerprint; node: boolean }[] = [];
      const root = fromHex(snap.disks[0]?.root ?? '');
      const nodes: Fingerprint[] = [];
      await walkTree(
        root,
        engine.ctx.chunks,
        (id) => (nodes.push(id), true),
        (fp) => void order.push({ id: fp, node: false }),
      );
      for (const id of nodes.reverse()) order.push({ id, node: true });
      const records = await engine.chunkRecords(order.map((o) => o.id));
      await engine.deleteVm(name); // now all of it is garbage

      const gc = engine.gc();
      for (let i = 0; i < round * 11; i++) await tick();
      const missing = await engine.missingChunks([root]);
      if (missing.length > 0) {
        // The root was swept already: send everything (children first), as a replicator would.
        const all = await engine.missingChunks(order.map((o) => o.id));
        const need = new Set(all.map((id) => id.toString('hex')));
        const batch = order.map((o, i) => ({ id: o.id, record: records[i] as Buffer, node: o.node })).filter((c) => need.has(c.id.toString('hex')));
        for (const c of batch.filter((b) => !b.node)) await engine.putChunks([c]);
        for (const c of batch.filter((b) => b.node)) await engine.putChunks([c]);
      }
      await engine.commitReplica('siteX', vm, snap);
      await gc;
      await engine.gc();
      assert.equal(sha(await readAll(engine, `${name}@${snap.id}`)), sha(content), `round ${round}: the replica reads back whole`);
    }
    const report = await engine.verify();
    assert.equal(report.missing.length + report.corrupt.length, 0, JSON.stringify(report).slice(0, 300));
  });
});
