/**
 * Bad input and damaged storage, through the CLI and the raw gRPC client: every failure has
 * the right status, a message naming what was wrong, and leaves the stored data unchanged.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { StorageNodeClient, type DiskExtent, type WriteDiskRequest, type WriteDiskResponse } from '@vmferry/proto';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { assertFailed, exportHash, MiB, random, removeDir, sha256, tempDir, writeBytes, type SnapshotJson, type VerifyJson, type VmJson } from './helpers.js';

const DISK = 16 * MiB;

function rawClient(address: string): StorageNodeClient {
  return new StorageNodeClient(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
  });
}

/** Reads a disk range with the raw client; resolves to the bytes or rejects with the ServiceError. */
function readRange(c: StorageNodeClient, ref: string, offset: number, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const stream = c.readDisk({ ref, diskIndex: 0, offset, length });
    stream.on('data', (x: DiskExtent) => parts.push(x.data.length > 0 ? Buffer.from(x.data) : Buffer.alloc(x.holeLength)));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(parts)));
  });
}

/** One WriteDisk call with the given data messages; resolves to the response or the error. */
function writeMessages(
  c: StorageNodeClient,
  header: { vm: string; diskIndex: number; offset: number },
  data: Buffer[],
): Promise<WriteDiskResponse | grpc.ServiceError> {
  return new Promise((resolve) => {
    const call: grpc.ClientWritableStream<WriteDiskRequest> = c.writeDisk((err, res) => resolve(err ?? res));
    call.on('error', () => undefined);
    call.write({ kind: { $case: 'header', value: { ...header, length: 0 } } });
    for (const d of data) call.write({ kind: { $case: 'data', value: d } });
    call.end();
  });
}

const isServiceError = (x: unknown): x is grpc.ServiceError => x instanceof Error && typeof (x as Partial<grpc.ServiceError>).code === 'number';

