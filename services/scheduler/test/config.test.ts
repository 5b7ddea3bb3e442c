import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { configProblems } from '@vmferry/testkit';
import { metricsListenFrom } from '@vmferry/telemetry';
import { loadConfig, TICK_MS } from '../src/index.js';

describe('scheduler loadConfig', () => {
  test('defaults fill what is not given', () => {
    assert.deepEqual(loadConfig({ natsUrl: 'nats://127.0.0.1:4222', id: undefined }), { natsUrl: 'nats://127.0.0.1:4222', tickMs: TICK_MS });
  });

  test('every bad key is reported at once, unknown keys included', () => {
    assert.deepEqual(
      configProblems(() => loadConfig({ natsUrl: 'localhost', id: 'two words', tickMs: 'x', prometheusPort: '70000', other: true })),
      [
        'natsUrl: nats must be a nats:// URL (comma-separate several)',
        'id: --id must be a simple name',
        'tickMs: the tick interval (ms) must be a whole number from 10 to 60000',
        'prometheusPort: VMFERRY_PROMETHEUS_PORT must be a whole number from 0 to 65535',
        '(config): Unrecognized key: "other"',
      ],
    );
  });

  test('--metrics-listen is HOST:PORT; metricsListenFrom turns the legacy port into loopback', () => {
    assert.deepEqual(
      configProblems(() => loadConfig({ natsUrl: 'nats://127.0.0.1:4222', metricsListen: '9464' })),
      ['metricsListen: --metrics-listen must be HOST:PORT'],
    );
    const c = loadConfig({ natsUrl: 'nats://127.0.0.1:4222', metricsListen: '0.0.0.0:9464', prometheusPort: '9000' });
    assert.equal(metricsListenFrom(c), '0.0.0.0:9464');
    assert.equal(metricsListenFrom(loadConfig({ natsUrl: 'nats://127.0.0.1:4222', prometheusPort: '9000' })), '127.0.0.1:9000');
    assert.equal(metricsListenFrom(loadConfig({ natsUrl: 'nats://127.0.0.1:4222' })), undefined);
  });
});
