import { isVmferryError, type ErrorCode } from '@vmferry/core';
import { NBD_ERRNO } from './constants.js';

/**
 * Every core error code's NBD error value. A new ErrorCode without an entry fails to compile.
 * During transmission `not-found` can only mean the export itself went away (its VM or
 * snapshot was deleted), so it is ESHUTDOWN, which tells the client to disconnect.
 */
export const ERRNO_OF: Record<ErrorCode, number> = {
  'invalid-argument': NBD_ERRNO.EINVAL,
  'not-found': NBD_ERRNO.ESHUTDOWN,
  'already-exists': NBD_ERRNO.EINVAL,
  'failed-precondition': NBD_ERRNO.EPERM,
  'out-of-range': NBD_ERRNO.EINVAL,
  'resource-exhausted': NBD_ERRNO.ENOSPC,
  'data-loss': NBD_ERRNO.EIO,
  'permission-denied': NBD_ERRNO.EPERM,
  unavailable: NBD_ERRNO.EIO,
  cancelled: NBD_ERRNO.EIO,
  'deadline-exceeded': NBD_ERRNO.EIO,
  // proto.md: ENOTSUP only for a fast zero; anything else the server cannot do is EINVAL.
  unimplemented: NBD_ERRNO.EINVAL,
  internal: NBD_ERRNO.EIO,
};

/** The NBD error value and message for anything a backend call rejected with. */
export function errnoOf(e: unknown): { errno: number; message: string; exportGone: boolean } {
  if (isVmferryError(e)) return { errno: ERRNO_OF[e.code], message: e.message, exportGone: e.code === 'not-found' };
  return { errno: NBD_ERRNO.EIO, message: `internal error: ${e instanceof Error ? e.message : String(e)}`, exportGone: false };
}