describe('bad input', () => {
  let dir = '';
  let node: NodeProcess | undefined;
  let addr = '';
  let client: StorageNodeClient | undefined;
  const content = random(2 * MiB);
  let liveHash = '';

  before(async () => {
    dir = tempDir();
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    addr = node.address;
    client = rawClient(addr);
    await cliJson(addr, ['vm', 'create', 'v', '--disk', '16M']);
    assert.equal((await writeBytes(addr, 'v', 1000, content, dir)).code, 0);
    await cliJson(addr, ['snapshot', 'create', 'v', '--label', 's1']);
    const expected = Buffer.alloc(DISK);
    content.copy(expected, 1000);
    liveHash = sha256(expected);
    assert.equal(await exportHash(addr, 'v', dir), liveHash);
  });

  after(async () => {
    client?.close();
    await node?.stop();
    removeDir(dir);
  });

  test('unknown VM: NOT_FOUND naming the VM, for every command that takes one', async () => {
    for (const args of [
      ['vm', 'show', 'ghost-vm'],
      ['vm', 'delete', 'ghost-vm'],
      ['snapshot', 'create', 'ghost-vm'],
      ['snapshot', 'list', 'ghost-vm'],
      ['disk', 'export', 'ghost-vm', '0', join(dir, 'x.img')],
      ['clone', 'ghost-vm', 'new-one'],
      ['stats', 'ghost-vm'],
    ]) {
      assertFailed(await runCli(addr, args), 'NOT_FOUND', 'ghost-vm');
    }
    const w = await writeBytes(addr, 'ghost-vm', 0, random(10), dir);
    assertFailed(w, 'NOT_FOUND', 'ghost-vm');
    // Nothing was created by the failed clone.
    const vms = await cliJson<VmJson[]>(addr, ['vm', 'list']);
    assert.deepEqual(
      vms.map((v) => v.name),
      ['v'],
    );
  });

  test('unknown snapshot or vDisk: NOT_FOUND naming it', async () => {
    for (const args of [
      ['snapshot', 'show', 'v@nosuch'],
      ['disk', 'export', 'v@nosuch', '0', join(dir, 'x.img')],
      ['restore', 'v@nosuch'],
      ['clone', 'v@nosuch', 'c'],
      ['snapshot', 'delete', 'v@nosuch'],
    ]) {
      assertFailed(await runCli(addr, args), 'NOT_FOUND', 'v@nosuch');
    }
    assertFailed(await runCli(addr, ['disk', 'export', 'v', '3', join(dir, 'x.img')]), 'NOT_FOUND');
    assert.equal(await exportHash(addr, 'v', dir), liveHash);
  });

  test('malformed references and names: INVALID_ARGUMENT', async () => {
    for (const ref of ['a@b@c', 'bad name', 'v@', '@s1', 'v@s 1']) {
      assertFailed(await runCli(addr, ['snapshot', 'show', ref]), 'INVALID_ARGUMENT');
      assertFailed(await runCli(addr, ['disk', 'export', ref, '0', join(dir, 'x.img')]), 'INVALID_ARGUMENT');
    }
    assertFailed(await runCli(addr, ['clone', 'a@b@c', 'c']), 'INVALID_ARGUMENT', 'a@b@c');
    assertFailed(await runCli(addr, ['clone', 'v@s1', 'bad name']), 'INVALID_ARGUMENT', 'bad name');
    assertFailed(await runCli(addr, ['vm', 'create', 'bad name', '--disk', '1M']), 'INVALID_ARGUMENT', 'bad name');
    assertFailed(await runCli(addr, ['snapshot', 'create', 'v', '--label', 'bad label']), 'INVALID_ARGUMENT', 'bad label');
    assert.equal((await cliJson<VmJson[]>(addr, ['vm', 'list'])).length, 1);
    assert.equal((await cliJson<SnapshotJson[]>(addr, ['snapshot', 'list', 'v'])).length, 1);
  });

  test('writes past the end: OUT_OF_RANGE and nothing changes', async () => {
    assertFailed(await writeBytes(addr, 'v', DISK - 100, random(1000), dir), 'OUT_OF_RANGE');
    assertFailed(await writeBytes(addr, 'v', DISK + 1, random(10), dir), 'OUT_OF_RANGE');
    assertFailed(await writeBytes(addr, 'v', DISK - 1, random(2), dir), 'OUT_OF_RANGE');
    assert.equal(await exportHash(addr, 'v', dir), liveHash);
    // The last byte is writable; then put it back.
    assert.equal((await writeBytes(addr, 'v', DISK - 1, Buffer.of(7), dir)).code, 0);
    assert.notEqual(await exportHash(addr, 'v', dir), liveHash);
    await cliJson(addr, ['restore', 'v@s1']);
    assert.equal(await exportHash(addr, 'v', dir), liveHash);
  });

  test('a multi-MiB write that runs past the end changes nothing (the CLI declares its length up front)', async () => {
    // 6 MiB at 12 MiB ends at 18 MiB on a 16 MiB disk: the stream fails at its 5th MiB.
    assertFailed(await writeBytes(addr, 'v', 12 * MiB, random(6 * MiB), dir), 'OUT_OF_RANGE');
    const after = await exportHash(addr, 'v', dir);
    await cliJson(addr, ['restore', 'v@s1']);
    assert.equal(after, liveHash);
  });

  test('reads past the end: OUT_OF_RANGE', async () => {
    const c = client as StorageNodeClient;
    const ok = await readRange(c, 'v@s1', 1000, 5000);
    assert.deepEqual(ok, content.subarray(0, 5000));
    for (const [offset, length] of [
      [DISK - 10, 11],
      [DISK + 1, 0],
      [DISK + 100, 1],
    ] as const) {
      const err: unknown = await readRange(c, 'v', offset, length).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isServiceError(err), `read [${offset}, +${length}) should fail`);
      assert.equal(err.code, grpc.status.OUT_OF_RANGE, err.message);
    }
  });

  test('block size not a power of two or out of range: INVALID_ARGUMENT, no VM made', async () => {
    for (const bs of ['5000', '2K', '8M', '96K']) {
      assertFailed(await runCli(addr, ['vm', 'create', `bs-${bs}`, '--disk', '4M', '--block-size', bs]), 'INVALID_ARGUMENT', 'block size');
    }
    const made = await cliJson<VmJson>(addr, ['vm', 'create', 'bs-ok', '--disk', '4M', '--block-size', '4K']);
    assert.equal(made.disks[0]?.blockSize, 4096);
    const names = (await cliJson<VmJson[]>(addr, ['vm', 'list'])).map((v) => v.name);
    assert.deepEqual(names, ['bs-ok', 'v']);
    await cliJson(addr, ['vm', 'delete', 'bs-ok']);
  });

  test('duplicate VM names and snapshot labels: ALREADY_EXISTS, originals untouched', async () => {
    assertFailed(await runCli(addr, ['vm', 'create', 'v', '--disk', '1M']), 'ALREADY_EXISTS', "'v'");
    const img = join(dir, 'dup.img');
    writeFileSync(img, random(1 * MiB));
    assertFailed(await runCli(addr, ['vm', 'import', 'v', img]), 'ALREADY_EXISTS', "'v'");
    assertFailed(await runCli(addr, ['clone', 'v@s1', 'v']), 'ALREADY_EXISTS', "'v'");
    assertFailed(await runCli(addr, ['snapshot', 'create', 'v', '--label', 's1']), 'ALREADY_EXISTS', 's1');
    const shown = await cliJson<VmJson>(addr, ['vm', 'show', 'v']);
    assert.equal(shown.disks[0]?.size, DISK);
    assert.equal(shown.snapshotCount, 1);
    assert.equal(await exportHash(addr, 'v', dir), liveHash);
    assert.equal(await exportHash(addr, 'v@s1', dir), liveHash);
  });

  test('a message over the 8 MiB limit: RESOURCE_EXHAUSTED, nothing written', async () => {
    const c = client as StorageNodeClient;
    const res = await writeMessages(c, { vm: 'v', diskIndex: 0, offset: 0 }, [random(9 * MiB)]);
    assert.ok(isServiceError(res), 'the oversized write must fail');
    assert.equal(res.code, grpc.status.RESOURCE_EXHAUSTED, res.message);
    // The same bytes in 1 MiB messages are accepted (the limit is per message).
    const small = await writeMessages(c, { vm: 'v', diskIndex: 0, offset: 0 }, [random(MiB)]);
    assert.ok(!isServiceError(small), isServiceError(small) ? small.message : '');
    assert.equal(small.bytesWritten, MiB);
    await cliJson(addr, ['restore', 'v@s1']);
    assert.equal(await exportHash(addr, 'v', dir), liveHash);
  });
});

