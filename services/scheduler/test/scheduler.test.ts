/*
 * The scheduler against a real nats-server. The registry and policies are seeded straight into
 * KV (no storage node); the snapshot jobs are consumed from the work queue by a worker of our
 * own, which records each job with its stream sequence and the time the stream stored it.
 *
 * Checked: one job per (VM, schedule, slot) with two schedulers, across scheduler restarts,
 * leader failover and a NATS restart; catch-up publishes only the latest slot; replicas,
 * excluded VMs and per-VM overrides; and 1,000 VMs in one tick.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdSource, type ProtectionPolicy, type VmPolicyOverride } from '@vmferry/core';
import {
  DEFAULT_POLICY_KEY,
  eventSubject,
  JOBS_STREAM,
  LEADER_BUCKET,
  POLICY_BUCKET,
  REGISTRY_BUCKET,
  STATE_BUCKET,
  openCoordination,
  registryVmKey,
  runWorker,
  snapshotJobSubject,
  vmPolicyKey,
  type Coordination,
  type CoordinationTiming,
  type SnapshotJob,
  type VmEntry,
  type VmferryEvent,
  type WorkerHandle,
} from '@vmferry/nats';
import { startNatsServer, type NatsServer } from '@vmferry/testkit';
import { Scheduler, type SchedulerOptions, type TickReport } from '../src/index.js';

const ids = new IdSource();

const SECOND = 1000;
/**
 * A shorter lease than production's 6 s (LEADER_TTL_MS), heartbeats at a third of it as
 * there: failover waits for its expiry. The bucket takes it from the first open (admin's).
 */
const LEASE_TTL_MS = 2000;
const LEASE_BEAT_MS = Math.floor(LEASE_TTL_MS / 3);
const TIMING: CoordinationTiming = { leaderTtlMs: LEASE_TTL_MS };
/** The NATS restart test's request timeout (production: the client's 5 s), so the outage's requests end sooner. */
const REQUEST_TIMEOUT_MS = 2000;
const VERBOSE = process.env['VMFERRY_TEST_VERBOSE'] === '1';

let server: NatsServer;
let admin: Coordination;

interface Received {
  readonly job: SnapshotJob;
  /** Stream sequence: a redelivery has the same one, a second publish a new one. */
  readonly seq: number;
  /** When the stream stored the message. */
  readonly storedAtMs: number;
}

interface Collector {
  readonly site: string;
  /** Unique messages (by stream sequence), in arrival order. */
  readonly jobs: Received[];
  redeliveries: number;
  stop(): Promise<void>;
}

interface RunningScheduler {
  readonly id: string;
  readonly c: Coordination;
  readonly s: Scheduler;
  readonly reports: TickReport[];
  readonly log: string[];
}

const schedulers = new Set<RunningScheduler>();
const collectors = new Set<Collector>();

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** A worker on the site's snapshot subject, like a storage node's (acks every job). */
async function collect(site: string): Promise<Collector> {
  const seen = new Set<number>();
  const jobs: Received[] = [];
  const c: Collector = {
    site,
    jobs,
    redeliveries: 0,
    stop: async () => {
      collectors.delete(c);
      await worker.stop();
      await admin.jsm.consumers.delete(JOBS_STREAM, `test-${site}`).catch(() => undefined);
    },
  };
  const worker: WorkerHandle = await runWorker<SnapshotJob>(admin, `test-${site}`, snapshotJobSubject(site), async (job, _ctx, msg) => {
    if (seen.has(msg.seq)) {
      c.redeliveries++;
      return;
    }
    seen.add(msg.seq);
    jobs.push({ job, seq: msg.seq, storedAtMs: Math.floor(msg.info.timestampNanos / 1e6) });
  });
  collectors.add(c);
  return c;
}

