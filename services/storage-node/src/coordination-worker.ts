/*
 * The storage node on the coordination plane (NATS): it keeps its VMs in the registry the
 * scheduler reads, consumes its site's snapshot jobs (quiescing when asked, applying the
 * schedule's retention, queueing replication) and its site's scheduled verify jobs
 * (verify-job.ts), and reports events.
 *
 * Idempotent by slot: a job whose slot already has a snapshot (a redelivery after a crash
 * between snapshot and ack) takes no second one; replication jobs are re-queued under the
 * same message ids, so duplicates collapse.
 */
import { context, trace, type Context } from '@opentelemetry/api';
import { expiredSnapshots, type SnapshotRecord, type VmRecord } from '@vmferry/core';
import {
  openCoordination,
  publishEvent,
  publishJob,
  registrySiteKey,
  registrySiteVmKeys,
  registryVmKey,
  replicateJobSubject,
  runWorker,
  snapshotJobSubject,
  syncPeerSources,
  type Coordination,
  type ReplicateJob,
  type SnapshotJob,
  type VmEntry,
  type WorkerHandle,
} from '@vmferry/nats';
import type { StorageEngine } from './engine.js';
import { withQuiesce, type Quiescer } from './quiesce.js';
import { startVerifyWorker } from './verify-job.js';

const REGISTRY_SYNC_MS = 1000;
/** Snapshot jobs run at once (different VMs; one VM's snapshots serialise on its lock). */
const SNAPSHOT_CONCURRENCY = 32;
const tracer = trace.getTracer('vmferry-storage-node');

export interface CoordinationOptions {
  readonly natsUrl: string;
  readonly site: string;
  /** This node's API address, published so replicators and the CLI can find it. */
  readonly nodeAddress: string;
  readonly quiescerFor?: (vmName: string) => Quiescer | undefined;
  readonly log?: (line: string) => void;
}

export const scheduleOrigin = (schedule: string, slot: number): string => `schedule:${schedule}@${slot}`;

export class NodeCoordinator {
  private synced = new Map<string, string>();
  /** The peer sites the local streams were last set to source from (per-site coordination). */
  private sourcedPeers: string | undefined;
  private readonly perVm = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private worker: WorkerHandle | undefined;
  private verifyWorker: WorkerHandle | undefined;

  private constructor(
    readonly c: Coordination,
    private readonly engine: StorageEngine,
    private readonly o: CoordinationOptions,
  ) {}

  static async start(engine: StorageEngine, o: CoordinationOptions): Promise<NodeCoordinator> {
    const c = await openCoordination(o.natsUrl, `vmferry-node-${o.site}`);
    if (c.site !== undefined && c.site !== o.site) {
      await c.close();
      throw new Error(
        `the NATS server at ${o.natsUrl} is site ${c.site}'s (its JetStream domain), but this node is site ${o.site}: connect each node to its own site's NATS server`,
      );
    }
    const n = new NodeCoordinator(c, engine, o);
    await n.syncSources();
    await c.registry.put(registrySiteKey(o.site), JSON.stringify({ site: o.site, nodeAddress: o.nodeAddress, updatedAtMs: Date.now() }));
    for await (const key of await c.registry.keys(registrySiteVmKeys(o.site))) n.synced.set(key, '');
    await n.syncRegistry();
    n.timer = setInterval(() => void n.syncRegistry().catch((e: unknown) => o.log?.(`registry sync failed: ${String(e)}`)), REGISTRY_SYNC_MS);
    n.worker = await runWorker<SnapshotJob>(
      c,
      `snapshot-${o.site}`,
      snapshotJobSubject(o.site),
      (job, ctx) => n.snapshotJob(job, ctx),
      (e, job) => o.log?.(`snapshot job for ${job?.vmName ?? '?'} failed: ${(e as Error).message}`),
      SNAPSHOT_CONCURRENCY,
    );
    n.verifyWorker = await startVerifyWorker(c, engine, o.site, o.log);
    return n;
  }

  /**
   * Per-site coordination: the local streams source from every site this node knows (`site
   * add`), so their VMs, events and replication jobs for us arrive here (site-sources.ts).
   */
  async syncSources(): Promise<void> {
    if (this.c.site === undefined) return;
    const peers = (await this.engine.listSites()).map((s) => s.name).sort();
    const signature = peers.join(',');
    if (signature === this.sourcedPeers) return;
    if (await syncPeerSources(this.c, peers)) this.o.log?.(`coordination: sourcing from ${peers.length ? peers.join(', ') : 'no other site'}`);
    this.sourcedPeers = signature;
  }

