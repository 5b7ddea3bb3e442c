import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  fingerprint,
  fromHex,
  isHole,
  isZero,
  isVmferryError,
  shortId,
  toHex,
  ChunkCorruptError,
  ChunkMissingError,
  InvalidArgumentError,
  LimitExceededError,
  UnavailableError,
  NotFoundError,
  OutOfRangeError,
  VmferryError,
  FINGERPRINT_BYTES,
  HOLE,
} from '../src/index.js';

describe('fingerprint', () => {
  test('is BLAKE3-256 of the bytes', () => {
    // Published BLAKE3 test value for the empty input.
    assert.equal(toHex(fingerprint(new Uint8Array(0))), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    assert.equal(fingerprint(Buffer.from('abc')).length, FINGERPRINT_BYTES);
    assert.ok(!fingerprint(Buffer.from('a')).equals(fingerprint(Buffer.from('b'))));
  });

  test('the fingerprint of zeros is not HOLE: HOLE is a marker, not a hash', () => {
    assert.ok(!isHole(fingerprint(Buffer.alloc(65536))));
    assert.ok(isHole(HOLE));
    assert.ok(isHole(new Uint8Array(32)));
    assert.ok(!isHole(new Uint8Array(31)));
    assert.ok(!isHole(new Uint8Array(33)));
  });

  test('hex round trip, on views too', () => {
    const fp = fingerprint(Buffer.from('x'));
    assert.ok(fromHex(toHex(fp)).equals(fp));
    const big = Buffer.concat([Buffer.from('pad'), fp]);
    assert.equal(toHex(big.subarray(3)), toHex(fp));
    assert.equal(shortId(fp), toHex(fp).slice(0, 12));
    assert.equal(shortId(toHex(fp)), toHex(fp).slice(0, 12));
  });

  test('fromHex rejects anything but 64 lower-case hex digits', () => {
    for (const bad of ['', 'ab', 'A'.repeat(64), 'g'.repeat(64), '0'.repeat(63), '0'.repeat(65)]) {
      assert.throws(() => fromHex(bad), TypeError, bad);
    }
  });
});

describe('isZero', () => {
  test('detects any non-zero byte, including past the 4 MiB shared page', () => {
    assert.ok(isZero(new Uint8Array(0)));
    assert.ok(isZero(Buffer.alloc(4096)));
    const big = Buffer.alloc(9 * 1024 * 1024 + 7);
    assert.ok(isZero(big));
    for (const at of [0, 4095, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, big.length - 1]) {
      big[at] = 1;
      assert.ok(!isZero(big), `byte ${at}`);
      big[at] = 0;
    }
  });
});

describe('errors', () => {
  test('carry a stable code, a name and retryable', () => {
    const e = new InvalidArgumentError('bad', { cause: new Error('root') });
    assert.ok(e instanceof VmferryError && e instanceof Error);
    assert.equal(e.code, 'invalid-argument');
    assert.equal(e.name, 'InvalidArgumentError');
    assert.equal(e.retryable, false);
    assert.ok(e.cause instanceof Error);
    assert.ok(isVmferryError(e));
    assert.ok(!isVmferryError(new Error('x')));
    assert.equal(new OutOfRangeError('x').code, 'out-of-range');
    assert.equal(new VmferryError('unavailable', 'x', { retryable: true }).retryable, true);
    // Defaults per code: only causes that can go away by themselves are retryable.
    assert.equal(new UnavailableError('x').retryable, true);
    assert.equal(new VmferryError('resource-exhausted', 'disk full').retryable, true);
    assert.equal(new LimitExceededError('cap').retryable, false);
    assert.equal(new ChunkCorruptError('ab'.repeat(32), 'x').retryable, false);
    assert.equal(new VmferryError('data-loss', 'x', { retryable: true }).retryable, true);
    const nf = new NotFoundError('vm', 'web');
    assert.equal(nf.code, 'not-found');
    assert.match(nf.message, /vm 'web' not found/);
  });

  test('chunk errors keep the full id and report data loss', () => {
    const id = 'cd'.repeat(32);
    const missing = new ChunkMissingError(id);
    const corrupt = new ChunkCorruptError(id, 'why');
    assert.equal(missing.chunkId, id);
    assert.equal(corrupt.chunkId, id);
    assert.equal(missing.code, 'data-loss');
    assert.equal(corrupt.code, 'data-loss');
    assert.match(corrupt.message, /why/);
  });
});
