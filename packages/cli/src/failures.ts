/** Failures the CLI reports in its own words, keeping the code and retryable flag of the cause. */
import { isVmferryError, VmferryError, type ErrorCode } from '@vmferry/core';
import { asCoreError } from '@vmferry/grpc-edge';

/**
 * `e` as a coded error with `message`: the code and retryable flag of `e` (read back from a
 * gRPC status when `e` is one), `internal` for an error of unknown kind; `e` is the cause.
 */
export function reworded(e: unknown, message: string): VmferryError {
  const core = asCoreError(e);
  if (isVmferryError(core)) return new VmferryError(core.code, message, { cause: e, retryable: core.retryable });
  return new VmferryError('internal', message, { cause: e });
}

/** Node's file errors (errno codes) as the sentence a person acts on, and the failure's kind. */
const FILE_ERRORS: Readonly<Record<string, { code: ErrorCode; says: (path: string) => string }>> = {
  ENOENT: { code: 'not-found', says: (p) => `file not found: ${p}` },
  EACCES: { code: 'permission-denied', says: (p) => `permission denied: ${p} (check its owner and mode)` },
  EPERM: { code: 'permission-denied', says: (p) => `operation not permitted on ${p}` },
  EISDIR: { code: 'invalid-argument', says: (p) => `${p} is a folder, not a file` },
  ENOTDIR: { code: 'invalid-argument', says: (p) => `a part of ${p} is not a folder` },
  EEXIST: { code: 'already-exists', says: (p) => `${p} already exists` },
  ENOSPC: { code: 'resource-exhausted', says: (p) => `no space left on the device holding ${p}` },
  EROFS: { code: 'permission-denied', says: (p) => `${p} is on a read-only filesystem` },
};

/**
 * A local file error (`ENOENT: no such file or directory, stat 'x'`) as a coded error in plain
 * words naming the file; undefined for anything else.
 */
export function fromFileError(e: unknown): VmferryError | undefined {
  if (!(e instanceof Error) || isVmferryError(e)) return undefined;
  const { code, path } = e as NodeJS.ErrnoException;
  const known = code === undefined ? undefined : FILE_ERRORS[code];
  if (!known || path === undefined) return undefined;
  return new VmferryError(known.code, known.says(path), { cause: e });
}
