/**
 * A client that cancels a stream never gets its half-sent data committed: a cancelled import
 * leaves no VM (now or after a restart), and a cancelled or short write does not report
 * success for bytes it declared but never sent.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { StorageNodeClient, type ImportVmRequest, type Vm, type WriteDiskRequest, type WriteDiskResponse } from '@vmferry/proto';
import { cliJson, seededBytes, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { MiB, removeDir, tempDir } from './helpers.js';

const IMAGE = 64 * MiB;
const PIECE = 1 * MiB;
const ROUNDS = 6;

type Outcome = { err: grpc.ServiceError | null; value?: unknown };

async function send<T>(call: grpc.ClientWritableStream<T>, msg: T): Promise<void> {
  if (!call.write(msg)) await once(call, 'drain');
}

/**
 * Starts importing a 64 MiB image as `name` and cancels after `cancelAfter` bytes, once flow
 * control has acknowledged data (a 'drain'): the node has read part of the stream.
 */
async function cancelledImport(c: StorageNodeClient, name: string, cancelAfter: number, data: Buffer): Promise<Outcome> {
  let done!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => (done = r));
  const call: grpc.ClientWritableStream<ImportVmRequest> = c.importVm((err, value?: Vm) => done({ err, value }));
  call.on('error', () => undefined);
  await send(call, { kind: { $case: 'header', value: { name, disks: [{ size: IMAGE, blockSize: 0 }], hypervisorConfig: Buffer.alloc(0) } } });
  let drained = false;
  for (let offset = 0; offset < IMAGE && (offset < cancelAfter || !drained); offset += PIECE) {
    const msg: ImportVmRequest = { kind: { $case: 'data', value: { diskIndex: 0, offset, data: data.subarray(offset, offset + PIECE) } } };
    if (!call.write(msg)) {
      await once(call, 'drain');
      drained = true;
    }
  }
  call.cancel();
  return outcome;
}

/** Waits until the node has settled the import: the VM is gone, or (the bug) committed. */
async function settled(c: StorageNodeClient, name: string): Promise<'absent' | 'committed'> {
  for (;;) {
    const err = await new Promise<grpc.ServiceError | null>((r) => c.createSnapshot({ vm: name, label: '' }, (e) => r(e)));
    if (err === null) return 'committed';
    if (err.code === grpc.status.NOT_FOUND) return 'absent';
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION, err.message); // still importing
    await new Promise((r) => setImmediate(r));
  }
}

describe('cancelled streams commit nothing', () => {
  let dir = '';
  let node: NodeProcess | undefined;
  const data = seededBytes('cancel-import', IMAGE);

  before(() => {
    dir = tempDir();
  });
  after(async () => {
    await node?.kill();
    removeDir(dir);
  });

  test(`${ROUNDS} imports cancelled mid-stream leave no VM, before or after a restart`, async () => {
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    const c = new StorageNodeClient(node.address, grpc.credentials.createInsecure());
    for (let i = 0; i < ROUNDS; i++) {
      const name = `cancelled-${i}`;
      const o = await cancelledImport(c, name, (8 + 6 * i) * MiB, data);
      assert.equal(o.err?.code, grpc.status.CANCELLED, `round ${i}: the client sees its own cancel`);
      assert.equal(await settled(c, name), 'absent', `round ${i}: a cancelled import must not become VM ${name}`);
    }
    c.close();
    await node.stop();
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    const vms = await cliJson<{ name: string }[]>(node.address, ['vm', 'list']);
    assert.deepEqual(
      vms.map((v) => v.name),
      [],
    );
  });

  test('an import stream half-closed without its end marker is refused and leaves no VM', async () => {
    node ??= await startNodeProcess({ dataDir: join(dir, 'data') });
    const c = new StorageNodeClient(node.address, grpc.credentials.createInsecure());
    const o = await new Promise<Outcome>((resolve) => {
      const call = c.importVm((err, value?: Vm) => resolve({ err, value }));
      call.write({ kind: { $case: 'header', value: { name: 'no-end', disks: [{ size: 4 * MiB, blockSize: 0 }], hypervisorConfig: Buffer.alloc(0) } } });
      call.write({ kind: { $case: 'data', value: { diskIndex: 0, offset: 0, data: data.subarray(0, MiB) } } });
      call.end();
    });
    assert.equal(o.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(o.err?.message ?? '', /end/);
    assert.equal(await settled(c, 'no-end'), 'absent');
    c.close();
  });

  test('a write that half-closes before its declared length fails and does not report success', async () => {
    node ??= await startNodeProcess({ dataDir: join(dir, 'data') });
    await cliJson(node.address, ['vm', 'create', 'w', '--disk', '16M']);
    const c = new StorageNodeClient(node.address, grpc.credentials.createInsecure());
    const o = await new Promise<Outcome>((resolve) => {
      const call: grpc.ClientWritableStream<WriteDiskRequest> = c.writeDisk((err, value?: WriteDiskResponse) => resolve({ err, value }));
      call.write({ kind: { $case: 'header', value: { vm: 'w', diskIndex: 0, offset: 0, length: 8 * MiB } } });
      call.write({ kind: { $case: 'data', value: data.subarray(0, MiB + 100) } });
      call.end();
    });
    assert.equal(o.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(o.err?.message ?? '', /length/);
    c.close();
  });
});
