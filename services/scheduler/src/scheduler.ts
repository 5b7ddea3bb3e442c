/*
 * The scheduler: turns the default policy, per-VM overrides and the VM inventory into
 * snapshot jobs, one per (VM, schedule, slot).
 *
 * Only the lease holder publishes (LeaderLease); a follower keeps its watches warm and takes
 * over within the lease TTL. Each job's message id is its slot (slotJobId), so a job that two
 * schedulers, a restart or a failover publish twice is stored once, and the storage node
 * also skips a slot it already snapshotted. After downtime only the latest slot is published:
 * one snapshot now, not one per missed slot (and a schedule.missed event says how many).
 * The default policy's `verify` schedule becomes one verify job per site with a node in the
 * registry and slot (message id verifyJobId), published the same way.
 */
import { effectivePolicy, IdSource, latestSlot, nextSlot, parseDuration, slotJobId, verifyJobId, type ProtectionPolicy, type Schedule } from '@vmferry/core';
import {
  LeaderLease,
  publishEvent,
  publishJob,
  SCHEDULER_LEADER_KEY,
  SCHEDULER_PROGRESS_KEY,
  snapshotJobSubject,
  verifyJobSubject,
  type Coordination,
  type SchedulerProgress,
  type SnapshotJob,
  type VerifyJob,
  type VmEntry,
} from '@vmferry/nats';
import { PolicyView } from './policy-view.js';

export const TICK_MS = 500;
/** Jobs published concurrently (PubAcks awaited in parallel). */
const PUBLISH_CONCURRENCY = 512;

export interface SchedulerOptions {
  readonly id?: string;
  /** How often due slots are looked for; default TICK_MS. */
  readonly tickMs?: number;
  /** The lease heartbeat: a third of the leader bucket's TTL (CoordinationTiming.leaderTtlMs). */
  readonly leaseBeatMs?: number;
  /** The clock slots are computed from; default Date.now. */
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

export interface TickReport {
  readonly published: number;
  readonly duplicates: number;
  readonly ms: number;
}

export class Scheduler {
  readonly id: string;
  readonly view: PolicyView;
  private readonly lease: LeaderLease;
  private readonly published = new Map<string, number>();
  /** Set on taking the lease: read the predecessor's progress before the next tick. */
  private progressUnknown = true;
  /** The newest complete tick known (ours or a predecessor's, from SCHEDULER_PROGRESS_KEY). */
  private progressMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** The tick in flight, so `stop()` can let it finish before the connection goes. */
  private inflight: Promise<TickReport | undefined> | undefined;
  private stopping = false;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  /** Called after every tick that published something (benchmarks and tests listen). */
  onTick: (r: TickReport) => void = () => undefined;

  constructor(
    private readonly c: Coordination,
    private readonly options: SchedulerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.id = options.id ?? `scheduler-${new IdSource({ now: this.now }).next()}`;
    this.log = options.log ?? (() => undefined);
    this.view = new PolicyView(c, (line) => this.log(`${this.id}: ${line}`));
    const onChange = (leading: boolean): void => {
      this.log(`${this.id}: ${leading ? 'leader now' : 'follower now'}`);
      // A new leader does not know what its predecessor published: republish latest slots
      // (message ids make that harmless), and count the slots skipped since the predecessor's
      // last complete tick (schedule.missed).
      if (leading) {
        this.published.clear();
        this.progressUnknown = true;
      }
    };
    this.lease = new LeaderLease(c.leader, SCHEDULER_LEADER_KEY, this.id, onChange, options.leaseBeatMs, this.now);
  }

  get isLeader(): boolean {
    return this.lease.isLeader;
  }

  async start(): Promise<void> {
    await this.view.start();
    await this.lease.start();
    this.timer = setInterval(() => void this.tick(), this.options.tickMs ?? TICK_MS);
    void this.tick();
  }

  /**
   * Stops ticking, lets a tick in flight finish (its publishes are acknowledged and reported,
   * not cut off by the connection closing under them), then releases the lease.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.inflight;
    this.view.stop();
    await this.lease.stop();
  }

  /** One pass: publish every due slot not yet published by this leader. */
  tick(now = this.now()): Promise<TickReport | undefined> {
    if (!this.lease.isLeader || this.ticking || this.stopping) return Promise.resolve(undefined);
    this.ticking = true;
    const run = this.runTick(now);
    this.inflight = run;
    return run;
  }

