/*
 * File-level restore at the DR site: a guest disk replicated from site A to site B (two real
 * node processes, mTLS) is browsed and copied out at B the same way as at A, byte for byte,
 * and while A is stopped (B reads only its own store).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { cliJson, mintCerts, pairSites, startSite, type Site } from '@vmferry/testkit';
import { buildMbrDisk, makeGuestTree, treeFacts } from './files-images.js';

interface LsJson {
  entries: { name: string; type: string; mode: number; size: number; mtimeMs: number }[];
}

describe('vmferry files on a replica at the DR site', () => {
  let dir = '';
  let certs = '';
  let tree = '';
  let a: Site | undefined;
  let b: Site | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-files-replica-'));
    certs = join(dir, 'certs');
    tree = join(dir, 'tree');
    makeGuestTree(tree);
    const disk = buildMbrDisk(join(dir, 'work'), tree, 96);
    mintCerts(certs, ['siteA', 'siteB']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    await pairSites(a, b);
    await cliJson(a.api, ['vm', 'import', 'web', disk.image]);
    await cliJson(a.api, ['snapshot', 'create', 'web', '--label', 'nightly']);
    await cliJson(b.api, ['replicate', 'web@nightly', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    mkdirSync(join(dir, 'out'));
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ls at B lists what ls at A lists', async () => {
    for (const path of ['/etc', '/usr/share/doc', '/var/log']) {
      const atA = await cliJson<LsJson>(a?.api ?? '', ['files', 'ls', 'web@nightly', path]);
      const atB = await cliJson<LsJson>(b?.api ?? '', ['files', 'ls', 'web@nightly', path]);
      assert.ok(atB.entries.length > 0);
      assert.deepEqual(atB.entries, atA.entries, path);
    }
  });

  test('with site A stopped, get at B restores /etc and /usr as in the source tree', async () => {
    await a?.proc.stop();
    for (const sub of ['etc', 'usr']) {
      await cliJson(b?.api ?? '', ['files', 'get', 'web@nightly', `/${sub}`, join(dir, 'out', sub)]);
      assert.deepEqual(treeFacts(join(dir, 'out', sub)), treeFacts(join(tree, sub)), `/${sub}`);
    }
    const f = await cliJson<{ matches: { path: string }[] }>(b?.api ?? '', ['files', 'find', 'web@nightly', 'libbig.so*']);
    assert.deepEqual(f.matches.map((m) => m.path).sort(), ['/usr/lib/x86_64-linux-gnu/libbig.so', '/usr/lib/x86_64-linux-gnu/libbig.so.1']);
    const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
    assert.equal(sha(join(dir, 'out', 'usr', 'lib', 'x86_64-linux-gnu', 'libbig.so.1')), sha(join(tree, 'usr', 'lib', 'x86_64-linux-gnu', 'libbig.so.1')));
  });
});
