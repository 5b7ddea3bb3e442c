/*
 * VM, snapshot and site records ⇄ their wire messages, for both sides of the edge (the servers
 * and the clients). Reading a peer's message keeps unknown values (a consistency the core does
 * not know) so validateReplicaRecord can refuse them, rather than silently reading them as
 * something valid.
 */
import { HOLE, toHex, vmUuid, type CommittedSnapshot, type SiteRecord, type SnapshotRecord, type VmRecord } from '@vmferry/core';
import type { Site, Snapshot, Vm } from '@vmferry/proto';

const layout = (d: {
  index: number;
  size: number;
  blockSize: number;
  gridOffset: number;
}): { index: number; size: number; blockSize: number; gridOffset: number } => ({
  index: d.index,
  size: d.size,
  blockSize: d.blockSize,
  gridOffset: d.gridOffset,
});

/** A VM as the node shows it, with its snapshot count and replica mark. */
export function vmToWire(vm: VmRecord, snapshotCount: number, replicaOf: string = vm.replicaOf ?? ''): Vm {
  return {
    id: vm.id,
    name: vm.name,
    disks: vm.disks.map(layout),
    hypervisorConfig: Buffer.from(vm.hypervisorConfig, 'base64'),
    clonedFrom: vm.clonedFrom ? { ...vm.clonedFrom } : undefined,
    snapshotCount,
    createdAtMs: vm.createdAtMs,
    homeSite: vm.homeSite,
    replicaOf,
    uuid: vmUuid(vm.id),
    epoch: vm.epoch ?? 0,
    fencedBy: vm.fencedBy?.site ?? '',
    fencedEpoch: vm.fencedBy?.epoch ?? 0,
  };
}

/**
 * A VM as a peer sent it (for a replica): the layouts only (checked against the snapshot's;
 * live roots are not sent, the replica's roots come from the snapshot). Its replica mark is
 * the peer's business, not the record's here.
 */
export function vmFromWire(vm: Vm): VmRecord {
  return {
    id: vm.id,
    name: vm.name,
    createdAtMs: vm.createdAtMs,
    homeSite: vm.homeSite,
    hypervisorConfig: vm.hypervisorConfig.toString('base64'),
    ...(vm.clonedFrom ? { clonedFrom: { vmId: vm.clonedFrom.vmId, vmName: vm.clonedFrom.vmName, snapshotId: vm.clonedFrom.snapshotId } } : {}),
    disks: vm.disks.map((d) => ({ ...layout(d), root: toHex(HOLE) })),
    // The source's ownership epoch (validateReplicaRecord checks it); its fence is its own business.
    ...(vm.epoch === 0 ? {} : { epoch: vm.epoch }),
  };
}

/** A snapshot as a peer sent it; validateReplicaRecord checks every field before it is used. */
export function snapshotFromWire(s: Snapshot): SnapshotRecord {
  return {
    id: s.id,
    vmId: s.vmId,
    createdAtMs: s.createdAtMs,
    ...(s.label ? { label: s.label } : {}),
    // Unknown values pass through so the validator refuses them (rather than read as 'crash').
    consistency: s.consistency === '' ? 'crash' : (s.consistency as SnapshotRecord['consistency']),
    ...(s.consistencyNote ? { consistencyNote: s.consistencyNote } : {}),
    origin: s.origin,
    disks: s.disks.map((d) => ({ ...layout(d), root: d.root })),
    dirtyBlocks: s.dirtyBlocks,
  };
}

export function committedFromWire(s: Snapshot): CommittedSnapshot {
  return { ...snapshotFromWire(s), vmName: s.vmName };
}

/**
 * A snapshot in the wire message's shape (every field, defaults filled in). The key order is
 * what the CLI's JSON documents have always printed for a snapshot (the client exports this
 * as snapshotView): keep it.
 */
export function snapshotToWire(s: SnapshotRecord, vmName: string): Snapshot {
  return {
    id: s.id,
    vmId: s.vmId,
    vmName,
    createdAtMs: s.createdAtMs,
    label: s.label ?? '',
    consistency: s.consistency,
    origin: s.origin,
    disks: s.disks.map((d) => ({ ...layout(d), root: d.root })),
    dirtyBlocks: s.dirtyBlocks,
    consistencyNote: s.consistencyNote ?? '',
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
