/** Three sites: cascade A→B→C, fan-out A→{B,C}, failback B→A, and retention safety of the pair base. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, exportSha, mintCerts, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';

const MiB = 1024 * 1024;

interface ReplicateResult {
  readonly target: string;
  readonly bytesReceived: number;
  readonly snapshot: { readonly id: string; readonly origin: string };
}
interface VmJson {
  readonly id: string;
  readonly name: string;
  readonly replicaOf: string;
}
interface SnapJson {
  readonly id: string;
  readonly label: string;
  readonly origin: string;
}

describe('replication topologies', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  let c: Site;
  const replicate = <T = ReplicateResult>(via: Site, ref: string, from: string, to: string): Promise<T> =>
    cliJson<T>(via.api, ['replicate', ref, '--from', from, '--to', to, '--certs', certs]);
  const vm = async (site: Site, name: string): Promise<VmJson | undefined> => (await cliJson<VmJson[]>(site.api, ['vm', 'list'])).find((v) => v.name === name);
  const makeVm = async (name: string, seed: string): Promise<void> => {
    await cliJson(a.api, ['vm', 'create', name, '--disk', '16M']);
    await writeDisk(a.api, name, 0, seededBytes(seed, 4 * MiB));
    await cliJson(a.api, ['snapshot', 'create', name, '--label', 's1']);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-topologies-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB', 'siteC']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    c = await startSite('siteC', join(dir, 'c'), certs);
    // A: allows B and C; knows where B's endpoint is (for failback).
    await cliJson(a.api, ['site', 'add', 'siteB', '--replication', b.repl, '--identity', 'siteB']);
    await cliJson(a.api, ['site', 'add', 'siteC', '--identity', 'siteC']);
    // B: pulls from A; allows A and C; knows C's node (fan-out targets are resolved at --node).
    await cliJson(b.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    await cliJson(b.api, ['site', 'add', 'siteC', '--identity', 'siteC', '--node-address', c.api]);
    // C: pulls from A and from B.
    await cliJson(c.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    await cliJson(c.api, ['site', 'add', 'siteB', '--replication', b.repl, '--identity', 'siteB']);
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    await c?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('cascade A→B→C: C pulls from B’s replica', async () => {
    await makeVm('casc', 'topo-cascade');
    await replicate(b, 'casc@s1', 'siteA', 'siteB');
    const r = await replicate(c, 'casc@s1', 'siteB', 'siteC');
    assert.ok(r.bytesReceived > 4 * MiB);
    const snapA = (await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'casc']))[0];
    assert.equal(r.snapshot.id, snapA?.id);
    assert.equal(r.snapshot.origin, `replica:siteA/${snapA?.id}`, 'the origin names the site the snapshot was taken at');
    const atC = await vm(c, 'casc');
    assert.equal(atC?.id, (await vm(a, 'casc'))?.id);
    assert.equal(atC?.replicaOf, 'siteB');
    assert.equal(await exportSha(c.api, 'casc@s1'), await exportSha(a.api, 'casc@s1'));
  });

  test('fan-out: one command replicates to siteB and siteC', async () => {
    await makeVm('fan', 'topo-fanout');
    const results = await replicate<ReplicateResult[]>(b, 'fan@s1', 'siteA', 'siteB,siteC');
    assert.ok(Array.isArray(results));
    assert.deepEqual(results.map((x) => x.target).sort(), ['siteB', 'siteC']);
    for (const x of results) assert.ok(x.bytesReceived > 4 * MiB, `${x.target} moved ${x.bytesReceived}`);
    const shaA = await exportSha(a.api, 'fan@s1');
    assert.equal(await exportSha(b.api, 'fan@s1'), shaA);
    assert.equal(await exportSha(c.api, 'fan@s1'), shaA);
    assert.equal((await vm(c, 'fan'))?.replicaOf, 'siteA');
  });

  test('failback: A pulls from B a snapshot it already holds: 0 bytes, idempotent, A’s VM stays local', async () => {
    const before = await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'casc']);
    const r = await replicate(a, 'casc@s1', 'siteB', 'siteA');
    assert.equal(r.bytesReceived, 0);
    const afterList = await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'casc']);
    assert.deepEqual(afterList, before);
    assert.equal((await vm(a, 'casc'))?.replicaOf, '');
    // Still writable at A.
    await writeDisk(a.api, 'casc', 0, Buffer.alloc(64 * 1024, 1));
  });

  test('retention safety: the pair’s newest common snapshot cannot be deleted on either side until a newer one is replicated', async () => {
    await makeVm('ret', 'topo-retention');
    await writeDisk(a.api, 'ret', 0, seededBytes('topo-retention-2', 1 * MiB));
    await cliJson(a.api, ['snapshot', 'create', 'ret', '--label', 's2']);
    await replicate(b, 'ret@s2', 'siteA', 'siteB');

    const delA = await runCli(a.api, ['snapshot', 'delete', 'ret@s2']);
    assert.notEqual(delA.code, 0);
    assert.match(delA.stderr, /FAILED_PRECONDITION/);
    assert.match(delA.stderr, /siteB/);
    const delB = await runCli(b.api, ['snapshot', 'delete', 'ret@s2']);
    assert.notEqual(delB.code, 0);
    assert.match(delB.stderr, /FAILED_PRECONDITION/);
    // A snapshot that is not the base can go.
    assert.equal((await runCli(a.api, ['snapshot', 'delete', 'ret@s1'])).code, 0);

    await writeDisk(a.api, 'ret', 0, seededBytes('topo-retention-3', 1 * MiB), 8 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'ret', '--label', 's3']);
    const r = await replicate(b, 'ret@s3', 'siteA', 'siteB');
    assert.ok(r.bytesReceived < 3 * MiB);
    const delA2 = await runCli(a.api, ['snapshot', 'delete', 'ret@s2']);
    assert.equal(delA2.code, 0, delA2.stderr);
    const delB2 = await runCli(b.api, ['snapshot', 'delete', 'ret@s2']);
    assert.equal(delB2.code, 0, delB2.stderr);
    const delB3 = await runCli(b.api, ['snapshot', 'delete', 'ret@s3']);
    assert.notEqual(delB3.code, 0, 'the replica’s new newest is protected');
    const delA3 = await runCli(a.api, ['snapshot', 'delete', 'ret@s3']);
    assert.notEqual(delA3.code, 0, 'the new base is protected at the source');
    assert.match(delA3.stderr, /siteB/);
    assert.equal(await exportSha(b.api, 'ret@s3'), await exportSha(a.api, 'ret@s3'));
  });
});
