/**
 * The server kit over a fake API, no engine: ReadDisk streams the API's extents (the disk size
 * on the first message), a failure mid-stream arrives as the coded status, and a client that
 * cancels closes the API's extent source (so a generator's locks are released).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { NotFoundError, type DiskExtent as CoreExtent, type StorageNodeApi } from '@vmferry/core';
import { StorageNodeClient, type DiskExtent } from '@vmferry/proto';
import { ERROR_CODE_KEY, startStorageNodeServer, type StartedServer } from '../src/index.js';

const BLOCK = 64 * 1024;
let server: StartedServer;
let client: StorageNodeClient;
let closedSources = 0;

/** `count` data extents of one block each; fails after them when `failAfter`. */
async function* extents(count: number, failAfter: boolean): AsyncGenerator<CoreExtent> {
  try {
    for (let i = 0; i < count; i++) yield { offset: i * BLOCK, parts: [Buffer.alloc(BLOCK, i % 251)], length: BLOCK };
    if (failAfter) throw new NotFoundError('snapshot', 'vm@gone');
  } finally {
    closedSources++;
  }
}

/** What the fake node's NBD server serves (GetNodeInfo asks at each call). */
let nbdNow: { address?: string; socket?: string } = {};

const fakeApi = {
  site: 'test',
  read: (ref: string) => ({ size: 1 << 30, extents: extents(ref === 'endless' ? 1_000_000 : 4, ref === 'failing') }),
} as unknown as StorageNodeApi;

function readAll(ref: string): Promise<{ messages: DiskExtent[]; err?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const messages: DiskExtent[] = [];
    const call = client.readDisk({ ref, diskIndex: 0, offset: 0, length: 0 });
    call.on('data', (m: DiskExtent) => messages.push(m));
    call.on('error', (err: grpc.ServiceError) => resolve({ messages, err }));
    call.on('end', () => resolve({ messages }));
  });
}

before(async () => {
  server = await startStorageNodeServer(fakeApi, '127.0.0.1:0', { replicationAddress: '127.0.0.1:9', nbd: () => nbdNow });
  client = new StorageNodeClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  await server.stop();
});

test('ReadDisk sends the extents as they are, the disk size on the first message only', async () => {
  const { messages, err } = await readAll('vm');
  assert.equal(err, undefined);
  assert.deepEqual(
    messages.map((m) => [m.offset, m.data.length, m.data[0], m.diskSize]),
    [0, 1, 2, 3].map((i) => [i * BLOCK, BLOCK, i, i === 0 ? 1 << 30 : 0]),
  );
});

test('a failure mid-stream ends ReadDisk with the coded status, after the data sent', async () => {
  const { messages, err } = await readAll('failing');
  assert.equal(messages.length, 4);
  assert.equal(err?.code, grpc.status.NOT_FOUND);
  assert.equal(err.metadata.get(ERROR_CODE_KEY)[0], 'not-found');
});

test('a client that cancels ReadDisk closes the extent source', async () => {
  const before = closedSources;
  const call = client.readDisk({ ref: 'endless', diskIndex: 0, offset: 0, length: 0 });
  const cancelled = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  await new Promise((resolve) => call.once('data', resolve));
  call.cancel();
  assert.equal((await cancelled).code, grpc.status.CANCELLED);
  for (let i = 0; i < 200 && closedSources === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(closedSources, before + 1, 'the generator was closed');
});

test('GetNodeInfo names the site, the replication address and the NBD endpoints as they are at each call', async () => {
  const info = () => new Promise((resolve, reject) => client.getNodeInfo({}, (e, r) => (e ? reject(e) : resolve(r))));
  assert.deepEqual(await info(), { site: 'test', replicationAddress: '127.0.0.1:9', nbdAddress: '', nbdSocket: '' });
  nbdNow = { address: '127.0.0.1:10809', socket: '/run/vmferry.nbd' };
  assert.deepEqual(await info(), { site: 'test', replicationAddress: '127.0.0.1:9', nbdAddress: '127.0.0.1:10809', nbdSocket: '/run/vmferry.nbd' });
});
