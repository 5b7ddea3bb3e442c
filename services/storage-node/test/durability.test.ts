/**
 * Crash safety: SIGKILL the node at random moments during imports, writes and snapshots.
 * After each restart, every snapshot the CLI reported as created exports the bytes written
 * before it, and no half-imported VM is visible.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { StorageNodeClient, type DiskExtent, type Snapshot, type WriteDiskRequest, type WriteDiskResponse } from '@vmferry/proto';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportDisk, exportHash, MiB, random, removeDir, sha256, tempDir, type SnapshotJson, type VmJson } from './helpers.js';

const ITERATIONS = 8;
const DISK = 8 * MiB;

/** One write with the raw client (the CLI's start-up time would hide the crash window). */
function write(c: StorageNodeClient, vm: string, offset: number, data: Buffer): Promise<WriteDiskResponse> {
  return new Promise((resolve, reject) => {
    const call: grpc.ClientWritableStream<WriteDiskRequest> = c.writeDisk((err, res) => (err ? reject(err) : resolve(res)));
    call.on('error', () => undefined);
    call.write({ kind: { $case: 'header', value: { vm, diskIndex: 0, offset, length: data.length } } });
    call.write({ kind: { $case: 'data', value: data } });
    call.end();
  });
}

function snapshot(c: StorageNodeClient, vm: string): Promise<Snapshot> {
  return new Promise((resolve, reject) => c.createSnapshot({ vm, label: '' }, (err, res) => (err ? reject(err) : resolve(res))));
}

/**
 * The SHA-256 of a snapshot's vDisk read over one ReadDisk stream (holes as zeros): the
 * export path without a CLI process per snapshot, for the final check of every snapshot.
 */
async function readHash(c: StorageNodeClient, ref: string): Promise<string> {
  const h = createHash('sha256');
  let size = -1;
  let at = 0;
  for await (const e of c.readDisk({ ref, diskIndex: 0, offset: 0, length: 0 }) as AsyncIterable<DiskExtent>) {
    if (size < 0) size = e.diskSize;
    assert.equal(e.offset, at, `${ref}: extents arrive in order without gaps`);
    if (e.data.length > 0) h.update(e.data);
    else h.update(Buffer.alloc(e.holeLength));
    at += e.data.length > 0 ? e.data.length : e.holeLength;
  }
  assert.equal(at, size, `${ref}: the extents cover the whole disk`);
  return h.digest('hex');
}

