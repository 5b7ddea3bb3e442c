/** VM, snapshot and site records ⇄ their wire messages. */
import { HOLE, toHex, type SiteRecord, type SnapshotRecord, type VmRecord } from '@vmferry/core';
import type { Site, Snapshot, Vm } from '@vmferry/proto';

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
    replicaOf: vm.replicaOf ?? '',
  };
}

/** A VM as a peer sent it (for a replica): the record it will have here. */
export function vmFromWire(vm: Vm): VmRecord {
  return {
    id: vm.id,
    name: vm.name,
    createdAtMs: vm.createdAtMs,
    homeSite: vm.homeSite,
    hypervisorConfig: vm.hypervisorConfig.toString('base64'),
    ...(vm.clonedFrom ? { clonedFrom: { vmId: vm.clonedFrom.vmId, vmName: vm.clonedFrom.vmName, snapshotId: vm.clonedFrom.snapshotId } } : {}),
    // The layouts only (checked against the snapshot's); the replica's roots come from the snapshot.
    disks: vm.disks.map((d) => ({ index: d.index, size: d.size, blockSize: d.blockSize, gridOffset: d.gridOffset, root: toHex(HOLE) })),
  };
}

/** A snapshot as a peer sent it; validateReplicaRecord checks every field before it is used. */
export function snapshotFromWire(s: Snapshot): SnapshotRecord {
  const disks = s.disks.map((d) => ({ index: d.index, size: d.size, blockSize: d.blockSize, gridOffset: d.gridOffset, root: d.root }));
  return {
    id: s.id,
    vmId: s.vmId,
    createdAtMs: s.createdAtMs,
    ...(s.label ? { label: s.label } : {}),
    // Unknown values pass through so the validator refuses them (rather than read as 'crash').
    consistency: s.consistency === '' ? 'crash' : (s.consistency as SnapshotRecord['consistency']),
    ...(s.consistencyNote ? { consistencyNote: s.consistencyNote } : {}),
    origin: s.origin,
    disks,
    dirtyBlocks: s.dirtyBlocks,
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
    consistencyNote: s.consistencyNote ?? '',
    origin: s.origin,
    disks: s.disks.map((d) => ({ index: d.index, size: d.size, blockSize: d.blockSize, gridOffset: d.gridOffset, root: d.root })),
    dirtyBlocks: s.dirtyBlocks,
  };
}

export function siteToWire(s: SiteRecord): Site {
  return { ...s };
}

export function siteFromWire(s: Site): SiteRecord {
  return {
    name: s.name,
    replicationAddress: s.replicationAddress,
    identity: s.identity,
    nodeAddress: s.nodeAddress,
    bindAddress: s.bindAddress,
    rate: s.rate,
  };
}
