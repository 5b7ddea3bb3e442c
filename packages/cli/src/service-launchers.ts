/**
 * Thin launchers of the coordination services: `vmferry scheduler` and `vmferry replicator`
 * map their flags onto the service's config (which validates every key at once) and run the
 * service's composition root until SIGINT or SIGTERM.
 */
import type { Command } from 'commander';
import { tlsFlagFiles, withTlsFlags, type TlsFlags } from './tls-files.js';

interface LauncherGlobals {
  node: string;
  nats?: string;
  nodeTokenFile?: string;
}

/** Runs `stop` on SIGINT or SIGTERM, then exits. */
function stopOnSignal(stop: () => Promise<void>): void {
  const onSignal = (): void => {
    void stop().finally(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

export function registerServiceLaunchers(program: Command, defaultNats: string): void {
  program
    .command('scheduler')
    .description('run a scheduler (leader-elected: run two for failover)')
    .option('--id <id>', "this scheduler's name")
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (env VMFERRY_METRICS_LISTEN; none by default)')
    .action(async (o: { id?: string; metricsListen?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<LauncherGlobals>();
      const { loadConfig, runScheduler } = await import('@vmferry/scheduler');
      const config = loadConfig({
        natsUrl: g.nats ?? defaultNats,
        id: o.id,
        prometheusPort: process.env['VMFERRY_PROMETHEUS_PORT'],
        metricsListen: o.metricsListen ?? process.env['VMFERRY_METRICS_LISTEN'],
      });
      const s = await runScheduler(config, {
        log,
        onTick: (r) => log(`published ${r.published} snapshot jobs (${r.duplicates} duplicates) in ${r.ms.toFixed(0)} ms`),
      });
      log(`scheduler ${s.id} running against ${config.natsUrl}`);
      stopOnSignal(() => s.stop());
    });

  withTlsFlags(
    program
      .command('replicator')
      .description("run a site's replicator service: pulls the replication jobs addressed to --site into --node")
      .requiredOption('--site <name>', 'the site this replicator serves (jobs to this site)'),
    'folder with ca.crt, SITE.crt, SITE.key',
  )
    .option('--bind <address>', 'local source address for pulls (the replication NIC)')
    .option('--node-tls', "call --node over mTLS with this site's certificate (a node with --api-tls; env VMFERRY_NODE_TLS=1)")
    .option('--streams <n>', 'parallel streams per session', '4')
    .option('--sessions-per-link <n>', 'sessions at once per source link', '2')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (env VMFERRY_METRICS_LISTEN; none by default)')
    .action(
      async (
        o: TlsFlags & { site: string; bind?: string; nodeTls?: boolean; streams: string; sessionsPerLink: string; metricsListen?: string },
        cmd: Command,
      ) => {
        const g = cmd.optsWithGlobals<LauncherGlobals>();
        const { loadConfig, runReplicator } = await import('@vmferry/replicator');
        const config = loadConfig({
          natsUrl: g.nats ?? defaultNats,
          site: o.site,
          nodeAddress: g.node,
          // Given as they are: the service's config refuses a half set.
          ...tlsFlagFiles(o.site, o),
          bindAddress: o.bind,
          // The global --node-token-file (env VMFERRY_NODE_TOKEN_FILE) serves the replicator too.
          nodeTokenFile: g.nodeTokenFile,
          nodeTls: o.nodeTls ?? process.env['VMFERRY_NODE_TLS'],
          streams: o.streams,
          sessionsPerLink: o.sessionsPerLink,
          prometheusPort: process.env['VMFERRY_PROMETHEUS_PORT'],
          metricsListen: o.metricsListen ?? process.env['VMFERRY_METRICS_LISTEN'],
        });
        const svc = await runReplicator(config, log);
        stopOnSignal(() => svc.stop());
      },
    );
}
