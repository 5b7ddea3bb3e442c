/*
 * Errors across the gRPC edge, both ways. A server turns a coded core error into a status
 * with the code and its retryable flag in metadata (the status alone cannot say it:
 * RESOURCE_EXHAUSTED is a full disk, worth a retry, or a fixed cap, which is not). A client
 * turns the status and that metadata back into a core VmferryError, so every caller above the
 * edge branches on `code` and `retryable`, never on a gRPC status number.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isErrorCode, isVmferryError, VmferryError, type ErrorCode } from '@vmferry/core';

/** Metadata keys the server sets on every coded failure. */
export const ERROR_CODE_KEY = 'vmferry-error-code';
export const RETRYABLE_KEY = 'vmferry-retryable';

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
  cancelled: status.CANCELLED,
  'deadline-exceeded': status.DEADLINE_EXCEEDED,
  unimplemented: status.UNIMPLEMENTED,
  internal: status.INTERNAL,
};

/** The code a status means when a peer sent no `vmferry-error-code` (an older node, grpc-js itself). */
const CODE_OF_STATUS: Partial<Record<status, ErrorCode>> = {
  ...Object.fromEntries(Object.entries(STATUS_OF).map(([code, st]) => [st, code as ErrorCode])),
  [status.UNKNOWN]: 'internal',
  [status.ABORTED]: 'unavailable',
  [status.UNAUTHENTICATED]: 'permission-denied',
};

/** Converts anything a handler threw into a gRPC error with an actionable message. */
export function toServiceError(e: unknown): Partial<ServiceError> {
  if (isVmferryError(e)) {
    const metadata = new Metadata();
    metadata.set(ERROR_CODE_KEY, e.code);
    metadata.set(RETRYABLE_KEY, String(e.retryable));
    return { code: STATUS_OF[e.code], details: e.message, metadata };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === 'number' && (e as Partial<ServiceError>).metadata instanceof Metadata;
}

function metadataString(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  if (typeof v === 'string') return v;
  return Buffer.isBuffer(v) ? v.toString() : undefined;
}

/**
 * Turns what a gRPC call rejected with back into a core error: the server's code and
 * retryable flag when it sent them, else the status's meaning. `peer` names who answered
 * ("the storage node at 127.0.0.1:7400"), for a reach failure that carries no details.
 */
export function fromServiceError(e: ServiceError, peer?: string): VmferryError {
  const sent = metadataString(e.metadata, ERROR_CODE_KEY);
  const code: ErrorCode = sent !== undefined && isErrorCode(sent) ? sent : (CODE_OF_STATUS[e.code] ?? 'internal');
  const flag = metadataString(e.metadata, RETRYABLE_KEY);
  const retryable = flag === undefined ? undefined : flag === 'true';
  const details = e.details || status[e.code] || `status ${e.code}`;
  const message = code === 'unavailable' && peer ? `cannot reach ${peer}: ${details}` : details;
  return new VmferryError(code, message, { cause: e, ...(retryable === undefined ? {} : { retryable }) });
}

/** A gRPC failure as a core error (see fromServiceError); anything else unchanged. */
export function asCoreError(e: unknown, peer?: string): unknown {
  return isServiceError(e) ? fromServiceError(e, peer) : e;
}

/** The status name and details a peer answered with, when `e` is a core error made from a gRPC failure. */
export function remoteFailure(e: unknown): { readonly status: string; readonly details: string } | undefined {
  if (!isVmferryError(e) || !isServiceError(e.cause)) return undefined;
  const cause = e.cause;
  // A code from a newer peer has no name here.
  const name = (status as unknown as Record<number, string | undefined>)[cause.code];
  return { status: name ?? `status ${cause.code}`, details: cause.details };
}
