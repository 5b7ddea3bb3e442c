/*
 * Two sites as separate processes in network namespaces joined by a management and a
 * replication veth link, the replication link shaped with tc tbf. Proves on real interfaces
 * that the replicator's pulls leave through the address it binds (and so the replication
 * NIC), that the link's throttle holds, and that the replica is hash-equal to the source.
 * Needs root (CI runs as root); it fails, never skips, when namespaces cannot be made.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, createTwoSiteNet, startNodeProcess, type NodeProcess, type TwoSiteNet } from '@vmferry/testkit';

const REPO = join(__dirname, '..', '..', '..');
const MiB = 1024 * 1024;

interface ReplicateResult {
  bytesReceived: number;
  seconds: number;
  chunksReceived: number;
}

describe('replication between two sites in network namespaces', () => {
  let net: TwoSiteNet;
  let work: string;
  let a: NodeProcess;
  let b: NodeProcess;
  const certs = (): string => join(work, 'certs');
  const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

  before(async () => {
    net = createTwoSiteNet();
    work = mkdtempSync(join(tmpdir(), 'vmferry-netns-'));
    execFileSync(join(REPO, 'deploy', 'mint-certs.sh'), [certs(), 'siteA', 'siteB'], { stdio: 'ignore' });
    // The node APIs listen beyond loopback (the management link): a token is required there.
    const tokenFile = join(work, 'api-token');
    writeFileSync(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
    process.env['VMFERRY_NODE_TOKEN_FILE'] = tokenFile; // the CLI runs below inherit it
    const api = ['--api-token-file', tokenFile];
    const tls = (site: string): string[] => [
      '--tls-cert',
      join(certs(), `${site}.crt`),
      '--tls-key',
      join(certs(), `${site}.key`),
      '--tls-ca',
      join(certs(), 'ca.crt'),
    ];
    a = await startNodeProcess({
      dataDir: join(work, 'a'),
      listen: `${net.addr.aMgmt}:7400`,
      wrap: net.inA,
      extraArgs: ['--site', 'siteA', '--replication-listen', `${net.addr.aService}:7600`, ...tls('siteA'), ...api],
    });
    b = await startNodeProcess({ dataDir: join(work, 'b'), listen: `${net.addr.bMgmt}:7400`, wrap: net.inB, extraArgs: ['--site', 'siteB', ...api] });
    await cliJson(a.address, ['site', 'add', 'siteB', '--identity', 'siteB'], net.inA);
    await cliJson(b.address, ['site', 'add', 'siteA', '--replication', `${net.addr.aService}:7600`, '--identity', 'siteA'], net.inB);
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    net?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function vmWithRandomData(name: string, bytes: number): Promise<string> {
    const file = join(work, `${name}.bin`);
    writeFileSync(file, randomBytes(bytes));
    await cliJson(a.address, ['vm', 'create', name, '--disk', `${Math.ceil(bytes / MiB) + 1}M`], net.inA);
    await cliJson(a.address, ['disk', 'write', name, '0', file], net.inA);
    await cliJson(a.address, ['snapshot', 'create', name, '--label', 'base'], net.inA);
    return file;
  }

  function replicate(name: string, extra: string[]): Promise<ReplicateResult> {
    return cliJson<ReplicateResult>(b.address, ['replicate', `${name}@base`, '--from', 'siteA', '--to', 'siteB', '--certs', certs(), ...extra], net.inB);
  }

  test('pulls bound to the replication address cross the replication link only, within its tc rate, hash-equal', async () => {
    net.shapeReplication('80mbit');
    await vmWithRandomData('vm1', 24 * MiB);
    const repl0 = net.rxBytesB(net.replB);
    const mgmt0 = net.rxBytesB(net.mgmtB);
    const r = await replicate('vm1', ['--bind', net.addr.bRepl]);
    const replBytes = net.rxBytesB(net.replB) - repl0;
    const mgmtBytes = net.rxBytesB(net.mgmtB) - mgmt0;
    assert.ok(r.bytesReceived >= 24 * MiB, `moved ${r.bytesReceived}`);
    assert.ok(replBytes >= r.bytesReceived, `replication link carried ${replBytes} B for ${r.bytesReceived} B of chunks`);
    assert.ok(mgmtBytes < 1 * MiB, `management link carried ${mgmtBytes} B during a bound pull`);
    // 80 Mbit/s = 10 MB/s: 24 MiB cannot arrive in much under 2.5 s on the shaped link.
    assert.ok(r.seconds > (r.bytesReceived / 10e6) * 0.85, `${r.bytesReceived} B in ${r.seconds} s beats the tbf rate`);

    const fa = join(work, 'vm1-a.img');
    const fb = join(work, 'vm1-b.img');
    await cliJson(a.address, ['disk', 'export', 'vm1@base', '0', fa], net.inA);
    await cliJson(b.address, ['disk', 'export', 'vm1@base', '0', fb], net.inB);
    assert.equal(sha(fb), sha(fa));
  });

  test('without binding, the same pull follows the default route over the management link', async () => {
    await vmWithRandomData('vm2', 6 * MiB);
    const repl0 = net.rxBytesB(net.replB);
    const mgmt0 = net.rxBytesB(net.mgmtB);
    const r = await replicate('vm2', []);
    assert.ok(net.rxBytesB(net.mgmtB) - mgmt0 >= r.bytesReceived, 'unbound pull should use the management link');
    assert.ok(net.rxBytesB(net.replB) - repl0 < 1 * MiB, 'unbound pull should not touch the replication link');
  });

  test('the link throttle (token bucket) holds the pull under its rate', async () => {
    await cliJson(b.address, ['link', 'set-rate', 'siteA', '16Mbit'], net.inB);
    try {
      await vmWithRandomData('vm3', 6 * MiB);
      const r = await replicate('vm3', ['--bind', net.addr.bRepl]);
      // 16 Mbit/s = 2 MB/s; a 0.25 s burst is allowed.
      const floor = (r.bytesReceived - 0.25 * 2e6) / 2e6;
      assert.ok(r.seconds >= floor * 0.9, `${r.bytesReceived} B in ${r.seconds} s is faster than 16 Mbit/s`);
    } finally {
      await cliJson(b.address, ['link', 'set-rate', 'siteA', 'unlimited'], net.inB);
    }
  });
});
