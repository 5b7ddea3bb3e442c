import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { configProblems } from '@vmferry/testkit';
import { loadConfig } from '../src/config.js';

const TLS = { tlsCert: 'b.crt', tlsKey: 'b.key', tlsCa: 'ca.crt' };
const MINIMAL = { natsUrl: 'nats://127.0.0.1:4222', site: 'siteB', ...TLS };

const problems = (input: Record<string, unknown>): string[] => configProblems(() => loadConfig(input));

describe('replicator loadConfig', () => {
  test('defaults fill what is not given; numbers may come as digits', () => {
    assert.deepEqual(loadConfig({ ...MINIMAL, streams: '8', bindAddress: '' }), {
      ...MINIMAL,
      nodeAddress: '127.0.0.1:7400',
      streams: 8,
      sessionsPerLink: 2,
      nodeTls: false,
    });
  });

  test('every bad key is reported at once, unknown keys included', () => {
    assert.deepEqual(problems({ ...MINIMAL, natsUrl: 'http://x', streams: 'x', sessionsPerLink: 0, nodeAddress: 'nowhere', extra: 1 }), [
      'natsUrl: nats must be a nats:// URL (comma-separate several)',
      'nodeAddress: node must be HOST:PORT',
      'streams: --streams must be a whole number from 1 to 64',
      'sessionsPerLink: --sessions-per-link must be a whole number from 1 to 1024',
      '(config): Unrecognized key: "extra"',
    ]);
  });

  test('numbers that Number() would take are refused', () => {
    for (const streams of ['1e3', '1.5', '-1', '0x10', 65, 2.5])
      assert.deepEqual(problems({ ...MINIMAL, streams }), ['streams: --streams must be a whole number from 1 to 64'], String(streams));
  });

  test('TLS is all three files or refused, reported with the other problems', () => {
    assert.deepEqual(problems({ natsUrl: 'nats://n:4222', site: 'b', tlsCert: 'b.crt', streams: 'x' }), [
      'streams: --streams must be a whole number from 1 to 64',
      'tlsCert: give all three of --tls-cert, --tls-key, --tls-ca',
    ]);
    assert.deepEqual(problems({ natsUrl: 'nats://n:4222', site: 'b' }), [
      'tlsCert: replication needs TLS: --certs DIR (with SITE.crt, SITE.key, ca.crt) or --tls-cert/--tls-key/--tls-ca',
    ]);
  });

  test('the NATS server and the site are required', () => {
    assert.deepEqual(problems({ ...TLS }), [
      'natsUrl: the NATS server is required (--nats URL or VMFERRY_NATS)',
      'site: the site this replicator serves is required (--site NAME)',
    ]);
  });
});
