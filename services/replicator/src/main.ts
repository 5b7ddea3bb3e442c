/**
 * Composition root of a site's replicator service: telemetry first (so gRPC is instrumented
 * when the clients load), then the service consuming the site's replication jobs. Resolves
 * once consuming; `stop()` lets running sessions finish, then closes NATS and telemetry.
 */
import { metricsListenFrom, startTelemetry } from '@vmferry/telemetry';
import type { ReplicatorConfig } from './config.js';

export interface RunningReplicator {
  stop(): Promise<void>;
}

/**
 * Runs the replicator described by a validated config (see loadConfig).
 * @throws what startReplicatorService throws (NATS unreachable); telemetry is shut down first.
 */
export async function runReplicator(config: ReplicatorConfig, log: (line: string) => void = () => undefined): Promise<RunningReplicator> {
  const metricsListen = metricsListenFrom(config);
  const telemetry = await startTelemetry({ serviceName: 'vmferry-replicator', ...(metricsListen === undefined ? {} : { metricsListen }) });
  // Loaded after telemetry starts so the gRPC instrumentation sees @grpc/grpc-js load.
  const { startReplicatorService } = await import('./service.js');
  let service;
  try {
    service = await startReplicatorService({
      natsUrl: config.natsUrl,
      ...(config.jsDomain === undefined ? {} : { jsDomain: config.jsDomain }),
      site: config.site,
      nodeAddress: config.nodeAddress,
      tls: { cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa },
      ...(config.bindAddress === undefined ? {} : { bindAddress: config.bindAddress }),
      streams: config.streams,
      sessionsPerLink: config.sessionsPerLink,
      log,
    });
  } catch (e) {
    await telemetry.shutdown();
    throw e;
  }
  if (telemetry.metricsAddress) log(`prometheus metrics on http://${telemetry.metricsAddress}/metrics`);
  const started = service;
  return {
    stop: async () => {
      await started.stop();
      await telemetry.shutdown();
    },
  };
}
