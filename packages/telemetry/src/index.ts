/*
 * Telemetry: starts the OpenTelemetry Node SDK for a vmferry process.
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT (or the _TRACES_/_METRICS_ variants) set → OTLP over HTTP
 *   VMFERRY_PROMETHEUS_PORT (or the prometheusPort option) set          → a /metrics endpoint
 *   neither                                                              → no SDK (no-op API)
 *
 * It must run before @grpc/grpc-js is first required, so the gRPC instrumentation can hook it.
 */
import { NodeSDK } from '@opentelemetry/sdk-node';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface TelemetryOptions {
  readonly serviceName: string;
  /** Serve Prometheus metrics on this port (0: do not). Default: VMFERRY_PROMETHEUS_PORT. */
  readonly prometheusPort?: number;
  /** Environment to read OTEL_* from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  readonly enabled: boolean;
  readonly prometheusPort?: number;
  shutdown(): Promise<void>;
}

export function startTelemetry(options: TelemetryOptions): Telemetry {
  const env = options.env ?? process.env;
  const otlp = Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']);
  const promPort = options.prometheusPort ?? Number(env['VMFERRY_PROMETHEUS_PORT'] ?? 0);
  if (!otlp && !promPort) return { enabled: false, shutdown: () => Promise.resolve() };

  const readers: MetricReader[] = [];
  if (promPort) readers.push(new PrometheusExporter({ port: promPort }));
  if (otlp) readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 10_000 }));
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    ...(otlp ? { traceExporter: new OTLPTraceExporter() } : {}),
    metricReaders: readers,
    instrumentations: [new GrpcInstrumentation()],
  });
  sdk.start();
  return {
    enabled: true,
    ...(promPort ? { prometheusPort: promPort } : {}),
    shutdown: () => sdk.shutdown(),
  };
}
