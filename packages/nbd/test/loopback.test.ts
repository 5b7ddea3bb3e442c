/** Which listen addresses count as loopback (plaintext NBD is allowed there only). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost, splitHostPort } from '../src/index.js';

test('loopback hosts', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '0:0:0:0:0:0:0:1', '::0:1', '::ffff:127.0.0.1', '0:0:0:0:0:ffff:127.9.9.9']) {
    assert.equal(isLoopbackHost(h), true, h);
  }
});

test('hosts beyond loopback', () => {
  for (const h of [
    '0.0.0.0',
    '::',
    '10.0.0.5',
    '192.0.2.1',
    '128.0.0.1',
    '::2',
    '1::1',
    '::ffff:10.0.0.1',
    '::ffff:0:127.0.0.1',
    'node-a',
    'localhost.example',
    '',
  ]) {
    assert.equal(isLoopbackHost(h), false, h);
  }
});

test('HOST:PORT splits, IPv6 in brackets', () => {
  assert.deepEqual(splitHostPort('[::1]:10809'), { host: '::1', port: 10809 });
  assert.deepEqual(splitHostPort('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
});
