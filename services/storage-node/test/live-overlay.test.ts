/**
 * The live write path for guest I/O (page overlay, background fold, snapshot freeze), on one
 * engine over real RocksDB. Writes are 4 KiB pages, sub-page sectors, and whole 64 KiB
 * blocks, mixed, against an exact model: data read back equals data written (by hash), and
 * every snapshot holds exactly the writes acknowledged before it was asked for, and none issued
 * after it returned, on all of a VM's vDisks at one instant.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '@vmferry/testkit';
import { extentBytes } from '../src/disk-reader.js';
import { StorageEngine } from '../src/engine.js';
import { sha } from './engine-helpers.js';
import { removeDir, tempDir } from './helpers.js';

const BLOCK = 64 * 1024;
const PAGE = 4096;

async function readDisk(engine: StorageEngine, ref: string, disk: number): Promise<Buffer> {
  const { size, extents } = engine.read(ref, disk, 0, 0);
  const out = Buffer.alloc(size);
  for await (const x of extents) extentBytes(x).copy(out, x.offset);
  return out;
}

async function readRange(engine: StorageEngine, ref: string, disk: number, offset: number, length: number): Promise<Buffer> {
  const { extents } = engine.read(ref, disk, offset, length);
  const out = Buffer.alloc(length);
  for await (const x of extents) extentBytes(x).copy(out, x.offset - offset);
  return out;
}

async function writeAt(engine: StorageEngine, vm: string, disk: number, offset: number, data: Buffer): Promise<void> {
  const w = engine.openWriter(vm, disk, offset, data.length);
  await w.write(data);
  await w.end();
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(rng.next() * 0x1_0000_0000), i);
  return b;
}

/** A write of one of the shapes a guest issues: a page, a run of pages, a sector, or a whole block. */
function guestWrite(rng: Rng, size: number): { offset: number; data: Buffer } {
  const kind = rng.next();
  if (kind < 0.55) return { offset: Math.floor(rng.next() * (size / PAGE)) * PAGE, data: randomBytes(rng, PAGE) };
  if (kind < 0.75) {
    const pages = 2 + Math.floor(rng.next() * 6);
    return { offset: Math.floor(rng.next() * (size / PAGE - pages)) * PAGE, data: randomBytes(rng, pages * PAGE) };
  }
  if (kind < 0.9) {
    const sectors = 1 + Math.floor(rng.next() * 3);
    return { offset: Math.floor(rng.next() * (size / 512 - sectors)) * 512, data: randomBytes(rng, sectors * 512) };
  }
  if (kind < 0.95) return { offset: Math.floor(rng.next() * (size / PAGE)) * PAGE, data: Buffer.alloc(PAGE) };
  return { offset: Math.floor(rng.next() * (size / BLOCK)) * BLOCK, data: randomBytes(rng, BLOCK) };
}

