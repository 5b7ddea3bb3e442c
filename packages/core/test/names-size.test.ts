import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatRef, parseRef, parseSize, validateLabel, validateVmName, InvalidArgumentError } from '../src/index.js';

describe('parseRef', () => {
  test('VM names the live state', () => {
    assert.deepEqual(parseRef('vm'), { vm: 'vm' });
    assert.equal('snapshot' in parseRef('vm'), false);
    assert.deepEqual(parseRef('web-01.prod_a'), { vm: 'web-01.prod_a' });
  });

  test('VM@SNAPSHOT names a snapshot by label or id', () => {
    assert.deepEqual(parseRef('vm@snap'), { vm: 'vm', snapshot: 'snap' });
    assert.deepEqual(parseRef('db1@01HV5Z3K8Q0000ABCDEFGHJK'), { vm: 'db1', snapshot: '01HV5Z3K8Q0000ABCDEFGHJK' });
  });

  test('names of 63 characters are accepted, 64 are not', () => {
    const max = 'a'.repeat(63);
    assert.deepEqual(parseRef(`${max}@${max}`), { vm: max, snapshot: max });
    assert.throws(() => parseRef('a'.repeat(64)), InvalidArgumentError);
    assert.throws(() => parseRef(`vm@${'a'.repeat(64)}`), InvalidArgumentError);
  });

  test('malformed references throw InvalidArgumentError', () => {
    for (const bad of ['', '@x', 'a@b@c', 'bad name', 'vm@', '@', 'vm@@snap', '-vm', '.vm', 'vm@-snap', 'vm@snap ', ' vm', 'vm/x', 'vm@sn:ap', 'vé']) {
      assert.throws(
        () => parseRef(bad),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === 'invalid-argument',
        `'${bad}' should be rejected`,
      );
    }
  });

  test('formatRef inverts parseRef', () => {
    for (const text of ['vm', 'vm@snap', 'a.b_c-d@e.f_g-h']) assert.equal(formatRef(parseRef(text)), text);
  });

  test('validateVmName and validateLabel', () => {
    assert.equal(validateVmName('vm-1'), 'vm-1');
    assert.equal(validateLabel('before-upgrade'), 'before-upgrade');
    assert.throws(() => validateVmName('vm@snap'), InvalidArgumentError);
    assert.throws(() => validateVmName(''), InvalidArgumentError);
    assert.throws(() => validateLabel('_x'), InvalidArgumentError);
  });
});

describe('parseSize', () => {
  test('plain bytes and binary units', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize('512B'), 512);
    assert.equal(parseSize('64K'), 65536);
    assert.equal(parseSize('64KB'), 65536);
    assert.equal(parseSize('64KiB'), 65536);
    assert.equal(parseSize('10G'), 10 * 1024 ** 3);
    assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
    assert.equal(parseSize('1T'), 1024 ** 4);
    assert.equal(parseSize('4m'), 4 * 1024 ** 2);
    assert.equal(parseSize(' 64 k '), 65536);
  });

  test('fractions that come to whole bytes', () => {
    assert.equal(parseSize('1.5M'), 1572864);
    assert.equal(parseSize('0.5K'), 512);
    assert.equal(parseSize('2.25G'), 2.25 * 1024 ** 3);
    assert.equal(parseSize('1.0'), 1);
  });

  test('bad sizes throw InvalidArgumentError', () => {
    for (const bad of [
      '',
      ' ',
      'x',
      'K',
      '-1',
      '-64K',
      '+1',
      '1.5',
      '1.3B',
      '0.1K',
      '1.',
      '.5K',
      '1e3',
      '0x10',
      '1,5K',
      '10X',
      '1PB',
      '1.5.2',
      '64 K B',
      'NaN',
      'Infinity',
      '99999999999T',
    ]) {
      assert.throws(
        () => parseSize(bad),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === 'invalid-argument',
        `'${bad}' should be rejected`,
      );
    }
  });
});

describe('formatBytes', () => {
  test('bytes below 1 KiB are exact; larger sizes use binary units', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.match(formatBytes(1536), /^1\.50? KiB$/);
    assert.equal(formatBytes(64 * 1024), '64.0 KiB');
    assert.equal(formatBytes(10 * 1024 ** 3), '10.0 GiB');
    assert.equal(formatBytes(1024 ** 4), '1.00 TiB');
    assert.equal(formatBytes(3 * 1024 ** 5), '3.00 PiB');
    assert.equal(formatBytes(2048 * 1024 ** 5), '2048.0 PiB');
  });
});
