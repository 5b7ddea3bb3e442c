/**
 * Numbers and strings that the node used to take or to answer with INTERNAL: integers
 * ≥ 2^53, disk sizes that are not whole sectors, labels shaped like snapshot ids, broken rate
 * calendars. Each is INVALID_ARGUMENT naming the field, and nothing is created.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { StorageNodeClient } from '@vmferry/proto';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { removeDir, tempDir } from './helpers.js';

/** Hand-made protobuf (the generated encoders refuse what we want to send). */
function varint(v: bigint): Buffer {
  const out: number[] = [];
  let x = v;
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Buffer.from(out);
}
const int = (field: number, v: bigint | number): Buffer => Buffer.concat([varint(BigInt(field << 3)), varint(BigInt(v))]);
const bytes = (field: number, b: Buffer | string): Buffer => {
  const body = Buffer.from(b);
  return Buffer.concat([varint(BigInt((field << 3) | 2)), varint(BigInt(body.length)), body]);
};
const TOO_BIG = 2n ** 53n + 1n;
const raw = (b: Buffer): Buffer => b;

interface Outcome {
  code?: number;
  details?: string;
}

describe('bad numbers and names', () => {
  let dir = '';
  let node: NodeProcess;
  let client: grpc.Client;
  let typed: StorageNodeClient;

  const unaryRaw = (method: string, body: Buffer): Promise<Outcome> =>
    new Promise((resolve) => client.makeUnaryRequest(`/vmferry.v1.StorageNode/${method}`, raw, raw, body, (err) => resolve(err ?? {})));

  const clientStreamRaw = (method: string, messages: Buffer[]): Promise<Outcome> =>
    new Promise((resolve) => {
      const call = client.makeClientStreamRequest(`/vmferry.v1.StorageNode/${method}`, raw, raw, (err) => resolve(err ?? {}));
      for (const m of messages) call.write(m);
      call.end();
    });

  const vmNames = async (): Promise<string[]> => (await cliJson<{ name: string }[]>(node.address, ['vm', 'list'])).map((v) => v.name);

  before(async () => {
    dir = tempDir();
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    client = new grpc.Client(node.address, grpc.credentials.createInsecure());
    typed = new StorageNodeClient(node.address, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    typed?.close();
    await node?.kill();
    removeDir(dir);
  });

  test('integers ≥ 2^53: INVALID_ARGUMENT naming the field, in unary, client- and server-streaming calls', async () => {
    const created = await unaryRaw('CreateVm', Buffer.concat([bytes(1, 'huge'), bytes(2, int(1, TOO_BIG))]));
    assert.equal(created.code, grpc.status.INVALID_ARGUMENT, created.details);
    assert.match(created.details ?? '', /field disks\[0\]\.size: 9007199254740993/);

    const header = bytes(1, Buffer.concat([bytes(1, 'imp'), bytes(2, int(1, 1n << 20n))]));
    const imported = await clientStreamRaw('ImportVm', [header, bytes(2, Buffer.concat([int(1, 0), int(2, TOO_BIG), bytes(3, Buffer.alloc(512, 1))]))]);
    assert.equal(imported.code, grpc.status.INVALID_ARGUMENT, imported.details);
    assert.match(imported.details ?? '', /field data\.offset: 9007199254740993/);

    await cliJson(node.address, ['vm', 'create', 'w', '--disk', '1M']);
    const wrote = await clientStreamRaw('WriteDisk', [bytes(1, Buffer.concat([bytes(1, 'w'), int(3, TOO_BIG)])), bytes(2, Buffer.alloc(512, 1))]);
    assert.equal(wrote.code, grpc.status.INVALID_ARGUMENT, wrote.details);
    assert.match(wrote.details ?? '', /field header\.offset/);

    const read = await new Promise<Outcome>((resolve) => {
      const call = client.makeServerStreamRequest('/vmferry.v1.StorageNode/ReadDisk', raw, raw, Buffer.concat([bytes(1, 'w'), int(3, TOO_BIG)]));
      call.on('data', () => undefined);
      call.on('error', (e: grpc.ServiceError) => resolve(e));
      call.on('end', () => resolve({}));
    });
    assert.equal(read.code, grpc.status.INVALID_ARGUMENT, read.details);
    assert.match(read.details ?? '', /field offset/);
    assert.deepEqual((await vmNames()).sort(), ['w'], 'neither huge nor imp was created');
  });

  test('disk sizes must be whole 512-byte sectors: at the node, and at the CLI for an import', async () => {
    const r = await new Promise<Outcome>((resolve) =>
      typed.createVm({ name: 'odd', disks: [{ size: 1000, blockSize: 0 }], hypervisorConfig: Buffer.alloc(0) }, (err) => resolve(err ?? {})),
    );
    assert.equal(r.code, grpc.status.INVALID_ARGUMENT);
    assert.match(r.details ?? '', /disk size 1000 is not a whole number of 512-byte sectors/);
    const cli = await runCli(node.address, ['vm', 'create', 'odd', '--disk', '1001']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /disk size 1001 is not a whole number of 512-byte sectors/);
    const img = join(dir, 'odd.img');
    writeFileSync(img, Buffer.alloc(4097, 1));
    const imp = await runCli(node.address, ['vm', 'import', 'odd', img]);
    assert.equal(imp.code, 1);
    assert.match(imp.stderr, /odd\.img is 4097 bytes, not a whole number of 512-byte sectors/);
    assert.ok(!(await vmNames()).includes('odd'));
  });

  test('the CLI refuses sizes and offsets it cannot send exactly, before sending', async () => {
    for (const [args, re] of [
      [['vm', 'create', 'p', '--disk', '9P'], /'9P' is not a size/],
      [['vm', 'create', 'p', '--disk', '9007199254740993'], /'9007199254740993' is too large/],
      [['vm', 'create', 'p', '--disk', '16E'], /'16E' is not a size/],
      [['disk', 'write', 'w', '0', '/dev/null', '--offset', '99999999999999999'], /'99999999999999999' is too large/],
      [['disk', 'write', 'w', '4294967296', '/dev/null'], /'4294967296' is not a vDisk index/],
    ] as const) {
      const r = await runCli(node.address, [...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
    }
    assert.ok(!(await vmNames()).includes('p'));
  });

  test('a label shaped like a snapshot id is refused (refs resolve ids first)', async () => {
    await cliJson(node.address, ['vm', 'create', 'l', '--disk', '1M']);
    const s = await cliJson<{ id: string }>(node.address, ['snapshot', 'create', 'l']);
    const other = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    for (const label of [other, s.id]) {
      const r = await runCli(node.address, ['snapshot', 'create', 'l', '--label', label]);
      assert.equal(r.code, 1, label);
      assert.match(r.stderr, /looks like a snapshot id/, label);
      const relabel = await runCli(node.address, ['snapshot', 'label', `l@${s.id}`, label]);
      assert.equal(relabel.code, 1, label);
    }
    const r = await runCli(node.address, ['snapshot', 'create', 'l', '--label', 'a/b']);
    assert.equal(r.code, 1);
    const snaps = await cliJson<{ label: string }[]>(node.address, ['snapshot', 'list', 'l']);
    assert.deepEqual(
      snaps.map((x) => x.label),
      [''],
    );
  });

  test('a broken rate calendar sent straight to the node is INVALID_ARGUMENT naming the piece; nothing stored', async () => {
    for (const [rate, re] of [
      ['Mon-Zzz 99:99 -5Mbit', /rate: .*'Zzz' is not a day/],
      ['Mongoose 08:00-18:00 5Mbit', /'Mongoose' is not a day/],
      ['Mon 08:00-25:00 5Mbit', /'25:00' is not a time/],
      ['Mon 08:00-18:99 5Mbit', /'18:99' is not a time/],
      ['Mon 08:00-18:00 -5Mbit', /'-5Mbit' is not a rate/],
      ['* 0Mbit', /rate '0Mbit' must be above zero/],
      ['Mon 99:99 5Mbit', /'99:99' is not a time window/],
    ] as const) {
      const r = await new Promise<Outcome>((resolve) =>
        typed.putSite({ name: 'peer', replicationAddress: '', nodeAddress: '', identity: 'peer', bindAddress: '', rate }, (err) => resolve(err ?? {})),
      );
      assert.equal(r.code, grpc.status.INVALID_ARGUMENT, rate);
      assert.match(r.details ?? '', re, rate);
    }
    const sites = await cliJson<unknown[]>(node.address, ['site', 'list']);
    assert.deepEqual(sites, []);
  });
});
