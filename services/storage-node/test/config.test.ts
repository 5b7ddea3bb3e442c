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

  test('NBD beyond loopback without TLS is refused, naming the flag; loopback is fine', () => {
    for (const listen of ['0.0.0.0:10809', '10.1.2.3:10809', '[::]:10809', 'node-a:10809']) {
      assert.throws(
        () => loadConfig({ dataDir: 'data', nbdListen: listen }),
        new RegExp(`nbdListen: --nbd-listen ${listen.replace(/[[\]]/g, '\\$&')} is beyond loopback: NBD there needs TLS`),
        listen,
      );
    }
    for (const listen of ['127.0.0.1:10809', '127.0.0.2:0', 'localhost:10809', '[::1]:10809']) {
      assert.equal(loadConfig({ dataDir: 'data', nbdListen: listen }).nbdListen, listen);
    }
  });

  test('NBD beyond loopback with the TLS files is allowed; --nbd-clients needs them', () => {
    const tls = { tlsCert: 'a.crt', tlsKey: 'a.key', tlsCa: 'ca.crt' };
    assert.equal(loadConfig({ dataDir: 'data', nbdListen: '0.0.0.0:10809', nbdClients: 'hv1,hv2', ...tls }).nbdClients, 'hv1,hv2');
    assert.throws(
      () => loadConfig({ dataDir: 'data', nbdListen: '127.0.0.1:0', nbdClients: 'hv1' }),
      /nbdClients: --nbd-clients needs --nbd-listen with --tls-cert/,
    );
  });
});
