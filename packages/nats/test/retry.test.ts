import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChunkCorruptError,
  InternalError,
  InvalidArgumentError,
  LimitExceededError,
  RETRYABLE_BY_DEFAULT,
  StorageFullError,
  UnavailableError,
  VmferryError,
  ERROR_CODES,
} from '@vmferry/core';
import { classifyFailure } from '../src/index.js';

/** A gRPC ServiceError as grpc-js delivers it (status, details, metadata). */
function serviceError(code: number, details: string, meta: Record<string, string> = {}): Error {
  const metadata = { get: (k: string): unknown[] => (k in meta ? [meta[k]] : []) };
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

describe('classifyFailure', () => {
  test("a coded error: its code, and its own retryable flag (each code's default unless overridden)", () => {
    for (const code of ERROR_CODES) assert.deepEqual(classifyFailure(new VmferryError(code, 'x')), { code, retryable: RETRYABLE_BY_DEFAULT[code] });
    assert.deepEqual(classifyFailure(new UnavailableError('down')), { code: 'unavailable', retryable: true });
    assert.deepEqual(classifyFailure(new InvalidArgumentError('bad')), { code: 'invalid-argument', retryable: false });
    assert.deepEqual(classifyFailure(new ChunkCorruptError('ab'.repeat(32), 'hash')), { code: 'data-loss', retryable: false });
    assert.deepEqual(classifyFailure(new InternalError('bug')), { code: 'internal', retryable: false });
    // The same code, two answers: a full disk recovers, a configured cap does not.
    assert.deepEqual(classifyFailure(new StorageFullError('full')), { code: 'resource-exhausted', retryable: true });
    assert.deepEqual(classifyFailure(new LimitExceededError('cap')), { code: 'resource-exhausted', retryable: false });
    assert.deepEqual(classifyFailure(new VmferryError('permission-denied', 'expired cert', { retryable: true })), {
      code: 'permission-denied',
      retryable: true,
    });
  });

  test('a raw gRPC error: the node metadata first, else whether the status is transient', () => {
    assert.deepEqual(classifyFailure(serviceError(8, 'cap', { 'vmferry-error-code': 'resource-exhausted', 'vmferry-retryable': 'false' })), {
      code: 'resource-exhausted',
      retryable: false,
    });
    assert.deepEqual(classifyFailure(serviceError(8, 'full', { 'vmferry-error-code': 'resource-exhausted', 'vmferry-retryable': 'true' })), {
      code: 'resource-exhausted',
      retryable: true,
    });
    assert.deepEqual(classifyFailure(serviceError(14, 'No connection established')), { code: 'UNAVAILABLE', retryable: true });
    assert.deepEqual(classifyFailure(serviceError(4, 'deadline')), { code: 'DEADLINE_EXCEEDED', retryable: true });
    assert.deepEqual(classifyFailure(serviceError(3, 'bad')), { code: 'INVALID_ARGUMENT', retryable: false });
    assert.deepEqual(classifyFailure(serviceError(15, 'lost')), { code: 'DATA_LOSS', retryable: false });
  });

  test('socket errors are retried; a wrapper says what its cause says; unknown errors are retried', () => {
    assert.deepEqual(classifyFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), { code: 'ECONNREFUSED', retryable: true });
    assert.deepEqual(classifyFailure(new Error('wrapped', { cause: new InvalidArgumentError('bad') })), { code: 'invalid-argument', retryable: false });
    assert.deepEqual(classifyFailure(new Error('who knows')), { code: 'unknown', retryable: true });
    assert.deepEqual(classifyFailure('a string'), { code: 'unknown', retryable: true });
  });
});
