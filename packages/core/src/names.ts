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
