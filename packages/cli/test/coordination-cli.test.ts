/*
 * The CLI's coordination commands against a real nats-server (no storage node: the registry,
 * policies and replication state are seeded straight into KV): strict `policy set`, `status`
 * in a symmetric pair with its exit code, `status --watch`, and `events --follow` across a
 * nats-server restart.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { IdSource, type ProtectionPolicy } from '@vmferry/core';
import {
  DEFAULT_POLICY_KEY,
  EVENTS_STREAM,
  POLICY_BUCKET,
  REGISTRY_BUCKET,
  STATE_BUCKET,
  openCoordination,
  publishEvent,
  registryVmKey,
  rpoKey,
  type Coordination,
  type ReplicationState,
  type VmEntry,
} from '@vmferry/nats';
import { runCli, startNatsServer, VMFERRY_BIN, type CliResult, type NatsServer } from '@vmferry/testkit';

const ids = new IdSource();
let server: NatsServer;
let admin: Coordination;

function vmferry(args: readonly string[]): Promise<CliResult> {
  return runCli('127.0.0.1:1', ['--nats', server.url, ...args], { VMFERRY_PROMETHEUS_PORT: '' });
}

interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

/** A long-running CLI command (--follow, --watch), its output collected as it comes. */
function spawnCli(args: readonly string[]): Running {
  const child = spawn(process.execPath, [VMFERRY_BIN, '--node', '127.0.0.1:1', '--nats', server.url, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VMFERRY_PROMETHEUS_PORT: '' },
  });
  const r: Running = { child, stdout: '', stderr: '', exited: once(child, 'exit').then(([code]) => code as number | null) };
  child.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  running.add(r);
  return r;
}
const running = new Set<Running>();

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function vm(site: string, name: string): VmEntry {
  return { vmId: ids.next(), name, site, updatedAtMs: Date.now() };
}

async function replicated(v: VmEntry, target: string, ageMs: number): Promise<void> {
  const s: ReplicationState = {
    vmId: v.vmId,
    vmName: v.name,
    sourceSite: v.site,
    targetSite: target,
    snapshotId: ids.next(),
    snapshotCreatedAtMs: Date.now() - ageMs,
    replicatedAtMs: Date.now(),
  };
  await admin.state.put(rpoKey(v.vmId, target), JSON.stringify(s));
}

before(async () => {
  server = await startNatsServer();
  admin = await openCoordination(server.url, 'cli-test-admin');
});

afterEach(async () => {
  for (const r of [...running]) {
    running.delete(r);
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await r.exited;
  }
  for (const bucket of [REGISTRY_BUCKET, POLICY_BUCKET, STATE_BUCKET]) await admin.jsm.streams.purge(`KV_${bucket}`);
});

after(async () => {
  await admin?.close().catch(() => undefined);
  await server?.stop();
});

