/**
 * The exit codes a script can branch on. Failures take the BSD sysexits.h numbers for their
 * kind, so "not found", "cannot reach it", "bad input" and "bad command line" differ; 2 and 3
 * are results (verify found damage, status found VMs not protected), not failures of the command.
 */
import type { ErrorCode } from '@vmferry/core';

export const EXIT = {
  ok: 0,
  /** Any failure without a code of its own (a conflict, an internal error, …). */
  failure: 1,
  /** `verify` found corrupt or missing chunks. */
  damageFound: 2,
  /** `status`: a VM is LATE or UNPROTECTED. */
  notProtected: 3,
  /** The command line itself: an unknown command or option, a missing argument (EX_USAGE). */
  usage: 64,
  /** A value given is malformed or out of range (EX_DATAERR). */
  invalidArgument: 65,
  /** The VM, snapshot, site or input file named does not exist (EX_NOINPUT). */
  notFound: 66,
  /** The node, NATS or a peer site cannot be reached (EX_UNAVAILABLE). */
  unavailable: 69,
  /** Refused: certificates or identity (EX_NOPERM). */
  permissionDenied: 77,
} as const;

/** The exit code for a failure with this error code. */
export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'invalid-argument':
    case 'out-of-range':
      return EXIT.invalidArgument;
    case 'not-found':
      return EXIT.notFound;
    case 'unavailable':
    case 'deadline-exceeded':
      return EXIT.unavailable;
    case 'permission-denied':
      return EXIT.permissionDenied;
    default:
      return EXIT.failure;
  }
}
