/**
 * Composition root of a site's replicator service: telemetry first (so gRPC is instrumented
 * when the clients load), then the service consuming the site's replication jobs. Resolves
 * once consuming; `stop()` lets running sessions finish, then closes NATS and telemetry.
 */
import { metricsListenFrom, startTelemetry } from '@vmferry/telemetry';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '@vmferry/core';
import type { NodeCredentials } from '@vmferry/grpc-edge';
import type { ReplicatorConfig } from './config.js';

/**
 * The local node API's credentials: its token file, and with nodeTls this site's certificate
 * (the node allows its own site's CN), the node's certificate checked against the site name.
 */
async function nodeCredentialsOf(config: ReplicatorConfig): Promise<NodeCredentials> {
  const read = (flag: string, file: string): Promise<Buffer> =>
    readFile(file).catch((e: unknown) => {
      throw new InvalidArgumentError(`${flag} ${file}: cannot read it (${(e as Error).message})`, { cause: e });
    });
  const token = config.nodeTokenFile === undefined ? undefined : (await read('--node-token-file', config.nodeTokenFile)).toString('utf8').trim();
  if (token === '') throw new InvalidArgumentError(`--node-token-file ${config.nodeTokenFile ?? ''} is empty`);
  const tls = config.nodeTls
    ? {
        cert: await read('--tls-cert', config.tlsCert),
        key: await read('--tls-key', config.tlsKey),
        ca: await read('--tls-ca', config.tlsCa),
        serverName: config.site,
      }
    : undefined;
  return { ...(token === undefined ? {} : { token }), ...(tls ? { tls } : {}) };
}

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
    const nodeCredentials = await nodeCredentialsOf(config);
    service = await startReplicatorService({
      nodeCredentials,
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
