/*
 * Which job failures are worth another try. A retry helps only when the cause can go away
 * by itself (a peer down, a timeout, a full disk); bad input, a lying source (DATA_LOSS) or a
 * refused permission fail the same way five times, so they are final at once.
 */
import { isVmferryError } from '@vmferry/core';

/** gRPC status codes (the numbers are the wire protocol's; this package has no grpc-js). */
const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  UNAVAILABLE: 14,
} as const;
const GRPC_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set<number>([GRPC.CANCELLED, GRPC.UNKNOWN, GRPC.DEADLINE_EXCEEDED, GRPC.ABORTED, GRPC.UNAVAILABLE]);
/** Node socket and DNS errors that a later try can get past. */
const TRANSIENT_SYSCALL: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** The shape of a grpc-js ServiceError, read without depending on grpc-js. */
interface GrpcLike {
  readonly code: number;
  readonly details?: string;
  readonly metadata?: { get(key: string): unknown[] };
}

function asGrpc(e: unknown): GrpcLike | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const g = e as Partial<GrpcLike>;
  return typeof g.code === 'number' && typeof g.metadata?.get === 'function' ? (g as GrpcLike) : undefined;
}

function metadataValue(g: GrpcLike, key: string): string | undefined {
  const v = g.metadata?.get(key)[0];
  if (typeof v === 'string') return v;
  return Buffer.isBuffer(v) ? v.toString() : undefined;
}

/** How a job failure is classified: its code (core ErrorCode or gRPC status name) and whether to retry. */
export interface FailureClass {
  readonly code: string;
  readonly retryable: boolean;
}

/**
 * Classifies a job failure. Final: a VmferryError with `retryable` false, or a gRPC error
 * whose status is not transient (RESOURCE_EXHAUSTED is transient only when the node says so
 * in `vmferry-retryable`: a fixed cap is not). Retried: everything else, including errors of
 * unknown kind (a NATS timeout, a socket error), since a retry of an unknown failure costs
 * a few tries while dead-lettering a transient one loses the job.
 */
export function classifyFailure(e: unknown): FailureClass {
  if (isVmferryError(e)) return { code: e.code, retryable: e.retryable };
  const g = asGrpc(e);
  if (g) {
    const code = metadataValue(g, 'vmferry-error-code') ?? GRPC_NAMES[g.code] ?? `grpc-${g.code}`;
    const flag = metadataValue(g, 'vmferry-retryable');
    if (flag !== undefined) return { code, retryable: flag === 'true' };
    return { code, retryable: TRANSIENT_STATUSES.has(g.code) };
  }
  if (e instanceof Error) {
    const sys = (e as NodeJS.ErrnoException).code;
    if (typeof sys === 'string' && TRANSIENT_SYSCALL.has(sys)) return { code: sys, retryable: true };
    // A wrapper without a code of its own says what its cause says.
    if (e.cause !== undefined) return classifyFailure(e.cause);
    return { code: typeof sys === 'string' ? sys : 'unknown', retryable: true };
  }
  return { code: 'unknown', retryable: true };
}
