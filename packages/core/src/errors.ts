/**
 * Every failure vmferry reports carries a stable `code` that callers branch on (never the
 * message), a `retryable` flag, and an optional `cause`. The gRPC edge maps each code to a
 * status through a `Record<ErrorCode, Status>`, so a new code without a mapping fails to compile.
 */
export type ErrorCode =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'out-of-range'
  | 'resource-exhausted'
  | 'data-loss'
  | 'permission-denied'
  | 'unavailable'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'unimplemented'
  | 'internal';

/**
 * Whether a failure with this code may succeed if tried again unchanged. Bad input, a missing
 * thing, a refused permission or damaged data stay so; a peer that is down comes back. A
 * resource that ran out (a full disk) may recover; a configured cap does not, so
 * LimitExceededError overrides this to false.
 */
export const RETRYABLE_BY_DEFAULT: Record<ErrorCode, boolean> = {
  'invalid-argument': false,
  'not-found': false,
  'already-exists': false,
  'failed-precondition': false,
  'out-of-range': false,
  'resource-exhausted': true,
  'data-loss': false,
  'permission-denied': false,
  unavailable: true,
  // The caller gave up or ran out of time: the work itself may well succeed next time.
  cancelled: true,
  'deadline-exceeded': true,
  // The peer runs a version without this call: asking again does not add it.
  unimplemented: false,
  internal: false,
};

/** Every code, for exhaustive tables and for reading a code back off the wire. */
export const ERROR_CODES = Object.keys(RETRYABLE_BY_DEFAULT) as readonly ErrorCode[];

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(RETRYABLE_BY_DEFAULT, s);
}

export class VmferryError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? RETRYABLE_BY_DEFAULT[code];
  }
}

/** Thrown when a caller's input is malformed: a bad name, size, offset or reference. */
export class InvalidArgumentError extends VmferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options);
  }
}

/** Thrown when a named VM, snapshot, vDisk, site or (in a guest filesystem) path does not exist. */
export class NotFoundError extends VmferryError {
  constructor(
    readonly kind: 'vm' | 'snapshot' | 'disk' | 'site' | 'path',
    readonly what: string,
    message?: string,
  ) {
    super('not-found', message ?? `${kind} '${what}' not found`);
  }
}

/** Thrown when creating something whose name is taken. */
export class AlreadyExistsError extends VmferryError {
  constructor(message: string) {
    super('already-exists', message);
  }
}

/** Thrown when the operation is valid but the current state forbids it. */
export class FailedPreconditionError extends VmferryError {
  constructor(message: string) {
    super('failed-precondition', message);
  }
}

/** Thrown when an offset or length falls outside a vDisk. */
export class OutOfRangeError extends VmferryError {
  constructor(message: string) {
    super('out-of-range', message);
  }
}

/** Thrown when a configured limit (such as the per-VM snapshot cap) would be exceeded: final. */
export class LimitExceededError extends VmferryError {
  constructor(message: string) {
    super('resource-exhausted', message, { retryable: false });
  }
}

/** Thrown when a peer (a node, a source site, NATS) cannot be reached now: worth retrying. */
export class UnavailableError extends VmferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

/** Thrown when the caller is not allowed to do this (no verified certificate, not a known peer). */
export class PermissionDeniedError extends VmferryError {
  constructor(message: string) {
    super('permission-denied', message);
  }
}

/** Thrown when a bug or an unexpected state stops an operation: not the caller's doing. */
export class InternalError extends VmferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', message, options);
  }
}

/** Thrown when a chunk a tree references is not in the store. */
export class ChunkMissingError extends VmferryError {
  constructor(readonly chunkId: string) {
    super('data-loss', `chunk ${chunkId.slice(0, 16)} is missing from the store`);
  }
}

/** Thrown when a chunk's bytes do not hash to its id, or it cannot be decoded. */
export class ChunkCorruptError extends VmferryError {
  constructor(
    readonly chunkId: string,
    reason: string,
  ) {
    super('data-loss', `chunk ${chunkId.slice(0, 16)} is corrupt: ${reason}`);
  }
}

/**
 * Thrown when the node's database files are damaged (a WAL record, table, blob or MANIFEST
 * fails its checksum): the message names the file and what the operator can do.
 */
export class StoreDamagedError extends VmferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('data-loss', message, options);
  }
}

/**
 * Thrown when a write fails because the data directory's filesystem is full. Retryable: the
 * node resumes writing by itself once space is freed.
 */
export class StorageFullError extends VmferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('resource-exhausted', message, { ...options, retryable: true });
  }
}

export function isVmferryError(e: unknown): e is VmferryError {
  return e instanceof VmferryError;
}
