/*
 * Issue 12 item 3 against real parts (nats-server, a storage node process, the `vmferry
 * scheduler` process, the CLI):
 *
 * - `policy simulate` (and `policy set --dry-run`) shows which snapshots retention deletes,
 *   stores nothing, and agrees with what the node then deletes when that retention runs.
 * - The default policy's `verify` schedule makes the scheduler publish verify jobs; the node
 *   verifies and reports `verify.done`, counted in vmferry_verify_runs_total{trigger="scheduled"};
 *   after a byte flip in a blob file the next slot reports `verify.damaged` naming the VM.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JOBS_STREAM, openCoordination, publishJob, slotJobIdFor, snapshotJobSubject, type Coordination, type SnapshotJob } from './coordination-helpers.js';
import { cliJson, runCli, startNatsServer, startNodeProcess, VMFERRY_BIN, type NatsServer, type NodeProcess } from '@vmferry/testkit';
import type { VmferryEvent } from '@vmferry/nats';
import { MiB, random, removeDir, tempDir, writeBytes } from './helpers.js';
import { filesOf, flipBytes } from './damage.js';

interface SnapshotJson {
  id: string;
  origin: string;
}

interface SimulationJson {
  vm: string;
  policy: string;
  kept: number;
  deleted: number;
  snapshots: { id: string; schedule: string | null; action: string; reason: string }[];
}

describe('scheduled verify and the retention dry run', () => {
  let dir = '';
  let nats: NatsServer;
  let node: NodeProcess | undefined;
  let scheduler: ChildProcess | undefined;
  let c: Coordination;
  let vmId = '';
  const nodeArgs = (): string[] => ['--site', 'siteA', '--nats', nats.url, '--metrics-listen', '127.0.0.1:0'];
  const cli = (args: string[]) => runCli(node?.address ?? '', ['--nats', nats.url, ...args]);

  before(async () => {
    dir = tempDir();
    nats = await startNatsServer();
    node = await startNodeProcess({ dataDir: join(dir, 'n'), extraArgs: nodeArgs() });
    c = await openCoordination(nats.url, 'test');
    vmId = (await cliJson<{ id: string }>(node.address, ['vm', 'create', 'web', '--disk', '4M', '--block-size', '16K'])).id;
    // Random blocks: stored in blob files, where the damage test flips a byte.
    assert.equal((await writeBytes(node.address, 'web', 0, random(2 * MiB), dir)).code, 0);
    await cliJson(node.address, ['snapshot', 'create', 'web', '--label', 'manual-one']);
  });

  after(async () => {
    scheduler?.kill('SIGKILL');
    await c?.close();
    await node?.kill();
    await nats?.stop();
    removeDir(dir);
  });

  const hourlyJob = (slot: number, keep: number): SnapshotJob => ({
    kind: 'snapshot',
    vmId,
    vmName: 'web',
    site: 'siteA',
    schedule: 'hourly',
    slot,
    consistency: 'crash',
    keep,
    replicateTo: [],
  });
  const snapshots = (): Promise<SnapshotJson[]> => cliJson<SnapshotJson[]>(node?.address ?? '', ['snapshot', 'list', 'web']);

  async function settled(durable: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const info = await c.jsm.consumers.info(JOBS_STREAM, durable);
      if (info.num_pending === 0 && info.num_ack_pending === 0) return;
      await sleep(100);
    }
    throw new Error(`consumer ${durable} did not settle`);
  }

  test('policy simulate names what retention deletes; --dry-run stores nothing; the node then deletes exactly that', async () => {
    const base = 1_800_000_000_000;
    const slots = [0, 1, 2, 3].map((i) => base + i * 3_600_000);
    for (const slot of slots) await publishJob(c, snapshotJobSubject('siteA'), hourlyJob(slot, 10), slotJobIdFor(vmId, 'hourly', slot));
    await settled('snapshot-siteA');
    assert.equal((await snapshots()).filter((s) => s.origin.startsWith('schedule:hourly@')).length, 4);
    const setDefault = await cli(['policy', 'set-default', '{"schedules":[{"name":"hourly","every":"1h","keep":10}]}']);
    assert.equal(setDefault.code, 0, setDefault.stderr);

    const stored = JSON.parse((await cli(['--json', 'policy', 'simulate', 'web'])).stdout) as SimulationJson;
    assert.equal(stored.deleted, 0, 'keep 10 of 4: nothing goes');
    assert.match(stored.snapshots.find((s) => s.schedule === null)?.reason ?? '', /not from a schedule \(manual\)/);

    const proposal = '{"keep":{"hourly":2}}';
    const sim = JSON.parse((await cli(['--json', 'policy', 'simulate', 'web', '--with', proposal])).stdout) as SimulationJson;
    const dry = await cli(['--json', 'policy', 'set', 'web', proposal, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const dryDoc = JSON.parse(dry.stdout) as SimulationJson;
    assert.deepEqual(
      [dryDoc.policy, dryDoc.kept, dryDoc.deleted, dryDoc.snapshots],
      ['proposed', sim.kept, sim.deleted, sim.snapshots],
      '--dry-run is the simulation',
    );
    const doomed = sim.snapshots.filter((s) => s.action === 'delete').map((s) => s.id);
    const all = await snapshots();
    const hourly = all.filter((s) => s.origin.startsWith('schedule:hourly@'));
    assert.deepEqual(doomed, [hourly[0]?.id, hourly[1]?.id], 'the two oldest hourly snapshots');
    assert.ok(sim.snapshots.filter((s) => s.action === 'delete').every((s) => /beyond keep 2/.test(s.reason)));
    const human = await cli(['policy', 'simulate', 'web', '--with', proposal]);
    assert.match(human.stdout, /DELETE\s+beyond keep 2 \(4th newest\)/);
    assert.match(human.stdout, /web: 3 kept, 2 deleted under the proposed override \(not stored\)/);
    const shown = JSON.parse((await cli(['--json', 'policy', 'show', 'web'])).stdout) as { override: unknown };
    assert.equal(shown.override, null, 'the dry run stored no override');
    assert.equal((await snapshots()).length, all.length, 'and deleted nothing');

    // The node's retention with keep 2 (a redelivered job of the newest slot: no new snapshot).
    await publishJob(c, snapshotJobSubject('siteA'), hourlyJob(slots[3] as number, 2), `${slotJobIdFor(vmId, 'hourly', slots[3] as number)}-keep2`);
    await settled('snapshot-siteA');
    const left = (await snapshots()).map((s) => s.id);
    assert.deepEqual(
      left,
      all.map((s) => s.id).filter((id) => !doomed.includes(id)),
      'the node deleted exactly what the dry run said',
    );
  });

  /** The first verify event published after this call (events are JetStream messages on core subjects too). */
  async function nextVerifyEvent(trigger: () => Promise<void> = async () => undefined): Promise<VmferryEvent> {
    const sub = c.nc.subscribe('vmferry.events.*.verify.>', { max: 1, timeout: 30_000 });
    await c.nc.flush();
    await trigger();
    for await (const m of sub) return m.json<VmferryEvent>();
    throw new Error('no verify event within 30 s');
  }

  async function scrape(): Promise<string> {
    const address = /prometheus metrics on http:\/\/(\S+)\/metrics/.exec(node?.log() ?? '')?.[1];
    const res = await fetch(`http://${address ?? ''}/metrics`);
    return res.text();
  }

  test('a verify schedule in the default policy: verify.done, then verify.damaged after a flipped byte', async () => {
    const policy = '{"schedules":[{"name":"hourly","every":"1h","keep":10}],"verify":{"every":"2s"}}';
    assert.equal((await cli(['policy', 'set-default', policy])).code, 0);
    const clean = await nextVerifyEvent(async () => {
      scheduler = spawn(process.execPath, [VMFERRY_BIN, '--nats', nats.url, 'scheduler'], { stdio: ['ignore', 'ignore', 'ignore'] });
    });
    assert.equal(clean.kind, 'verify.done');
    assert.equal(clean.site, 'siteA');
    assert.equal(clean['damagedChunks'], 0);
    assert.ok((clean['chunksChecked'] as number) >= 128, `2 MiB of 16 KiB blocks checked (got ${String(clean['chunksChecked'])})`);
    assert.match(await scrape(), /vmferry_verify_runs_total\{[^}]*outcome="clean"[^}]*trigger="scheduled"[^}]*\} [1-9]/);

    // Real damage: stop the node (flushes blobs), flip bytes in the largest blob file, restart.
    assert.equal(await node?.stop(), 0);
    const blob = filesOf(join(dir, 'n'), /\.blob$/)[0];
    assert.ok(blob, 'the chunks live in a blob file');
    flipBytes(blob.path, Math.floor(blob.size / 2), 16);
    const damaged = await nextVerifyEvent(async () => {
      node = await startNodeProcess({ dataDir: join(dir, 'n'), extraArgs: nodeArgs() });
    });
    assert.equal(damaged.kind, 'verify.damaged');
    assert.ok((damaged['damagedChunks'] as number) >= 1);
    assert.ok(
      (damaged['affected'] as string[]).some((ref) => ref.startsWith('web')),
      `names the VM: ${JSON.stringify(damaged['affected'])}`,
    );
    assert.match(await scrape(), /vmferry_verify_runs_total\{[^}]*outcome="damaged"[^}]*trigger="scheduled"[^}]*\} [1-9]/);
    assert.match(await scrape(), /vmferry_verify_damaged_chunks\{[^}]*\} [1-9]/);
    const s = scheduler;
    s?.kill('SIGTERM');
    if (s) await once(s, 'exit');
    scheduler = undefined;
  });
});
