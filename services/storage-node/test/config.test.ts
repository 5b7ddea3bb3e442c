import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { configProblems } from '@vmferry/testkit';
import { loadConfig } from '../src/config.js';

describe('storage node loadConfig', () => {
  test('a half TLS set is reported together with the other bad keys', () => {
    assert.deepEqual(
      configProblems(() => loadConfig({ dataDir: 'data', zstdLevel: 'x', tlsCert: 'a.crt', extra: 1 })),
      [
        'zstdLevel: Invalid input: expected number, received NaN',
        '(config): Unrecognized key: "extra"',
        'tlsCert: give all three of --tls-cert, --tls-key, --tls-ca, or none',
      ],
    );
  });

  test('a replication endpoint without TLS is refused', () => {
    assert.throws(
      () => loadConfig({ dataDir: 'data', replicationListen: '127.0.0.1:7600' }),
      /replicationListen: a replication endpoint needs --tls-cert, --tls-key and --tls-ca/,
    );
  });
});
