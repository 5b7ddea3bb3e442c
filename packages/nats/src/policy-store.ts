/*
 * The policy in force under a KV key. Every stored policy is parsed as strictly as `policy set`
 * does (parseStoredPolicy: unknown keys refused). A bad one never becomes the policy in force:
 * the newest good revision before it in the key's history (the bucket keeps 5) stays, or with
 * none the built-in default (for `default`) or no override (for a VM). The scheduler and the
 * CLI read policies through here, so both agree on what is in force.
 */
import { DEFAULT_POLICY, parseStoredOverride, parseStoredPolicy, type ProtectionPolicy, type VmPolicyOverride } from '@vmferry/core';
import type { KV, KvEntry } from '@nats-io/kv';
import { DEFAULT_POLICY_KEY, vmPolicyKey } from './names.js';

/** A stored policy that was refused, and what is in force instead. */
export interface PolicyRefusal {
  readonly key: string;
  readonly revision: number;
  /** Every problem, one a line (InvalidArgumentError's message). */
  readonly problems: string;
  /** `revision N`, `the built-in default` or `no override (the default applies)`. */
  readonly inForce: string;
}

export interface InForce<T> {
  /** undefined: nothing stored (or deleted), or refused with no good revision before it. */
  readonly value: T | undefined;
  readonly refusal?: PolicyRefusal;
}

/** The value in force after entry `e` of `kv`: its own when it parses, else as the file comment says. */
export async function policyInForce<T>(kv: KV, e: KvEntry, parse: (text: string) => T): Promise<InForce<T>> {
  if (e.operation !== 'PUT') return { value: undefined };
  let problems: string;
  try {
    return { value: parse(e.string()) };
  } catch (err) {
    problems = (err as Error).message;
  }
  let good: { value: T; revision: number } | undefined;
  try {
    const older: KvEntry[] = [];
    for await (const h of await kv.history({ key: e.key })) {
      if (h.revision < e.revision) older.push(h);
      if (h.delta === 0) break;
    }
    for (const h of older.reverse()) {
      if (h.operation !== 'PUT') break; // deleted in between: nothing older is in force
      try {
        good = { value: parse(h.string()), revision: h.revision };
        break;
      } catch {
        // Refused too: look further back.
      }
    }
  } catch (err) {
    problems += `\n  (the key's history could not be read: ${(err as Error).message})`;
  }
  const inForce = good ? `revision ${good.revision}` : e.key === DEFAULT_POLICY_KEY ? 'the built-in default' : 'no override (the default applies)';
  return { value: good?.value, refusal: { key: e.key, revision: e.revision, problems, inForce } };
}

/** The default policy in force (the built-in DEFAULT_POLICY when none is stored or none is good). */
export async function readDefaultPolicy(kv: KV): Promise<InForce<ProtectionPolicy> & { readonly value: ProtectionPolicy }> {
  const e = await kv.get(DEFAULT_POLICY_KEY);
  const r = e ? await policyInForce(kv, e, parseStoredPolicy) : { value: undefined };
  return { ...r, value: r.value ?? DEFAULT_POLICY };
}

/** A VM's override in force, if any. */
export async function readOverride(kv: KV, vmId: string): Promise<InForce<VmPolicyOverride>> {
  const e = await kv.get(vmPolicyKey(vmId));
  return e ? policyInForce(kv, e, parseStoredOverride) : { value: undefined };
}

/** A refusal in one line for logs and stderr. */
export function describeRefusal(r: PolicyRefusal): string {
  return `policy '${r.key}' revision ${r.revision} refused, ${r.inForce} stays in force: ${r.problems}`;
}
