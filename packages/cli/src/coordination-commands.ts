/**
 * The coordination plane from the CLI: launch the scheduler or a replicator service
 * (service-launchers.ts), manage policies, see protection status (status-command.ts) and
 * follow events (events-command.ts). Global `--nats URL` (env VMFERRY_NATS) says where NATS is.
 */
import { Option, type Command } from 'commander';
import { effectivePolicy, parseOverride, parsePolicy } from '@vmferry/core';
import { DEFAULT_POLICY_KEY, vmPolicyKey } from '@vmferry/nats';
import {
  DEFAULT_NATS,
  defaultPolicy,
  describeSchedules,
  globalsOf,
  knownSites,
  readJson,
  resolveVmId,
  storePolicy,
  vmOverride,
  withNats,
} from './coordination-shared.js';
import { registerEventsCommand } from './events-command.js';
import { printFields, printJson } from './output.js';
import { registerServiceLaunchers } from './service-launchers.js';
import { registerStatusCommand } from './status-command.js';
import { printSimulation } from './policy-simulate.js';

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
      const override = await vmOverride(c, entry.vmId);
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
      const doc = await readJson(arg);
      parsePolicy(doc); // refused before connecting when the document alone is bad
      const [p, sites] = await withNats(g, async (c) => {
        const valid = parsePolicy(doc, await knownSites(c));
        return [valid, await storePolicy(c, (kv) => kv.put(DEFAULT_POLICY_KEY, JSON.stringify(valid)))] as const;
      });
      if (g.json) printJson({ ...p, storedAt: sites });
      else printFields({ default: describeSchedules(p), 'stored at': sites.join(', ') });
    });
  policy
    .command('simulate <vm>')
    .description("retention dry run: which of the VM's snapshots its policy keeps and deletes, and why (nothing is deleted)")
    .option('--with <json-or-file>', 'simulate this override instead of the stored one (not stored; as policy set --dry-run)')
    .action(async (vm: string, o: { with?: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const doc = o.with === undefined ? undefined : await readJson(o.with);
      if (doc !== undefined) parseOverride(doc);
      await withNats(g, async (c) => {
        const entry = await resolveVmId(c, vm);
        const override = doc === undefined ? await vmOverride(c, entry.vmId) : parseOverride(doc, await knownSites(c));
        await printSimulation(c, entry, override, g, cmd, doc !== undefined);
      });
    });
  policy
    .command('set <vm> <json-or-file>')
    .description('override for one VM, e.g. \'{"mode":"add","schedules":[{"name":"fast","every":"5m","keep":12}]}\'')
    .option('--dry-run', 'store nothing: show what retention would keep and delete under this override (policy simulate --with)')
    .action(async (vm: string, arg: string, opts: { dryRun?: boolean }, cmd: Command) => {
      const g = globalsOf(cmd);
      const doc = await readJson(arg);
      parseOverride(doc);
      await withNats(g, async (c) => {
        const o = parseOverride(doc, await knownSites(c));
        const entry = await resolveVmId(c, vm);
        if (opts.dryRun) {
          await printSimulation(c, entry, o, g, cmd, true);
          return;
        }
        const sites = await storePolicy(c, (kv) => kv.put(vmPolicyKey(entry.vmId), JSON.stringify(o)));
        if (g.json) printJson({ vm: entry.name, override: o, storedAt: sites });
        else printFields({ vm: entry.name, override: JSON.stringify(o), 'stored at': sites.join(', ') });
      });
    });
  policy
    .command('reset <vm>')
    .description("drop a VM's override: the default applies again")
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      await withNats(g, async (c) => {
        const entry = await resolveVmId(c, vm);
        const sites = await storePolicy(c, (kv) => kv.delete(vmPolicyKey(entry.vmId)));
        if (g.json) printJson({ vm: entry.name, override: null, storedAt: sites });
        else printFields({ vm: entry.name, override: '(none)', 'stored at': sites.join(', ') });
      });
    });
  policy
    .command('exclude <vm>')
    .description('take a VM out of scheduled protection')
    .action(async (vm: string, _o: unknown, cmd: Command) => {
      const g = globalsOf(cmd);
      await withNats(g, async (c) => {
        const entry = await resolveVmId(c, vm);
        const sites = await storePolicy(c, (kv) => kv.put(vmPolicyKey(entry.vmId), JSON.stringify({ exclude: true })));
        if (g.json) printJson({ vm: entry.name, override: { exclude: true }, storedAt: sites });
        else printFields({ vm: entry.name, excluded: 'yes', 'stored at': sites.join(', ') });
      });
    });

  registerStatusCommand(program);
  registerEventsCommand(program);
}
