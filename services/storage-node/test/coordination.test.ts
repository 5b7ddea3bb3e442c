/*
 * The storage node on NATS (real nats-server, real node process): it registers its VMs,
 * takes scheduled snapshots once per slot, applies the schedule's retention (never a snapshot
 * still being replicated), queues replication jobs once, and falls back to crash-consistent
 * with a recorded reason when VM consistency is asked for without a hypervisor adapter.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOBS_STREAM, openCoordination, publishJob, slotJobIdFor, snapshotJobSubject, type Coordination, type SnapshotJob } from './coordination-helpers.js';
import { cliJson, startNatsServer, startNodeProcess, type NatsServer, type NodeProcess } from '@vmferry/testkit';

interface SnapshotJson {
  id: string;
  origin: string;
  consistency: string;
  consistencyNote: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('storage node on the coordination plane', () => {
  let work: string;
  let nats: NatsServer;
  let node: NodeProcess;
  let c: Coordination;
  let vmId: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'vmferry-coord-'));
    nats = await startNatsServer();
    node = await startNodeProcess({ dataDir: join(work, 'n'), extraArgs: ['--site', 'siteA', '--nats', nats.url] });
    c = await openCoordination(nats.url, 'test');
    vmId = (await cliJson<{ id: string }>(node.address, ['vm', 'create', 'web', '--disk', '8M'])).id;
  });

  after(async () => {
    await c?.close();
    await node?.stop();
    await nats?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const job = (slot: number, extra: Partial<SnapshotJob> = {}): SnapshotJob => ({
    kind: 'snapshot',
    vmId,
    vmName: 'web',
    site: 'siteA',
    schedule: 'hourly',
    slot,
    consistency: 'crash',
    keep: 2,
    replicateTo: [],
    ...extra,
  });

  async function snapshots(): Promise<SnapshotJson[]> {
    return cliJson<SnapshotJson[]>(node.address, ['snapshot', 'list', 'web']);
  }

  async function waitFor(pred: (s: SnapshotJson[]) => boolean, what: string): Promise<SnapshotJson[]> {
    for (let i = 0; i < 100; i++) {
      const s = await snapshots();
      if (pred(s)) return s;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** Resolves once the durable consumer has delivered and settled every job published to it. */
  async function jobsSettled(durable: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const info = await c.jsm.consumers.info(JOBS_STREAM, durable);
      if (info.num_pending === 0 && info.num_ack_pending === 0) return;
      await sleep(100);
    }
    throw new Error(`timed out waiting for consumer ${durable} to settle its jobs`);
  }

  test('the node registers its VMs in the registry', async () => {
    for (let i = 0; i < 50; i++) {
      const e = await c.registry.get(`siteA.vm.${vmId}`);
      if (e?.operation === 'PUT') {
        assert.equal(e.json<{ name: string }>().name, 'web');
        return;
      }
      await sleep(100);
    }
    assert.fail('VM not registered');
  });

  test('one snapshot per slot, even when the job is delivered twice; keep-N retention per schedule', async () => {
    const base = 1_800_000_000_000;
    for (const slot of [base, base + 3600_000, base + 7200_000]) {
      await publishJob(c, snapshotJobSubject('siteA'), job(slot), slotJobIdFor(vmId, 'hourly', slot));
      // A second publication under another id (a job re-queued by hand) must not double the slot.
      await publishJob(c, snapshotJobSubject('siteA'), job(slot), `${slotJobIdFor(vmId, 'hourly', slot)}-again`);
      await waitFor((s) => s.some((x) => x.origin === `schedule:hourly@${slot}`), `slot ${slot}`);
    }
    // Every job, the duplicates included, has been handled once the node's consumer has
    // none pending or unacknowledged: only then is "no slot doubled" a finding.
    await jobsSettled('snapshot-siteA');
    const s = await snapshots();
    const hourly = s.filter((x) => x.origin.startsWith('schedule:hourly@'));
    assert.deepEqual(
      hourly.map((x) => x.origin),
      [`schedule:hourly@${base + 3600_000}`, `schedule:hourly@${base + 7200_000}`],
      'keep 2: the oldest slot was deleted, no slot doubled',
    );
  });

  test('a snapshot queued for replication is kept from retention until the target acks it', async () => {
    const base = 1_800_100_000_000;
    await publishJob(
      c,
      snapshotJobSubject('siteA'),
      job(base, { schedule: 'repl', keep: 1, replicateTo: [{ site: 'siteB' }] }),
      slotJobIdFor(vmId, 'repl', base),
    );
    await waitFor((s) => s.some((x) => x.origin === `schedule:repl@${base}`), 'first repl slot');
    await publishJob(
      c,
      snapshotJobSubject('siteA'),
      job(base + 1000, { schedule: 'repl', keep: 1, replicateTo: [{ site: 'siteB' }] }),
      slotJobIdFor(vmId, 'repl', base + 1000),
    );
    const s = await waitFor((x) => x.some((y) => y.origin === `schedule:repl@${base + 1000}`), 'second repl slot');
    assert.ok(
      s.some((x) => x.origin === `schedule:repl@${base}`),
      'keep 1, but the first snapshot is still queued for siteB: not deleted',
    );
    const pending = await c.jsm.streams.getMessage('VMFERRY_JOBS', { last_by_subj: 'vmferry.jobs.replicate.siteB' });
    assert.ok(pending, 'a replication job was queued for siteB');
  });

  test("'vm' consistency without a hypervisor adapter falls back to crash-consistent and says why", async () => {
    const slot = 1_800_200_000_000;
    await publishJob(c, snapshotJobSubject('siteA'), job(slot, { schedule: 'consistent', consistency: 'vm' }), slotJobIdFor(vmId, 'consistent', slot));
    const s = await waitFor((x) => x.some((y) => y.origin === `schedule:consistent@${slot}`), 'vm-consistent slot');
    const snap = s.find((y) => y.origin === `schedule:consistent@${slot}`);
    assert.equal(snap?.consistency, 'crash');
    assert.match(snap?.consistencyNote ?? '', /no hypervisor adapter/);
  });
});
