/**
 * `vmferry policy simulate VM [--with DOC]` and `policy set VM DOC --dry-run`: which of the
 * VM's snapshots retention keeps and deletes (like PBS's prune simulator), computed by the
 * core's simulateRetention — the rules the storage node applies after each scheduled
 * snapshot — over the VM's snapshots as its node lists them now. Nothing is deleted.
 *
 * The node is the VM's own site's (its address from the registry), unless --node or
 * VMFERRY_NODE names one. Snapshots a replication target holds as its newest (the state
 * bucket's record) are shown kept: the node refuses to delete a pair's incremental base.
 */
import type { Command } from 'commander';
import { effectivePolicy, simulateRetention, type ProtectionPolicy, type VmPolicyOverride } from '@vmferry/core';
import { registrySiteKey, rpoKey, type Coordination, type ReplicationState, type SiteEntry, type VmEntry } from '@vmferry/nats';
import { defaultPolicy, type Globals } from './coordination-shared.js';
import { printJson, printTable } from './output.js';

export interface SimulationRow {
  readonly id: string;
  readonly label: string | null;
  readonly createdAtMs: number;
  readonly schedule: string | null;
  readonly action: 'keep' | 'delete';
  readonly reason: string;
}

/** The node that holds the VM: --node / VMFERRY_NODE when given, else the address its site registered. */
async function nodeAddressOf(c: Coordination, vm: VmEntry, g: Globals, cmd: Command): Promise<string> {
  const source = cmd.getOptionValueSourceWithGlobals('node');
  if (source === 'cli' || source === 'env') return g.node;
  const e = await c.registry.get(registrySiteKey(vm.site));
  return e?.operation === 'PUT' ? e.json<SiteEntry>().nodeAddress : g.node;
}

/** Snapshot id → why it must stay: the newest snapshot each replication target holds. */
async function replicationBases(c: Coordination, vm: VmEntry, policy: ProtectionPolicy | undefined): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of policy?.replication ?? []) {
    const e = await c.state.get(rpoKey(vm.vmId, t.site));
    if (e?.operation !== 'PUT') continue;
    const id = e.json<ReplicationState>().snapshotId;
    out.set(id, [out.get(id), `base of replication to ${t.site}`].filter(Boolean).join(', '));
  }
  return out;
}

/**
 * Prints the retention outcome for `vm` under its stored override, or under `proposed` (a
 * validated override document that is not stored: the dry run of `policy set`).
 */
export async function printSimulation(
  c: Coordination,
  vm: VmEntry,
  override: VmPolicyOverride | undefined,
  g: Globals,
  cmd: Command,
  proposed: boolean,
): Promise<void> {
  const policy = effectivePolicy(await defaultPolicy(c), override, vm.site);
  const address = await nodeAddressOf(c, vm, g, cmd);
  const { connect, describeError } = await import('./client.js');
  const client = connect(address);
  const nowMs = Date.now();
  let rows: SimulationRow[];
  try {
    const snapshots = await client.listSnapshots(vm.vmId);
    const plan = simulateRetention(snapshots, policy, nowMs, await replicationBases(c, vm, policy));
    rows = plan.map((d) => ({
      id: d.snapshot.id,
      label: d.snapshot.label || null,
      createdAtMs: d.snapshot.createdAtMs,
      schedule: d.schedule ?? null,
      action: d.action,
      reason: d.reason,
    }));
  } catch (e) {
    throw new Error(describeError(e, address), { cause: e });
  } finally {
    client.close();
  }
  const deleted = rows.filter((r) => r.action === 'delete').length;
  if (g.json) {
    printJson({ vm: vm.name, site: vm.site, policy: proposed ? 'proposed' : 'stored', nowMs, kept: rows.length - deleted, deleted, snapshots: rows });
    return;
  }
  printTable(
    rows.map((r) => ({
      snapshot: r.label ? `${r.id} (${r.label})` : r.id,
      created: new Date(r.createdAtMs).toISOString().replace('T', ' ').slice(0, 19),
      schedule: r.schedule ?? '-',
      action: r.action === 'delete' ? 'DELETE' : 'keep',
      reason: r.reason,
    })),
  );
  const what = proposed ? 'under the proposed override (not stored)' : 'under the policy in force';
  process.stdout.write(
    `${vm.name}: ${rows.length - deleted} kept, ${deleted} deleted ${what} at the next scheduled snapshot's retention run (dry run: nothing deleted)\n`,
  );
}
