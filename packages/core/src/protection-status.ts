/*
 * How well a VM is protected now: its effective policy's schedules, and for each replication
 * target the age of the newest snapshot that reached it against the target's RPO.
 */
import { parseDuration, type ProtectionPolicy } from './policy.js';

/**
 * `unprotected`: no schedule, or the policy requires an off-site copy (it has replication
 * targets) and no target holds a complete replica yet; `late`: a target's copy is older than
 * its RPO (or absent).
 */
export type ProtectionState = 'protected' | 'late' | 'unprotected';

/** The newest snapshot of a VM that a target site holds. */
export interface ReplicatedSnapshot {
  readonly snapshotId: string;
  readonly snapshotCreatedAtMs: number;
}

export interface TargetStatus {
  readonly site: string;
  /** The target's RPO; null when it has none (then it is never late). */
  readonly rpoMs: number | null;
  /** Age of the target's newest copy (from the snapshot's creation); null when it has none. */
  readonly ageMs: number | null;
  readonly snapshotId: string | null;
  readonly late: boolean;
}

export interface ProtectionStatus {
  readonly state: ProtectionState;
  readonly targets: readonly TargetStatus[];
}

/**
 * Pure: the protection status under `policy` (undefined: the VM is excluded) at `nowMs`, given
 * the newest snapshot each target site holds (`replicated`, by site: a replica is recorded once
 * its commit is done, so an entry is a complete copy). Pass the policy effectivePolicy gives
 * for the VM's site, so that a target equal to the home site is already dropped.
 * @throws InvalidArgumentError when a target's RPO is not a duration (validated policies never are).
 */
export function protectionStatus(policy: ProtectionPolicy | undefined, replicated: ReadonlyMap<string, ReplicatedSnapshot>, nowMs: number): ProtectionStatus {
  const targets = (policy?.replication ?? []).map((t): TargetStatus => {
    const copy = replicated.get(t.site);
    const ageMs = copy ? nowMs - copy.snapshotCreatedAtMs : null;
    const rpoMs = t.rpo ? parseDuration(t.rpo) : null;
    return { site: t.site, rpoMs, ageMs, snapshotId: copy?.snapshotId ?? null, late: rpoMs !== null && (ageMs === null || ageMs > rpoMs) };
  });
  const noOffSiteCopy = targets.length > 0 && targets.every((t) => t.snapshotId === null);
  const state: ProtectionState = !policy || policy.schedules.length === 0 || noOffSiteCopy ? 'unprotected' : targets.some((t) => t.late) ? 'late' : 'protected';
  return { state, targets };
}
