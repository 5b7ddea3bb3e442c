/*
 * npm run bench:wan — replication throughput over a WAN round trip (a TCP delay proxy on
 * loopback: this kernel has no netem). A pull flows server → client, so its speed over a long
 * round trip is bounded by the HTTP/2 window the client grants: one 64 KiB window per round
 * trip would be ~1.3 MB/s at 50 ms. Peer in the same run: the same bytes as one plain TCP
 * stream through the same proxy (what the link itself allows). Prints a table; writes
 * loadtest/reports/bench-wan-*.json. RTT_MS (default 50) and MIB (default 48) change the run.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, startDelayProxy, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { writeReport } from './report.js';

const REPO = join(__dirname, '..', '..', '..');
const MiB = 1024 * 1024;
const RTT_MS = Number(process.env['RTT_MS'] ?? 50);
const SIZE = Number(process.env['MIB'] ?? 48) * MiB;

/** Seconds to send `data` as one TCP stream through a delay proxy, checked by hash at the far end. */
async function plainTcpSeconds(data: Buffer): Promise<number> {
  const want = createHash('sha256').update(data).digest('hex');
  let received: Promise<string> | undefined;
  const sink = createServer((s) => {
    const h = createHash('sha256');
    received = new Promise((resolve) => {
      s.on('data', (d: Buffer) => h.update(d));
      s.on('end', () => {
        resolve(h.digest('hex'));
        s.end();
      });
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const proxy = await startDelayProxy({ host: '127.0.0.1', port: (sink.address() as AddressInfo).port }, RTT_MS / 2);
  const [host, port] = proxy.address.split(':');
  const t0 = performance.now();
  const sock = connect(Number(port), host ?? '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.on('close', () => resolve());
    sock.end(data);
    sock.resume();
  });
  const seconds = (performance.now() - t0) / 1000;
  const got = await received;
  await proxy.close();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
  if (got !== want) throw new Error('plain TCP copy arrived different');
  return seconds;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-wan-'));
  const nodes: NodeProcess[] = [];
  try {
    const certs = join(work, 'certs');
    execFileSync(join(REPO, 'deploy', 'mint-certs.sh'), [certs, 'siteA', 'siteB'], { stdio: 'ignore' });
    const a = await startNodeProcess({
      dataDir: join(work, 'a'),
      extraArgs: [
        '--site',
        'siteA',
        '--replication-listen',
        '127.0.0.1:0',
        '--tls-cert',
        join(certs, 'siteA.crt'),
        '--tls-key',
        join(certs, 'siteA.key'),
        '--tls-ca',
        join(certs, 'ca.crt'),
      ],
    });
    nodes.push(a);
    const b = await startNodeProcess({ dataDir: join(work, 'b'), extraArgs: ['--site', 'siteB'] });
    nodes.push(b);
    const [host, port] = (a.replicationAddress ?? '').split(':');
    const proxy = await startDelayProxy({ host: host ?? '127.0.0.1', port: Number(port) }, RTT_MS / 2);
    await cliJson(a.address, ['site', 'add', 'siteB', '--identity', 'siteB']);
    await cliJson(b.address, ['site', 'add', 'siteA', '--replication', proxy.address, '--identity', 'siteA']);

    // Incompressible, so the wire carries every byte and the window is what limits.
    const data = randomBytes(SIZE);
    const file = join(work, 'data.bin');
    writeFileSync(file, data);
    await cliJson(a.address, ['vm', 'create', 'wan', '--disk', `${Math.ceil((SIZE * 1.25) / MiB)}M`]);
    await cliJson(a.address, ['disk', 'write', 'wan', '0', file]);
    await cliJson(a.address, ['snapshot', 'create', 'wan', '--label', 's1']);
    const r = await cliJson<{ bytesReceived: number; seconds: number }>(b.address, [
      'replicate',
      'wan@s1',
      '--from',
      'siteA',
      '--to',
      'siteB',
      '--certs',
      certs,
    ]);
    if (proxy.stats.down < r.bytesReceived) throw new Error('the replication did not go through the delay proxy');
    await proxy.close();
    const tcpSeconds = await plainTcpSeconds(data);

    const vmferryMBps = r.bytesReceived / r.seconds / 1e6;
    const tcpMBps = SIZE / tcpSeconds / 1e6;
    const oneWindowMBps = (64 * 1024) / (RTT_MS / 1000) / 1e6;
    const rows: [string, string][] = [
      ['round trip (ms)', String(RTT_MS)],
      ['payload (MiB, incompressible)', (SIZE / MiB).toFixed(0)],
      ['vmferry replicate (MB/s)', vmferryMBps.toFixed(1)],
      ['plain TCP through the same proxy (MB/s)', tcpMBps.toFixed(1)],
      ['one 64 KiB window per round trip (MB/s)', oneWindowMBps.toFixed(1)],
      ['vmferry / plain TCP', (vmferryMBps / tcpMBps).toFixed(2)],
      ['vmferry / one window', (vmferryMBps / oneWindowMBps).toFixed(1)],
    ];
    console.log(`\n${'measure'.padEnd(42)}  result`);
    for (const [k, v] of rows) console.log(`${k.padEnd(42)}  ${v}`);
    const out = writeReport('bench-wan', { node: process.version, rttMs: RTT_MS, bytes: SIZE, vmferryMBps, tcpMBps, oneWindowMBps });
    console.log(`report: ${out}`);
  } finally {
    for (const n of nodes) await n.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
