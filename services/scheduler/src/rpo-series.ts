/*
 * Each (VM, target) pair's RPO from the policy in force, as gauge series for Prometheus. The
 * source node exports the age of each target's newest copy (vmferry_replica_newest_age_seconds,
 * same site, vm and target labels); the RPO-breach rule compares the two. Only the scheduler
 * knows the policies, so the RPO is exported here rather than by the nodes.
 *
 * Bounded like the node's per-VM gauges: per site, the first `limit` VMs in name order get
 * their own series (the node labels the same ones: both sort by name); the rest share
 * vm="_other" with the strictest (smallest) RPO among them, so a late one still alerts.
 */
import { effectivePolicy, parseDuration } from '@vmferry/core';
import type { PolicyView } from './policy-view.js';

export const OTHER_VMS = '_other';

export type Series = readonly [number, Readonly<Record<string, string>>];

/** Pure over the view's current content. */
export function rpoSeries(view: Pick<PolicyView, 'vms' | 'overrides' | 'defaultPolicy'>, limit: number): Series[] {
  const bySite = new Map<string, { name: string; vmId: string; site: string }[]>();
  for (const vm of view.vms.values()) {
    if (vm.replicaOf) continue;
    const list = bySite.get(vm.site) ?? [];
    list.push({ name: vm.name, vmId: vm.vmId, site: vm.site });
    bySite.set(vm.site, list);
  }
  const out: Series[] = [];
  for (const [site, vms] of bySite) {
    vms.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const other = new Map<string, number>();
    for (const [i, vm] of vms.entries()) {
      const policy = effectivePolicy(view.defaultPolicy, view.overrides.get(vm.vmId), site);
      for (const t of policy?.replication ?? []) {
        if (!t.rpo) continue;
        const seconds = parseDuration(t.rpo) / 1000;
        if (i < limit) out.push([seconds, { site, vm: vm.name, target: t.site }]);
        else other.set(t.site, Math.min(other.get(t.site) ?? Infinity, seconds));
      }
    }
    for (const [target, seconds] of other) out.push([seconds, { site, vm: OTHER_VMS, target }]);
  }
  return out;
}

/** VMFERRY_METRICS_VM_LABEL_LIMIT, as the node reads it (default 500). */
export function vmLabelLimit(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env['VMFERRY_METRICS_VM_LABEL_LIMIT'] ?? 500);
  return Number.isInteger(n) && n >= 0 ? n : 500;
}
