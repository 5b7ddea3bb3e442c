/*
 * Replication over a 50 ms round trip (a TCP delay proxy in front of the source's endpoint).
 * Pulls flow server → client with large client windows, so throughput is bounded by the
 * window per round trip, not one 64 KiB window per round trip (~1.3 MB/s at 50 ms).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, startDelayProxy, startNodeProcess, type DelayProxy, type NodeProcess } from '@vmferry/testkit';

const REPO = join(__dirname, '..', '..', '..', '..');
const MiB = 1024 * 1024;
let work: string;
let a: NodeProcess;
let b: NodeProcess;
let proxy: DelayProxy;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'vmferry-latency-'));
  const certs = join(work, 'certs');
  execFileSync(join(REPO, 'deploy', 'mint-certs.sh'), [certs, 'siteA', 'siteB'], { stdio: 'ignore' });
  a = await startNodeProcess({
    dataDir: join(work, 'a'),
    extraArgs: ['--site', 'siteA', '--replication-listen', '127.0.0.1:0', '--tls-cert', join(certs, 'siteA.crt'), '--tls-key', join(certs, 'siteA.key'), '--tls-ca', join(certs, 'ca.crt')],
  });
  b = await startNodeProcess({ dataDir: join(work, 'b'), extraArgs: ['--site', 'siteB'] });
  const [host, port] = (a.replicationAddress ?? '').split(':');
  proxy = await startDelayProxy({ host: host ?? '127.0.0.1', port: Number(port) }, 25);
  await cliJson(a.address, ['site', 'add', 'siteB', '--identity', 'siteB']);
  await cliJson(b.address, ['site', 'add', 'siteA', '--replication', proxy.address, '--identity', 'siteA']);
});

after(async () => {
  await proxy?.close();
  await a?.stop();
  await b?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('a pull over a 50 ms round trip runs far above one 64 KiB window per round trip', async () => {
  const file = join(work, 'data.bin');
  writeFileSync(file, randomBytes(48 * MiB));
  await cliJson(a.address, ['vm', 'create', 'wan', '--disk', '64M']);
  await cliJson(a.address, ['disk', 'write', 'wan', '0', file]);
  await cliJson(a.address, ['snapshot', 'create', 'wan', '--label', 's1']);
  const r = await cliJson<{ bytesReceived: number; seconds: number }>(b.address, [
    'replicate', 'wan@s1', '--from', 'siteA', '--to', 'siteB', '--certs', join(work, 'certs'),
  ]);
  const mbps = r.bytesReceived / r.seconds / 1e6;
  console.log(`# 50 ms RTT: ${(r.bytesReceived / MiB).toFixed(1)} MiB in ${r.seconds.toFixed(2)} s = ${mbps.toFixed(1)} MB/s`);
  assert.ok(proxy.stats.down >= r.bytesReceived, 'the data went through the delay proxy');
  // One 64 KiB window per 50 ms round trip would be 1.3 MB/s; demand well over 5x that.
  assert.ok(mbps > 8, `only ${mbps.toFixed(1)} MB/s over 50 ms RTT`);
});
