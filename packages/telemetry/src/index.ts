/*
 * Telemetry: starts the OpenTelemetry Node SDK for a vmferry process, exporting only what was
 * configured:
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT (or the _TRACES_/_METRICS_ variants) set → traces and metrics over OTLP/HTTP
 *   metricsListen HOST:PORT (--metrics-listen, VMFERRY_METRICS_LISTEN)   → a Prometheus /metrics endpoint there
 *   neither                                                              → no SDK (the API stays a no-op)
 *
 * NodeSDK fills in every exporter it is not given from OTEL_*_EXPORTER, whose default is
 * 'otlp': a node without any OTLP setting used to post traces (and build a log exporter) for
 * localhost:4318. So span and log processors are always passed explicitly, empty unless OTLP
 * is configured.
 *
 * It must run before @grpc/grpc-js is first required, so the gRPC instrumentation can hook it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics, type ObservableResult } from '@opentelemetry/api';
import { NodeSDK, tracing } from '@opentelemetry/sdk-node';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PeriodicExportingMetricReader, type MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

/** Where the metrics endpoint listens when only a port is given (the old --prometheus-port). */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

export interface TelemetryOptions {
  readonly serviceName: string;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port). Undefined: no endpoint. */
  readonly metricsListen?: string;
  /** Environment to read OTEL_* from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  readonly enabled: boolean;
  /** The metrics endpoint's bound HOST:PORT, when one is served. */
  readonly metricsAddress?: string;
  shutdown(): Promise<void>;
}

/**
 * The metrics endpoint's HOST:PORT from a service's config: `--metrics-listen` wins; the
 * legacy `--prometheus-port N` means loopback:N (it used to bind every interface, which
 * published the estate's VM names to the network).
 */
export function metricsListenFrom(config: { readonly metricsListen?: string | undefined; readonly prometheusPort?: number | undefined }): string | undefined {
  if (config.metricsListen !== undefined) return config.metricsListen;
  return config.prometheusPort ? `${DEFAULT_METRICS_HOST}:${config.prometheusPort}` : undefined;
}

export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const env = options.env ?? process.env;
  const otlp = Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']);
  if (!otlp && options.metricsListen === undefined) return { enabled: false, shutdown: () => Promise.resolve() };

  const readers: MetricReader[] = [];
  // preventServerStart: the exporter's own server binds every interface and cannot report an
  // ephemeral port; ours below binds the configured address.
  const prometheus = options.metricsListen === undefined ? undefined : new PrometheusExporter({ preventServerStart: true });
  if (prometheus) readers.push(prometheus);
  if (otlp) readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 10_000 }));
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    spanProcessors: otlp ? [new tracing.BatchSpanProcessor(new OTLPTraceExporter())] : [],
    logRecordProcessors: [],
    metricReaders: readers,
    instrumentations: [new GrpcInstrumentation()],
  });
  sdk.start();
  let server: Server | undefined;
  let metricsAddress: string | undefined;
  if (prometheus && options.metricsListen !== undefined) {
    try {
      ({ server, address: metricsAddress } = await serveMetrics(prometheus, options.metricsListen));
    } catch (e) {
      await sdk.shutdown();
      throw e;
    }
  }
  const endpoint = server;
  return {
    enabled: true,
    ...(metricsAddress === undefined ? {} : { metricsAddress }),
    shutdown: async () => {
      if (endpoint) await new Promise<void>((resolve) => endpoint.close(() => resolve()));
      await sdk.shutdown();
    },
  };
}

/** Splits HOST:PORT ([v6]:PORT too). */
function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`metrics listen address must be HOST:PORT, got '${listen}'`);
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

async function serveMetrics(exporter: PrometheusExporter, listen: string): Promise<{ server: Server; address: string }> {
  const { host, port } = splitListen(listen);
  const serializer = new PrometheusSerializer();
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: metrics are at /metrics\n');
      return;
    }
    exporter.collect().then(
      ({ resourceMetrics }) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(serializer.serialize(withUnitSuffixes(resourceMetrics)));
      },
      (e: unknown) => res.writeHead(500).end(`collecting metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new Error(`the metrics address ${listen} is in use by another process (--metrics-listen)`, { cause: e })
          : e.code === 'EADDRNOTAVAIL'
            ? new Error(`the metrics address ${listen} is not an address of this machine (--metrics-listen)`, { cause: e })
            : e,
      ),
    );
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return { server, address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` };
}

/** OTel unit → the Prometheus name suffix (OTel's Prometheus compatibility spec). */
const UNIT_SUFFIX: Readonly<Record<string, string>> = { By: 'bytes', s: 'seconds', ms: 'milliseconds' };

/**
 * Instruments are named the OTel way (`vmferry.snapshot.duration`, unit `s`); the 0.223
 * exporter appends `_total` but not the unit, so it is appended here: Prometheus names then
 * carry their unit (`vmferry_snapshot_duration_seconds`) as Prometheus' conventions ask.
 */
function withUnitSuffixes(rm: ResourceMetrics): ResourceMetrics {
  return {
    ...rm,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      ...sm,
      metrics: sm.metrics.map((m) => {
        const suffix = UNIT_SUFFIX[m.descriptor.unit];
        if (!suffix || m.descriptor.name.endsWith(`.${suffix}`) || m.descriptor.name.endsWith(`_${suffix}`)) return m;
        return { ...m, descriptor: { ...m.descriptor, name: `${m.descriptor.name}.${suffix}` } };
      }),
    })),
  };
}

/**
 * Registers an observable gauge read at collection time (`read` gives value and attributes
 * per series); returns its removal. For services that need one gauge and no other OTel API.
 * Call it after startTelemetry: before, the API hands out no-op meters for good.
 */
export function observeGauge(
  meterName: string,
  name: string,
  description: string,
  read: () => readonly (readonly [number, Readonly<Record<string, string>>])[],
  unit?: string,
): () => void {
  const gauge = metrics.getMeter(meterName).createObservableGauge(name, { description, ...(unit === undefined ? {} : { unit }) });
  const callback = (r: ObservableResult): void => {
    for (const [value, attrs] of read()) r.observe(value, attrs);
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}
