/**
 * Telemetry hygiene and the node's metrics, on a real node process: the Prometheus endpoint
 * is on loopback unless told otherwise, nothing is sent to an OTLP collector nobody
 * configured, and the scraped series have unit-suffixed names and bounded labels.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { openCoordination, publishJob, snapshotJobSubject, type SnapshotJob } from '@vmferry/nats';
import { cliJson, freePort, startNatsServer, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { removeDir, tempDir } from './helpers.js';

/** OTEL_* emptied: the node must behave as if none were set (the runner's env may have some). */
const NO_OTEL: NodeJS.ProcessEnv = Object.fromEntries(Object.keys(process.env).flatMap((k) => (k.startsWith('OTEL_') ? [[k, '']] : [])));

const metricsAddress = (node: NodeProcess): string => {
  const m = /prometheus metrics on http:\/\/(\S+)\/metrics/.exec(node.log());
  assert.ok(m?.[1], `no metrics endpoint logged:\n${node.log()}`);
  return m[1];
};

const scrape = async (address: string): Promise<string> => {
  const r = await fetch(`http://${address}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
};

/** The value of the one sample `name{labels…}` whose labels include all of `want`; undefined if none. */
function sample(text: string, name: string, want: Readonly<Record<string, string>>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) if (l[1] !== undefined && l[2] !== undefined) labels[l[1]] = l[2];
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Accepts on HOST:4318 (NodeSDK's default OTLP/HTTP collector) and counts connections. */
async function fakeCollector(host: string): Promise<{ server: Server; connections: () => number } | undefined> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(4318, host, () => resolve(true));
  });
  return ok ? { server, connections: () => n } : undefined;
}

const refused = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ host, port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
    s.once('timeout', () => {
      s.destroy();
      resolve(true);
    });
  });

describe('node telemetry', () => {
  let dir = '';
  let node: NodeProcess | undefined;
  const collectors: { server: Server; connections: () => number }[] = [];

  before(async () => {
    dir = tempDir();
    // localhost may resolve to either family: listen on both (::1 only where the host has it).
    const v4 = await fakeCollector('127.0.0.1');
    assert.ok(v4, 'port 4318 on 127.0.0.1 is taken: cannot watch for stray OTLP exports');
    collectors.push(v4);
    const v6 = await fakeCollector('::1');
    if (v6) collectors.push(v6);
  });

  after(async () => {
    await node?.kill();
    for (const c of collectors) c.server.close();
    removeDir(dir);
  });

  test('no OTLP without configuration; metrics on loopback, unit-suffixed, VM labels capped', async () => {
    node = await startNodeProcess({
      dataDir: join(dir, 'a'),
      extraArgs: ['--metrics-listen', '127.0.0.1:0', '--site', 'east', '--nbd-listen', '127.0.0.1:0'],
      env: { ...NO_OTEL, VMFERRY_METRICS_VM_LABEL_LIMIT: '1' },
    });
    const address = metricsAddress(node);
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    const port = Number(address.split(':')[1]);
    // Not reachable on any other address of this machine.
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && !i.internal && i.family === 'IPv4');
    for (const i of others) if (i) assert.ok(await refused(i.address, port), `metrics reachable on ${i.address}:${port}`);

    // packages/telemetry/test/exporters.test.ts shows spans reach a configured collector and
    // none an unconfigured one; here, the whole node: API calls, snapshots, a scrape, a clean stop.
    await cliJson(node.address, ['vm', 'create', 'a', '--disk', '4M']);
    await cliJson(node.address, ['vm', 'create', 'b', '--disk', '4M']);
    await cliJson(node.address, ['snapshot', 'create', 'a']);
    await cliJson(node.address, ['snapshot', 'create', 'a']);
    await cliJson(node.address, ['snapshot', 'create', 'b']);
    // NBD I/O by a real client (qemu-io): a 64 KiB write and two 4 KiB reads of the live disk,
    // one 4 KiB read of a snapshot.
    const nbd = `nbd://${node.nbdAddress ?? ''}`;
    execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 0 65536', '-c', 'read 0 4096', '-c', 'read 4096 4096', `${nbd}/a/0`]);
    const snap = (await cliJson<{ id: string }[]>(node.address, ['snapshot', 'list', 'b']))[0]?.id ?? '';
    execFileSync('qemu-io', ['-f', 'raw', '-r', '-c', 'read 0 4096', `${nbd}/b@${snap}/0`]);
    await cliJson(node.address, ['verify']);
    await cliJson(node.address, ['gc']);

    const text = await scrape(address);
    assert.equal(sample(text, 'vmferry_snapshot_duration_seconds_count', { site: 'east' }), 3, text);
    assert.equal(sample(text, 'vmferry_vm_snapshots', { site: 'east', vm: 'a' }), 2, text);
    // The limit is 1: 'b' is folded into _other, and has no series of its own.
    assert.equal(sample(text, 'vmferry_vm_snapshots', { site: 'east', vm: '_other' }), 1, text);
    assert.equal(sample(text, 'vmferry_vm_snapshots', { vm: 'b' }), undefined, text);
    assert.equal(sample(text, 'vmferry_vm_label_limit', { site: 'east' }), 1, text);
    assert.equal(sample(text, 'vmferry_vms', { site: 'east', kind: 'local' }), 2, text);
    assert.equal(sample(text, 'vmferry_snapshots', { site: 'east' }), 3, text);
    assert.ok(sample(text, 'vmferry_space_logical_bytes', { site: 'east' }) !== undefined, text);
    assert.ok(sample(text, 'vmferry_space_stored_bytes', { site: 'east' }) !== undefined, text);
    assert.equal(sample(text, 'vmferry_nbd_io_bytes_total', { site: 'east', export_kind: 'live', direction: 'write' }), 65536, text);
    assert.equal(sample(text, 'vmferry_nbd_io_bytes_total', { site: 'east', export_kind: 'live', direction: 'read' }), 8192, text);
    assert.equal(sample(text, 'vmferry_nbd_io_bytes_total', { site: 'east', export_kind: 'snapshot', direction: 'read' }), 4096, text);
    assert.equal(sample(text, 'vmferry_nbd_operations_total', { export_kind: 'live', op: 'read', outcome: 'ok' }), 2, text);
    assert.equal(sample(text, 'vmferry_nbd_operation_duration_seconds_count', { export_kind: 'live', op: 'write' }), 1, text);
    assert.equal(sample(text, 'vmferry_verify_damaged_chunks', { site: 'east' }), 0, text);
    assert.ok(sample(text, 'vmferry_gc_last_run_seconds', { site: 'east' }) !== undefined, text);
    assert.ok(sample(text, 'vmferry_gc_freed_bytes', { site: 'east' }) !== undefined, text);
    const avail = sample(text, 'vmferry_data_filesystem_available_bytes', { site: 'east' }) ?? -1;
    const size = sample(text, 'vmferry_data_filesystem_size_bytes', { site: 'east' }) ?? -1;
    assert.ok(avail > 0 && size >= avail, `available ${avail}, size ${size}`);
    assert.ok((sample(text, 'vmferry_verify_last_run_seconds', { site: 'east' }) ?? 0) > Date.now() / 1000 - 600, text);

    // A clean stop flushes every exporter there is; with none configured nothing connects.
    assert.equal(await node.stop(), 0);
    assert.deepEqual(
      collectors.map((c) => c.connections()),
      collectors.map(() => 0),
      'the node connected to :4318 with no OTLP endpoint configured',
    );
  });

  test('--prometheus-port (the old flag) binds loopback only', async () => {
    const port = await freePort();
    const n = await startNodeProcess({ dataDir: join(dir, 'b'), extraArgs: ['--prometheus-port', String(port)], env: NO_OTEL });
    try {
      assert.equal(metricsAddress(n), `127.0.0.1:${port}`);
      assert.ok(sample(await scrape(`127.0.0.1:${port}`), 'vmferry_vms', { kind: 'local' }) === 0);
    } finally {
      await n.stop();
    }
  });
  test('a snapshot job from NATS runs in a span: still nothing reaches :4318, and the job is counted', async () => {
    const nats = await startNatsServer();
    const n = await startNodeProcess({
      dataDir: join(dir, 'c'),
      extraArgs: ['--metrics-listen', '127.0.0.1:0', '--site', 'east', '--nats', nats.url],
      env: NO_OTEL,
    });
    const c = await openCoordination(nats.url, 'metrics-test');
    try {
      const vm = await cliJson<{ id: string }>(n.address, ['vm', 'create', 'jobbed', '--disk', '4M']);
      const slot = Date.now();
      const job: SnapshotJob = {
        kind: 'snapshot',
        vmId: vm.id,
        vmName: 'jobbed',
        site: 'east',
        schedule: 'test',
        slot,
        consistency: 'crash',
        keep: 5,
        replicateTo: [],
      };
      await publishJob(c, snapshotJobSubject('east'), job, `metrics-test.${vm.id}.${slot}`);
      // The node's worker (coordination-worker.ts) takes the snapshot inside a tracer span.
      const address = metricsAddress(n);
      const deadline = Date.now() + 30_000;
      let text = '';
      while (sample(text, 'vmferry_jobs_done_total', { kind: 'snapshot', site: 'east' }) !== 1) {
        assert.ok(Date.now() < deadline, `the snapshot job was not counted done in 30 s:\n${text}`);
        await new Promise((r) => setTimeout(r, 200));
        text = await scrape(address);
      }
      assert.equal(sample(text, 'vmferry_vm_snapshots', { vm: 'jobbed' }), 1, text);
      assert.equal(sample(text, 'vmferry_jobs_dead_lettered_total', { kind: 'snapshot', site: 'east' }), 0, text);
      assert.equal(await n.stop(), 0);
      assert.deepEqual(
        collectors.map((x) => x.connections()),
        collectors.map(() => 0),
        'the node posted its job span to :4318 with no OTLP endpoint configured',
      );
    } finally {
      await c.close();
      await n.kill();
      await nats.stop();
    }
  });
});
