/**
 * A replica names its source by the site record the target pulled through, never by what the
 * source says about itself: one peer cannot pass its snapshots off as another site's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, exportSha, mintCerts, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';

const MiB = 1024 * 1024;

interface VmJson {
  readonly name: string;
  readonly replicaOf: string;
}

describe('the source site recorded on a replica', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  const replicate = (from: string, ref: string): ReturnType<typeof runCli> =>
    runCli(b.api, ['--json', 'replicate', ref, '--from', from, '--to', 'siteB', '--certs', certs]);
  const replicaOf = async (name: string): Promise<string | undefined> =>
    (await cliJson<VmJson[]>(b.api, ['vm', 'list'])).find((v) => v.name === name)?.replicaOf;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-source-identity-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    await cliJson(a.api, ['site', 'add', 'siteB', '--identity', 'siteB']);
    // B knows the one endpoint under two site names: the source calls itself siteA either way.
    for (const name of ['primary', 'mirror']) await cliJson(b.api, ['site', 'add', name, '--replication', a.repl, '--identity', 'siteA']);
    await cliJson(a.api, ['vm', 'create', 'vm1', '--disk', '16M']);
    await writeDisk(a.api, 'vm1', 0, seededBytes('source-identity-1', 2 * MiB));
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's1']);
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the replica is recorded as a replica of the site pulled from, as the target names it', async () => {
    const r = await replicate('primary', 'vm1@s1');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await replicaOf('vm1'), 'primary');
    assert.equal(await exportSha(b.api, 'vm1@s1'), await exportSha(a.api, 'vm1@s1'));
  });

  test('another site cannot add snapshots to that replica, whatever it calls itself', async () => {
    await writeDisk(a.api, 'vm1', 0, seededBytes('source-identity-2', MiB));
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's2']);
    const r = await replicate('mirror', 'vm1@s2');
    assert.notEqual(r.code, 0, `the pull from 'mirror' was committed: ${r.stdout}`);
    assert.match(r.stderr, /FAILED_PRECONDITION/);
    assert.match(r.stderr, /primary/);
    assert.match(r.stderr, /mirror/);
    const snaps = await cliJson<{ label: string }[]>(b.api, ['snapshot', 'list', 'vm1']);
    assert.deepEqual(
      snaps.map((s) => s.label),
      ['s1'],
    );
    // The site the replica follows still delivers.
    assert.equal((await replicate('primary', 'vm1@s2')).code, 0);
    assert.equal(await exportSha(b.api, 'vm1@s2'), await exportSha(a.api, 'vm1@s2'));
  });
});
