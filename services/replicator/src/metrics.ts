/*
 * The replicator's instruments (no-ops without a started SDK), per link: `link` is
 * "SOURCE->TARGET", plus `source_site` and `site` (the target, this replicator's site) so
 * rules can join either end. Links are few (site pairs), so the labels stay bounded; no VM
 * label here: per-VM replication state is the source node's vmferry_replica_newest_age_seconds.
 */
import { metrics, type Attributes } from '@opentelemetry/api';

/** Session durations: a no-change incremental (< 1 s) to a multi-hour first copy. */
const SESSION_BUCKETS_S = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400];

export interface SessionOutcome {
  readonly bytesReceived: number;
  readonly chunksReceived: number;
  readonly chunksSkipped: number;
  readonly seconds: number;
  readonly snapshot: { readonly disks: readonly { readonly blockSize: number }[] };
}

export interface ReplicatorMetrics {
  /** Runs one session on the link, counting it running, then done or failed. */
  session<T extends SessionOutcome>(sourceSite: string, run: () => Promise<T>): Promise<T>;
}

export function createReplicatorMetrics(site: string): ReplicatorMetrics {
  const meter = metrics.getMeter('vmferry-replicator');
  const wire = meter.createCounter('vmferry.replication.received', {
    description: 'Bytes received on the wire by replication sessions (after packing)',
    unit: 'By',
  });
  const logical = meter.createCounter('vmferry.replication.logical', {
    description: 'Logical bytes replicated: the data blocks changed since the base (received or already at the target) times the block size',
    unit: 'By',
  });
  const chunks = meter.createCounter('vmferry.replication.chunks', { description: 'Data chunks a session needed: received, or skipped (the target had them)' });
  const sessions = meter.createCounter('vmferry.replication.sessions', { description: 'Replication sessions finished, by outcome (done, failed)' });
  const running = meter.createUpDownCounter('vmferry.replication.running', { description: 'Replication sessions running now' });
  const duration = meter.createHistogram('vmferry.replication.duration', {
    description: 'Duration of successful replication sessions',
    unit: 's',
    advice: { explicitBucketBoundaries: SESSION_BUCKETS_S },
  });
  // Sessions a link has never run still show as zero (a rate() over "no series" is no data).
  const seen = new Set<string>();
  return {
    session: async (sourceSite, run) => {
      const attrs: Attributes = { link: `${sourceSite}->${site}`, source_site: sourceSite, site };
      if (!seen.has(sourceSite)) {
        seen.add(sourceSite);
        for (const outcome of ['done', 'failed']) sessions.add(0, { ...attrs, outcome });
        wire.add(0, attrs);
        logical.add(0, attrs);
      }
      running.add(1, attrs);
      try {
        const r = await run();
        wire.add(r.bytesReceived, attrs);
        // Data chunks are one block each; a VM's vDisks share one block size in practice (the
        // first one's is used), so logical / wire is the link's dedup-and-compression gain.
        logical.add((r.chunksReceived + r.chunksSkipped) * (r.snapshot.disks[0]?.blockSize ?? 0), attrs);
        chunks.add(r.chunksReceived, { ...attrs, outcome: 'received' });
        chunks.add(r.chunksSkipped, { ...attrs, outcome: 'skipped' });
        duration.record(r.seconds, attrs);
        sessions.add(1, { ...attrs, outcome: 'done' });
        return r;
      } catch (e) {
        sessions.add(1, { ...attrs, outcome: 'failed' });
        throw e;
      } finally {
        running.add(-1, attrs);
      }
    },
  };
}
