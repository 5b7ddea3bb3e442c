/*
 * npm run bench:scheduler — 10,000 VMs under the default policy, one storage node, a real
 * nats-server. Measures (1) the time to publish every VM's job at a schedule boundary and
 * (2) slot-to-snapshot lag (p50/p99): from the slot instant to the node's snapshot.created
 * event. Prints a table and writes loadtest/reports/bench-scheduler-<time>.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliverPolicy } from '@nats-io/jetstream';
import { DEFAULT_POLICY_KEY, EVENTS_STREAM, openCoordination, type VmferryEvent } from '@vmferry/nats';
import { connectStorageNode } from '@vmferry/grpc-edge';
import { Scheduler } from '@vmferry/scheduler';
import { startNatsServer, startNodeProcess } from '@vmferry/testkit';
import { writeReport } from './report.js';

const VMS = Number(process.env['BENCH_VMS'] ?? 10_000);
const EVERY_S = 30;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-sched-'));
  const nats = await startNatsServer();
  const node = await startNodeProcess({ dataDir: join(work, 'node'), extraArgs: ['--site', 'siteA', '--nats', nats.url] });
  const c = await openCoordination(nats.url, 'bench');
  const rows: [string, string][] = [];
  const results: Record<string, number> = {};
  const record = (name: string, value: number, unit: string): void => {
    results[`${name} (${unit})`] = Math.round(value * 10) / 10;
    rows.push([name, `${value.toFixed(1)} ${unit}`]);
    console.error(`  ${name}: ${value.toFixed(1)} ${unit}`);
  };
  try {
    console.error(`creating ${VMS} VMs on one storage node…`);
    const client = connectStorageNode(node.address);
    const t0 = performance.now();
    for (let i = 0; i < VMS; i += 64) {
      await Promise.all(
        Array.from({ length: Math.min(64, VMS - i) }, (_, k) =>
          client.createVm({ name: `vm-${String(i + k).padStart(5, '0')}`, disks: [{ size: 1 << 30, blockSize: 0 }], hypervisorConfig: Buffer.alloc(0) }),
        ),
      );
    }
    client.close();
    record(`create ${VMS} VMs`, (performance.now() - t0) / 1000, 's');
    for (;;) {
      const st = await c.registry.status();
      if (st.values >= VMS + 1) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await c.policies.put(DEFAULT_POLICY_KEY, JSON.stringify({ schedules: [{ name: 'bench', every: `${EVERY_S}s`, keep: 2 }] }));

    // Start the scheduler just after a boundary has passed, then measure the next boundary.
    const scheduler = new Scheduler(c, { id: 'bench' });
    const ticks: { at: number; published: number; ms: number }[] = [];
    scheduler.onTick = (r) => ticks.push({ at: Date.now(), published: r.published, ms: r.ms });
    await scheduler.start();
    await new Promise((r) => setTimeout(r, 3000));
    const boundary = (Math.floor(Date.now() / (EVERY_S * 1000)) + 1) * EVERY_S * 1000;
    console.error(`waiting for the boundary at ${new Date(boundary).toISOString()}…`);
    await new Promise((r) => setTimeout(r, boundary - Date.now() + 200));
    let published = 0;
    let lastTickAt = 0;
    const deadline = Date.now() + 30_000;
    while (published < VMS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const after = ticks.filter((t) => t.at >= boundary);
      published = after.reduce((n, t) => n + t.published, 0);
      lastTickAt = after[after.length - 1]?.at ?? 0;
    }
    record(`jobs published at the boundary (of ${VMS})`, published, 'jobs');
    record('boundary → all jobs published', lastTickAt - boundary, 'ms');

    // Lag: snapshot.created events of the boundary slot.
    const consumer = await c.js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(boundary).toISOString() });
    const lags: number[] = [];
    const until = Date.now() + 180_000;
    while (lags.length < VMS && Date.now() < until) {
      const m = await consumer.next({ expires: 2000 });
      if (!m) continue;
      const e = m.json<VmferryEvent & { slot: number }>();
      if (e.kind === 'snapshot.created' && e.slot === boundary) lags.push(e.atMs - boundary);
    }
    await scheduler.stop();
    lags.sort((a, b) => a - b);
    record(`snapshots taken for the slot (of ${VMS})`, lags.length, 'snapshots');
    record('slot-to-snapshot lag p50', percentile(lags, 50), 'ms');
    record('slot-to-snapshot lag p99', percentile(lags, 99), 'ms');
    record('slot-to-snapshot lag max', lags[lags.length - 1] ?? NaN, 'ms');
  } finally {
    await c.close();
    await node.stop();
    await nats.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${'measure'.padEnd(w)}  result`);
  for (const [name, value] of rows) console.log(`${name.padEnd(w)}  ${value}`);
  const file = writeReport('bench-scheduler', { node: process.version, vms: VMS, results });
  console.log(`\nreport: ${file}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