  /** Puts new or changed local VMs into the registry and removes deleted ones. */
  async syncRegistry(): Promise<void> {
    await this.syncSources();
    const seen = new Set<string>();
    for (const vm of this.engine.listVms()) {
      const key = registryVmKey(this.o.site, vm.id);
      seen.add(key);
      // A fenced copy is published like a replica of its new owner: the scheduler runs its
      // policy where the VM is owned (a promoted replica loses the mark and is scheduled there).
      const follows = vm.replicaOf ?? vm.fencedBy?.site;
      const entry: VmEntry = { vmId: vm.id, name: vm.name, site: this.o.site, ...(follows ? { replicaOf: follows } : {}), updatedAtMs: Date.now() };
      const signature = `${vm.name}|${follows ?? ''}`;
      if (this.synced.get(key) === signature) continue;
      await this.c.registry.put(key, JSON.stringify(entry));
      this.synced.set(key, signature);
    }
    for (const key of [...this.synced.keys()]) {
      if (!seen.has(key)) {
        await this.c.registry.delete(key);
        this.synced.delete(key);
      }
    }
  }

  /** Jobs of one VM run one at a time (the slot check and the snapshot must not interleave). */
  private snapshotJob(job: SnapshotJob, parent: Context): Promise<void> {
    const previous = this.perVm.get(job.vmId) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.runSnapshotJob(job, parent));
    this.perVm.set(job.vmId, run);
    return run.finally(() => {
      if (this.perVm.get(job.vmId) === run) this.perVm.delete(job.vmId);
    });
  }

  private async runSnapshotJob(job: SnapshotJob, parent: Context): Promise<void> {
    await tracer.startActiveSpan(`snapshot ${job.vmName}/${job.schedule}`, {}, parent, async (span) => {
      try {
        let vm: VmRecord;
        try {
          vm = this.engine.getVm(job.vmId);
        } catch {
          return; // deleted since the job was queued: nothing to protect
        }
        if (vm.replicaOf || vm.fencedBy || vm.importing) return; // a fenced copy takes no snapshots
        const origin = scheduleOrigin(job.schedule, job.slot);
        let snapshot = this.engine.listSnapshots(vm.id).find((s) => s.origin === origin);
        if (!snapshot) {
          const r = await withQuiesce(this.o.quiescerFor?.(vm.name), vm, job.consistency, job.requireVmConsistency ?? false, (consistency, note) =>
            this.engine.createSnapshot(vm.id, { origin, consistency, ...(note ? { consistencyNote: note } : {}) }),
          );
          snapshot = r.value;
          if (job.consistency === 'vm' && r.consistency === 'crash') {
            await publishEvent(this.c, 'quiesce.fallback', { site: this.o.site, vmId: vm.id, vmName: vm.name, snapshotId: snapshot.id, reason: r.note });
          }
          await publishEvent(this.c, 'snapshot.created', {
            site: this.o.site,
            vmId: vm.id,
            vmName: vm.name,
            snapshotId: snapshot.id,
            schedule: job.schedule,
            slot: job.slot,
            consistency: snapshot.consistency,
            dirtyBlocks: snapshot.dirtyBlocks,
          });
        }
        await this.applyRetention(vm, job);
        await this.queueReplication(vm, snapshot, job, context.active());
      } finally {
        span.end();
      }
    });
  }

  /** Keep-N and maximum age for the job's schedule (the core's rules); never a replication pair's base. */
  private async applyRetention(vm: VmRecord, job: SnapshotJob): Promise<void> {
    const rule = { schedule: job.schedule, keep: job.keep, ...(job.maxAgeMs === undefined ? {} : { maxAgeMs: job.maxAgeMs }) };
    const doomed = expiredSnapshots(this.engine.listSnapshots(vm.id), rule, Date.now());
    for (const s of doomed) {
      try {
        await this.engine.deleteSnapshot(`${vm.name}@${s.id}`);
        await publishEvent(this.c, 'snapshot.deleted', {
          site: this.o.site,
          vmId: vm.id,
          vmName: vm.name,
          snapshotId: s.id,
          reason: `retention of schedule ${job.schedule}`,
        });
      } catch {
        // A replication base, or a snapshot still being replicated, is kept; a later run retries.
      }
    }
  }

  private async queueReplication(vm: VmRecord, snapshot: SnapshotRecord, job: SnapshotJob, ctx: Context): Promise<void> {
    for (const t of job.replicateTo) {
      const repl: ReplicateJob = {
        kind: 'replicate',
        vmId: vm.id,
        vmName: vm.name,
        snapshotId: snapshot.id,
        sourceSite: this.o.site,
        targetSite: t.site,
        ...(t.keep === undefined ? {} : { keep: t.keep }),
      };
      await this.engine.markReplicationPending(vm.id, snapshot.id, t.site);
      const r = await publishJob(this.c, replicateJobSubject(t.site), repl, `repl.${vm.id}.${snapshot.id}.${t.site}`, ctx);
      if (!r.duplicate) {
        await publishEvent(this.c, 'replication.queued', { site: this.o.site, vmId: vm.id, vmName: vm.name, snapshotId: snapshot.id, targetSite: t.site });
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.worker?.stop();
    await this.verifyWorker?.stop();
    await this.c.close();
  }
}
