/**
 * Certificate failures are named, both ways, with real certificates over real sockets: our
 * certificate refused by the source (another CA, expired, not yet valid), the source's
 * refused by us (another CA, expired, not yet valid, another identity), and a site not on the
 * source's allow-list. Each says which, instead of "cannot reach … (UNAVAILABLE)".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENTS_STREAM, eventSubject, openCoordination, publishJob, replicateJobSubject, type VmferryEvent } from '@vmferry/nats';
import { cliJson, mintCerts, mintCertWithDates, runCli, startNatsServer, startSite, type Site } from '@vmferry/testkit';
import { startReplicatorService } from '../src/index.js';

const PAST = ['20200101000000Z', '20210101000000Z'] as const;
const FUTURE = ['20400101000000Z', '20410101000000Z'] as const;

describe('certificate failures are named', () => {
  let dir: string;
  let certs: string;
  const sites: Site[] = [];
  let a: Site; // the source, good certificate; allows siteB only
  let b: Site; // the target
  let c: Site; // a target with a good certificate, not on A's allow-list

  /** A folder with the shared CA (copied) and certificates minted into it by `mint`. */
  const sameCa = (name: string, mint: (d: string) => void): string => {
    const d = join(dir, name);
    mkdirSync(d);
    copyFileSync(join(certs, 'ca.crt'), join(d, 'ca.crt'));
    copyFileSync(join(certs, 'ca.key'), join(d, 'ca.key'));
    mint(d);
    return d;
  };
  const replicateFromA = (site: Site, from: string, tls: { cert: string; key: string; ca: string }) =>
    runCli(site.api, ['replicate', 'vm1@s1', '--from', from, '--to', site.name, '--tls-cert', tls.cert, '--tls-key', tls.key, '--tls-ca', tls.ca]);
  const good = (d: string, site = 'siteB', ca = join(certs, 'ca.crt')) => ({ cert: join(d, `${site}.crt`), key: join(d, `${site}.key`), ca });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-certerr-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB', 'siteC']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    c = await startSite('siteC', join(dir, 'c'), certs);
    sites.push(a, b, c);
    await cliJson(a.api, ['site', 'add', 'siteB', '--identity', 'siteB']);
    for (const s of [b, c]) await cliJson(s.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    await cliJson(a.api, ['vm', 'create', 'vm1', '--disk', '1M']);
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's1']);
  });

  after(async () => {
    for (const s of sites) await s.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('our certificate refused by the source: another CA, expired, not yet valid', async () => {
    const rogue = join(dir, 'rogue');
    mintCerts(rogue, ['siteB']);
    const expired = sameCa('b-expired', (d) => mintCertWithDates(d, 'siteB', ...PAST));
    const future = sameCa('b-future', (d) => mintCertWithDates(d, 'siteB', ...FUTURE));
    for (const [tls, re] of [
      [good(rogue), /site siteA refused the TLS handshake: site siteB's certificate .* is not signed by the CA in .* \(it comes from another CA\)/],
      [good(expired), /site siteA refused the TLS handshake: site siteB's certificate .* expired on Jan +1 00:00:00 2021 GMT/],
      [good(future), /site siteA refused the TLS handshake: site siteB's certificate .* is not valid until Jan +1 00:00:00 2040 GMT/],
    ] as const) {
      const r = await replicateFromA(b, 'siteA', tls);
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /cannot reach/);
    }
    assert.deepEqual(await cliJson<unknown[]>(b.api, ['vm', 'list']), []);
  });

  test("the source's certificate refused by us: another CA, expired, not yet valid, another identity", async () => {
    const rogue = join(dir, 'rogue-ca');
    mintCerts(rogue, ['x']);
    // Sources whose certificates are bad, each registered at B under its own site name.
    const expired = sameCa('a-expired', (d) => mintCertWithDates(d, 'siteA', ...PAST));
    const future = sameCa('a-future', (d) => mintCertWithDates(d, 'siteA', ...FUTURE));
    const aExpired = await startSite('siteA', join(dir, 'ax'), expired);
    const aFuture = await startSite('siteA', join(dir, 'af'), future);
    sites.push(aExpired, aFuture);
    await cliJson(b.api, ['site', 'add', 'oldA', '--replication', aExpired.repl, '--identity', 'siteA']);
    await cliJson(b.api, ['site', 'add', 'newA', '--replication', aFuture.repl, '--identity', 'siteA']);
    await cliJson(b.api, ['site', 'add', 'wrongA', '--replication', a.repl, '--identity', 'siteC']);
    for (const [from, tls, re] of [
      ['siteA', good(certs, 'siteB', join(rogue, 'ca.crt')), /site siteA's certificate is not signed by the CA siteB trusts \(.*ca\.crt\)/],
      ['oldA', good(certs), /site oldA's certificate has expired \(refused by siteB\)/],
      ['newA', good(certs), /site newA's certificate is not valid yet \(refused by siteB\)/],
      ['wrongA', good(certs), /site wrongA's certificate is for DNS:siteA, not for identity 'siteC' recorded here/],
    ] as const) {
      const r = await replicateFromA(b, from, tls);
      assert.equal(r.code, 1, from);
      assert.match(r.stderr, re, from);
    }
    // `replicate plan` says the same (one case: each CLI run costs a process start).
    const p = await runCli(b.api, ['replicate', 'plan', 'vm1@s1', '--from', 'oldA', '--to', 'siteB', '--certs', certs]);
    assert.equal(p.code, 1);
    assert.match(p.stderr, /site oldA's certificate has expired \(refused by siteB\)/);
    assert.deepEqual(await cliJson<unknown[]>(b.api, ['vm', 'list']), []);
  });

  test('a replication job refused for a certificate is dead-lettered at once, the certificate named', async () => {
    const expired = sameCa('b-expired-job', (d) => mintCertWithDates(d, 'siteB', ...PAST));
    const nats = await startNatsServer();
    const c0 = await openCoordination(nats.url, 'cert-errors-test');
    const svc = await startReplicatorService({ natsUrl: nats.url, site: 'siteB', nodeAddress: b.api, tls: good(expired) });
    try {
      const vm = await cliJson<{ id: string }>(a.api, ['vm', 'show', 'vm1']);
      const snap = await cliJson<{ id: string }>(a.api, ['snapshot', 'show', 'vm1@s1']);
      const job = { kind: 'replicate', vmId: vm.id, vmName: 'vm1', snapshotId: snap.id, sourceSite: 'siteA', targetSite: 'siteB' };
      await publishJob(c0, replicateJobSubject('siteB'), job, `cert-job-${snap.id}`);
      let event: VmferryEvent | undefined;
      for (const deadline = Date.now() + 15_000; !event;) {
        assert.ok(Date.now() < deadline, 'no job.dead-lettered event within 15 s');
        const m = await c0.jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject('job.dead-lettered') }).catch(() => null);
        event = m?.json<VmferryEvent>();
        if (!event) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(event['tries'], 1, 'a certificate problem is not retried');
      assert.equal(event['code'], 'permission-denied');
      assert.match(String(event['error']), /site siteA refused the TLS handshake: site siteB's certificate .* expired on/);
    } finally {
      await svc.stop();
      await c0.close();
      await nats.stop();
    }
  });

  test('a site not on the allow-list is told so, with the command that fixes it', async () => {
    const r = await replicateFromA(c, 'siteA', good(certs, 'siteC'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /site siteA does not allow site siteC: .*PERMISSION_DENIED.*On site siteA: vmferry site add siteC --identity siteC/);
  });
});