async function startScheduler(
  id: string,
  timing: CoordinationTiming = TIMING,
  options: Pick<SchedulerOptions, 'now' | 'tickMs'> = {},
): Promise<RunningScheduler> {
  const c = await openCoordination(server.url, id, undefined, timing);
  const log: string[] = [];
  const s = new Scheduler(c, {
    ...options,
    id,
    leaseBeatMs: LEASE_BEAT_MS,
    log: (l) => {
      log.push(`${new Date().toISOString()} ${l}`);
      if (VERBOSE) console.log(l);
    },
  });
  const r: RunningScheduler = { id, c, s, reports: [], log };
  s.onTick = (rep) => r.reports.push(rep);
  await s.start();
  schedulers.add(r);
  return r;
}

async function stopScheduler(r: RunningScheduler): Promise<void> {
  schedulers.delete(r);
  await r.s.stop().catch(() => undefined);
  await r.c.close().catch(() => undefined);
}

async function setDefaultPolicy(p: ProtectionPolicy): Promise<void> {
  await admin.policies.put(DEFAULT_POLICY_KEY, JSON.stringify(p));
}

async function setOverride(vmId: string, o: VmPolicyOverride | undefined): Promise<void> {
  if (o === undefined) await admin.policies.delete(vmPolicyKey(vmId));
  else await admin.policies.put(vmPolicyKey(vmId), JSON.stringify(o));
}

function vmEntry(site: string, name: string, extra: Partial<VmEntry> = {}): VmEntry {
  return { vmId: ids.next(), name, site, updatedAtMs: Date.now(), ...extra };
}

async function register(entries: readonly VmEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 200) {
    await Promise.all(entries.slice(i, i + 200).map((e) => admin.registry.put(registryVmKey(e.site, e.vmId), JSON.stringify(e))));
  }
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const t = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

function jobsOf(c: Collector, vmId: string, schedule?: string): Received[] {
  return c.jobs.filter((r) => r.job.vmId === vmId && (schedule === undefined || r.job.schedule === schedule));
}

/** No (VM, schedule, slot) stored twice. */
function assertNoDoubles(c: Collector): void {
  const byKey = new Map<string, number[]>();
  for (const r of c.jobs) {
    const key = `${r.job.vmId}/${r.job.schedule}/${r.job.slot}`;
    byKey.set(key, [...(byKey.get(key) ?? []), r.seq]);
  }
  const doubles = [...byKey].filter(([, seqs]) => seqs.length > 1);
  assert.deepEqual(doubles, [], `jobs stored more than once on ${c.site}`);
}

/**
 * The slots of one VM's schedule are consecutive (every `everyMs`), except that slots inside
 * `gap` (a window where no scheduler could publish) may be missing.
 */
function assertConsecutive(jobs: readonly Received[], everyMs: number, gap?: { from: number; to: number }): void {
  const slots = sorted(jobs.map((r) => r.job.slot));
  const missing: number[] = [];
  for (let i = 1; i < slots.length; i++) {
    for (let m = (slots[i - 1] as number) + everyMs; m < (slots[i] as number); m += everyMs) missing.push(m);
  }
  const unexplained = missing.filter((m) => !gap || m < gap.from || m > gap.to);
  assert.deepEqual(unexplained.map(t), [], `skipped slots (gap window ${gap ? `${t(gap.from)}–${t(gap.to)}` : 'none'}); slots: ${slots.map(t).join(' ')}`);
}

/**
 * Each job was published for the latest slot at the time: never a stale (missed) slot, never
 * a future one. `slack` covers the tick interval and publishing.
 */
function assertLatestSlotOnly(jobs: readonly Received[], everyMs: number, slackMs = 1200): void {
  for (const r of jobs) {
    const lag = r.storedAtMs - r.job.slot;
    assert.ok(lag >= -50 && lag < everyMs + slackMs, `slot ${t(r.job.slot)} of ${r.job.vmName} stored at ${t(r.storedAtMs)} (lag ${lag} ms)`);
  }
}

function leaderOf(rs: readonly RunningScheduler[]): RunningScheduler[] {
  return rs.filter((r) => r.s.isLeader);
}

