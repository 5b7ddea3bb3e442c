/** A lying source and a crashing source: nothing partial or corrupt is ever committed; re-running resumes. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawRecord, recordBytes, type SiteRecord } from '@vmferry/core';
import { cliJson, exportSha, mintCerts, pairSites, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';
import { Decompressor } from 'zstd-napi';
import { connectReplicationSource, connectStorageNode, storageNodeTarget } from '@vmferry/grpc-edge';
import { replicateSnapshot, type Phase, type SourcePort } from '../src/index.js';

const MiB = 1024 * 1024;

interface VmJson {
  readonly name: string;
}
interface ReplicateResult {
  readonly bytesReceived: number;
  readonly chunksSkipped: number;
}
interface PlanResult {
  readonly totalBytes: number;
  readonly missingChunks: number;
}

describe('replication integrity', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  const vms = async (site: Site): Promise<string[]> => (await cliJson<VmJson[]>(site.api, ['vm', 'list'])).map((v) => v.name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-integrity-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    a = await startSite('siteA', join(dir, 'a'), certs);
    b = await startSite('siteB', join(dir, 'b'), certs);
    await pairSites(a, b);
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a source that flips one byte of a data chunk is caught (DATA_LOSS), nothing is committed; the honest source then completes', async () => {
    await cliJson(a.api, ['vm', 'create', 'liar', '--disk', '32M']);
    await writeDisk(a.api, 'liar', 0, seededBytes('integrity-liar', 12 * MiB));
    await writeDisk(a.api, 'liar', 0, Buffer.from('compressible '.repeat(400_000)), 16 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'liar', '--label', 's1']);

    const site: SiteRecord = { name: 'siteA', replicationAddress: a.repl, identity: 'siteA', nodeAddress: '', bindAddress: '', rate: '' };
    const tls = { cert: join(certs, 'siteB.crt'), key: join(certs, 'siteB.key'), ca: join(certs, 'ca.crt') };
    const src = connectReplicationSource(site, tls);
    const node = connectStorageNode(b.api);
    try {
      const honest: SourcePort = src;
      let phase: Phase = 'metadata';
      let flipped = 0;
      const liar: SourcePort = {
        ...honest,
        async *fetch(ids, signal) {
          for await (const batch of honest.fetch(ids, signal)) {
            if (phase !== 'data' || flipped > 0 || batch.length === 0) {
              yield batch;
              continue;
            }
            const [first, ...rest] = batch;
            if (!first) continue;
            const record = Buffer.from(first.record);
            const at = record.length - 1;
            record[at] = (record[at] ?? 0) ^ 0x01;
            flipped++;
            yield [{ ...first, record }, ...rest];
          }
        },
      };
      await assert.rejects(
        // Stored-form transfer: the target node re-hashes each chunk and answers DATA_LOSS.
        replicateSnapshot({
          source: liar,
          target: storageNodeTarget(node),
          sourceSite: 'siteA',
          ref: 'liar@s1',
          packed: false,
          onProgress: (p) => (phase = p.phase),
        }),
        (e: unknown) => {
          assert.equal((e as { code?: string }).code, 'data-loss', String(e));
          return true;
        },
      );
      assert.equal(flipped, 1, 'the liar did lie');
      assert.deepEqual(await vms(b), [], 'no replica VM after a corrupt transfer');
      const snaps = await runCli(b.api, ['snapshot', 'list', 'liar']);
      assert.notEqual(snaps.code, 0);
      assert.match(snaps.stderr, /NOT_FOUND/);

      phase = 'metadata';
      const ok = await replicateSnapshot({ source: honest, target: storageNodeTarget(node), sourceSite: 'siteA', ref: 'liar@s1' });
      assert.equal(ok.vmName, 'liar');
      assert.ok(ok.baseRecordedAtSource);
    } finally {
      src.close();
      node.close();
    }
    assert.deepEqual(await vms(b), ['liar']);
    assert.equal(await exportSha(b.api, 'liar@s1'), await exportSha(a.api, 'liar@s1'));
  });

  test('a packed transfer whose literal bytes were altered is caught before anything is stored', async () => {
    await cliJson(a.api, ['vm', 'create', 'liar2', '--disk', '32M']);
    await writeDisk(a.api, 'liar2', 0, seededBytes('integrity-liar2', 6 * MiB));
    await cliJson(a.api, ['snapshot', 'create', 'liar2', '--label', 's1']);
    const site: SiteRecord = { name: 'siteA', replicationAddress: a.repl, identity: 'siteA', nodeAddress: '', bindAddress: '', rate: '' };
    const tls = { cert: join(certs, 'siteB.crt'), key: join(certs, 'siteB.key'), ca: join(certs, 'ca.crt') };
    const src = connectReplicationSource(site, tls);
    const node = connectStorageNode(b.api);
    try {
      const honest: SourcePort = src;
      let flipped = 0;
      const liar: SourcePort = {
        ...honest,
        async *fetchPacked(ids, pageSet, signal) {
          for await (const batch of honest.fetchPacked(ids, pageSet, signal)) {
            if (flipped === 0 && batch.literals.length > 1) {
              // Re-send the literals raw with one byte changed: a well-formed lie.
              const raw = recordBytes(batch.literals, (frame) => new Decompressor().decompress(frame));
              assert.ok(raw, 'the honest source sends literals of a known codec');
              const bad = Buffer.from(raw);
              bad[Math.floor(bad.length / 2)] = (bad[Math.floor(bad.length / 2)] ?? 0) ^ 0xff;
              flipped++;
              yield { ...batch, literals: rawRecord(bad) };
            } else yield batch;
          }
        },
      };
      await assert.rejects(replicateSnapshot({ source: liar, target: storageNodeTarget(node), sourceSite: 'siteA', ref: 'liar2@s1' }), (e: unknown) => {
        assert.equal((e as { code?: string }).code, 'data-loss', String(e));
        return true;
      });
      assert.equal(flipped, 1, 'the liar did lie');
      assert.ok(!(await vms(b)).includes('liar2'), 'no replica VM after a corrupt packed transfer');
      const ok = await replicateSnapshot({ source: honest, target: storageNodeTarget(node), sourceSite: 'siteA', ref: 'liar2@s1' });
      assert.ok(ok.packed, 'the honest run travelled packed');
    } finally {
      src.close();
      node.close();
    }
    assert.equal(await exportSha(b.api, 'liar2@s1'), await exportSha(a.api, 'liar2@s1'));
  });

  test('the source crashes mid-transfer: no partial replica; after a restart, re-running resumes and completes', async () => {
    await cliJson(a.api, ['vm', 'create', 'big', '--disk', '96M']);
    await writeDisk(a.api, 'big', 0, seededBytes('integrity-big', 64 * MiB));
    await cliJson(a.api, ['snapshot', 'create', 'big', '--label', 's1']);
    const full = await cliJson<PlanResult>(b.api, ['replicate', 'plan', 'big@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    assert.ok(full.totalBytes > 64 * MiB);
    // 80 Mbit/s = 10 MB/s: about 7 s for everything; the crash comes at 1.5 s.
    await cliJson(b.api, ['link', 'set-rate', 'siteA', '80Mbit']);
    const run = runCli(b.api, ['--json', 'replicate', 'big@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    // Kill the source once a good part (but not all) has arrived: a fixed delay is flaky on a
    // loaded machine, the target's stored bytes are not.
    const before = (await cliJson<{ storedBytes: number }>(b.api, ['stats'])).storedBytes;
    for (let i = 0; i < 100; i++) {
      await sleep(100);
      if ((await cliJson<{ storedBytes: number }>(b.api, ['stats'])).storedBytes - before > 16 * MiB) break;
    }
    await a.proc.kill();
    const failed = await run;
    assert.notEqual(failed.code, 0, `the run whose source crashed fails: ${failed.stdout.slice(-300)}`);
    assert.deepEqual(await vms(b), ['liar', 'liar2'], 'no partial replica VM');
    const snaps = await runCli(b.api, ['snapshot', 'list', 'big']);
    assert.notEqual(snaps.code, 0);

    a = await startSite('siteA', a.dataDir, certs);
    // New replication address (and no throttle: `site add` replaces the record).
    await cliJson(b.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA']);
    const rest = await cliJson<PlanResult>(b.api, ['replicate', 'plan', 'big@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    assert.ok(
      rest.totalBytes < full.totalBytes * 0.95,
      `after the crash ${rest.totalBytes} of ${full.totalBytes} are missing: the first run stored part of it`,
    );
    assert.ok(rest.totalBytes > 0, 'the first run did not finish');
    const r = await cliJson<ReplicateResult>(b.api, ['replicate', 'big@s1', '--from', 'siteA', '--to', 'siteB', '--certs', certs]);
    assert.ok(r.bytesReceived < full.totalBytes, `resumed run moved ${r.bytesReceived} of ${full.totalBytes}`);
    assert.ok(Math.abs(r.bytesReceived - rest.totalBytes) <= 0.1 * rest.totalBytes + 64 * 1024, `moved ${r.bytesReceived}, plan said ${rest.totalBytes}`);
    assert.ok(r.chunksSkipped > 0);
    assert.deepEqual((await vms(b)).sort(), ['big', 'liar', 'liar2']);
    assert.equal(await exportSha(b.api, 'big@s1'), await exportSha(a.api, 'big@s1'));
  });
});