  private async runTick(now: number): Promise<TickReport | undefined> {
    const started = performance.now();
    let stored = 0;
    let duplicates = 0;
    try {
      if (this.progressUnknown) {
        this.progressMs = await this.readProgress();
        this.progressUnknown = false;
      }
      const due: { job: SnapshotJob; key: string; missed: number }[] = [];
      for (const vm of this.view.vms.values()) {
        if (vm.replicaOf) continue; // replicas follow their source, never their own schedules
        // Per-site coordination: other sites' VMs (sourced into our registry) are scheduled by
        // their own site's schedulers, which go on without us.
        if (this.c.site !== undefined && vm.site !== this.c.site) continue;
        // A target equal to the VM's own site is dropped (one policy for both sites of a pair).
        const policy = effectivePolicy(this.view.defaultPolicy, this.view.overrides.get(vm.vmId), vm.site);
        if (!policy) continue;
        for (const s of policy.schedules) {
          const slot = latestSlot(s, now, policy.timeZone);
          if (slot === undefined) continue;
          const key = `${vm.vmId}/${s.name}`;
          const last = this.published.get(key);
          if (last === slot) continue;
          // Not published by this leader yet: the slot the last complete tick (maybe a predecessor's) published.
          const before = last ?? (this.progressMs === undefined ? undefined : latestSlot(s, this.progressMs, policy.timeZone));
          const missed = before === undefined || before >= slot ? 0 : missedSlots(s, before, slot, policy.timeZone);
          due.push({ job: jobFor(vm, s, slot, policy), key, missed });
        }
      }
      for (let i = 0; i < due.length; i += PUBLISH_CONCURRENCY) {
        await Promise.all(
          due.slice(i, i + PUBLISH_CONCURRENCY).map(async (d) => {
            const r = await publishJob(this.c, snapshotJobSubject(d.job.site), d.job, slotJobId(d.job.vmId, d.job.schedule, d.job.slot));
            if (r.duplicate) duplicates++;
            else stored++;
            this.published.set(d.key, d.job.slot);
            if (d.missed > 0) {
              await publishEvent(
                this.c,
                'schedule.missed',
                {
                  site: d.job.site,
                  vmId: d.job.vmId,
                  vmName: d.job.vmName,
                  schedule: d.job.schedule,
                  missedSlots: d.missed,
                },
                `schedule.missed.${d.job.vmId}.${d.job.schedule}.${d.job.slot}`,
              ); // one event per gap, however many leaders saw it
            }
          }),
        );
      }
      const verify = await this.publishVerifyJobs(now);
      stored += verify.stored;
      duplicates += verify.duplicates;
      // A complete tick: every latest slot at `now` is published. Recorded in KV only when a
      // slot moved (a tick that published nothing changes no schedule's latest slot), here
      // always, so a VM or schedule that appears later does not count slots from long ago.
      if (this.progressMs === undefined || now > this.progressMs) {
        if (due.length + verify.due > 0) {
          const progress: SchedulerProgress = { scheduler: this.id, tickMs: now };
          await this.c.state.put(SCHEDULER_PROGRESS_KEY, JSON.stringify(progress));
        }
        this.progressMs = now;
      }
      const report = { published: stored, duplicates, ms: performance.now() - started };
      if (due.length + verify.due > 0) this.onTick(report);
      return report;
    } catch (e) {
      this.log(`${this.id}: tick failed: ${(e as Error).message}`);
      // What this tick did store before failing is still reported (counts stay true).
      if (stored + duplicates > 0) this.onTick({ published: stored, duplicates, ms: performance.now() - started });
      return undefined;
    } finally {
      this.ticking = false;
    }
  }

  /** The default policy's verify schedule: its latest slot for every site, once per leader and slot. */
  private async publishVerifyJobs(now: number): Promise<{ due: number; stored: number; duplicates: number }> {
    const policy = this.view.defaultPolicy;
    const out = { due: 0, stored: 0, duplicates: 0 };
    if (!policy.verify) return out;
    const slot = latestSlot(policy.verify, now, policy.timeZone);
    if (slot === undefined) return out;
    // Per-site coordination: each site's own schedulers verify it.
    const due = [...this.view.sites].filter((site) => (this.c.site === undefined || site === this.c.site) && this.published.get(`verify/${site}`) !== slot);
    out.due = due.length;
    await Promise.all(
      due.map(async (site) => {
        const job: VerifyJob = { kind: 'verify', site, slot };
        const r = await publishJob(this.c, verifyJobSubject(site), job, verifyJobId(site, slot));
        if (r.duplicate) out.duplicates++;
        else out.stored++;
        this.published.set(`verify/${site}`, slot);
      }),
    );
    return out;
  }

  /** The predecessor's last complete tick; undefined when no scheduler ever recorded one. */
  private async readProgress(): Promise<number | undefined> {
    const e = await this.c.state.get(SCHEDULER_PROGRESS_KEY);
    if (!e || e.operation !== 'PUT') return undefined;
    // A damaged value must not stop scheduling: it counts as no record (no missed slots reported).
    let p: Partial<SchedulerProgress> | null;
    try {
      p = e.json<Partial<SchedulerProgress> | null>();
    } catch {
      return undefined;
    }
    return typeof p?.tickMs === 'number' && Number.isFinite(p.tickMs) ? p.tickMs : undefined;
  }
}

function jobFor(vm: VmEntry, s: Schedule, slot: number, policy: ProtectionPolicy): SnapshotJob {
  return {
    keep: s.keep,
    ...(s.maxAge ? { maxAgeMs: parseDuration(s.maxAge) } : {}),
    replicateTo: (policy.replication ?? [])
      .filter((t) => t.schedules === undefined || t.schedules.includes(s.name))
      .map((t) => ({ site: t.site, ...(t.keep === undefined ? {} : { keep: t.keep }) })),
    kind: 'snapshot',
    vmId: vm.vmId,
    vmName: vm.name,
    site: vm.site,
    schedule: s.name,
    slot,
    consistency: s.consistency ?? 'crash',
    ...(s.requireVmConsistency ? { requireVmConsistency: true } : {}),
  };
}

/** Slots strictly between `last` and `slot` (skipped while no scheduler ran). */
function missedSlots(s: Schedule, last: number, slot: number, timeZone?: string): number {
  let n = 0;
  for (let t = nextSlot(s, last, timeZone); t !== undefined && t < slot && n < 10_000; t = nextSlot(s, t, timeZone)) n++;
  return n;
}
