/**
 * Bad input over NBD, sent with the tiny raw client (real clients never send it): ranges past
 * the end get EINVAL (reads) or ENOSPC (writes) and the connection stays up; writes to a
 * read-only export get EPERM; unknown commands and flags get EINVAL; a malformed frame or a
 * request over 32 MiB closes only its own connection; a client that disconnects mid-write
 * loses nothing it saw acknowledged and leaves no part of the unfinished write.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CMD, CMD_FLAG, MAX_PAYLOAD, NBD_ERRNO, TFLAG } from '@vmferry/nbd';
import { cliJson, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { MiB, removeDir, tempDir } from './helpers.js';
import { mustRun, RawNbdClient } from './nbd-helpers.js';

const DISK = 16 * MiB;

describe('NBD bad input', () => {
  let dir = '';
  let node: NodeProcess;
  let nbd = '';

  before(async () => {
    dir = tempDir();
    node = await startNodeProcess({ dataDir: join(dir, 'data'), extraArgs: ['--nbd-listen', '127.0.0.1:0'] });
    nbd = node.nbdAddress ?? '';
    await cliJson(node.address, ['vm', 'create', 'web', '--disk', '16M']);
    await cliJson(node.address, ['snapshot', 'create', 'web', '--label', 's1']);
  });

  after(async () => {
    await node.stop();
    removeDir(dir);
  });

  test('past the end: EINVAL for reads, ENOSPC for writes; the connection stays up', async () => {
    const { client, size, flags } = await RawNbdClient.open(nbd, 'web/0');
    assert.equal(size, DISK);
    assert.equal(flags & TFLAG.READ_ONLY, 0);
    assert.equal((await client.request(CMD.READ, DISK - 512, 1024)).error, NBD_ERRNO.EINVAL);
    assert.equal((await client.request(CMD.READ, Number.MAX_SAFE_INTEGER, 512)).error, NBD_ERRNO.EINVAL);
    assert.equal((await client.request(CMD.WRITE, DISK, 512, Buffer.alloc(512, 1))).error, NBD_ERRNO.ENOSPC);
    assert.equal((await client.request(CMD.WRITE_ZEROES, DISK - 512, 4096)).error, NBD_ERRNO.ENOSPC);
    assert.equal((await client.request(CMD.TRIM, DISK, 1)).error, NBD_ERRNO.EINVAL);
    assert.equal((await client.request(CMD.CACHE, DISK, 1)).error, NBD_ERRNO.EINVAL);
    // Unknown command, a flag the command does not take, BLOCK_STATUS with no context selected.
    assert.equal((await client.request(99, 0, 512)).error, NBD_ERRNO.EINVAL);
    assert.equal((await client.request(CMD.FLUSH, 0, 0, undefined, CMD_FLAG.NO_HOLE)).error, NBD_ERRNO.EINVAL);
    assert.equal((await client.request(CMD.BLOCK_STATUS, 0, 4096)).error, NBD_ERRNO.EINVAL);
    // Still up: a good write and read work, and nothing past the end was written.
    assert.equal((await client.request(CMD.WRITE, DISK - 512, 512, Buffer.alloc(512, 7), CMD_FLAG.FUA)).error, 0);
    const r = await client.request(CMD.READ, DISK - 1024, 1024);
    assert.equal(r.error, 0);
    assert.deepEqual(r.data, Buffer.concat([Buffer.alloc(512), Buffer.alloc(512, 7)]));
    assert.equal((await client.request(CMD.FLUSH, 0, 0)).error, 0);
    client.destroy();
  });

  test('a read-only export refuses writes, trims and zeroes with EPERM', async () => {
    const { client, flags } = await RawNbdClient.open(nbd, 'web@s1/0');
    assert.notEqual(flags & TFLAG.READ_ONLY, 0);
    assert.equal((await client.request(CMD.WRITE, 0, 512, Buffer.alloc(512, 1))).error, NBD_ERRNO.EPERM);
    assert.equal((await client.request(CMD.TRIM, 0, 4096)).error, NBD_ERRNO.EPERM);
    assert.equal((await client.request(CMD.WRITE_ZEROES, 0, 4096)).error, NBD_ERRNO.EPERM);
    const r = await client.request(CMD.READ, 0, 512);
    assert.equal(r.error, 0);
    assert.deepEqual(r.data, Buffer.alloc(512));
    client.destroy();
  });

  test('an oversized request or a malformed frame closes only its own connection', async () => {
    const bystander = await RawNbdClient.open(nbd, 'web/0');
    // A WRITE header announcing 32 MiB + 1: refused from the header, before any payload.
    const { client: big } = await RawNbdClient.open(nbd, 'web/0');
    big.sendRaw(big.frame(CMD.WRITE, 0, MAX_PAYLOAD + 1));
    assert.ok(await big.waitClosed(), 'an oversized write closes its connection');
    const { client: bigRead } = await RawNbdClient.open(nbd, 'web/0');
    bigRead.sendRaw(bigRead.frame(CMD.READ, 0, MAX_PAYLOAD + 1));
    assert.ok(await bigRead.waitClosed(), 'an oversized read closes its connection');
    const { client: garbage } = await RawNbdClient.open(nbd, 'web/0');
    garbage.sendRaw(Buffer.alloc(28, 0xee));
    assert.ok(await garbage.waitClosed(), 'a frame without the request magic closes its connection');
    // The other connection and new clients are unaffected.
    assert.equal(bystander.client.closed, false);
    assert.equal((await bystander.client.request(CMD.READ, 0, 4096)).error, 0);
    bystander.client.destroy();
    assert.equal((await mustRun('nbdinfo', ['--size', `nbd://${nbd}/web/0`])).trim(), String(DISK));
    assert.match(node.log(), /dropping connection .*over the 33554432-byte limit/);
  });

  test('a client that disconnects mid-write loses nothing acknowledged and leaves no part of the write', async () => {
    const { client } = await RawNbdClient.open(nbd, 'web/0');
    assert.equal((await client.request(CMD.WRITE, 0, 4096, Buffer.alloc(4096, 0x11), CMD_FLAG.FUA)).error, 0);
    assert.equal((await client.request(CMD.WRITE, 65536, 4096, Buffer.alloc(4096, 0x33))).error, 0);
    assert.equal((await client.request(CMD.FLUSH, 0, 0)).error, 0);
    // Half of a 64 KiB write over both ranges, then the connection drops.
    const frame = client.frame(CMD.WRITE, 0, 128 * 1024, Buffer.alloc(128 * 1024, 0x22));
    client.sendRaw(frame.subarray(0, 28 + 64 * 1024));
    await new Promise((r) => setTimeout(r, 200));
    client.destroy();
    await mustRun('qemu-io', ['-f', 'raw', '-c', 'read -P 0x11 0 4096', '-c', 'read -P 0 4096 61440', '-c', 'read -P 0x33 65536 4096', `nbd://${nbd}/web/0`]);
    assert.equal(node.child.exitCode, null);
  });
});
