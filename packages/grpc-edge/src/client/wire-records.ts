/*
 * Wire messages ⇄ core records, for what clients send and receive. Reading a peer's message
 * keeps unknown values (a consistency the core does not know) so validateReplicaRecord can
 * refuse them, rather than silently reading them as something valid.
 */
import { HOLE, toHex, type CommittedSnapshot, type SnapshotRecord, type VmRecord } from '@vmferry/core';
import type { Snapshot, Vm } from '@vmferry/proto';

const layout = (d: { index: number; size: number; blockSize: number; gridOffset: number }): { index: number; size: number; blockSize: number; gridOffset: number } => ({
  index: d.index,
  size: d.size,
  blockSize: d.blockSize,
  gridOffset: d.gridOffset,
});

/**
 * A VM as a peer sent it: the layouts only (live roots are not sent; the snapshot's roots are
 * the replica's). Its replica mark is the peer's business, not the record's here.
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
  };
}

/** A VM record as the commit call carries it (the target ignores the snapshot count and replica mark). */
export function vmToWire(vm: VmRecord): Vm {
  return {
    id: vm.id,
    name: vm.name,
    disks: vm.disks.map(layout),
    hypervisorConfig: Buffer.from(vm.hypervisorConfig, 'base64'),
    clonedFrom: vm.clonedFrom ? { ...vm.clonedFrom } : undefined,
    snapshotCount: 0,
    createdAtMs: vm.createdAtMs,
    homeSite: vm.homeSite,
    replicaOf: '',
  };
}

export function snapshotFromWire(s: Snapshot): SnapshotRecord {
  return {
    id: s.id,
    vmId: s.vmId,
    createdAtMs: s.createdAtMs,
    ...(s.label ? { label: s.label } : {}),
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
 * A snapshot in the wire message's shape (every field, in field order, defaults filled in): what
 * the CLI's JSON documents have always printed for a snapshot.
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
