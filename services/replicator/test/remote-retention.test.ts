/**
 * Remote retention (a replication job's `keep`) prunes replicas only: a job that names a VM
 * local to the target (here: B's own VM, which A holds a replica of) replicates, but never
 * deletes that VM's local snapshots. Real nats-server, two storage node processes, mTLS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventSubject, openCoordination, publishJob, replicateJobSubject, type Coordination, type ReplicateJob, type VmferryEvent } from '@vmferry/nats';
import { cliJson, mintCerts, seededBytes, startNatsServer, startSite, writeDisk, type NatsServer, type Site } from '@vmferry/testkit';

const MiB = 1024 * 1024;

interface SnapJson {
  readonly id: string;
  readonly label: string;
}

describe('remote retention', () => {
  let dir: string;
  let nats: NatsServer;
  let c: Coordination;
  let a: Site;
  let b: Site;
  let replicator: { stop(): Promise<void> } | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-remote-retention-'));
    const certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    nats = await startNatsServer();
    c = await openCoordination(nats.url, 'test');
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    await cliJson(a.api, ['site', 'add', 'siteB', '--replication', b.repl, '--identity', 'siteB']);
    await cliJson(b.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    const { startReplicatorService } = await import('../src/index.js');
    replicator = await startReplicatorService({
      natsUrl: nats.url,
      site: 'siteB',
      nodeAddress: b.api,
      tls: { cert: join(certs, 'siteB.crt'), key: join(certs, 'siteB.key'), ca: join(certs, 'ca.crt') },
    });
  });

  after(async () => {
    await replicator?.stop();
    await c?.close();
    await a?.proc.stop();
    await b?.proc.stop();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Publishes `job` to B, then the same job without keep: jobs of one VM run in order, so the
   * second's replication.done means the first one's retention has run.
   */
  async function runJobs(job: ReplicateJob): Promise<void> {
    const sub = c.nc.subscribe(eventSubject('replication.done'));
    const seen = (async () => {
      let n = 0;
      for await (const m of sub) {
        if ((JSON.parse(m.string()) as VmferryEvent).vmId === job.vmId && ++n === 2) return;
      }
    })();
    const { keep: _keep, ...withoutKeep } = job;
    await publishJob(c, replicateJobSubject('siteB'), job, `test.${job.vmId}.${job.snapshotId}.1`);
    await publishJob(c, replicateJobSubject('siteB'), withoutKeep, `test.${job.vmId}.${job.snapshotId}.2`);
    await seen;
    sub.unsubscribe();
  }

  test('control: a job with keep 1 prunes a replica of its source to its newest snapshot', async () => {
    const vmId = (await cliJson<{ id: string }>(a.api, ['vm', 'create', 'web', '--disk', '16M'])).id;
    for (const label of ['s1', 's2', 's3']) {
      await writeDisk(a.api, 'web', 0, seededBytes(`remote-retention-web-${label}`, MiB));
      await cliJson(a.api, ['snapshot', 'create', 'web', '--label', label]);
      if (label !== 's3') await cliJson(b.api, ['replicate', `web@${label}`, '--from', 'siteA', '--to', 'siteB', '--certs', join(dir, 'certs')]);
    }
    const newest = (await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'web']))[2] as SnapJson;
    await runJobs({ kind: 'replicate', vmId, vmName: 'web', snapshotId: newest.id, sourceSite: 'siteA', targetSite: 'siteB', keep: 1 });
    assert.deepEqual(
      (await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'web'])).map((s) => s.label),
      ['s3'],
    );
  });

  test("a job with keep for a VM that is local at the target leaves the VM's snapshots alone", async () => {
    // B's own VM, three snapshots; A pulls the newest (A holds a replica of it).
    const vmId = (await cliJson<{ id: string }>(b.api, ['vm', 'create', 'home', '--disk', '16M'])).id;
    for (const label of ['s1', 's2', 's3']) {
      await writeDisk(b.api, 'home', 0, seededBytes(`remote-retention-${label}`, MiB));
      await cliJson(b.api, ['snapshot', 'create', 'home', '--label', label]);
    }
    const before = await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'home']);
    const newest = before[before.length - 1] as SnapJson;
    await cliJson(a.api, ['replicate', 'home@s3', '--from', 'siteB', '--to', 'siteA', '--certs', join(dir, 'certs')]);

    // A job addressed to B: "pull home from A, keep 1".
    await runJobs({ kind: 'replicate', vmId, vmName: 'home', snapshotId: newest.id, sourceSite: 'siteA', targetSite: 'siteB', keep: 1 });
    assert.deepEqual(
      (await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'home'])).map((s) => s.label),
      ['s1', 's2', 's3'],
      "B's local snapshots were pruned by a replication job",
    );
  });
});