/** The byte ranges (coalesced, at most 8) where `got` differs from `want`. */
function describeDiff(got: Buffer, want: Buffer): string {
  const ranges: string[] = [];
  let i = 0;
  while (i < want.length && ranges.length < 8) {
    if (got[i] === want[i]) {
      i++;
      continue;
    }
    const start = i;
    while (i < want.length && got[i] !== want[i]) i++;
    ranges.push(`${start}..${i}`);
  }
  return `${got.length} bytes exported, ${want.length} expected; differing ranges ${ranges.join(', ') || 'none'}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const randomInt = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));

describe('SIGKILL during import and snapshot', () => {
  let dir = '';
  let data = '';
  let node: NodeProcess | undefined;
  const image = (): string => join(dir, 'import.img');

  before(async () => {
    dir = tempDir();
    data = join(dir, 'data');
    // 48 MiB of mixed data: an import takes long enough to be killed part-way.
    const img = Buffer.alloc(48 * MiB);
    for (let off = 0; off < img.length; off += 3 * MiB) random(MiB).copy(img, off);
    writeFileSync(image(), img);
  });

  after(async () => {
    await node?.kill();
    removeDir(dir);
  });

  test(`${ITERATIONS} crashes lose no reported snapshot and leave no half import`, async () => {
    const model = Buffer.alloc(DISK);
    let confirmed: Buffer = Buffer.from(model); // live state as of the last reported snapshot
    const snapshots: { id: string; hash: string }[] = [];
    /** The content of the newest reported snapshot, to say which bytes differ on a failure. */
    let lastContent = Buffer.alloc(0);
    /** What happened in this round, in order (printed when a check fails). */
    let journal: string[] = [];
    const imported = new Set<string>();
    const cliReported: string[] = [];
    const imageHash = sha256(readFileSync(image()));

    node = await startNodeProcess({ dataDir: data });
    await cliJson(node.address, ['vm', 'create', 'd', '--disk', '8M', '--block-size', '16K']);
    // A reported snapshot of the empty disk: every round restores to a known state, even when
    // no snapshot of the round before was reported (its writes that landed are unknown).
    const empty = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', 'd']);
    snapshots.push({ id: empty.id, hash: sha256(model) });
    lastContent = Buffer.from(model);

    for (let i = 0; i < ITERATIONS; i++) {
      const addr = node.address;
      // Back to the last confirmed state: writes not covered by a reported snapshot are unknown.
      if (snapshots.length > 0) await cliJson(addr, ['restore', `d@${snapshots[snapshots.length - 1]?.id ?? ''}`]);
      journal.push(`restore to ${snapshots[snapshots.length - 1]?.id ?? '(none)'}`);
      model.set(confirmed);

      const importName = `imp-${i}`;
      const importing = runCli(addr, ['--json', 'vm', 'import', importName, image()]).then((r) => {
        if (r.code === 0) imported.add(importName);
      });
      const client = new StorageNodeClient(addr, grpc.credentials.createInsecure());
      let alive = true;
      let workEnded = false;
      const work = (async () => {
        try {
          while (alive) {
            const at = randomInt(0, DISK - 100_000);
            const bytes = random(randomInt(1, 100_000));
            await write(client, 'd', at, bytes);
            bytes.copy(model, at);
            const snap = await snapshot(client, 'd');
            snapshots.push({ id: snap.id, hash: sha256(model) });
            lastContent = Buffer.from(model);
            journal.push(`write ${at}+${bytes.length}, snapshot ${snap.id}`);
            confirmed = Buffer.from(model);
          }
        } catch {
          // The node died mid-call: this write or snapshot is unknown.
        } finally {
          workEnded = true;
        }
      })();
      // Also one CLI snapshot per round, reported as the user sees it.
      const cliSnap = (async () => {
        await sleep(randomInt(0, 300));
        const r = await runCli(addr, ['--json', 'snapshot', 'create', 'd']);
        if (r.code === 0) cliReported.push((JSON.parse(r.stdout) as SnapshotJson).id);
        journal.push(`CLI snapshot: ${r.code === 0 ? (JSON.parse(r.stdout) as SnapshotJson).id : 'failed'}`);
      })();
      // Kill at a random moment after the round's first reported snapshot: a loaded machine
      // may take long to get the first write through, and a round that reports nothing tests
      // nothing (the check below would then look at the previous round's snapshot).
      const roundStart = snapshots.length;
      while (snapshots.length === roundStart && !workEnded) await sleep(10);
      await sleep(randomInt(0, 750));
      await node.kill();
      alive = false;
      await Promise.all([importing, work, cliSnap]);
      client.close();

      node = await startNodeProcess({ dataDir: data });
      const vms = await cliJson<VmJson[]>(node.address, ['vm', 'list']);
      const names = vms.map((v) => v.name);
      for (const n of names.filter((x) => x.startsWith('imp-'))) {
        // The node may die after committing an import but before the client heard of it (a
        // lost reply): such a VM must then be whole. A half import must never be listed.
        if (!imported.has(n)) assert.equal(await exportHash(node.address, n, dir), imageHash, `VM ${n} is listed but its import is not whole`);
      }
      for (const n of imported) assert.ok(names.includes(n), `reported import ${n} is gone`);
      const last = snapshots[snapshots.length - 1];
      if (last) {
        const got = await exportDisk(node.address, `d@${last.id}`, dir);
        assert.equal(
          got.hash,
          last.hash,
          `snapshot ${last.id} after crash ${i}: ${describeDiff(readFileSync(got.file), lastContent)}; round: ${journal.join('; ')}`,
        );
        rmSync(got.file, { force: true });
      }
      journal = [];
    }

    const addr = node.address;
    const listed = new Set((await cliJson<SnapshotJson[]>(addr, ['snapshot', 'list', 'd'])).map((s) => s.id));
    assert.ok(snapshots.length > 0, 'at least one snapshot was reported');
    const checkStarted = performance.now();
    const reader = new StorageNodeClient(addr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 8 * MiB });
    try {
      for (const s of snapshots) {
        assert.ok(listed.has(s.id), `reported snapshot ${s.id} is missing`);
        assert.equal(await readHash(reader, `d@${s.id}`), s.hash, `snapshot ${s.id}`);
      }
    } finally {
      reader.close();
    }
    console.log(`# ${snapshots.length} reported snapshots re-read in ${((performance.now() - checkStarted) / 1000).toFixed(1)} s`);
    // Snapshots reported by the CLI (their content raced with the writes; they must exist and export).
    for (const id of cliReported) {
      assert.ok(listed.has(id), `CLI-reported snapshot ${id} is missing`);
      await exportHash(addr, `d@${id}`, dir);
    }
    assert.ok(snapshots.length >= ITERATIONS, `only ${snapshots.length} snapshots were reported across ${ITERATIONS} rounds`);
    for (const n of imported) assert.equal(await exportHash(addr, n, dir), imageHash, `imported VM ${n}`);
  });
});
