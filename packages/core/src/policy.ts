/*
 * Protection policies: a system default that protects every VM, and per-VM overrides.
 * Pure: validation, the effective policy of a VM, and schedule slots (croner for cron
 * expressions, with time zones and DST).
 *
 * A slot is the instant a schedule fires. The scheduler publishes one job per
 * (VM, schedule, slot), named so duplicates collapse; after downtime it publishes only the
 * latest slot (one snapshot now, not one per missed slot).
 */
import { Cron } from 'croner';
import { InvalidArgumentError } from './errors.js';
import { validateVmName } from './names.js';

export type ConsistencyMode = 'crash' | 'vm';

export interface Schedule {
  readonly name: string;
  /** A cron expression (5 or 6 fields) … */
  readonly cron?: string;
  /** … or an interval: 30s, 5m, 1h, 1d. */
  readonly every?: string;
  /** Snapshots of this schedule to keep (≥ 1). */
  readonly keep: number;
  /** Optional maximum age (30m, 7d); older snapshots of the schedule are deleted. */
  readonly maxAge?: string;
  readonly consistency?: ConsistencyMode;
  /** With consistency 'vm': fail the snapshot when quiescing fails, instead of falling back. */
  readonly requireVmConsistency?: boolean;
}

export interface ReplicationTargetPolicy {
  readonly site: string;
  /** Schedules whose snapshots replicate; default: all. */
  readonly schedules?: readonly string[];
  /** Snapshots to keep on the replica (remote retention), default: like local. */
  readonly keep?: number;
  /** Recovery point objective: 15m, 1h. */
  readonly rpo?: string;
}

/**
 * When every storage node re-reads and re-hashes its whole store (like a PBS verify job):
 * one verify job per site and slot. Per site, not per VM: verify checks chunks, which VMs share.
 */
export interface VerifySchedule {
  /** A cron expression (5 or 6 fields), in the policy's time zone … */
  readonly cron?: string;
  /** … or an interval: 12h, 1d, 1w. */
  readonly every?: string;
}

/** What a slot computation needs of a schedule. */
export type SlotTimes = Pick<Schedule, 'cron' | 'every'>;

export interface ProtectionPolicy {
  readonly schedules: readonly Schedule[];
  readonly replication?: readonly ReplicationTargetPolicy[];
  /** Scheduled verify at every site; none by default. */
  readonly verify?: VerifySchedule;
  /** IANA time zone for cron schedules; default UTC. */
  readonly timeZone?: string;
}

export interface VmPolicyOverride {
  readonly exclude?: boolean;
  /** replace: these schedules instead of the default's; add: the default's plus these. */
  readonly mode?: 'replace' | 'add';
  readonly schedules?: readonly Schedule[];
  /** Per-schedule keep counts overriding the default's. */
  readonly keep?: Readonly<Record<string, number>>;
  readonly consistency?: ConsistencyMode;
  readonly replication?: readonly ReplicationTargetPolicy[];
}

