/*
 * A fenced copy on the coordination plane (real nats-server, real node process): the node
 * registers it as following its new owner, so the scheduler runs its policy where the VM is
 * owned; promoted back, it is registered as owned again; a snapshot job for it takes nothing
 * while a job for an owned VM queued after it is done.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectStorageNode, type StorageNodeClient } from '@vmferry/grpc-edge';
import { openCoordination, publishJob, slotJobIdFor, snapshotJobSubject, type Coordination, type SnapshotJob } from './coordination-helpers.js';
import { cliJson, startNatsServer, startNodeProcess, type NatsServer, type NodeProcess } from '@vmferry/testkit';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a fenced copy on the coordination plane', () => {
  let work: string;
  let nats: NatsServer;
  let node: NodeProcess;
  let c: Coordination;
  let client: StorageNodeClient;
  let fencedId: string;
  let ownedId: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'vmferry-coord-fenced-'));
    nats = await startNatsServer();
    node = await startNodeProcess({ dataDir: join(work, 'n'), extraArgs: ['--site', 'siteA', '--nats', nats.url] });
    c = await openCoordination(nats.url, 'test');
    client = connectStorageNode(node.address);
    fencedId = (await cliJson<{ id: string }>(node.address, ['vm', 'create', 'moved', '--disk', '8M'])).id;
    ownedId = (await cliJson<{ id: string }>(node.address, ['vm', 'create', 'stays', '--disk', '8M'])).id;
  });

  after(async () => {
    client?.close();
    await c?.close();
    await node?.stop();
    await nats?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** The registry entry of `vmId` once `ok` holds for it (the node syncs every second). */
  async function entry(vmId: string, ok: (e: { replicaOf?: string }) => boolean, what: string): Promise<{ replicaOf?: string }> {
    for (let i = 0; i < 100; i++) {
      const e = await c.registry.get(`siteA.vm.${vmId}`);
      if (e?.operation === 'PUT') {
        const v = e.json<{ replicaOf?: string }>();
        if (ok(v)) return v;
      }
      await sleep(100);
    }
    return assert.fail(`registry: ${what}`);
  }

  const job = (vmId: string, vmName: string, slot: number): SnapshotJob => ({
    kind: 'snapshot',
    vmId,
    vmName,
    site: 'siteA',
    schedule: 'hourly',
    slot,
    consistency: 'crash',
    keep: 5,
    replicateTo: [],
  });

  test('fenced: registered as following its owner (the scheduler skips such entries)', async () => {
    await entry(fencedId, (e) => e.replicaOf === undefined, 'owned VM registered');
    await client.fenceVm({ vm: 'moved', ownerSite: 'siteB', ownerEpoch: 1 });
    assert.equal((await entry(fencedId, (e) => e.replicaOf !== undefined, 'fenced VM marked')).replicaOf, 'siteB');
  });

  test('a snapshot job for the fenced copy takes nothing; one for an owned VM queued after it is done', async () => {
    const slot = 1_800_300_000_000;
    const before = await cliJson<unknown[]>(node.address, ['snapshot', 'list', 'moved']);
    await publishJob(c, snapshotJobSubject('siteA'), job(fencedId, 'moved', slot), slotJobIdFor(fencedId, 'hourly', slot));
    await publishJob(c, snapshotJobSubject('siteA'), job(ownedId, 'stays', slot), slotJobIdFor(ownedId, 'hourly', slot));
    for (let i = 0; i < 100; i++) {
      const s = await cliJson<{ origin: string }[]>(node.address, ['snapshot', 'list', 'stays']);
      if (s.some((x) => x.origin === `schedule:hourly@${slot}`)) break;
      await sleep(100);
    }
    // Both jobs acknowledged (a work queue drops what is acked): the fenced one was handled, not left.
    let left = -1;
    for (let i = 0; i < 100 && left !== 0; i++) {
      left = (await c.jsm.streams.info('VMFERRY_JOBS')).state.messages;
      if (left !== 0) await sleep(100);
    }
    assert.equal(left, 0, 'both jobs were taken off the queue');
    assert.deepEqual(await cliJson<unknown[]>(node.address, ['snapshot', 'list', 'moved']), before);
  });

  test('promoted back (a newer epoch), the copy is registered as owned again', async () => {
    await client.promoteVm({ vm: 'moved', snapshot: 'fenced-1', epoch: 2 });
    await entry(fencedId, (e) => e.replicaOf === undefined, 'promoted VM registered as owned');
  });
});