/** When the scheduler last became leader or follower (from its log). */
function lastLeaseChange(r: RunningScheduler): number {
  const line = [...r.log].reverse().find((l) => /leader now|follower now/.test(l));
  return line ? Date.parse(line.slice(0, 24)) : 0;
}

const publishedBy = (r: RunningScheduler): number => r.reports.reduce((n, rep) => n + rep.published, 0);

/** Resolves once every VM has at least `n` jobs of `schedule` that pass `filter`. */
function jobsForEach(c: Collector, vms: readonly VmEntry[], n: number, filter: (r: Received) => boolean = () => true, timeoutMs = 15_000): Promise<number> {
  return waitFor(`${n} jobs of each VM`, () => vms.every((vm) => jobsOf(c, vm.vmId).filter(filter).length >= n), timeoutMs);
}

before(async () => {
  server = await startNatsServer();
  admin = await openCoordination(server.url, 'scheduler-test-admin', undefined, TIMING);
});

afterEach(async () => {
  for (const r of [...schedulers]) await stopScheduler(r);
  for (const c of [...collectors]) await c.stop();
  // A clean slate: no VMs, policies or lease from the previous test.
  for (const bucket of [REGISTRY_BUCKET, POLICY_BUCKET, LEADER_BUCKET, STATE_BUCKET]) await admin.jsm.streams.purge(`KV_${bucket}`);
  await admin.jsm.streams.purge(JOBS_STREAM);
});

after(async () => {
  await admin?.close().catch(() => undefined);
  await server?.stop();
});

