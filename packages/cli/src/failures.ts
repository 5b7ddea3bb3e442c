/** Failures the CLI reports in its own words, keeping the code and retryable flag of the cause. */
import { isVmferryError, VmferryError } from '@vmferry/core';
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
