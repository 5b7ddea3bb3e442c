/**
 * The live-write table's small reads skip the 'd' point read for blocks known to have no live
 * write (MaybeDirty): they must still see every live write, whether staged in this process
 * (through the table or a view's table), stored by an earlier process, or staged while the
 * first read's scan runs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LeafUpdate } from '@vmferry/core';
import { Database } from '../src/index.js';
import { LiveWriteTable } from '../src/tables/live-writes.js';

const VM = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
const fp = (n: number): Buffer => Buffer.alloc(32, n);

async function read(table: LiveWriteTable, block: number): Promise<LeafUpdate[]> {
  const out: LeafUpdate[] = [];
  for await (const e of table.entries(VM, 0, { from: block, to: block + 1 })) out.push(e);
  return out;
}

test('small live-write reads see writes staged before, during and after the first scan, and across a reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmferry-live-writes-'));
  try {
    let db = await Database.open(dir);
    let table = new LiveWriteTable(db);
    await db.commit((b) => table.stagePut(b, VM, 0, 3, fp(3)));
    // The first read scans the vDisk; a put staged while that scan runs is seen too.
    const first = read(table, 7);
    await db.commit((b) => table.stagePut(b, VM, 0, 7, fp(7)));
    const seen = await first;
    assert.ok(seen.length === 0 || seen[0]?.fp.equals(fp(7)));
    assert.deepEqual(
      (await read(table, 7)).map((e) => e.block),
      [7],
    );
    assert.deepEqual(
      (await read(table, 3)).map((e) => e.block),
      [3],
    );
    assert.deepEqual(await read(table, 4), []);
    // A put staged through a view's table is recorded for the database's table.
    const view = db.snapshot();
    await db.commit((b) => table.at(view).stagePut(b, VM, 0, 9, fp(9)));
    await view.release();
    assert.deepEqual(
      (await read(table, 9)).map((e) => e.fp),
      [fp(9)],
    );
    await db.close();

    // A new process finds the stored writes by its scan.
    db = await Database.open(dir);
    table = new LiveWriteTable(db);
    for (const b of [3, 7, 9])
      assert.deepEqual(
        (await read(table, b)).map((e) => e.fp),
        [fp(b)],
      );
    assert.deepEqual(await read(table, 5), []);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