describe('coordination commands', () => {
  test("policy set-default and policy set refuse an unknown key ('retension'), naming every bad key with its path; nothing is stored", async () => {
    const bad = await vmferry(['policy', 'set-default', '{"schedules":[{"name":"daily","cron":"0 1 * * *","keep":7,"retension":30}],"replicaton":[]}']);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stderr, /schedules\[0\]\.retension: unknown key/);
    assert.match(bad.stderr, /replicaton: unknown key/);
    assert.equal(await admin.policies.get(DEFAULT_POLICY_KEY), null, 'nothing stored');

    const web = vm('siteA', 'web');
    await admin.registry.put(registryVmKey(web.site, web.vmId), JSON.stringify(web));
    const badOverride = await vmferry(['policy', 'set', 'web', '{"mode":"add","exlude":true}']);
    assert.equal(badOverride.code, 1);
    assert.match(badOverride.stderr, /exlude: unknown key/);

    const good = await vmferry(['policy', 'set-default', '{"schedules":[{"name":"daily","cron":"0 1 * * *","keep":7}]}']);
    assert.equal(good.code, 0, good.stderr);
    assert.ok(await admin.policies.get(DEFAULT_POLICY_KEY));
  });

  test('status in a symmetric pair: no target at the home site; no off-site copy is UNPROTECTED; exit 3 until every VM is PROTECTED', async () => {
    const policy: ProtectionPolicy = {
      schedules: [{ name: 'hourly', every: '1h', keep: 24 }],
      replication: [
        { site: 'siteA', rpo: '2h' },
        { site: 'siteB', rpo: '2h' },
      ],
    };
    await admin.policies.put(DEFAULT_POLICY_KEY, JSON.stringify(policy));
    const web = vm('siteA', 'web');
    const clone = vm('siteB', 'clone');
    for (const v of [web, clone]) await admin.registry.put(registryVmKey(v.site, v.vmId), JSON.stringify(v));
    await replicated(web, 'siteB', 60_000);

    const r = await vmferry(['--json', 'status']);
    assert.equal(r.code, 3, r.stderr);
    const rows = JSON.parse(r.stdout) as { vm: string; state: string; targets: { site: string }[] }[];
    const byName = new Map(rows.map((x) => [x.vm, x]));
    assert.equal(byName.get('web')?.state, 'protected');
    assert.deepEqual(
      byName.get('web')?.targets.map((t) => t.site),
      ['siteB'],
    );
    assert.equal(byName.get('clone')?.state, 'unprotected', 'no off-site copy yet');
    assert.deepEqual(
      byName.get('clone')?.targets.map((t) => t.site),
      ['siteA'],
      'the home site is no target',
    );
    const table = await vmferry(['status']);
    assert.equal(table.code, 3);
    assert.match(table.stdout, /clone\s+siteB\s+UNPROTECTED/);

    await replicated(clone, 'siteA', 60_000);
    const ok = await vmferry(['status']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.doesNotMatch(ok.stdout, /UNPROTECTED|LATE/);

    await replicated(clone, 'siteA', 3 * 3_600_000);
    const late = await vmferry(['status']);
    assert.equal(late.code, 3);
    assert.match(late.stdout, /clone\s+siteB\s+LATE/);
  });

  test('status --watch (stdout not a TTY) prints successive tables separated by a line, follows changes, and stops on SIGINT', async () => {
    await admin.policies.put(DEFAULT_POLICY_KEY, JSON.stringify({ schedules: [{ name: 'hourly', every: '1h', keep: 24 }], replication: [{ site: 'siteB' }] }));
    const web = vm('siteA', 'web');
    await admin.registry.put(registryVmKey(web.site, web.vmId), JSON.stringify(web));
    const w = spawnCli(['status', '--watch', '--interval', '1']);
    await waitFor('a first table', () => /web\s+siteA\s+UNPROTECTED/.test(w.stdout));
    await replicated(web, 'siteB', 1000);
    await waitFor('a table showing the change', () => /web\s+siteA\s+PROTECTED/.test(w.stdout));
    assert.doesNotMatch(w.stdout, /\x1b\[/, 'no terminal escapes when stdout is not a TTY');
    assert.match(w.stdout, /\n-{3,}[^\n]*\n/, 'tables separated by a line');
    w.child.kill('SIGINT');
    assert.equal(await w.exited, 0, `exit code of the last table (all protected); stderr: ${w.stderr}`);
  });

  test('status --watch on a terminal redraws in place (home and clear before each table)', async () => {
    await admin.policies.put(DEFAULT_POLICY_KEY, JSON.stringify({ schedules: [{ name: 'hourly', every: '1h', keep: 24 }] }));
    const web = vm('siteA', 'web');
    await admin.registry.put(registryVmKey(web.site, web.vmId), JSON.stringify(web));
    // util-linux script(1) gives the CLI a pseudo-terminal; its own process group, so all of it stops.
    const command = [process.execPath, VMFERRY_BIN, '--nats', server.url, 'status', '--watch', '--interval', '1'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, VMFERRY_PROMETHEUS_PORT: '' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = once(child, 'exit');
    try {
      await waitFor('two redraws', () => out.split('\x1b[H\x1b[2J').length >= 3);
      assert.match(out, /web\s+siteA\s+PROTECTED/);
    } finally {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      await exited;
    }
  });

  test('events --follow goes on printing after a nats-server restart', async () => {
    const f = spawnCli(['events', '--follow', '--since', '1m']);
    await publishEvent(admin, 'schedule.missed', { site: 'siteA', vmName: 'before-restart', schedule: 's', missedSlots: 1 });
    await waitFor('the event before the restart', () => f.stdout.includes('before-restart'));

    await server.kill();
    await server.restart();
    // Publish until the follower shows one (the admin connection reconnects on its own).
    let n = 0;
    const started = Date.now();
    while (!f.stdout.includes('after-restart')) {
      if (f.child.exitCode !== null) assert.fail(`events --follow exited with ${f.child.exitCode}: ${f.stderr}`);
      if (Date.now() - started > 30_000) assert.fail(`nothing printed after the restart; stderr: ${f.stderr}`);
      await publishEvent(admin, 'schedule.missed', { site: 'siteA', vmName: `after-restart-${n++}`, schedule: 's', missedSlots: 1 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(f.stdout.split('\n').filter((l) => l.includes('before-restart')).length, 1, 'no event printed twice');
    f.child.kill('SIGINT');
    assert.equal(await f.exited, 0, f.stderr);
  });

  test('events --follow exits non-zero saying why when the events stream is gone', async () => {
    const f = spawnCli(['events', '--follow', '--since', '1m']);
    await publishEvent(admin, 'schedule.missed', { site: 'siteA', vmName: 'last-one', schedule: 's', missedSlots: 1 });
    await waitFor('the event', () => f.stdout.includes('last-one'));
    await admin.jsm.streams.delete(EVENTS_STREAM);
    const code = await Promise.race([f.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
    assert.equal(code, 1, `stderr: ${f.stderr}`);
    assert.match(f.stderr, /the events stream VMFERRY_EVENTS is gone/);
  });
});