describe('snapshot cap', () => {
  let dir = '';
  let node: NodeProcess | undefined;

  before(async () => {
    dir = tempDir();
    node = await startNodeProcess({ dataDir: join(dir, 'data'), extraArgs: ['--max-snapshots', '3'] });
  });

  after(async () => {
    await node?.stop();
    removeDir(dir);
  });

  test('the 4th snapshot fails with RESOURCE_EXHAUSTED and the 3 remain', async () => {
    const addr = (node as NodeProcess).address;
    await cliJson(addr, ['vm', 'create', 'capped', '--disk', '1M']);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await cliJson<SnapshotJson>(addr, ['snapshot', 'create', 'capped'])).id);
    assertFailed(await runCli(addr, ['snapshot', 'create', 'capped']), 'RESOURCE_EXHAUSTED', 'capped');
    // A clone of live state needs a snapshot too: refused, and no clone is made.
    assertFailed(await runCli(addr, ['clone', 'capped', 'copy']), 'RESOURCE_EXHAUSTED');
    const list = await cliJson<SnapshotJson[]>(addr, ['snapshot', 'list', 'capped']);
    assert.deepEqual(
      list.map((s) => s.id),
      ids,
    );
    assert.deepEqual(
      (await cliJson<VmJson[]>(addr, ['vm', 'list'])).map((v) => v.name),
      ['capped'],
    );
    // Deleting one makes room again.
    await cliJson(addr, ['snapshot', 'delete', `capped@${ids[0] ?? ''}`]);
    await cliJson(addr, ['snapshot', 'create', 'capped']);
    assert.equal((await cliJson<SnapshotJson[]>(addr, ['snapshot', 'list', 'capped'])).length, 3);
  });
});

