/**
 * Nothing is exported that was not configured. A fake OTLP/HTTP collector counts connections:
 * with no OTEL_* endpoint, spans ended and flushed at shutdown reach nobody (NodeSDK's
 * default would post them to localhost:4318); with an endpoint set, the same spans do arrive,
 * which shows the test can see an export at all.
 *
 * In process, because NodeSDK reads OTEL_* from process.env; the API globals are reset
 * between the cases.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { metrics, trace } from '@opentelemetry/api';
import { startTelemetry } from '../src/index.js';

interface Collector {
  readonly server: Server;
  readonly port: number;
  connections(): number;
  /** Resolves at the first connection. */
  readonly first: Promise<void>;
}

async function collector(host: string, port: number): Promise<Collector | undefined> {
  let n = 0;
  let seen: () => void = () => undefined;
  const first = new Promise<void>((r) => (seen = r));
  // Answers every request 200 at once, so a configured exporter finishes without retrying.
  const server = createServer((s) => {
    n++;
    seen();
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    s.on('error', () => undefined);
  });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  return ok ? { server, port: (server.address() as AddressInfo).port, connections: () => n, first } : undefined;
}

const OTEL_KEYS = Object.keys(process.env).filter((k) => k.startsWith('OTEL_'));
for (const k of OTEL_KEYS) Reflect.deleteProperty(process.env, k);
const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

function emitSpans(): void {
  const tracer = trace.getTracer('exporters-test');
  for (let i = 0; i < 3; i++) tracer.startSpan(`span ${i}`).end();
}

test('no OTLP endpoint configured: no connection to the default collector on :4318', async () => {
  // localhost may resolve to either family: watch both (::1 only where the host has it).
  const v4 = await collector('127.0.0.1', 4318);
  assert.ok(v4, 'port 4318 on 127.0.0.1 is taken: cannot watch for stray OTLP exports');
  const v6 = await collector('::1', 4318);
  const watch = [v4, ...(v6 ? [v6] : [])];
  servers.push(...watch.map((c) => c.server));

  const t = await startTelemetry({ serviceName: 'exporters-test', metricsListen: '127.0.0.1:0' });
  assert.match(t.metricsAddress ?? '', /^127\.0\.0\.1:\d+$/);
  emitSpans();
  // Shutdown flushes every span processor and exporter there is: the moment an export would happen.
  await t.shutdown();
  trace.disable();
  metrics.disable();
  assert.deepEqual(
    watch.map((c) => c.connections()),
    watch.map(() => 0),
  );
});

test('a metrics address in use is named as such', async () => {
  const busy = await collector('127.0.0.1', 0);
  assert.ok(busy);
  servers.push(busy.server);
  await assert.rejects(startTelemetry({ serviceName: 'exporters-test', metricsListen: `127.0.0.1:${busy.port}` }), {
    message: `the metrics address 127.0.0.1:${busy.port} is in use by another process (--metrics-listen)`,
  });
  trace.disable();
  metrics.disable();
});

test('an OTLP endpoint configured: the same spans reach it', async () => {
  const c = await collector('127.0.0.1', 0);
  assert.ok(c);
  servers.push(c.server);
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://127.0.0.1:${c.port}`;
  try {
    const t = await startTelemetry({ serviceName: 'exporters-test' });
    assert.equal(t.metricsAddress, undefined);
    emitSpans();
    await t.shutdown();
    await Promise.race([c.first, new Promise((_, reject) => setTimeout(() => reject(new Error('no OTLP connection within 10 s')), 10_000))]);
    assert.ok(c.connections() > 0);
  } finally {
    Reflect.deleteProperty(process.env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    trace.disable();
    metrics.disable();
  }
});
