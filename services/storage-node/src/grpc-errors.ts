import { status, type ServiceError, Metadata } from '@grpc/grpc-js';
import { isVmferryError, type ErrorCode } from '@vmferry/core';

/** Every error code's gRPC status. A new ErrorCode without an entry fails to compile. */
export const STATUS_OF: Record<ErrorCode, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  'out-of-range': status.OUT_OF_RANGE,
  'resource-exhausted': status.RESOURCE_EXHAUSTED,
  'data-loss': status.DATA_LOSS,
  'permission-denied': status.PERMISSION_DENIED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/** Converts anything thrown by the engine into a gRPC error with an actionable message. */
export function toServiceError(e: unknown): Partial<ServiceError> {
  if (isVmferryError(e)) {
    const metadata = new Metadata();
    metadata.set('vmferry-error-code', e.code);
    // The status alone cannot say it (RESOURCE_EXHAUSTED is a full disk or a fixed cap):
    // job workers read this to decide between a retry and a dead letter.
    metadata.set('vmferry-retryable', String(e.retryable));
    return { code: STATUS_OF[e.code], details: e.message, metadata };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}
