import { InvalidArgumentError } from './errors.js';
import { isId } from './ids.js';

/** VM names: 1–63 characters, letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Snapshot labels follow the VM name rule, so `VM@LABEL` stays unambiguous. */
export const LABEL = VM_NAME;

export function validateVmName(name: string): string {
  if (!VM_NAME.test(name)) {
    throw new InvalidArgumentError(`invalid VM name '${name}': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return name;
}

export function validateLabel(label: string): string {
  if (!LABEL.test(label)) {
    throw new InvalidArgumentError(`invalid snapshot label '${label}': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  // `VM@X` resolves X as a snapshot id first: a label shaped like an id could never be reached,
  // or would shadow another snapshot's id.
  if (isId(label)) {
    throw new InvalidArgumentError(`invalid snapshot label '${label}': it looks like a snapshot id (26 base32 characters); pick another label`);
  }
  return label;
}

/** `VM` names a VM's live state; `VM@SNAPSHOT` one of its snapshots (by id or label). */
export interface Ref {
  readonly vm: string;
  readonly snapshot?: string;
}

/** Parses `VM` or `VM@SNAPSHOT`. Throws InvalidArgumentError for anything else. */
export function parseRef(text: string): Ref {
  const parts = text.split('@');
  const vm = parts[0] ?? '';
  if (parts.length > 2 || !VM_NAME.test(vm) || (parts.length === 2 && !LABEL.test(parts[1] ?? ''))) {
    throw new InvalidArgumentError(`malformed reference '${text}': expected VM or VM@SNAPSHOT`);
  }
  return parts.length === 2 ? { vm, snapshot: parts[1] as string } : { vm };
}

export function formatRef(ref: Ref): string {
  return ref.snapshot === undefined ? ref.vm : `${ref.vm}@${ref.snapshot}`;
}

/** A vDisk of a VM's live state or snapshot: `REF` (disk 0) or `REF:DISK`. */
export interface DiskRef {
  /** `VM` or `VM@SNAPSHOT`, as parseRef reads it. */
  readonly ref: string;
  readonly diskIndex: number;
}

/**
 * Parses `VM`, `VM@SNAPSHOT`, `VM:1` or `VM@SNAPSHOT:1` (names and labels never hold ':').
 * Throws InvalidArgumentError naming the text for anything else.
 */
export function parseDiskRef(text: string): DiskRef {
  const colon = text.lastIndexOf(':');
  const ref = colon < 0 ? text : text.slice(0, colon);
  const disk = colon < 0 ? '0' : text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(disk) || Number(disk) > 65535)
    throw new InvalidArgumentError(`malformed reference '${text}': the vDisk after ':' must be an index from 0 to 65535`);
  try {
    parseRef(ref);
  } catch {
    throw new InvalidArgumentError(`malformed reference '${text}': expected VM, VM@SNAPSHOT, VM:DISK or VM@SNAPSHOT:DISK`);
  }
  return { ref, diskIndex: Number(disk) };
}