describe('scheduler', () => {
  test('two schedulers at once and a scheduler restart: exactly one job per (VM, schedule, slot), no slot skipped', async () => {
    const site = 'dup';
    const every = SECOND;
    await setDefaultPolicy({ schedules: [{ name: 's1', every: '1s', keep: 3 }] });
    const vms = [vmEntry(site, 'a'), vmEntry(site, 'b'), vmEntry(site, 'c')];
    await register(vms);
    const jobs = await collect(site);

    const first = await startScheduler('sched-a');
    const second = await startScheduler('sched-b');
    assert.equal(leaderOf([first, second]).length, 1, 'exactly one leader');
    const [leader] = leaderOf([first, second]) as [RunningScheduler];
    const follower = leader === first ? second : first;
    await waitFor('the leader to publish 3 slots of each VM', () => publishedBy(leader) >= 3 * 3);
    assert.equal(leaderOf([first, second]).length, 1, 'still exactly one leader');
    assert.equal(follower.reports.length, 0, 'the follower published nothing');
    assert.ok(publishedBy(leader) >= 3 * 3, `the leader published ${publishedBy(leader)} jobs`);

    // Restart the leader: a new scheduler starts right after it stops (the follower may win the
    // lease instead; either way the slots go on).
    await stopScheduler(leader);
    const restarted = await startScheduler('sched-a2');
    const restartedAt = Date.now();
    await jobsForEach(jobs, vms, 3, (r) => r.storedAtMs > restartedAt);
    const nowLeading = leaderOf([follower, restarted]);
    assert.equal(nowLeading.length, 1, 'exactly one leader after the restart');

    // Deterministic dedup: the new leader publishes an old slot again (as after a restart
    // inside a slot): every job is a duplicate, nothing new is stored.
    const old = sorted(jobsOf(jobs, (vms[0] as VmEntry).vmId).map((r) => r.job.slot))[1] as number;
    const countBefore = jobs.jobs.length;
    let report: TickReport | undefined;
    await waitFor('a tick with an old slot', async () => (report = await (nowLeading[0] as RunningScheduler).s.tick(old + 10)) !== undefined);
    assert.deepEqual(report && { published: report.published, duplicates: report.duplicates }, { published: 0, duplicates: 3 });
    // Slots go on after the old one: 8 of each VM in all.
    await jobsForEach(jobs, vms, 8);

    assertNoDoubles(jobs);
    for (const vm of vms) {
      const mine = jobsOf(jobs, vm.vmId, 's1');
      assert.ok(mine.length >= 8, `${vm.name}: ${mine.length} jobs`);
      assertConsecutive(mine, every);
      assert.ok(
        mine.every((r) => r.job.kind === 'snapshot' && r.job.vmName === vm.name && r.job.site === site && r.job.keep === 3 && r.job.consistency === 'crash'),
        JSON.stringify(mine[0]?.job),
      );
    }
    assert.ok(
      jobs.jobs.slice(countBefore).every((r) => r.job.slot > old),
      'no job for the old slot was stored again',
    );
    // Every non-duplicate publish any scheduler reported is one stored message. Slots go on
    // meanwhile, and a tick reports once all its publishes are acknowledged (the collector may
    // already hold them), so the two counts are compared at a moment they settle together.
    const reported = (): number => [first, second, restarted].reduce((n, r) => n + publishedBy(r), 0);
    await waitFor('stored jobs to equal the reported publishes', () => jobs.jobs.length === reported(), 5000).catch(() => {
      assert.equal(jobs.jobs.length, reported(), 'jobs stored vs publishes reported');
    });
  });

  test('leader failover: the follower takes over after the lease expires, no slot doubled', async () => {
    const site = 'failover';
    const every = SECOND;
    await setDefaultPolicy({ schedules: [{ name: 's1', every: '1s', keep: 3 }] });
    const vms = [vmEntry(site, 'a'), vmEntry(site, 'b')];
    await register(vms);
    const jobs = await collect(site);
    const x = await startScheduler('sched-x');
    const y = await startScheduler('sched-y');
    const [leader] = leaderOf([x, y]) as [RunningScheduler];
    assert.ok(leader);
    const follower = leader === x ? y : x;
    await jobsForEach(jobs, vms, 3);

    // Crash the leader: its connection goes away without releasing the lease.
    const crashedAt = Date.now();
    await leader.c.nc.close();
    const takeoverMs = await waitFor('the follower to lead', () => follower.s.isLeader, LEASE_TTL_MS + 6000);
    const tookOverAt = Date.now();
    console.log(`# failover: follower leading ${takeoverMs} ms after the leader's crash (lease TTL ${LEASE_TTL_MS} ms)`);
    assert.ok(takeoverMs <= LEASE_TTL_MS + 4000, `takeover took ${takeoverMs} ms`);
    // Not before the lease could have expired: at most one heartbeat interval early.
    assert.ok(takeoverMs >= LEASE_TTL_MS - LEASE_TTL_MS / 3 - 500, `takeover after only ${takeoverMs} ms: two leaders`);
    assert.equal(leader.s.isLeader, false, 'the crashed leader stepped down');
    await jobsForEach(jobs, vms, 3, (r) => r.storedAtMs > tookOverAt);

    assertNoDoubles(jobs);
    for (const vm of vms) {
      const mine = jobsOf(jobs, vm.vmId, 's1');
      const afterCrash = mine.filter((r) => r.storedAtMs > crashedAt);
      assert.ok(afterCrash.length >= 3, `${vm.name}: ${afterCrash.length} jobs after the failover`);
      // Slots go on; only those inside the failover window may be missing, and the new
      // leader catches up with the latest slot only.
      assertConsecutive(mine, every, { from: crashedAt - every, to: tookOverAt + every });
      assertLatestSlotOnly(mine, every);
    }
  });

  test('after a leader is killed, and after a full stop, the new leader publishes only the latest slot and a schedule.missed for the slots it skipped', async () => {
    const site = 'missed';
    // Slots computed from a clock the test moves; the timer ticks too rarely to matter (tests call tick()).
    let now = Date.parse('2026-01-01T00:00:30Z');
    const clock = { now: () => now, tickMs: 3_600_000 };
    const MINUTE = 60_000;
    const slot0 = Date.parse('2026-01-01T00:00:00Z');
    await setDefaultPolicy({ schedules: [{ name: 'm', every: '1m', keep: 3 }] });
    const vms = [vmEntry(site, 'a'), vmEntry(site, 'b')];
    await register(vms);
    const jobs = await collect(site);
    const missed: VmferryEvent[] = [];
    const sub = admin.nc.subscribe(eventSubject('schedule.missed'), { callback: (_e, m) => void missed.push(m.json<VmferryEvent>()) });
    const tickUntilLeading = (r: RunningScheduler): Promise<number> =>
      waitFor(`${r.id} to tick as leader`, async () => (await r.s.tick()) !== undefined, LEASE_TTL_MS + 6000);
    const missedOf = (vm: VmEntry): number[] => missed.filter((e) => e.vmId === vm.vmId).map((e) => Number(e['missedSlots']));
    try {
      const x = await startScheduler('sched-mx', TIMING, clock);
      const y = await startScheduler('sched-my', TIMING, clock);
      const [leader] = leaderOf([x, y]) as [RunningScheduler];
      const follower = leader === x ? y : x;
      await tickUntilLeading(leader);
      await jobsForEach(jobs, vms, 1);

      // Kill the leader; two slots (00:01, 00:02) pass with nobody leading; the follower takes over at 00:03:30.
      await leader.c.nc.close();
      now = slot0 + 3 * MINUTE + 30_000;
      await tickUntilLeading(follower);
      await waitFor('a schedule.missed of each VM', () => vms.every((vm) => missedOf(vm).length >= 1));
      for (const vm of vms) {
        assert.deepEqual(missedOf(vm), [2], `${vm.name}: missed slots reported`);
        assert.deepEqual(
          jobsOf(jobs, vm.vmId).map((r) => t(r.job.slot)),
          [t(slot0), t(slot0 + 3 * MINUTE)],
          `${vm.name}: only the latest slot after the takeover`,
        );
      }
      const event = missed[0] as VmferryEvent;
      assert.equal(event.site, site);
      assert.equal(event['schedule'], 'm');

      // Every scheduler stopped; a new one starts 3 slots later (00:04, 00:05 skipped).
      for (const r of [...schedulers]) await stopScheduler(r);
      now = slot0 + 6 * MINUTE + 1000;
      const z = await startScheduler('sched-mz', TIMING, clock);
      await tickUntilLeading(z);
      await waitFor('a second schedule.missed of each VM', () => vms.every((vm) => missedOf(vm).length >= 2));
      for (const vm of vms) assert.deepEqual(missedOf(vm), [2, 2], `${vm.name}: missed slots after the restart`);
      await jobsForEach(jobs, vms, 3);

      // A VM that appears while the leader runs counts from the leader's last complete tick, not
      // from the last slot move recorded in KV (00:06:01): its own 10 s schedule's first job
      // (00:06:40) reports nothing missed; its next (00:07:00, 00:06:50 skipped) one slot.
      now = slot0 + 6 * MINUTE + 41_000;
      await waitFor('a tick that publishes nothing', async () => (await z.s.tick())?.published === 0);
      const late = vmEntry(site, 'late');
      await setOverride(late.vmId, { mode: 'replace', schedules: [{ name: 'ten', every: '10s', keep: 2 }] });
      await register([late]);
      await waitFor('the leader to see the new VM', () => [...z.s.view.vms.values()].some((v) => v.vmId === late.vmId) && z.s.view.overrides.has(late.vmId));
      now = slot0 + 6 * MINUTE + 45_000;
      await waitFor('a tick at 00:06:45', async () => (await z.s.tick()) !== undefined);
      now = slot0 + 7 * MINUTE + 5000;
      await waitFor('a tick at 00:07:05', async () => (await z.s.tick()) !== undefined);
      await waitFor('a schedule.missed of the new VM', () => missedOf(late).length >= 1);
      assert.deepEqual(missedOf(late), [1], 'the new VM: nothing missed before its first job');
      assert.deepEqual(
        jobsOf(jobs, late.vmId).map((r) => t(r.job.slot)),
        [t(slot0 + 6 * MINUTE + 40_000), t(slot0 + 7 * MINUTE)],
      );
      assertNoDoubles(jobs);
    } finally {
      sub.unsubscribe();
    }
  });

  test('replicas and excluded VMs get no jobs; a per-VM override changes only that VM; changes apply live', async () => {
    const site = 'pol';
    const drSite = 'pol-dr';
    await setDefaultPolicy({
      schedules: [{ name: 'reg', every: '2s', keep: 3 }],
      replication: [{ site: drSite, schedules: ['reg'], keep: 5 }],
    });
    const normal = vmEntry(site, 'normal');
    const replicaHere = vmEntry(site, 'replica', { replicaOf: 'some-source' });
    const excluded = vmEntry(site, 'excluded');
    const custom = vmEntry(site, 'custom');
    // The replica of `normal` at the DR site: same VM id, never scheduled.
    const replicaThere: VmEntry = { ...normal, site: drSite, replicaOf: normal.vmId };
    // A VM living at the DR site (a clone of the replica): the default's target is its own site.
    const cloneThere = vmEntry(drSite, 'clone');
    await register([normal, replicaHere, excluded, custom, replicaThere, cloneThere]);
    await setOverride(excluded.vmId, { exclude: true });
    await setOverride(custom.vmId, { mode: 'replace', schedules: [{ name: 'fast', every: '1s', keep: 2, consistency: 'vm' }] });
    const jobs = await collect(site);
    const drJobs = await collect(drSite);
    await startScheduler('sched-pol');
    // Five 1 s slots of custom: in that time `normal`, on 2 s slots, has two or three.
    await waitFor(
      '2 jobs of normal, 5 of custom and 1 of the clone at the DR site',
      () => jobsOf(jobs, normal.vmId).length >= 2 && jobsOf(jobs, custom.vmId).length >= 5 && drJobs.jobs.length >= 1,
    );

    assertNoDoubles(jobs);
    assert.deepEqual(jobsOf(jobs, replicaHere.vmId), [], 'a replica is never scheduled');
    assert.deepEqual(jobsOf(jobs, excluded.vmId), [], 'an excluded VM gets no jobs');
    assert.deepEqual([...new Set(drJobs.jobs.map((r) => r.job.vmName))], ['clone'], 'nothing for the replica at the DR site');
    assert.deepEqual(
      drJobs.jobs.map((r) => r.job.replicateTo),
      drJobs.jobs.map(() => []),
      'a VM at the DR site never replicates to its own site',
    );
    const normalJobs = jobsOf(jobs, normal.vmId);
    const customJobs = jobsOf(jobs, custom.vmId);
    assert.ok(normalJobs.length >= 2 && normalJobs.length <= 4, `normal: ${normalJobs.length} jobs of 2 s slots, custom ${customJobs.length} of 1 s`);
    assert.ok(customJobs.length >= 4 && customJobs.length <= 6, `custom: ${customJobs.length} jobs of 1 s slots, normal ${normalJobs.length} of 2 s`);
    assert.deepEqual([...new Set(normalJobs.map((r) => r.job.schedule))], ['reg']);
    assert.deepEqual([...new Set(customJobs.map((r) => r.job.schedule))], ['fast']);
    assertConsecutive(normalJobs, 2 * SECOND);
    assertConsecutive(customJobs, SECOND);
    const normalJob = normalJobs[0]?.job;
    assert.deepEqual(normalJob && { keep: normalJob.keep, consistency: normalJob.consistency, replicateTo: normalJob.replicateTo }, {
      keep: 3,
      consistency: 'crash',
      replicateTo: [{ site: drSite, keep: 5 }],
    });
    const customJob = customJobs[0]?.job;
    // Only 'reg' replicates; 'fast' is the custom VM's own schedule.
    assert.deepEqual(customJob && { keep: customJob.keep, consistency: customJob.consistency, replicateTo: customJob.replicateTo }, {
      keep: 2,
      consistency: 'vm',
      replicateTo: [],
    });

    // Live: exclude `normal`, include `excluded` again.
    const changedAt = Date.now();
    await setOverride(normal.vmId, { exclude: true });
    await setOverride(excluded.vmId, undefined);
    // Two slots of the re-included VM: long enough for a job of the excluded one to show.
    await waitFor('2 jobs of the re-included VM', () => jobsOf(jobs, excluded.vmId).length >= 2);
    const lateNormal = jobsOf(jobs, normal.vmId).filter((r) => r.storedAtMs > changedAt + 500);
    assert.deepEqual(
      lateNormal.map((r) => t(r.job.slot)),
      [],
      'no jobs for a VM after it was excluded',
    );
    const nowIncluded = jobsOf(jobs, excluded.vmId);
    assert.ok(nowIncluded.length >= 2, `the no longer excluded VM got ${nowIncluded.length} jobs`);
    assert.ok(nowIncluded.every((r) => r.job.schedule === 'reg' && r.storedAtMs > changedAt));
    assertNoDoubles(jobs);
  });

  test('a stored policy with an unknown key is refused: the last good one stays in force, a policy.rejected event names the key', async () => {
    const site = 'strict';
    const rejected: VmferryEvent[] = [];
    const sub = admin.nc.subscribe(eventSubject('policy.rejected'), {
      callback: (_e, m) => void rejected.push(m.json<VmferryEvent>()),
    });
    try {
      await setDefaultPolicy({ schedules: [{ name: 'good', every: '1s', keep: 3 }] });
      const vms = [vmEntry(site, 'a')];
      await register(vms);
      const jobs = await collect(site);
      await startScheduler('sched-strict');
      await jobsForEach(jobs, vms, 1);

      // A typo stored straight into KV (as an older CLI or a hand edit would).
      await admin.policies.put(DEFAULT_POLICY_KEY, JSON.stringify({ schedules: [{ name: 'typo', every: '1s', keep: 3, retension: 5 }] }));
      await waitFor('a policy.rejected event', () => rejected.length >= 1);
      const event = rejected[0] as VmferryEvent;
      assert.equal(event['key'], DEFAULT_POLICY_KEY);
      assert.match(String(event['problems']), /schedules\[0\]\.retension: unknown key/);
      assert.match(String(event['inForce']), /revision \d+/);
      const rejectedAt = Date.now();
      await jobsForEach(jobs, vms, 2, (r) => r.storedAtMs > rejectedAt + 100);
      assert.deepEqual([...new Set(jobs.jobs.map((r) => r.job.schedule))], ['good'], 'the refused policy never became the policy in force');

      // A scheduler that starts with the bad policy stored finds the last good revision in the history.
      for (const r of [...schedulers]) await stopScheduler(r);
      const restartedAt = Date.now();
      await startScheduler('sched-strict-2');
      await jobsForEach(jobs, vms, 2, (r) => r.storedAtMs > restartedAt);
      assert.deepEqual([...new Set(jobs.jobs.map((r) => r.job.schedule))], ['good']);
    } finally {
      sub.unsubscribe();
    }
  });

  test('NATS restart mid-run: the scheduler reconnects; slots go on with no doubles, the outage caught up with one job', async () => {
    const site = 'restart';
    const every = SECOND;
    await setDefaultPolicy({ schedules: [{ name: 's1', every: '1s', keep: 3 }] });
    const vms = [vmEntry(site, 'a'), vmEntry(site, 'b')];
    await register(vms);
    const jobs = await collect(site);
    const s = await startScheduler('sched-r', { ...TIMING, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    assert.equal(s.s.isLeader, true);
    await jobsForEach(jobs, vms, 3);

    const downAt = Date.now();
    await server.kill();
    await sleep(2 * SECOND);
    await server.restart();
    const upAt = Date.now();
    const recoverMs = await waitFor('jobs after the restart', () => vms.every((vm) => jobsOf(jobs, vm.vmId).some((r) => r.storedAtMs > upAt)), 20_000);
    // Leading for good: requests made during the outage have timed out, and no lease change
    // for 3 s. (A heartbeat that hung during the outage fails late and deposes the leader
    // once; see packages/nats/test/leader.test.ts.)
    await waitFor(
      'stable leadership',
      () => Date.now() > upAt + REQUEST_TIMEOUT_MS + 2 * SECOND && s.s.isLeader && Date.now() - lastLeaseChange(s) > 3 * SECOND,
      30_000,
    );
    const stableFrom = lastLeaseChange(s);
    const changes = s.log.filter((l) => /leader now|follower now/.test(l));
    console.log(
      `# NATS restart: down ${upAt - downAt} ms; jobs again ${recoverMs} ms after the server was back; lease changes: ${changes.length - 1} after the first` +
        ` (${changes.map((l) => l.slice(11, 23) + (l.includes('leader now') ? ' L' : ' F')).join(', ')})`,
    );

    assertNoDoubles(jobs);
    for (const vm of vms) {
      const mine = jobsOf(jobs, vm.vmId, 's1');
      const beforeDown = mine.filter((r) => r.storedAtMs < downAt);
      const afterStable = mine.filter((r) => r.storedAtMs > stableFrom);
      assert.ok(beforeDown.length >= 2, `${vm.name}: ${beforeDown.length} jobs before the outage`);
      assert.ok(afterStable.length >= 3, `${vm.name}: ${afterStable.length} jobs after the outage`);
      // No burst of missed slots: every job after the outage is for the latest slot.
      assertLatestSlotOnly(mine, every);
      // Slots may be missing from the outage until jobs flowed again (caught up with one job).
      assertConsecutive(mine, every, { from: downAt - every, to: Math.max(stableFrom, upAt + recoverMs) + every });
    }
  });

  test('1,000 VMs: every job of one slot is published in one tick', async () => {
    const site = 'bulk';
    const count = 1000;
    // A 1 h interval: one slot for the whole test.
    await setDefaultPolicy({ schedules: [{ name: 'hourly', every: '1h', keep: 24 }] });
    const vms = Array.from({ length: count }, (_, i) => vmEntry(site, `vm-${i}`));
    await register(vms);
    const s = await startScheduler('sched-bulk');
    await waitFor('the first tick', () => s.reports.length > 0, 30_000);
    const report = s.reports[0] as TickReport;
    console.log(`# 1,000 VMs: ${report.published} jobs published in ${report.ms.toFixed(0)} ms (${report.duplicates} duplicates)`);
    assert.equal(report.published + report.duplicates, count);
    assert.equal(report.duplicates, 0);
    const subject = snapshotJobSubject(site);
    const stored = async (): Promise<number> => (await admin.jsm.streams.info(JOBS_STREAM, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    await waitFor('1,000 stored jobs', async () => (await stored()) >= count, 10_000);
    // The next ticks publish nothing (same slot), unless the hour just turned: two more, driven here.
    for (let i = 0; i < 2; i++) await waitFor('another tick', async () => (await s.s.tick()) !== undefined);
    const slot = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const extra = s.reports.slice(1).reduce((n, r) => n + r.published, 0);
    if (slot === Math.floor((Date.now() - 5000) / 3_600_000) * 3_600_000) assert.equal(extra, 0);
    assert.equal(await stored(), count + extra);
    // One job per VM.
    const jobs = await collect(site);
    await waitFor('all jobs consumed', () => jobs.jobs.length >= count + extra, 15_000);
    assert.equal(new Set(jobs.jobs.map((r) => `${r.job.vmId}/${r.job.slot}`)).size, jobs.jobs.length);
    assert.equal(new Set(jobs.jobs.map((r) => r.job.vmId)).size, count);
  });
});
