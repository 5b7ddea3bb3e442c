/*
 * Policy documents as they arrive (CLI argument, NATS KV): parsed with the same strictness as
 * a service's config. zod checks the shape (unknown keys refused, wrong types), every problem
 * is named with its path (`schedules[0].retension`); then validatePolicy / validateOverride
 * check the meaning (cron, durations, keep ≥ 1, known sites).
 */
import { z } from 'zod';
import { InvalidArgumentError } from './errors.js';
import { validateOverride, validatePolicy, type ProtectionPolicy, type VmPolicyOverride } from './policy.js';

const schedule = z.strictObject({
  name: z.string(),
  cron: z.string().exactOptional(),
  every: z.string().exactOptional(),
  keep: z.number(),
  maxAge: z.string().exactOptional(),
  consistency: z.enum(['crash', 'vm']).exactOptional(),
  requireVmConsistency: z.boolean().exactOptional(),
});

const target = z.strictObject({
  site: z.string(),
  schedules: z.array(z.string()).exactOptional(),
  keep: z.number().exactOptional(),
  rpo: z.string().exactOptional(),
});

const verify = z.strictObject({
  cron: z.string().exactOptional(),
  every: z.string().exactOptional(),
});

const policySchema = z.strictObject({
  schedules: z.array(schedule),
  replication: z.array(target).exactOptional(),
  verify: verify.exactOptional(),
  timeZone: z.string().exactOptional(),
});

const overrideSchema = z.strictObject({
  exclude: z.boolean().exactOptional(),
  mode: z.enum(['replace', 'add']).exactOptional(),
  schedules: z.array(schedule).exactOptional(),
  keep: z.record(z.string(), z.number()).exactOptional(),
  consistency: z.enum(['crash', 'vm']).exactOptional(),
  replication: z.array(target).exactOptional(),
});

/** `schedules[0].keep` from zod's path. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

function problemsOf(error: z.ZodError): string[] {
  return error.issues.flatMap((i) => {
    const at = pathText(i.path);
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${at ? `${at}.` : ''}${k}: unknown key`);
    return [`${at || '(policy)'}: ${i.message}`];
  });
}

function parsed<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new InvalidArgumentError(`invalid ${what}:\n  ${problemsOf(r.error).join('\n  ')}`);
  return r.data;
}

/**
 * A default policy document (parsed JSON) as a valid ProtectionPolicy.
 * @throws InvalidArgumentError naming every bad or unknown key with its path, one a line.
 */
export function parsePolicy(input: unknown, knownSites?: readonly string[]): ProtectionPolicy {
  return validatePolicy(parsed(policySchema, input, 'policy'), knownSites);
}

/**
 * A per-VM override document (parsed JSON) as a valid VmPolicyOverride.
 * @throws InvalidArgumentError naming every bad or unknown key with its path, one a line.
 */
export function parseOverride(input: unknown, knownSites?: readonly string[]): VmPolicyOverride {
  return validateOverride(parsed(overrideSchema, input, 'policy override'), knownSites);
}

/** The policy text stored in KV, parsed and validated; throws InvalidArgumentError as parsePolicy (also for bad JSON). */
export function parseStoredPolicy(text: string): ProtectionPolicy {
  return parsePolicy(jsonOf(text));
}

/** The override text stored in KV, parsed and validated; throws InvalidArgumentError as parseOverride (also for bad JSON). */
export function parseStoredOverride(text: string): VmPolicyOverride {
  return parseOverride(jsonOf(text));
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InvalidArgumentError(`invalid policy: not JSON: ${(e as Error).message}`);
  }
}