describe('live writes through the page overlay', () => {
  test('small writes read back exactly, before and after folding and a restart; snapshots keep their content', async () => {
    const dir = tempDir();
    const size = 32 * BLOCK;
    let engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1, liveFold: false });
    try {
      await engine.createVm({ name: 'web', disks: [{ size, blockSize: BLOCK }] });
      const rng = new Rng(7);
      const model = Buffer.alloc(size);
      const snaps: { id: string; hash: string }[] = [];
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 60; i++) {
          const w = guestWrite(rng, size);
          await writeAt(engine, 'web', 0, w.offset, w.data);
          w.data.copy(model, w.offset);
          if (i % 20 === 0) {
            // A read of the range just written sees it (reads see the newest write).
            assert.deepEqual(await readRange(engine, 'web', 0, w.offset, w.data.length), w.data);
          }
        }
        assert.equal(sha(await readDisk(engine, 'web', 0)), sha(model), `live state after round ${round}`);
        if (round % 2 === 0) {
          const s = await engine.createSnapshot('web');
          snaps.push({ id: s.id, hash: sha(model) });
        } else {
          await engine.foldLive();
          assert.equal(sha(await readDisk(engine, 'web', 0)), sha(model), `live state after folding, round ${round}`);
        }
      }
      // Unfolded pages survive a restart as they are.
      const w = guestWrite(rng, size);
      await writeAt(engine, 'web', 0, w.offset, w.data);
      w.data.copy(model, w.offset);
      await engine.close();
      engine = await StorageEngine.open({ dataDir: dir, codecThreads: 1, liveFold: false });
      assert.equal(sha(await readDisk(engine, 'web', 0)), sha(model), 'live state after a restart');
      for (const s of snaps) assert.equal(sha(await readDisk(engine, `web@${s.id}`, 0)), s.hash, `snapshot ${s.id}`);
      // A whole-block write over a block with pages replaces them (the paged set was reloaded).
      await writeAt(engine, 'web', 0, w.offset - (w.offset % BLOCK), Buffer.alloc(BLOCK, 9));
      Buffer.alloc(BLOCK, 9).copy(model, w.offset - (w.offset % BLOCK));
      assert.equal(sha(await readDisk(engine, 'web', 0)), sha(model), 'live state after a whole-block write over pages');
      const report = await engine.verify();
      assert.equal(report.missing.length + report.corrupt.length, 0);
    } finally {
      await engine.close();
      removeDir(dir);
    }
  });

  test('snapshots under concurrent writers on two vDisks, with folds and GC running, hold exactly the acknowledged prefix', async () => {
    const dir = tempDir();
    const size = 48 * BLOCK;
    const engine = await StorageEngine.open({ dataDir: dir, codecThreads: 2, liveFold: { intervalMs: 5, idleMs: 0, busyPagedBlocks: 1, blocksPerRound: 8 } });
    try {
      await engine.createVm({
        name: 'db',
        disks: [
          { size, blockSize: BLOCK },
          { size, blockSize: BLOCK },
        ],
      });
      // Each writer owns a slice of each vDisk and writes it sequentially, alternating vDisks:
      // write n+1 is issued only after write n was acknowledged, so a crash-consistent snapshot
      // holds a prefix of each writer's writes.
      const WRITERS = 4;
      const slice = size / WRITERS;
      interface Write {
        readonly disk: number;
        readonly offset: number;
        readonly data: Buffer;
        issuedAt: number;
        ackedAt: number;
      }
      const logs: Write[][] = Array.from({ length: WRITERS }, () => []);
      let clock = 0;
      const tick = (): number => ++clock;
      let stop = false;
      const writer = async (i: number): Promise<void> => {
        const rng = new Rng(100 + i);
        for (let n = 0; !stop; n++) {
          const g = guestWrite(rng, slice);
          const w: Write = { disk: n % 2, offset: i * slice + g.offset, data: g.data, issuedAt: tick(), ackedAt: Infinity };
          logs[i]?.push(w);
          await writeAt(engine, 'db', w.disk, w.offset, w.data);
          w.ackedAt = tick();
        }
      };
      let gcRuns = 0;
      const gc = (async () => {
        while (!stop) {
          await engine.gc();
          gcRuns++;
        }
      })();
      const writers = Array.from({ length: WRITERS }, (_, i) => writer(i));
      const snaps: { id: string; askedAt: number; returnedAt: number }[] = [];
      for (let s = 0; s < 12; s++) {
        await new Promise((r) => setTimeout(r, 30));
        const askedAt = tick();
        const snap = await engine.createSnapshot('db');
        snaps.push({ id: snap.id, askedAt, returnedAt: tick() });
      }
      stop = true;
      await Promise.all([...writers, gc]);
      assert.ok(gcRuns > 0);

      // Expected content of writer i's slices holding its first `count` writes.
      const modelOf = (i: number, count: number): Buffer[] => {
        const disks = [Buffer.alloc(slice), Buffer.alloc(slice)];
        for (const w of (logs[i] ?? []).slice(0, count)) w.data.copy(disks[w.disk] as Buffer, w.offset - i * slice);
        return disks;
      };
      for (const s of snaps) {
        const disks = [await readDisk(engine, `db@${s.id}`, 0), await readDisk(engine, `db@${s.id}`, 1)];
        for (let i = 0; i < WRITERS; i++) {
          const log = logs[i] ?? [];
          const acked = log.filter((w) => w.ackedAt < s.askedAt).length;
          const issued = log.filter((w) => w.issuedAt < s.returnedAt).length;
          const got = disks.map((d) => sha(d.subarray(i * slice, (i + 1) * slice)));
          const matches: number[] = [];
          for (let count = acked; count <= issued; count++) {
            const m = modelOf(i, count);
            if (sha(m[0] as Buffer) === got[0] && sha(m[1] as Buffer) === got[1]) matches.push(count);
          }
          assert.ok(matches.length > 0, `snapshot ${s.id}, writer ${i}: not the first ${acked}..${issued} of its writes on both vDisks`);
        }
      }
      // And the live state is every write.
      for (let d = 0; d < 2; d++) {
        const live = await readDisk(engine, 'db', d);
        for (let i = 0; i < WRITERS; i++) {
          assert.equal(sha(live.subarray(i * slice, (i + 1) * slice)), sha(modelOf(i, logs[i]?.length ?? 0)[d] as Buffer), `live vDisk ${d}, writer ${i}`);
        }
      }
      const report = await engine.verify();
      assert.equal(report.missing.length + report.corrupt.length, 0);
    } finally {
      await engine.close();
      removeDir(dir);
    }
  });
});
