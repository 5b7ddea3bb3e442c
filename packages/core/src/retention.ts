/*
 * Retention: which of a VM's snapshots a schedule's keep-N and maximum age delete. One
 * implementation for the storage node (which deletes after each scheduled snapshot) and for
 * `vmferry policy simulate` (which only shows the outcome), so the dry run cannot disagree
 * with what the node does.
 *
 * Rules, per schedule, over the snapshots whose origin is `schedule:NAME@SLOT` (oldest first):
 * the newest `keep` stay; beyond them a snapshot goes; with a maximum age, an older one goes
 * too, except the schedule's newest (a VM that stopped changing keeps one copy). Snapshots of
 * no schedule (manual, clones' sources, replicas) and of schedules not in the policy are never
 * touched. A replication pair's base is kept whatever the rules say (the node refuses to
 * delete it; `protectedIds` lets the dry run show that).
 */
import { parseDuration, type ProtectionPolicy } from './policy.js';

/** What retention needs of a snapshot. */
export interface RetentionSnapshot {
  readonly id: string;
  readonly createdAtMs: number;
  readonly origin: string;
}

/** One schedule's retention rule. */
export interface RetentionRule {
  readonly schedule: string;
  /** Snapshots to keep (≥ 1). */
  readonly keep: number;
  /** Delete snapshots older than this (ms), the schedule's newest excepted. */
  readonly maxAgeMs?: number;
}

export type RetentionAction = 'keep' | 'delete';

export interface RetentionDecision<S extends RetentionSnapshot = RetentionSnapshot> {
  readonly snapshot: S;
  /** The schedule that made it; undefined for a snapshot of no schedule. */
  readonly schedule: string | undefined;
  readonly action: RetentionAction;
  /** Why, in words: "newest 3 of keep 7", "beyond keep 2", "older than maxAge 7d". */
  readonly reason: string;
}

const SCHEDULE_ORIGIN = /^schedule:(.+)@\d+$/;

/** The schedule a snapshot's origin names (`schedule:NAME@SLOT`); undefined otherwise. */
export function scheduleOfOrigin(origin: string): string | undefined {
  return SCHEDULE_ORIGIN.exec(origin)?.[1];
}

/**
 * The snapshots of `rule.schedule` among `snapshots` (oldest first, as the node lists them)
 * that the rule deletes at `nowMs`. What the node acts on after a scheduled snapshot.
 */
export function expiredSnapshots<S extends RetentionSnapshot>(snapshots: readonly S[], rule: RetentionRule, nowMs: number): S[] {
  const mine = snapshots.filter((s) => scheduleOfOrigin(s.origin) === rule.schedule);
  return mine.filter((s, i) => decide(s, i, mine.length, rule, nowMs).action === 'delete');
}

function decide(s: RetentionSnapshot, index: number, count: number, rule: RetentionRule, nowMs: number): { action: RetentionAction; reason: string } {
  const fromNewest = count - index; // 1 = the newest
  if (fromNewest > rule.keep) return { action: 'delete', reason: `beyond keep ${rule.keep} (${ordinal(fromNewest)} newest)` };
  if (rule.maxAgeMs !== undefined && nowMs - s.createdAtMs > rule.maxAgeMs && fromNewest > 1) {
    return { action: 'delete', reason: `older than maxAge ${formatAge(rule.maxAgeMs)}` };
  }
  return { action: 'keep', reason: `${ordinal(fromNewest)} newest of keep ${rule.keep}` };
}

/** The retention rules a policy sets, one per schedule. */
export function retentionRules(policy: ProtectionPolicy): RetentionRule[] {
  return policy.schedules.map((s) => ({ schedule: s.name, keep: s.keep, ...(s.maxAge === undefined ? {} : { maxAgeMs: parseDuration(s.maxAge) }) }));
}

/**
 * Every snapshot of a VM with what retention under `policy` does to it at `nowMs` (a dry
 * run: nothing is deleted). `policy` undefined: the VM is excluded, nothing is deleted.
 * `protectedIds` maps a snapshot id to why it must stay (a replication base): such a
 * snapshot is kept even when the rules would delete it, and says why.
 */
export function simulateRetention<S extends RetentionSnapshot>(
  snapshots: readonly S[],
  policy: ProtectionPolicy | undefined,
  nowMs: number,
  protectedIds: ReadonlyMap<string, string> = new Map(),
): RetentionDecision<S>[] {
  const rules = new Map((policy ? retentionRules(policy) : []).map((r) => [r.schedule, r]));
  const bySchedule = new Map<string, S[]>();
  for (const s of snapshots) {
    const name = scheduleOfOrigin(s.origin);
    if (name !== undefined) bySchedule.set(name, [...(bySchedule.get(name) ?? []), s]);
  }
  return snapshots.map((s) => {
    const schedule = scheduleOfOrigin(s.origin);
    if (schedule === undefined) return { snapshot: s, schedule, action: 'keep', reason: `not from a schedule (${originKind(s.origin)})` };
    const rule = rules.get(schedule);
    if (!rule) {
      const why = policy ? `schedule '${schedule}' is not in the policy` : 'the VM is excluded from scheduling';
      return { snapshot: s, schedule, action: 'keep', reason: `${why}: retention never runs for it` };
    }
    const mine = bySchedule.get(schedule) ?? [];
    const d = decide(s, mine.indexOf(s), mine.length, rule, nowMs);
    const held = protectedIds.get(s.id);
    if (d.action === 'delete' && held !== undefined)
      return { snapshot: s, schedule, action: 'keep', reason: `${held} (retention would delete it: ${d.reason})` };
    return { snapshot: s, schedule, ...d };
  });
}

function originKind(origin: string): string {
  const colon = origin.indexOf(':');
  return colon < 0 ? origin || 'unknown origin' : origin.slice(0, colon);
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** 7d, 36h, 90m, 45s: the largest unit that divides the duration. */
function formatAge(ms: number): string {
  for (const [unit, size] of [
    ['w', 604_800_000],
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
