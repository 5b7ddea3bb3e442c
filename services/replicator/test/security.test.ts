/** The replication endpoint's mTLS and allow-list: who may pull, and that refused pulls commit nothing. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmferryError, type SiteRecord, type VmferryError } from '@vmferry/core';
import { cliJson, exportSha, mintCerts, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';

const MiB = 1024 * 1024;

/*
 * Handshake refusals are checked twice: through the CLI (exits non-zero, commits nothing) and
 * through the replicator's client directly, for the gRPC status (the CLI prints a message
 * naming the certificate problem instead: cert-errors.test.ts checks those).
 */
async function getSnapshotError(site: SiteRecord, tls: { cert: string; key: string; ca: string }): Promise<VmferryError> {
  const { connectReplicationSource } = await import('@vmferry/grpc-edge');
  const client = connectReplicationSource(site, tls);
  try {
    await client.getSnapshot('vm1@s1');
  } catch (e) {
    assert.ok(isVmferryError(e), `a coded error: ${String(e)}`);
    return e;
  } finally {
    client.close();
  }
  throw new Error('the source answered a client it should have refused');
}

interface VmJson {
  readonly name: string;
}

describe('replication security', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  let c: Site;
  const siteA = (): SiteRecord => ({ name: 'siteA', replicationAddress: a.repl, identity: 'siteA', nodeAddress: '', bindAddress: '', rate: '' });
  const vms = async (site: Site): Promise<string[]> => (await cliJson<VmJson[]>(site.api, ['vm', 'list'])).map((v) => v.name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-security-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB', 'siteC']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    c = await startSite('siteC', join(dir, 'c'), certs);
    // A allows only siteB. B and C both know where A is.
    await cliJson(a.api, ['site', 'add', 'siteB', '--identity', 'siteB']);
    for (const s of [b, c]) await cliJson(s.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    await cliJson(a.api, ['vm', 'create', 'vm1', '--disk', '16M']);
    await writeDisk(a.api, 'vm1', 0, seededBytes('security', 4 * MiB));
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's1']);
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    await c?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a site with a valid certificate that is not in the allow-list gets PERMISSION_DENIED', async () => {
    const r = await runCli(c.api, ['replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteC', '--certs', certs]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /PERMISSION_DENIED/);
    assert.match(r.stderr, /siteC/);
    const p = await runCli(c.api, ['replicate', 'plan', 'vm1@s1', '--from', 'siteA', '--to', 'siteC', '--certs', certs]);
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /PERMISSION_DENIED/);
    assert.deepEqual(await vms(c), []);
  });

  test('a client certificate from a different CA is refused in the handshake; nothing is committed', async () => {
    const rogue = join(dir, 'rogue');
    mintCerts(rogue, ['siteB']); // CN=siteB, but signed by another CA
    // Trust the real CA (so the client accepts A), present the rogue certificate.
    const r = await runCli(b.api, [
      'replicate',
      'vm1@s1',
      '--from',
      'siteA',
      '--to',
      'siteB',
      '--tls-cert',
      join(rogue, 'siteB.crt'),
      '--tls-key',
      join(rogue, 'siteB.key'),
      '--tls-ca',
      join(certs, 'ca.crt'),
    ]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /PERMISSION_DENIED/, 'refused in the TLS handshake, before the allow-list');
    assert.deepEqual(await vms(b), []);
    const e = await getSnapshotError(siteA(), { cert: join(rogue, 'siteB.crt'), key: join(rogue, 'siteB.key'), ca: join(certs, 'ca.crt') });
    assert.ok(e.code === 'unavailable' || e.code === 'permission-denied', `code ${e.code}: ${e.message}`);
  });

  test('an expired client certificate (same CA, same identity) is refused; nothing is committed', async () => {
    const expired = join(dir, 'expired');
    mkdirSync(expired);
    copyFileSync(join(certs, 'ca.crt'), join(expired, 'ca.crt'));
    copyFileSync(join(certs, 'ca.key'), join(expired, 'ca.key'));
    mintCerts(expired, ['siteB'], -1); // notAfter = yesterday
    const r = await runCli(b.api, ['replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteB', '--certs', expired]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /PERMISSION_DENIED/);
    assert.deepEqual(await vms(b), []);
    const e = await getSnapshotError(siteA(), { cert: join(expired, 'siteB.crt'), key: join(expired, 'siteB.key'), ca: join(certs, 'ca.crt') });
    assert.ok(e.code === 'unavailable' || e.code === 'permission-denied', `code ${e.code}: ${e.message}`);
  });

  test('a server certificate for another identity is refused by the client', async () => {
    // B believes siteA's endpoint has identity siteC: A's certificate (CN=siteA) does not match.
    await cliJson(b.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteC']);
    try {
      const r = await runCli(b.api, ['replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
      assert.notEqual(r.code, 0);
      assert.deepEqual(await vms(b), []);
      const e = await getSnapshotError(
        { ...siteA(), identity: 'siteC' },
        { cert: join(certs, 'siteB.crt'), key: join(certs, 'siteB.key'), ca: join(certs, 'ca.crt') },
      );
      assert.ok(e.code === 'unavailable' || e.code === 'permission-denied', `code ${e.code}: ${e.message}`);
    } finally {
      await cliJson(b.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    }
  });

  test('control: the allowed site with its valid certificate replicates', async () => {
    const r = await runCli(b.api, ['--json', 'replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await vms(b), ['vm1']);
    assert.equal(await exportSha(b.api, 'vm1@s1'), await exportSha(a.api, 'vm1@s1'));
    // Removing B from A's allow-list revokes it: the endpoint re-reads the registry at least
    // once a second, so within a few seconds a pull is refused (and stays refused).
    await cliJson(a.api, ['site', 'remove', 'siteB']);
    const removedAt = performance.now();
    let again = await runCli(b.api, ['replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    while (again.code === 0 && performance.now() - removedAt < 5000) {
      again = await runCli(b.api, ['replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    }
    assert.notEqual(again.code, 0, 'a removed site is refused within 5 s');
    assert.match(again.stderr, /PERMISSION_DENIED/);
    const later = await runCli(b.api, ['replicate', 'vm1@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    assert.match(later.stderr, /PERMISSION_DENIED/, 'and stays refused');
  });
});
