/** The RPO series: per (site, VM, target) from the policy in force, VM labels capped per site. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProtectionPolicy, VmPolicyOverride } from '@vmferry/core';
import type { VmEntry } from '@vmferry/nats';
import { OTHER_VMS, rpoSeries } from '../src/rpo-series.js';

const policy: ProtectionPolicy = { schedules: [{ name: 'hourly', every: '1h', keep: 24 }], replication: [{ site: 'west', rpo: '2h' }] };
const vm = (site: string, name: string, replicaOf?: string): [string, VmEntry] => [
  `${site}.${name}`,
  { vmId: `id-${name}`, name, site, updatedAtMs: 0, ...(replicaOf ? { replicaOf } : {}) },
];

test('one series per VM and target, in seconds; replicas and targets without an RPO have none', () => {
  const vms = new Map([vm('east', 'web'), vm('east', 'db'), vm('west', 'web', 'east')]);
  const overrides = new Map<string, VmPolicyOverride>([['id-db', { replication: [{ site: 'west', rpo: '30m' }, { site: 'south' }] }]]);
  const series = rpoSeries({ vms, overrides, defaultPolicy: policy }, 10);
  assert.deepEqual(series.map(([v, l]) => [l['vm'], l['site'], l['target'], v]).sort(), [
    ['db', 'east', 'west', 1800],
    ['web', 'east', 'west', 7200],
  ]);
});

test('past the limit, VMs in name order share vm="_other" with the strictest RPO', () => {
  const vms = new Map([vm('east', 'c'), vm('east', 'a'), vm('east', 'b'), vm('east', 'd')]);
  const overrides = new Map<string, VmPolicyOverride>([['id-d', { replication: [{ site: 'west', rpo: '10m' }] }]]);
  const series = rpoSeries({ vms, overrides, defaultPolicy: policy }, 2);
  assert.deepEqual(
    series.map(([v, l]) => [l['vm'], v]),
    [
      ['a', 7200],
      ['b', 7200],
      [OTHER_VMS, 600],
    ],
  );
});
