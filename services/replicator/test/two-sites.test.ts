/** Two real sites (storage node processes, mTLS): full, incremental, idempotent and cross-VM replication. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, exportSha, mintCerts, pairSites, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';

const MiB = 1024 * 1024;

interface ReplicateResult {
  readonly target: string;
  readonly snapshot: { readonly id: string; readonly vmId: string; readonly origin: string; readonly label: string };
  readonly vmName: string;
  readonly bytesReceived: number;
  readonly chunksReceived: number;
  readonly nodesReceived: number;
  readonly chunksSkipped: number;
  readonly baseRecordedAtSource: boolean;
}
interface PlanResult {
  readonly missingChunks: number;
  readonly missingBytes: number;
  readonly presentChunks: number;
  readonly treeNodes: number;
  readonly treeNodeBytes: number;
  readonly totalBytes: number;
}
interface VmJson {
  readonly id: string;
  readonly name: string;
  readonly replicaOf: string;
  readonly homeSite: string;
}
interface SnapJson {
  readonly id: string;
  readonly label: string;
  readonly origin: string;
}

describe('replication between two sites', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  let firstRun: ReplicateResult;
  const replicate = (ref: string): Promise<ReplicateResult> =>
    cliJson<ReplicateResult>(b.api, ['replicate', ref, '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
  const plan = (ref: string): Promise<PlanResult> =>
    cliJson<PlanResult>(b.api, ['replicate', 'plan', ref, '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
  // 24 MiB incompressible + 8 MiB compressible text: the VM's base image.
  const base = seededBytes('two-sites-base', 24 * MiB);
  const text = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `line ${i} of a compressible log ${(i * 7919) % 10007}\n`).join('')).subarray(0, 4 * MiB);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-two-sites-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    await pairSites(a, b);
    await cliJson(a.api, ['vm', 'create', 'vm1', '--disk', '64M']);
    await writeDisk(a.api, 'vm1', 0, base);
    await writeDisk(a.api, 'vm1', 0, text, 32 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's1']);
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('plan, then a full replication: moves what the plan said; the export at B equals the one at A', async () => {
    const p = await plan('vm1@s1');
    assert.equal(p.presentChunks, 0);
    assert.ok(p.missingBytes > 24 * MiB, `missingBytes ${p.missingBytes}`);
    const r = await replicate('vm1@s1');
    firstRun = r;
    assert.equal(r.target, 'siteB');
    assert.equal(r.vmName, 'vm1');
    assert.equal(r.snapshot.label, 's1');
    assert.equal(r.chunksSkipped, 0);
    assert.equal(r.chunksReceived, p.missingChunks);
    assert.equal(r.nodesReceived, p.treeNodes);
    assert.ok(Math.abs(r.bytesReceived - p.totalBytes) <= 0.1 * r.bytesReceived, `plan ${p.totalBytes} vs moved ${r.bytesReceived}`);
    assert.ok(Math.abs(r.bytesReceived - p.treeNodeBytes - p.missingBytes) <= 0.1 * p.missingBytes);
    assert.ok(r.baseRecordedAtSource);
    assert.equal(await exportSha(b.api, 'vm1@s1'), await exportSha(a.api, 'vm1@s1'));

    const [vmA] = await cliJson<VmJson[]>(a.api, ['vm', 'list']);
    const vmsB = await cliJson<VmJson[]>(b.api, ['vm', 'list']);
    assert.equal(vmsB.length, 1);
    assert.equal(vmsB[0]?.id, vmA?.id, 'the replica keeps the source VM id');
    assert.equal(vmsB[0]?.name, 'vm1');
    assert.equal(vmsB[0]?.replicaOf, 'siteA');
    const snapsA = await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'vm1']);
    const snapsB = await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'vm1']);
    assert.deepEqual(
      snapsB.map((s) => s.origin),
      snapsA.map((s) => `replica:siteA/${s.id}`),
    );
  });

  test('incremental: 2 MiB changed at A moves about 2 MiB and skips the rest', async () => {
    assert.ok(firstRun, 'needs the full replication');
    await writeDisk(a.api, 'vm1', 0, seededBytes('two-sites-delta', 2 * MiB), 10 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's2']);
    const p = await plan('vm1@s2');
    const r = await replicate('vm1@s2');
    assert.ok(r.bytesReceived < 3 * 2 * MiB, `moved ${r.bytesReceived}`);
    assert.ok(r.bytesReceived < firstRun.bytesReceived / 5, `moved ${r.bytesReceived} vs ${firstRun.bytesReceived} the first time`);
    assert.ok(r.bytesReceived >= 2 * MiB, 'the changed (incompressible) data did move');
    assert.ok(r.chunksSkipped > 0);
    assert.equal(r.chunksReceived, 32, '2 MiB of 64 KiB blocks');
    assert.ok(Math.abs(r.bytesReceived - p.totalBytes) <= 0.1 * r.bytesReceived, `plan ${p.totalBytes} vs moved ${r.bytesReceived}`);
    assert.equal(await exportSha(b.api, 'vm1@s2'), await exportSha(a.api, 'vm1@s2'));
    // The older snapshot is still intact at B.
    assert.equal(await exportSha(b.api, 'vm1@s1'), await exportSha(a.api, 'vm1@s1'));
  });

  test('re-replicating a snapshot the target holds moves 0 bytes, and VM alone means the newest', async () => {
    const p = await plan('vm1@s2');
    assert.equal(p.totalBytes, 0);
    assert.equal(p.missingChunks, 0);
    const again = await replicate('vm1@s2');
    assert.equal(again.bytesReceived, 0);
    assert.equal(again.chunksReceived, 0);
    const latest = await replicate('vm1');
    assert.equal(latest.snapshot.label, 's2');
    assert.equal(latest.bytesReceived, 0);
    assert.equal((await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'vm1'])).length, 2);
  });

  test('cross-VM dedup: a second VM with mostly the same data moves only its differences', async () => {
    await cliJson(a.api, ['vm', 'create', 'vm2', '--disk', '64M']);
    await writeDisk(a.api, 'vm2', 0, base);
    await writeDisk(a.api, 'vm2', 0, text, 32 * MiB);
    await writeDisk(a.api, 'vm2', 0, seededBytes('vm2-own', 1 * MiB), 48 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'vm2', '--label', 'v1']);
    const p = await plan('vm2@v1');
    assert.ok(p.presentChunks > 400, `present ${p.presentChunks}`);
    const r = await replicate('vm2@v1');
    assert.ok(r.bytesReceived < 3 * MiB, `moved ${r.bytesReceived}`);
    assert.ok(r.bytesReceived >= 1 * MiB);
    assert.ok(r.chunksSkipped > 400, `skipped ${r.chunksSkipped}`);
    assert.equal(await exportSha(b.api, 'vm2@v1'), await exportSha(a.api, 'vm2@v1'));
  });

  test('replica VMs are read-only', async () => {
    const w = await runCli(b.api, ['disk', 'write', 'vm1', '0', join(certs, 'ca.crt')]);
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /FAILED_PRECONDITION/);
    const s = await runCli(b.api, ['snapshot', 'create', 'vm1']);
    assert.notEqual(s.code, 0);
    assert.match(s.stderr, /FAILED_PRECONDITION/);
    assert.equal((await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'vm1'])).length, 2, 'no snapshot was added');
    assert.equal(await exportSha(b.api, 'vm1@s2'), await exportSha(a.api, 'vm1@s2'), 'the replica is unchanged');
  });

  test('a replica snapshot can be cloned at B; the clone exports hash-equal and is writable', async () => {
    await cliJson(b.api, ['clone', 'vm1@s1', 'vm1-clone']);
    const shaA = await exportSha(a.api, 'vm1@s1');
    assert.equal(await exportSha(b.api, 'vm1-clone'), shaA);
    await writeDisk(b.api, 'vm1-clone', 0, Buffer.alloc(64 * 1024, 7));
    assert.notEqual(await exportSha(b.api, 'vm1-clone'), shaA);
    assert.equal(await exportSha(b.api, 'vm1@s1'), shaA, 'writing the clone leaves the replica alone');
  });
});
