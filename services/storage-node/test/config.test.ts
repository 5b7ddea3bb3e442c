import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@vmferry/core';
import { loadConfig } from '../src/config.js';

describe('storage node loadConfig', () => {
  test('a half TLS set is reported together with the other bad keys', () => {
    assert.throws(
      () => loadConfig({ dataDir: 'data', zstdLevel: 'x', tlsCert: 'a.crt', extra: 1 }),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.deepEqual(
          e.message
            .split('\n')
            .slice(1)
            .map((l) => l.trim()),
          [
            'zstdLevel: Invalid input: expected number, received NaN',
            '(config): Unrecognized key: "extra"',
            'tlsCert: give all three of --tls-cert, --tls-key, --tls-ca, or none',
          ],
        );
        return true;
      },
    );
  });

  test('a replication endpoint without TLS is refused', () => {
    assert.throws(
      () => loadConfig({ dataDir: 'data', replicationListen: '127.0.0.1:7600' }),
      /replicationListen: a replication endpoint needs --tls-cert, --tls-key and --tls-ca/,
    );
  });
});
