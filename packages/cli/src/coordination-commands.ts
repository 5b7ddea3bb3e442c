/**
 * The coordination plane from the CLI: launch the scheduler or a replicator service
 * (service-launchers.ts), manage policies, see protection status (RPO) and follow events. Global `--nats URL` (env
 * VMFERRY_NATS) says where NATS is.
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import {
  DEFAULT_POLICY,
  effectivePolicy,
  formatBytes,
  InvalidArgumentError,
  parseDuration,
  protectionStatus,
  UnavailableError,
  validateOverride,
  validatePolicy,
  type ProtectionPolicy,
  type ReplicatedSnapshot,
  type VmPolicyOverride,
} from '@vmferry/core';
import {
  DEFAULT_POLICY_KEY,
  EVENTS_STREAM,
  REGISTRY_SITE_KEYS,
  REGISTRY_VM_KEYS,
  rpoKey,
  siteOfRegistryKey,
  vmPolicyKey,
  type Coordination,
  type ReplicationState,
  type VmEntry,
  type VmferryEvent,
} from '@vmferry/nats';
import { printFields, printJson, printTable } from './output.js';
import { registerServiceLaunchers } from './service-launchers.js';

const DEFAULT_NATS = 'nats://127.0.0.1:4222';

interface Globals {
  node: string;
  json: boolean;
  nats: string;
}

function globalsOf(cmd: Command): Globals {
  const g = cmd.optsWithGlobals<Omit<Globals, 'nats'> & { nats?: string }>();
  return { ...g, nats: g.nats ?? DEFAULT_NATS };
}

async function withNats<T>(g: Globals, fn: (c: Coordination) => Promise<T>): Promise<T> {
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
async function readJson(arg: string): Promise<unknown> {
  const text = arg.trim().startsWith('{') ? arg : await readFile(arg, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`policy is not valid JSON: ${(e as Error).message}`);
  }
}

async function registryVms(c: Coordination): Promise<VmEntry[]> {
  const out: VmEntry[] = [];
  for await (const key of await c.registry.keys(REGISTRY_VM_KEYS)) {
    const e = await c.registry.get(key);
    if (e && e.operation === 'PUT') out.push(e.json<VmEntry>());
  }
  return out;
}

async function knownSites(c: Coordination): Promise<string[]> {
  const out: string[] = [];
  for await (const key of await c.registry.keys(REGISTRY_SITE_KEYS)) out.push(siteOfRegistryKey(key));
  return out;
}

async function defaultPolicy(c: Coordination): Promise<ProtectionPolicy> {
  const e = await c.policies.get(DEFAULT_POLICY_KEY);
  return e && e.operation === 'PUT' ? e.json<ProtectionPolicy>() : DEFAULT_POLICY;
}

async function resolveVmId(c: Coordination, nameOrId: string): Promise<VmEntry> {
  const vms = (await registryVms(c)).filter((v) => !v.replicaOf);
  const vm = vms.find((v) => v.name === nameOrId || v.vmId === nameOrId);
  if (!vm) throw new InvalidArgumentError(`VM '${nameOrId}' is not in the registry (is its storage node running with --nats?)`);
  return vm;
}

function describeSchedules(p: ProtectionPolicy | undefined): string {
  if (!p) return 'excluded';
  return p.schedules.map((s) => `${s.name} (${s.cron ?? `every ${s.every}`}, keep ${s.keep}${s.consistency === 'vm' ? ', vm' : ''})`).join('; ');
}

export function registerCoordinationCommands(program: Command): void {
  // No default here: `vmferry node` coordinates only when NATS is named (flag or env).
  program.addOption(new Option('--nats <url>', `NATS server(s) (default ${DEFAULT_NATS} for the coordination commands)`).env('VMFERRY_NATS'));

  registerServiceLaunchers(program, DEFAULT_NATS);

  const policy = program.command('policy').description('protection policies: the default for every VM, per-VM overrides');
  policy.command('show [vm]').action(async (vm: string | undefined, _o: unknown, cmd: Command) => {
    const g = globalsOf(cmd);
    await withNats(g, async (c) => {
      const base = await defaultPolicy(c);
      if (!vm) {
        if (g.json) {
          printJson(base);
          return;
        }
        printFields({
          default: describeSchedules(base),
          replication: (base.replication ?? []).map((t) => `${t.site}${t.rpo ? ` (RPO ${t.rpo})` : ''}`).join(', ') || '-',
        });
        return;
      }
      const entry = await resolveVmId(c, vm);
      const o = await c.policies.get(vmPolicyKey(entry.vmId));
      const override = o && o.operation === 'PUT' ? o.json<VmPolicyOverride>() : undefined;
      const eff = effectivePolicy(base, override, entry.site);
      if (g.json) {
        printJson({ vm: entry.name, override: override ?? null, effective: eff ?? null });
        return;
      }
      printFields({ vm: entry.name, override: override ? JSON.stringify(override) : '(none: the default applies)', effective: describeSchedules(eff) });
    });
  });
  policy
    .command('set-default <json-or-file>')
    .description('e.g. \'{"schedules":[{"name":"hourly","cron":"0 * * * *","keep":24}],"replication":[{"site":"siteB","rpo":"2h"}]}\'')
    .action(async (arg: string, _o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      const p = (await readJson(arg)) as ProtectionPolicy;
      if (!Array.isArray(p.schedules)) throw new InvalidArgumentError('a policy needs "schedules": [...]');
      await withNats(g, async (c) => {
        validatePolicy(p, await knownSites(c));
        await c.policies.put(DEFAULT_POLICY_KEY, JSON.stringify(p));
      });
      if (g.json) printJson(p);
      else printFields({ default: describeSchedules(p) });
    });
  policy
    .command('set <vm> <json-or-file>')
    .description('override for one VM, e.g. \'{"mode":"add","schedules":[{"name":"fast","every":"5m","keep":12}]}\'')
    .action(async (vm: string, arg: string, _o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      const o = (await readJson(arg)) as VmPolicyOverride;
      await withNats(g, async (c) => {
        validateOverride(o, await knownSites(c));
        const entry = await resolveVmId(c, vm);
        await c.policies.put(vmPolicyKey(entry.vmId), JSON.stringify(o));
        if (g.json) printJson({ vm: entry.name, override: o });
        else printFields({ vm: entry.name, override: JSON.stringify(o) });
      });
    });
  policy
    .command('reset <vm>')
    .description("drop a VM's override: the default applies again")
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      await withNats(g, async (c) => {
        const entry = await resolveVmId(c, vm);
        await c.policies.delete(vmPolicyKey(entry.vmId));
        if (g.json) printJson({ vm: entry.name, override: null });
        else printFields({ vm: entry.name, override: '(none)' });
      });
    });
  policy
    .command('exclude <vm>')
    .description('take a VM out of scheduled protection')
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      await withNats(g, async (c) => {
        const entry = await resolveVmId(c, vm);
        await c.policies.put(vmPolicyKey(entry.vmId), JSON.stringify({ exclude: true }));
        if (g.json) printJson({ vm: entry.name, override: { exclude: true } });
        else printFields({ vm: entry.name, excluded: 'yes' });
      });
    });

  program
    .command('status')
    .description("protected, late and unprotected VMs: replication age against each target's RPO")
    .action(async (_o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      await withNats(g, async (c) => {
        const base = await defaultPolicy(c);
        const now = Date.now();
        const rows = [];
        for (const vm of (await registryVms(c)).filter((v) => !v.replicaOf)) {
          const o = await c.policies.get(vmPolicyKey(vm.vmId));
          const eff = effectivePolicy(base, o && o.operation === 'PUT' ? o.json<VmPolicyOverride>() : undefined, vm.site);
          const replicated = new Map<string, ReplicatedSnapshot>();
          for (const t of eff?.replication ?? []) {
            const e = await c.state.get(rpoKey(vm.vmId, t.site));
            if (e && e.operation === 'PUT') replicated.set(t.site, e.json<ReplicationState>());
          }
          const { state, targets } = protectionStatus(eff, replicated, now);
          rows.push({ vm: vm.name, vmId: vm.vmId, site: vm.site, state, schedules: describeSchedules(eff), targets });
        }
        if (g.json) {
          printJson(rows);
          return;
        }
        const age = (ms: number | null): string => (ms === null ? 'never' : `${Math.round(ms / 1000)}s`);
        printTable(
          rows.map((r) => ({
            vm: r.vm,
            site: r.site,
            state: r.state.toUpperCase(),
            schedules: r.schedules,
            replication: r.targets.map((t) => `${t.site}: ${age(t.ageMs)}${t.rpoMs ? `/${age(t.rpoMs)}` : ''}${t.late ? ' LATE' : ''}`).join(', ') || '-',
          })),
        );
      });
    });

  program
    .command('events')
    .description('recent events (snapshots, replication, quiesce fallbacks, missed schedules, dead letters)')
    .option('--follow', 'keep printing new events')
    .option('--since <duration>', 'how far back to start', '1h')
    .action(async (o: { follow?: boolean; since: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const { DeliverPolicy } = await import('@nats-io/jetstream');
      await withNats(g, async (c) => {
        const consumer = await c.js.consumers.get(EVENTS_STREAM, {
          deliver_policy: DeliverPolicy.StartTime,
          opt_start_time: new Date(Date.now() - parseDuration(o.since)).toISOString(),
        });
        const all: VmferryEvent[] = [];
        const print = (e: VmferryEvent): void => {
          if (g.json) {
            if (o.follow) process.stdout.write(`${JSON.stringify(e)}\n`);
            else all.push(e);
            return;
          }
          const { kind, atMs, site, vmName, ...rest } = e;
          const extra = Object.entries(rest)
            .filter(([k]) => k !== 'vmId')
            .map(
              ([k, v]) =>
                `${k}=${typeof v === 'number' && /bytes/i.test(k) ? formatBytes(v) : typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v)}`,
            )
            .join(' ');
          process.stdout.write(`${new Date(atMs).toISOString()}  ${kind.padEnd(20)} ${site ?? ''} ${vmName ?? ''} ${extra}\n`);
        };
        if (o.follow) {
          const messages = await consumer.consume();
          const stop = (): void => void messages.close();
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
          for await (const m of messages) print(m.json<VmferryEvent>());
          return;
        }
        for (;;) {
          const m = await consumer.next({ expires: 1000 });
          if (!m) break;
          print(m.json<VmferryEvent>());
        }
        if (g.json) printJson(all);
      });
    });
}
