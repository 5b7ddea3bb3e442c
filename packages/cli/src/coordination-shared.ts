/** What the coordination commands share: the NATS connection, registry and policy reads. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidArgumentError, UnavailableError, type ProtectionPolicy, type VmPolicyOverride } from '@vmferry/core';
import {
  describeRefusal,
  readDefaultPolicy,
  readOverride,
  REGISTRY_SITE_KEYS,
  REGISTRY_VM_KEYS,
  siteOfRegistryKey,
  writePolicyEverywhere,
  type Coordination,
  type InForce,
  type VmEntry,
} from '@vmferry/nats';

export const DEFAULT_NATS = 'nats://127.0.0.1:4222';

export interface Globals {
  node: string;
  json: boolean;
  nats: string;
}

export function globalsOf(cmd: Command): Globals {
  const g = cmd.optsWithGlobals<Omit<Globals, 'nats'> & { nats?: string }>();
  return { ...g, nats: g.nats ?? DEFAULT_NATS };
}

export async function withNats<T>(g: Globals, fn: (c: Coordination) => Promise<T>): Promise<T> {
  const { openCoordination } = await import('@vmferry/nats');
  const c = await openCoordination(g.nats, 'vmferry-cli').catch((e: unknown) => {
    throw new UnavailableError(`cannot reach NATS at ${g.nats} (set --nats or VMFERRY_NATS): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  });
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** A policy from a file path or inline JSON. */
export async function readJson(arg: string): Promise<unknown> {
  const text = arg.trim().startsWith('{') ? arg : await readFile(arg, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`policy is not valid JSON: ${(e as Error).message}`);
  }
}

export async function registryVms(c: Coordination): Promise<VmEntry[]> {
  const out: VmEntry[] = [];
  for await (const key of await c.registry.keys(REGISTRY_VM_KEYS)) {
    const e = await c.registry.get(key);
    if (e && e.operation === 'PUT') out.push(e.json<VmEntry>());
  }
  return out;
}

export async function knownSites(c: Coordination): Promise<string[]> {
  const out: string[] = [];
  for await (const key of await c.registry.keys(REGISTRY_SITE_KEYS)) out.push(siteOfRegistryKey(key));
  return out;
}

/** A refused stored policy goes to stderr (what is in force instead); the value in force is returned. */
export function warnRefused<T>(r: InForce<T>): T | undefined {
  if (r.refusal) process.stderr.write(`vmferry: warning: ${describeRefusal(r.refusal)}\n`);
  return r.value;
}

export async function defaultPolicy(c: Coordination): Promise<ProtectionPolicy> {
  const r = await readDefaultPolicy(c.policies);
  warnRefused(r);
  return r.value;
}

export async function vmOverride(c: Coordination, vmId: string): Promise<VmPolicyOverride | undefined> {
  return warnRefused(await readOverride(c.policies, vmId));
}

export async function resolveVmId(c: Coordination, nameOrId: string): Promise<VmEntry> {
  const vms = (await registryVms(c)).filter((v) => !v.replicaOf);
  const vm = vms.find((v) => v.name === nameOrId || v.vmId === nameOrId);
  if (!vm) throw new InvalidArgumentError(`VM '${nameOrId}' is not in the registry (is its storage node running with --nats?)`);
  return vm;
}

export function describeSchedules(p: ProtectionPolicy | undefined): string {
  if (!p) return 'excluded';
  return p.schedules.map((s) => `${s.name} (${s.cron ?? `every ${s.every}`}, keep ${s.keep}${s.consistency === 'vm' ? ', vm' : ''})`).join('; ');
}

/**
 * Stores a policy change at this site and every peer site (per-site coordination: each site
 * schedules from its own copy). A peer that cannot be reached is named on stderr and makes the
 * command exit 1, so the change is repeated once the site is back; the sites written are returned.
 */
export async function storePolicy(c: Coordination, write: (kv: Coordination['policies']) => Promise<unknown>): Promise<string[]> {
  const r = await writePolicyEverywhere(c, write);
  for (const f of r.failed) {
    process.stderr.write(`vmferry: the change is not stored at site ${f.site} (unreachable: ${f.error}); run the command again once it is back\n`);
  }
  if (r.failed.length > 0) process.exitCode = 1;
  return [...r.written];
}
