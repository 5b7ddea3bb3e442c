/**
 * `vmferry status [--watch [--interval S]]`: PROTECTED / LATE / UNPROTECTED per VM, the age of
 * each target's newest copy against its RPO. Monitoring calls it: the exit code is 0 when every
 * VM is protected, STATUS_NOT_PROTECTED (3) when any is LATE or UNPROTECTED, 1 for an error (as
 * every command). `--watch` redraws the table in place on a terminal (ANSI home and clear);
 * when stdout is not a TTY it prints successive tables, each after a line with the time. It
 * runs until Ctrl-C (SIGINT) or SIGTERM and then exits with the code of the last table.
 */
import type { Command } from 'commander';
import { effectivePolicy, protectionStatus, type ProtectionState, type ReplicatedSnapshot, type TargetStatus } from '@vmferry/core';
import { peerLinks, rpoKey, type Coordination, type PeerLink, type ReplicationState } from '@vmferry/nats';
import { defaultPolicy, describeSchedules, globalsOf, registryVms, vmOverride, withNats } from './coordination-shared.js';
import { wholeNumberFlag } from './flags.js';
import { printJson, printTable } from './output.js';

/** The exit code of `status` when any VM is LATE or UNPROTECTED (1 is an error, 2 is `verify`'s damage). */
export const STATUS_NOT_PROTECTED = 3;

interface StatusRow {
  readonly vm: string;
  readonly vmId: string;
  readonly site: string;
  readonly state: ProtectionState;
  readonly schedules: string;
  readonly targets: readonly TargetStatus[];
  /**
   * Per-site coordination, for a VM of another site: whether that site's coordination plane is
   * heard from (its registry's source), and since when it is not. Absent for this site's VMs.
   */
  readonly source?: { readonly reachable: boolean; readonly lastHeardMs: number | null };
}

function sourceOf(vmSite: string, c: Coordination, links: ReadonlyMap<string, PeerLink>): StatusRow['source'] {
  if (c.site === undefined || vmSite === c.site) return undefined;
  const l = links.get(vmSite);
  // A VM of a site not sourced any more (removed with `site remove`): nothing is heard of it.
  if (!l) return { reachable: false, lastHeardMs: null };
  return { reachable: l.reachable, lastHeardMs: l.lastHeardMs > 0 ? l.lastHeardMs : null };
}

async function statusRows(c: Coordination): Promise<StatusRow[]> {
  const base = await defaultPolicy(c);
  const now = Date.now();
  const links = new Map((await peerLinks(c, now)).map((l) => [l.site, l]));
  const rows: StatusRow[] = [];
  for (const vm of (await registryVms(c)).filter((v) => !v.replicaOf)) {
    // A target equal to the VM's own site is dropped: one policy for both sites of a pair.
    const eff = effectivePolicy(base, await vmOverride(c, vm.vmId), vm.site);
    const replicated = new Map<string, ReplicatedSnapshot>();
    for (const t of eff?.replication ?? []) {
      const e = await c.state.get(rpoKey(vm.vmId, t.site));
      if (e && e.operation === 'PUT') replicated.set(t.site, e.json<ReplicationState>());
    }
    const { state, targets } = protectionStatus(eff, replicated, now);
    const source = sourceOf(vm.site, c, links);
    rows.push({ vm: vm.name, vmId: vm.vmId, site: vm.site, state, schedules: describeSchedules(eff), targets, ...(source ? { source } : {}) });
  }
  return rows;
}

const exitCodeOf = (rows: readonly StatusRow[]): number => (rows.every((r) => r.state === 'protected') ? 0 : STATUS_NOT_PROTECTED);

function printRows(rows: readonly StatusRow[]): void {
  const age = (ms: number | null): string => (ms === null ? 'never' : `${Math.round(ms / 1000)}s`);
  printTable(
    rows.map((r) => ({
      vm: r.vm,
      site: r.site,
      state: r.state.toUpperCase(),
      schedules: r.schedules,
      replication: r.targets.map((t) => `${t.site}: ${age(t.ageMs)}${t.rpoMs ? `/${age(t.rpoMs)}` : ''}${t.late ? ' LATE' : ''}`).join(', ') || '-',
      // Only with per-site coordination, where another site's VMs can go unheard of.
      ...(rows.some((x) => x.source) ? { source: sourceText(r.source) } : {}),
    })),
  );
}

function sourceText(s: StatusRow['source']): string {
  if (!s) return '-';
  if (s.reachable) return 'reachable';
  return s.lastHeardMs === null ? 'unreachable (never heard)' : `unreachable since ${new Date(s.lastHeardMs).toISOString().replace('T', ' ').slice(0, 19)}`;
}

/** Redraws until SIGINT/SIGTERM; returns the exit code of the last table. */
async function watch(c: Coordination, json: boolean, intervalMs: number): Promise<number> {
  let stopped = false;
  let wake: () => void = () => undefined;
  const stop = (): void => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const tty = process.stdout.isTTY;
  let code = 0;
  const going = (): boolean => !stopped; // set by the signal handlers
  try {
    for (let first = true; going(); first = false) {
      try {
        const rows = await statusRows(c);
        code = exitCodeOf(rows);
        if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
        else {
          if (tty) process.stdout.write('\x1b[H\x1b[2J');
          else if (!first) process.stdout.write('\n');
          if (tty || !first) process.stdout.write(`--- ${new Date().toISOString()}\n`);
          printRows(rows);
        }
      } catch (e) {
        // NATS away for a moment: say so and try again at the next refresh.
        code = 1;
        process.stderr.write(`vmferry: status: ${e instanceof Error ? e.message : String(e)} (retrying)\n`);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, intervalMs);
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return code;
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description(`protected, late and unprotected VMs: replication age against each target's RPO; exit ${STATUS_NOT_PROTECTED} when any is LATE or UNPROTECTED`)
    .option('--watch', 'redraw until Ctrl-C')
    .option('--interval <seconds>', 'seconds between redraws with --watch', '5')
    .action(async (o: { watch?: boolean; interval: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const intervalMs = wholeNumberFlag('--interval', o.interval, 1, 86_400) * 1000;
      const code = await withNats(g, async (c) => {
        if (o.watch) return watch(c, g.json, intervalMs);
        const rows = await statusRows(c);
        if (g.json) printJson(rows);
        else printRows(rows);
        return exitCodeOf(rows);
      });
      if (code !== 0) process.exitCode = code;
    });
}