const DURATION = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new InvalidArgumentError(`'${text}' is not a duration (examples: 30s, 15m, 1h, 7d)`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/** Exactly one of cron or every, and that one valid. */
function validateTimes(s: SlotTimes, what: string, timeZone?: string): string[] {
  const problems: string[] = [];
  if ((s.cron === undefined) === (s.every === undefined)) problems.push(`${what}: give exactly one of cron or every`);
  if (s.cron !== undefined) {
    try {
      new Cron(s.cron, { paused: true, ...(timeZone ? { timezone: timeZone } : {}) });
    } catch (e) {
      problems.push(`${what}: bad cron expression '${s.cron}': ${(e as Error).message}`);
    }
  }
  return problems;
}

function validateVerify(v: VerifySchedule | undefined, timeZone?: string): string[] {
  if (v === undefined) return [];
  const problems = validateTimes(v, 'verify', timeZone);
  if (v.every !== undefined) {
    try {
      parseDuration(v.every);
    } catch (e) {
      problems.push(`verify: every: ${(e as Error).message}`);
    }
  }
  return problems;
}

function validateSchedule(s: Schedule, where: string, timeZone?: string): string[] {
  const problems: string[] = [];
  try {
    validateVmName(s.name);
  } catch {
    problems.push(`${where}: schedule name '${s.name}' must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  problems.push(...validateTimes(s, `${where} '${s.name}'`, timeZone));
  for (const [field, value] of [
    ['every', s.every],
    ['maxAge', s.maxAge],
  ] as const) {
    if (value !== undefined) {
      try {
        parseDuration(value);
      } catch (e) {
        problems.push(`${where} '${s.name}': ${field}: ${(e as Error).message}`);
      }
    }
  }
  if (!Number.isInteger(s.keep) || s.keep < 1) problems.push(`${where} '${s.name}': keep must be a whole number ≥ 1 (got ${String(s.keep)})`);
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a policy document is user input: its type says what the check enforces
  if (s.consistency !== undefined && s.consistency !== 'crash' && s.consistency !== 'vm') problems.push(`${where} '${s.name}': consistency is crash or vm`);
  return problems;
}

function validateTargets(targets: readonly ReplicationTargetPolicy[] | undefined, knownSites: readonly string[] | undefined): string[] {
  const problems: string[] = [];
  for (const t of targets ?? []) {
    if (knownSites && !knownSites.includes(t.site)) problems.push(`replication target: unknown site '${t.site}' (known: ${knownSites.join(', ') || 'none'})`);
    if (t.rpo !== undefined) {
      try {
        parseDuration(t.rpo);
      } catch (e) {
        problems.push(`replication target ${t.site}: rpo: ${(e as Error).message}`);
      }
    }
    if (t.keep !== undefined && (!Number.isInteger(t.keep) || t.keep < 1)) problems.push(`replication target ${t.site}: keep must be ≥ 1`);
  }
  return problems;
}

function fail(problems: string[]): void {
  if (problems.length > 0) throw new InvalidArgumentError(`invalid policy:\n  ${problems.join('\n  ')}`);
}

function validateTimeZone(tz: string | undefined): string[] {
  if (tz === undefined) return [];
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return [];
  } catch {
    return [`unknown time zone '${tz}'`];
  }
}

/** Throws InvalidArgumentError listing every problem (bad cron, keep < 1, unknown site…). */
export function validatePolicy(p: ProtectionPolicy, knownSites?: readonly string[]): ProtectionPolicy {
  const names = p.schedules.map((s) => s.name);
  const dupes = names.filter((n, i) => names.indexOf(n) !== i);
  fail([
    ...validateTimeZone(p.timeZone),
    ...p.schedules.flatMap((s) => validateSchedule(s, 'schedule', p.timeZone)),
    ...dupes.map((d) => `schedule '${d}' appears twice`),
    ...validateTargets(p.replication, knownSites),
    ...validateVerify(p.verify, p.timeZone),
  ]);
  return p;
}

export function validateOverride(o: VmPolicyOverride, knownSites?: readonly string[]): VmPolicyOverride {
  fail([
    ...(o.schedules ?? []).flatMap((s) => validateSchedule(s, 'schedule')),
    ...Object.entries(o.keep ?? {}).flatMap(([k, v]) => (Number.isInteger(v) && v >= 1 ? [] : [`keep for '${k}' must be ≥ 1`])),
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a policy document is user input: its type says what the check enforces
    ...(o.mode !== undefined && o.mode !== 'replace' && o.mode !== 'add' ? ['mode is replace or add'] : []),
    ...validateTargets(o.replication, knownSites),
  ]);
  return o;
}

/**
 * What protects one VM: the default, changed by its override; undefined when excluded.
 * `site`: the VM's own site. A replication target naming it is dropped, so one policy serves
 * both sites of a symmetric pair (a VM at siteB never replicates to siteB).
 */
export function effectivePolicy(base: ProtectionPolicy, override?: VmPolicyOverride, site?: string): ProtectionPolicy | undefined {
  const p = mergedPolicy(base, override);
  if (!p || site === undefined || !p.replication?.some((t) => t.site === site)) return p;
  return { ...p, replication: p.replication.filter((t) => t.site !== site) };
}

function mergedPolicy(base: ProtectionPolicy, override?: VmPolicyOverride): ProtectionPolicy | undefined {
  if (override?.exclude) return undefined;
  if (!override) return base;
  const own = override.schedules ?? [];
  const schedules = (override.mode === 'replace' ? own : [...base.schedules.filter((s) => !own.some((o) => o.name === s.name)), ...own]).map((s) => ({
    ...s,
    ...(override.keep?.[s.name] !== undefined ? { keep: override.keep[s.name] as number } : {}),
    ...(override.consistency ? { consistency: override.consistency } : {}),
  }));
  return { ...base, schedules, ...(override.replication ? { replication: override.replication } : {}) };
}

/** The latest slot of `s` at or before `now` (ms since epoch), or undefined if none yet. */
export function latestSlot(s: SlotTimes | Schedule, now: number, timeZone = 'UTC'): number | undefined {
  if (s.every !== undefined) {
    const every = parseDuration(s.every);
    return Math.floor(now / every) * every;
  }
  const cron = new Cron(s.cron as string, { paused: true, timezone: timeZone });
  const prev = cron.previousRuns(1, new Date(now + 1))[0];
  return prev?.getTime();
}

/** The next slot of `s` strictly after `now`. */
export function nextSlot(s: SlotTimes | Schedule, now: number, timeZone = 'UTC'): number | undefined {
  if (s.every !== undefined) {
    const every = parseDuration(s.every);
    return (Math.floor(now / every) + 1) * every;
  }
  return new Cron(s.cron as string, { paused: true, timezone: timeZone }).nextRun(new Date(now))?.getTime();
}

/** The job id that makes (VM, schedule, slot) unique: duplicates collapse on it. */
export function slotJobId(vmId: string, schedule: string, slot: number): string {
  return `snap.${vmId}.${schedule}.${slot}`;
}

/** The job id that makes (site, verify slot) unique. */
export function verifyJobId(site: string, slot: number): string {
  return `verify.${site}.${slot}`;
}

export const DEFAULT_POLICY: ProtectionPolicy = {
  schedules: [{ name: 'daily', cron: '0 1 * * *', keep: 7, consistency: 'crash' }],
};
