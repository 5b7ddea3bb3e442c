/*
 * Validation of a VM and snapshot record that arrived from a peer site (a replica to commit).
 *
 * A peer is not trusted: every field is checked exactly as strictly as local input (the same
 * name, label and layout rules `vm create` applies), plus the shape rules that local code
 * guarantees by construction (ids made by an IdSource, disks numbered 0..n-1, roots as fingerprints).
 * An id that is empty or not id-shaped would become a storage key prefix, so it is refused here
 * before anything is written.
 */
/* eslint-disable @typescript-eslint/no-unnecessary-condition, @typescript-eslint/no-unnecessary-type-conversion --
   a peer's record is checked field by field: the types say what it should hold, not what arrived. */
import { validateLayout } from './block-grid.js';
import { InvalidArgumentError } from './errors.js';
import { isId } from './ids.js';
import { validateEpoch } from './ownership.js';
import type { DiskRecord, SnapshotRecord, VmRecord } from './model.js';
import { VM_NAME, validateLabel, validateVmName } from './names.js';

/** The most vDisks one VM may have (local creation enforces the same). */
export const MAX_DISKS_PER_VM = 64;
/** The largest hypervisor configuration accepted, in bytes (local creation enforces the same). */
export const MAX_HYPERVISOR_CONFIG_BYTES = 1024 * 1024;
/** Bound on free-text fields of a snapshot (origin, consistency note). */
export const MAX_SNAPSHOT_TEXT = 1024;
/** Ids hold a 48-bit millisecond time; no honest record is created after that. */
const MAX_TIME_MS = 2 ** 48 - 1;
const HEX_FP = /^[0-9a-f]{64}$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

function fail(what: string, why: string): never {
  throw new InvalidArgumentError(`${what} ${why}`);
}

/** Throws InvalidArgumentError unless `id` is shaped like an id made by an IdSource. */
export function validateId(id: string, what: string): string {
  if (typeof id !== 'string' || !isId(id)) fail(what, `'${String(id).slice(0, 40)}' is not a valid id (26 Crockford base32 characters)`);
  return id;
}

/** Throws InvalidArgumentError unless `name` is a valid site name (the VM name rule). */
export function validateSiteName(name: string, what = 'site name'): string {
  if (typeof name !== 'string' || !VM_NAME.test(name)) {
    fail(what, `'${String(name).slice(0, 70)}' is invalid: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

function validateTime(ms: number, what: string): void {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TIME_MS) fail(what, `${ms} is not a valid time in milliseconds`);
}

function validateText(text: string, what: string): void {
  if (typeof text !== 'string' || text.length > MAX_SNAPSHOT_TEXT || !PRINTABLE.test(text)) {
    fail(what, `must be printable text of at most ${MAX_SNAPSHOT_TEXT} characters`);
  }
}

function validateDisks(disks: readonly DiskRecord[], what: string): void {
  if (disks.length < 1 || disks.length > MAX_DISKS_PER_VM) fail(what, `has ${disks.length} vDisks; a VM has 1 to ${MAX_DISKS_PER_VM}`);
  disks.forEach((d, i) => {
    if (d.index !== i) fail(`${what} vDisk ${i}`, `has index ${d.index}; vDisks are numbered 0..${disks.length - 1} in order`);
    try {
      validateLayout(d);
    } catch (e) {
      fail(`${what} vDisk ${i}:`, e instanceof Error ? e.message : String(e));
    }
  });
}

function sameLayout(a: DiskRecord, b: DiskRecord): boolean {
  return a.index === b.index && a.size === b.size && a.blockSize === b.blockSize && a.gridOffset === b.gridOffset;
}

/**
 * Checks a replica's VM and snapshot as a peer sent them; throws InvalidArgumentError naming
 * the field and the record. `vm.disks` are the VM's layouts (their roots are not looked at);
 * they must match the snapshot's, since a vDisk's layout never changes after creation.
 */
export function validateReplicaRecord(vm: VmRecord, snapshot: SnapshotRecord): void {
  validateId(vm.id, 'VM id');
  const ofVm = `VM '${vm.id}'`;
  try {
    validateVmName(vm.name);
  } catch (e) {
    fail(`${ofVm}:`, e instanceof Error ? e.message.slice(0, 200) : String(e));
  }
  const v = `VM '${vm.name}'`;
  validateTime(vm.createdAtMs, `${v} creation time`);
  validateSiteName(vm.homeSite, `${v} home site`);
  // base64 of at most the limit: 4 characters per 3 bytes.
  if (typeof vm.hypervisorConfig !== 'string' || vm.hypervisorConfig.length > Math.ceil(MAX_HYPERVISOR_CONFIG_BYTES / 3) * 4) {
    fail(`${v} hypervisor config`, `is larger than ${MAX_HYPERVISOR_CONFIG_BYTES} bytes`);
  }
  if (vm.clonedFrom) {
    validateId(vm.clonedFrom.vmId, `${v} clone source VM id`);
    validateId(vm.clonedFrom.snapshotId, `${v} clone source snapshot id`);
    if (!VM_NAME.test(vm.clonedFrom.vmName)) fail(`${v} clone source name`, `'${vm.clonedFrom.vmName.slice(0, 70)}' is not a valid VM name`);
  }
  validateDisks(vm.disks, v);
  if (vm.epoch !== undefined) validateEpoch(vm.epoch, `${v} ownership epoch`);

  validateId(snapshot.id, `${v} snapshot id`);
  const s = `snapshot ${snapshot.id} of ${v}`;
  if (snapshot.vmId !== vm.id) fail(s, `belongs to VM '${String(snapshot.vmId).slice(0, 40)}', not ${vm.id}`);
  validateTime(snapshot.createdAtMs, `${s} creation time`);
  if (snapshot.label !== undefined) {
    try {
      validateLabel(snapshot.label);
    } catch (e) {
      fail(`${s}:`, e instanceof Error ? e.message.slice(0, 200) : String(e));
    }
  }
  if (snapshot.consistency !== 'crash' && snapshot.consistency !== 'vm') fail(`${s} consistency`, `must be 'crash' or 'vm'`);
  if (snapshot.consistencyNote !== undefined) validateText(snapshot.consistencyNote, `${s} consistency note`);
  validateText(snapshot.origin, `${s} origin`);
  if (!Number.isSafeInteger(snapshot.dirtyBlocks) || snapshot.dirtyBlocks < 0) fail(`${s} dirty block count`, `${snapshot.dirtyBlocks} is invalid`);
  validateDisks(snapshot.disks, s);
  if (snapshot.disks.length !== vm.disks.length) fail(s, `has ${snapshot.disks.length} vDisks but the VM has ${vm.disks.length}`);
  snapshot.disks.forEach((d, i) => {
    if (!HEX_FP.test(d.root)) fail(`${s} vDisk ${i} root`, `'${String(d.root).slice(0, 70)}' is not a 64-digit hex fingerprint`);
    if (!sameLayout(d, vm.disks[i] as DiskRecord)) fail(`${s} vDisk ${i}`, `layout differs from the VM's vDisk ${i}`);
  });
}