describe('a corrupted chunk on disk', () => {
  let dir = '';
  let data = '';
  let node: NodeProcess | undefined;
  const victim = random(64 * 1024);
  const healthy = random(64 * 1024);

  before(async () => {
    dir = tempDir();
    data = join(dir, 'data');
    node = await startNodeProcess({ dataDir: data });
    const addr = node.address;
    await cliJson(addr, ['vm', 'create', 'victim', '--disk', '1M']);
    await cliJson(addr, ['vm', 'create', 'bystander', '--disk', '1M']);
    assert.equal((await writeBytes(addr, 'victim', 64 * 1024, victim, dir)).code, 0);
    assert.equal((await writeBytes(addr, 'bystander', 0, healthy, dir)).code, 0);
    await cliJson(addr, ['snapshot', 'create', 'victim', '--label', 's1']);
    await cliJson(addr, ['snapshot', 'create', 'bystander', '--label', 's1']);
    await node.stop();
    // Reopening replays the WAL into table files: the chunk then sits in an SST or blob file.
    node = await startNodeProcess({ dataDir: data });
    await node.stop();
    node = undefined;
  });

  after(async () => {
    await node?.stop();
    removeDir(dir);
  });

  test('verify names the corrupt chunk and who uses it; export fails with DATA_LOSS', async () => {
    const needle = victim.subarray(20_000, 20_032);
    const hits: { file: string; at: number }[] = [];
    for (const name of readdirSync(data)) {
      if (!/\.(sst|blob)$/.test(name)) continue;
      const bytes = readFileSync(join(data, name));
      const at = bytes.indexOf(needle);
      if (at >= 0) hits.push({ file: join(data, name), at });
    }
    assert.equal(hits.length, 1, `the block's bytes should be in exactly one table file: ${JSON.stringify(hits)}`);
    const hit = hits[0] as { file: string; at: number };
    const bytes = readFileSync(hit.file);
    bytes[hit.at + 7] = (bytes[hit.at + 7] as number) ^ 0x01;
    writeFileSync(hit.file, bytes);

    node = await startNodeProcess({ dataDir: data });
    const addr = node.address;
    const r = await runCli(addr, ['--json', 'verify']);
    assert.equal(r.code, 2, `verify exits 2 on corruption: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as VerifyJson;
    assert.ok(report.chunksChecked >= 2);
    assert.equal(report.corrupt.length, 1, JSON.stringify(report));
    assert.ok(report.corrupt[0]?.referencedBy.includes('victim@s1'), JSON.stringify(report.corrupt));
    assert.ok(report.corrupt[0]?.referencedBy.includes('victim'), 'live state references it too');
    assert.ok(!report.corrupt[0]?.referencedBy.some((x) => x.startsWith('bystander')));

    assertFailed(await runCli(addr, ['disk', 'export', 'victim@s1', '0', join(dir, 'bad.img')]), 'DATA_LOSS');
    assertFailed(await runCli(addr, ['disk', 'export', 'victim', '0', join(dir, 'bad.img')]), 'DATA_LOSS');
    // Other data is still served.
    const good = Buffer.alloc(MiB);
    healthy.copy(good, 0);
    assert.equal(await exportHash(addr, 'bystander@s1', dir), sha256(good));
  });
});
