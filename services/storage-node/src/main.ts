/**
 * Composition root of a storage node: telemetry first (so gRPC is instrumented), then the
 * engine on its data folder, then the gRPC API. Resolves once listening; `stop()` shuts down
 * cleanly (in-flight calls finish, RocksDB closes).
 */
import { metricsListenFrom, startTelemetry } from '@vmferry/telemetry';
import type { RunningNbdServer } from '@vmferry/nbd';
import { resolve } from 'node:path';
import type { NodeConfig } from './config.js';

export interface RunningNode {
  readonly address: string;
  readonly port: number;
  /** The NBD server's TCP port, when `--nbd-listen` is set. */
  readonly nbdPort?: number;
  stop(): Promise<void>;
}

export async function runStorageNode(config: NodeConfig, log: (line: string) => void = () => undefined): Promise<RunningNode> {
  const metricsListen = metricsListenFrom(config);
  const telemetry = await startTelemetry({ serviceName: 'vmferry-storage-node', ...(metricsListen === undefined ? {} : { metricsListen }) });
  // Loaded after telemetry starts so the gRPC instrumentation sees @grpc/grpc-js load (the
  // edge is its only importer).
  const { StorageEngine } = await import('./engine.js');
  const { startStorageNodeServer, startReplicationSourceServer } = await import('@vmferry/grpc-edge');
  const { storageNodeApi } = await import('./api.js');
  const { apiAuthFrom, describeApiAuth } = await import('./api-auth-config.js');
  // Before the engine opens: a bad token file is a start-up error that leaves nothing open.
  const auth = await apiAuthFrom(config);
  const engine = await StorageEngine.open({
    dataDir: config.dataDir,
    site: config.site,
    maxSnapshotsPerVm: config.maxSnapshotsPerVm,
    zstdLevel: config.zstdLevel,
    liveFold: { onError: (e: unknown) => log(`background fold failed (the pages stay; reads are unaffected): ${e instanceof Error ? e.message : String(e)}`) },
    ...(config.codecThreads === undefined ? {} : { codecThreads: config.codecThreads }),
  });
  let server;
  // Filled once the NBD server listens (it starts last); GetNodeInfo reports it to `vm run-config`.
  let nbdInfo: { address?: string; socket?: string } = {};
  let endpoint: { port: number; stop(): Promise<void> } | undefined;
  try {
    if (config.replicationListen && config.tlsCert && config.tlsKey && config.tlsCa) {
      const { ReplicationSource } = await import('./replication-source.js');
      const tls = { certFile: config.tlsCert, keyFile: config.tlsKey, caFile: config.tlsCa };
      endpoint = await startReplicationSourceServer(new ReplicationSource(engine), config.replicationListen, tls);
    }
    const replicationAddress = endpoint && config.replicationListen ? withPort(config.replicationListen, endpoint.port) : undefined;
    server = await startStorageNodeServer(storageNodeApi(engine), config.listen, {
      ...(replicationAddress ? { replicationAddress } : {}),
      nbd: () => nbdInfo,
      auth,
    });
    if (replicationAddress) log(`replication endpoint (mTLS, read-only) on ${replicationAddress}`);
  } catch (e) {
    await endpoint?.stop();
    await engine.close();
    throw e;
  }
  const address = withPort(config.listen, server.port);
  let coordinator: { stop(): Promise<void> } | undefined;
  if (config.nats) {
    const { NodeCoordinator } = await import('./coordination-worker.js');
    const { loadQuiescers } = await import('./quiesce.js');
    const quiescerFor = config.hypervisors ? await loadQuiescers(config.hypervisors) : undefined;
    coordinator = await NodeCoordinator.start(engine, {
      natsUrl: config.nats,
      site: config.site,
      nodeAddress: address,
      ...(quiescerFor ? { quiescerFor } : {}),
      log,
    });
    log(`coordinating through NATS at ${config.nats}: snapshot jobs for site ${config.site}`);
  }
  // Started last, stopped first: no NBD client writes once the engine begins to close.
  let nbd: RunningNbdServer | undefined;
  if (config.nbdListen !== undefined || config.nbdSocket !== undefined) {
    const { startNbdServer } = await import('@vmferry/nbd');
    const { EngineExports } = await import('./nbd-exports.js');
    const { meteredExports } = await import('./nbd-metrics.js');
    const { nbdTls } = await import('./nbd-tls.js');
    // With the site's TLS files, TCP NBD requires TLS everywhere, loopback included (any
    // local user can reach loopback); the Unix socket stays plain behind its permissions.
    const files = config.tlsCert && config.tlsKey && config.tlsCa ? { certFile: config.tlsCert, keyFile: config.tlsKey, caFile: config.tlsCa } : undefined;
    const clients = [config.site, ...(config.nbdClients?.split(',') ?? [])];
    nbd = await (async () =>
      startNbdServer({
        exports: meteredExports(new EngineExports(engine), config.site),
        ...(config.nbdListen === undefined ? {} : { listen: config.nbdListen }),
        ...(config.nbdSocket === undefined ? {} : { socketPath: config.nbdSocket }),
        ...(files && config.nbdListen !== undefined ? { tls: await nbdTls(files, clients) } : {}),
        log,
      }))().catch(async (e: unknown) => {
      // A port in use must not leave the gRPC server and RocksDB open (the process would hang).
      await coordinator?.stop();
      await server.stop();
      await endpoint?.stop();
      await engine.close();
      throw e;
    });
    const nbdAddress = config.nbdListen !== undefined && nbd.port !== undefined ? withPort(config.nbdListen, nbd.port) : undefined;
    nbdInfo = { ...(nbdAddress ? { address: nbdAddress } : {}), ...(config.nbdSocket === undefined ? {} : { socket: resolve(config.nbdSocket) }) };
    if (nbdAddress) {
      const how = files ? ` (TLS required; client certificates from --tls-ca named ${clients.join(', ')})` : ' (plaintext, loopback)';
      log(`NBD server on ${nbdAddress}${how}`);
    }
    if (config.nbdSocket !== undefined) log(`NBD server on unix:${config.nbdSocket}`);
  }
  // Before the 'listening' line, which tests and scripts wait for.
  if (telemetry.metricsAddress) log(`prometheus metrics on http://${telemetry.metricsAddress}/metrics`);
  log(`management API${describeApiAuth(auth)}`);
  log(`vmferry storage node (site ${config.site}) listening on ${address}, data in ${config.dataDir}`);
  const started = server;
  return {
    address,
    port: server.port,
    ...(nbd?.port === undefined ? {} : { nbdPort: nbd.port }),
    stop: async () => {
      await nbd?.close();
      await coordinator?.stop();
      await started.stop();
      await endpoint?.stop();
      await engine.close();
      await telemetry.shutdown();
    },
  };
}

function withPort(hostPort: string, port: number): string {
  return `${hostPort.slice(0, hostPort.lastIndexOf(':'))}:${port}`;
}
