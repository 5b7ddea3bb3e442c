/*
 * The replicator as a service: consumes the replication jobs addressed to its site from
 * NATS and runs sessions, one at a time per VM (one cursor per source/target pair and VM)
 * and at most `sessionsPerLink` per source link (bottleneck), each link's bytes shaped by its
 * calendar. Reports progress, done and failed events, records each VM's replication state
 * (for RPO) and applies the replica's remote retention.
 */
import Bottleneck from 'bottleneck';
import { context, trace } from '@opentelemetry/api';
import {
  openCoordination,
  publishEvent,
  replicateJobSubject,
  rpoKey,
  runWorker,
  type ReplicateJob,
  type ReplicationState,
  type WorkerHandle,
} from '@vmferry/nats';
import type { SiteRecord } from '@vmferry/core';
import { connectStorageNode, storageNodeTarget, type NodeCredentials, type TlsFiles } from '@vmferry/grpc-edge';
import { PageIndexCache } from './page-index.js';
import { replicateFromSite } from './replicate-from-site.js';
import { createReplicatorMetrics, type SessionOutcome } from './metrics.js';

const tracer = trace.getTracer('vmferry-replicator');
const PROGRESS_EVERY_MS = 1000;

export interface ReplicatorServiceOptions {
  readonly natsUrl: string;
  /** The JetStream domain holding vmferry's streams (a leaf-node site); default: none. */
  readonly jsDomain?: string;
  readonly site: string;
  readonly nodeAddress: string;
  /** Credentials for the local node's API when it requires them (--api-token-file / --api-tls there). */
  readonly nodeCredentials?: NodeCredentials;
  readonly tls: TlsFiles;
  readonly bindAddress?: string;
  readonly streams?: number;
  readonly sessionsPerLink?: number;
  readonly log?: (line: string) => void;
  /** The clock for progress pacing and the recorded replication time; default Date.now. */
  readonly now?: () => number;
}

/**
 * Starts consuming the replication jobs addressed to `o.site`.
 * @throws what openCoordination throws when NATS cannot be reached or set up.
 */
