/** Domain records ⇄ wire messages. Only this file and the server see generated types. */
import type { SnapshotRecord, VmRecord } from '@vmferry/core';
import type { Snapshot, Stats, Vm, VerifyReport as WireVerifyReport } from '@vmferry/proto';
import type { NodeStats } from './stats.js';
import type { VerifyReport } from './verify.js';

export function vmToWire(vm: VmRecord, snapshotCount: number): Vm {
  return {
    id: vm.id,
    name: vm.name,
    disks: vm.disks.map((d) => ({ index: d.index, size: d.size, blockSize: d.blockSize, gridOffset: d.gridOffset })),
    hypervisorConfig: Buffer.from(vm.hypervisorConfig, 'base64'),
    clonedFrom: vm.clonedFrom,
    snapshotCount,
    createdAtMs: vm.createdAtMs,
    homeSite: vm.homeSite,
  };
}

export function snapshotToWire(s: SnapshotRecord, vmName: string): Snapshot {
  return {
    id: s.id,
    vmId: s.vmId,
    vmName,
    createdAtMs: s.createdAtMs,
    label: s.label ?? '',
    consistency: s.consistency,
    origin: s.origin,
    disks: s.disks.map((d) => ({ index: d.index, size: d.size, blockSize: d.blockSize, gridOffset: d.gridOffset, root: d.root })),
    dirtyBlocks: s.dirtyBlocks,
  };
}

export function statsToWire(s: NodeStats): Stats {
  return { ...s, vms: s.vms.map((v) => ({ ...v })) };
}

export function verifyReportToWire(r: VerifyReport): WireVerifyReport {
  return { chunksChecked: r.chunksChecked, corrupt: r.corrupt, missing: r.missing.map((m) => m.chunkId) };
}
