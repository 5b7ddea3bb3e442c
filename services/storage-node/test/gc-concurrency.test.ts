/**
 * GC under real concurrency: clients write, snapshot, clone, restore and delete while GC runs
 * in a loop, on one engine over real RocksDB. Every snapshot that was reported as created
 * (and not deleted) must read back exactly the bytes of the model, and verify must be clean.
 *
 * In process (not through the CLI) so operations interleave at every await, which is where
 * the races live: a snapshot folding dirty blocks while GC marks, a dedup hit on a chunk GC
 * already judged garbage, a clone of a snapshot deleted a moment later.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageEngine } from '../src/engine.js';
import { readAll, sha, tempEngine, writeAt } from './engine-helpers.js';
import { Rng } from '@vmferry/testkit';
import { removeDir } from './helpers.js';

const BLOCK = 4096;
const DISK = 256 * BLOCK;
const CLIENTS = 6;
const ROUNDS = 30;

describe('GC during concurrent writes, snapshots, clones, restores and deletes', () => {
  const t = tempEngine();

  test(`${CLIENTS} clients × ${ROUNDS} rounds with GC looping lose nothing`, async () => {
    const { engine } = t;
    const seed = Date.now() % 100000;
    const expected = new Map<string, string>(); // ref → sha256 of its content
    // A shared pool of block contents, so clients dedup against each other's (and deleted) data.
    const pool = Array.from({ length: 48 }, (_, i) => Buffer.alloc(BLOCK, i + 1));
    let stop = false;
    let gcRuns = 0;
    const gcLoop = (async () => {
      while (!stop) {
        await engine.gc();
        gcRuns++;
      }
    })();

    const client = async (c: number): Promise<void> => {
      const rng = new Rng(seed * 31 + c);
      const rnd = (): number => rng.next();
      const pick = <T>(a: readonly T[]): T => rng.pick(a);
      let vm = `c${c}`;
      await engine.createVm({ name: vm, disks: [{ size: DISK, blockSize: BLOCK }] });
      let live = Buffer.alloc(DISK);
      const snaps: { id: string; content: Buffer }[] = [];
      let clones = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const blocks = 1 + Math.floor(rnd() * 24);
        for (let k = 0; k < blocks; k++) {
          const at = Math.floor(rnd() * (DISK / BLOCK)) * BLOCK;
          const data = rnd() < 0.7 ? pick(pool) : Buffer.from(Array.from({ length: BLOCK }, () => Math.floor(rnd() * 256)));
          await writeAt(engine, vm, at, data);
          data.copy(live, at);
        }
        const action = rnd();
        if (action < 0.5) {
          const s = await engine.createSnapshot(vm);
          snaps.push({ id: s.id, content: Buffer.from(live) });
          expected.set(`${vm}@${s.id}`, sha(live));
        } else if (action < 0.65 && snaps.length > 1) {
          const victim = snaps.splice(Math.floor(rnd() * (snaps.length - 1)), 1)[0];
          if (victim) {
            await engine.deleteSnapshot(`${vm}@${victim.id}`);
            expected.delete(`${vm}@${victim.id}`);
          }
        } else if (action < 0.8 && snaps.length > 0) {
          const s = pick(snaps);
          await engine.restore(`${vm}@${s.id}`);
          live = Buffer.from(s.content);
        } else if (action < 0.95 && snaps.length > 0) {
          // Continue on a clone of one of our snapshots, deleting the old VM: its chunks
          // stay referenced only through the clone.
          const s = pick(snaps);
          const name = `c${c}-k${++clones}`;
          await engine.clone(`${vm}@${s.id}`, name);
          for (const old of snaps) expected.delete(`${vm}@${old.id}`);
          await engine.deleteVm(vm);
          expected.delete(vm);
          vm = name;
          live = Buffer.from(s.content);
          snaps.length = 0;
        }
        expected.set(vm, sha(live));
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    stop = true;
    await gcLoop;
    await engine.gc();

    assert.ok(gcRuns >= 3, `GC ran ${gcRuns} times during the clients' work (seed ${seed})`);
    const wrong: string[] = [];
    for (const [ref, hash] of expected) {
      const got = await readAll(engine, ref).then(sha, (e: unknown) => `error: ${e instanceof Error ? e.message : String(e)}`);
      if (got !== hash) wrong.push(`${ref}: ${got.slice(0, 80)}`);
    }
    assert.deepEqual(wrong, [], `seed ${seed}: ${wrong.length} of ${expected.size} refs read back wrong`);
    const report = await engine.verify();
    assert.equal(report.missing.length + report.corrupt.length, 0, `seed ${seed}: verify found ${JSON.stringify(report).slice(0, 400)}`);
  });

  test('snapshots folded across the boundary of back-to-back GC runs keep their chunks', async () => {
    const { dir } = t;
    // A tiny store makes GC runs short, so run boundaries are frequent: a fold staged while one
    // run records and landing after the next run took its root list must still be kept.
    const e = await StorageEngine.open({ dataDir: `${dir}-boundary`, codecThreads: 1 });
    try {
      let stop = false;
      let runs = 0;
      const gcLoop = (async () => {
        while (!stop) {
          await e.gc();
          runs++;
        }
      })();
      const expected = new Map<string, string>();
      const vm = async (name: string): Promise<void> => {
        await e.createVm({ name, disks: [{ size: 64 * BLOCK, blockSize: BLOCK }] });
        const live = Buffer.alloc(64 * BLOCK);
        const snaps: string[] = [];
        for (let i = 0; i < 60; i++) {
          const data = Buffer.alloc(BLOCK, (i % 250) + 1);
          data.write(`${name}/${i}`, 0);
          await writeAt(e, name, (i % 64) * BLOCK, data);
          data.copy(live, (i % 64) * BLOCK);
          const s = await e.createSnapshot(name);
          snaps.push(s.id);
          expected.set(`${name}@${s.id}`, sha(live));
          if (snaps.length > 3) {
            const old = snaps.shift() as string;
            await e.deleteSnapshot(`${name}@${old}`);
            expected.delete(`${name}@${old}`);
          }
        }
        expected.set(name, sha(live));
      };
      try {
        await Promise.all(['b0', 'b1', 'b2', 'b3'].map(vm));
      } finally {
        stop = true;
        await gcLoop;
      }
      assert.ok(runs > 20, `GC ran ${runs} times`);
      for (const [ref, hash] of expected) {
        const got = await readAll(e, ref).then(sha, (err: unknown) => `error: ${err instanceof Error ? err.message : String(err)}`);
        assert.equal(got, hash, ref);
      }
    } finally {
      await e.close();
      removeDir(`${dir}-boundary`);
    }
  });
});