export async function startReplicatorService(o: ReplicatorServiceOptions): Promise<{ stop(): Promise<void> }> {
  const c = await openCoordination(o.natsUrl, `vmferry-replicator-${o.site}`, o.jsDomain);
  if (c.site !== undefined && c.site !== o.site) {
    await c.close();
    throw new Error(
      `the NATS server at ${o.natsUrl} is site ${c.site}'s (its JetStream domain), but this replicator is site ${o.site}: connect it to its own site's NATS server`,
    );
  }
  const node = connectStorageNode(o.nodeAddress, o.nodeCredentials);
  // One target port for the node client's lifetime, and the base page indexes kept for it.
  const target = storageNodeTarget(node);
  const pageIndexes = new PageIndexCache(target);
  const links = new Bottleneck.Group({ maxConcurrent: o.sessionsPerLink ?? 2 });
  const perVm = new Map<string, Promise<unknown>>();
  const log = o.log ?? (() => undefined);
  const now = o.now ?? Date.now;
  const meters = createReplicatorMetrics(o.site);

  const replicate = async (job: ReplicateJob): Promise<SessionOutcome> => {
    let lastProgress = 0;
    const result = await replicateFromSite({
      node,
      nodeAddress: o.nodeAddress,
      localSite: o.site,
      sourceSite: job.sourceSite,
      ref: `${job.vmId}@${job.snapshotId}`,
      tls: o.tls,
      target,
      pageIndexes,
      bindFor: (src: SiteRecord) => o.bindAddress || src.bindAddress || undefined,
      ...(o.streams ? { streams: o.streams } : {}),
      onProgress: (p) => {
        if (p.phase !== 'data' || now() - lastProgress < PROGRESS_EVERY_MS) return;
        lastProgress = now();
        void publishEvent(c, 'replication.progress', {
          site: o.site,
          vmId: job.vmId,
          vmName: job.vmName,
          snapshotId: job.snapshotId,
          bytesDone: p.bytesDone,
          bytesTotal: p.bytesTotal,
        }).catch(() => undefined);
      },
    });
    const state: ReplicationState = {
      vmId: job.vmId,
      vmName: job.vmName,
      sourceSite: job.sourceSite,
      targetSite: o.site,
      snapshotId: job.snapshotId,
      snapshotCreatedAtMs: result.snapshot.createdAtMs,
      replicatedAtMs: now(),
    };
    await c.state.put(rpoKey(job.vmId, o.site), JSON.stringify(state));
    await publishEvent(c, 'replication.done', {
      site: o.site,
      vmId: job.vmId,
      vmName: job.vmName,
      snapshotId: job.snapshotId,
      sourceSite: job.sourceSite,
      bytesReceived: result.bytesReceived,
      chunksReceived: result.chunksReceived,
      chunksSkipped: result.chunksSkipped,
      seconds: result.seconds,
    });
    if (job.keep !== undefined) await remoteRetention(result.snapshot.vmId, job.sourceSite, job.keep);
    return result;
  };

  /**
   * Keeps the replica's newest `keep` snapshots; its newest (the pair's base) is never deleted.
   * Only a replica of the job's source: the job comes from a peer, and the VM it names may be
   * local here (failback), whose snapshots only this site's own policy may prune.
   */
  const remoteRetention = async (vmId: string, sourceSite: string, keep: number): Promise<void> => {
    const vm = await node.getVm(vmId);
    if (vm.replicaOf !== sourceSite) {
      log(
        `remote retention skipped for VM '${vm.name}': it is ${vm.replicaOf ? `a replica of ${vm.replicaOf}` : 'local'} here, not a replica of ${sourceSite}`,
      );
      return;
    }
    const snapshots = await node.listSnapshots(vmId);
    for (const s of snapshots.slice(0, Math.max(0, snapshots.length - keep))) {
      await node
        .deleteSnapshot(`${vmId}@${s.id}`)
        .then(() => publishEvent(c, 'snapshot.deleted', { site: o.site, vmId, snapshotId: s.id, reason: 'remote retention' }))
        .catch(() => undefined);
    }
  };

  const worker: WorkerHandle = await runWorker<ReplicateJob>(
    c,
    `replicate-${o.site}`,
    replicateJobSubject(o.site),
    async (job, ctx) => {
      const span = tracer.startSpan(`replicate ${job.vmName}@${job.snapshotId} ${job.sourceSite}→${o.site}`, {}, ctx);
      // One session at a time per VM; at most sessionsPerLink per source link.
      const previous = perVm.get(job.vmId) ?? Promise.resolve();
      // The session runs in the job's trace (from the NATS headers): its gRPC calls carry it on.
      const run = context.with(trace.setSpan(ctx, span), () =>
        previous.catch(() => undefined).then(() => links.key(job.sourceSite).schedule(() => meters.session(job.sourceSite, () => replicate(job)))),
      );
      perVm.set(job.vmId, run);
      try {
        await run;
      } catch (e) {
        await publishEvent(c, 'replication.failed', {
          site: o.site,
          vmId: job.vmId,
          vmName: job.vmName,
          snapshotId: job.snapshotId,
          sourceSite: job.sourceSite,
          error: (e as Error).message,
        }).catch(() => undefined);
        throw e;
      } finally {
        if (perVm.get(job.vmId) === run) perVm.delete(job.vmId);
        span.end();
      }
    },
    (e, job) => log(`replication of ${job?.vmName ?? '?'} failed: ${(e as Error).message}`),
    // Sessions of different VMs overlap (per-link limits and per-VM order are kept above).
    8,
  );
  log(`replicator for site ${o.site}: consuming ${replicateJobSubject(o.site)} into ${o.nodeAddress}`);
  return {
    stop: async () => {
      await worker.stop();
      pageIndexes.clear();
      node.close();
      await c.close();
    },
  };
}
