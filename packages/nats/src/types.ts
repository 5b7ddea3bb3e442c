/** Messages on the coordination plane (JSON). */
import type { ConsistencyMode } from '@vmferry/core';

export interface SnapshotJob {
  readonly kind: 'snapshot';
  readonly vmId: string;
  readonly vmName: string;
  readonly site: string;
  readonly schedule: string;
  /** Slot time (ms since epoch). */
  readonly slot: number;
  readonly consistency: ConsistencyMode;
  readonly requireVmConsistency?: boolean;
  /** Retention of this schedule's snapshots at the VM's site. */
  readonly keep: number;
  readonly maxAgeMs?: number;
  /** Sites the new snapshot replicates to, with their remote retention. */
  readonly replicateTo: readonly { readonly site: string; readonly keep?: number }[];
}

export interface ReplicateJob {
  readonly kind: 'replicate';
  readonly vmId: string;
  readonly vmName: string;
  readonly snapshotId: string;
  readonly sourceSite: string;
  readonly targetSite: string;
  /** Remote retention for the replica (keep newest N replicated snapshots). */
  readonly keep?: number;
}

/** A scheduled verify of one site's whole store (the policy's `verify` schedule). */
export interface VerifyJob {
  readonly kind: 'verify';
  readonly site: string;
  /** Slot time (ms since epoch). */
  readonly slot: number;
}

export interface VmEntry {
  readonly vmId: string;
  readonly name: string;
  readonly site: string;
  readonly replicaOf?: string;
  readonly updatedAtMs: number;
}

export interface SiteEntry {
  readonly site: string;
  readonly nodeAddress: string;
  readonly updatedAtMs: number;
}

export interface ReplicationState {
  readonly vmId: string;
  readonly vmName: string;
  readonly sourceSite: string;
  readonly targetSite: string;
  readonly snapshotId: string;
  /** When the replicated snapshot was taken at the source. */
  readonly snapshotCreatedAtMs: number;
  readonly replicatedAtMs: number;
}

/** What the scheduler leader records after each tick that published everything due (STATE_BUCKET). */
export interface SchedulerProgress {
  readonly scheduler: string;
  /** The clock time of the tick: every schedule's latest slot at that time was published. */
  readonly tickMs: number;
}

export type EventKind =
  | 'snapshot.created'
  | 'snapshot.deleted'
  | 'snapshot.failed'
  | 'quiesce.fallback'
  | 'replication.queued'
  | 'replication.progress'
  | 'replication.done'
  | 'replication.failed'
  | 'schedule.missed'
  | 'verify.done'
  | 'verify.damaged'
  | 'policy.rejected'
  | 'job.dead-lettered';

export interface VmferryEvent {
  readonly kind: EventKind;
  readonly atMs: number;
  readonly site?: string;
  readonly vmId?: string;
  readonly vmName?: string;
  readonly [field: string]: unknown;
}
