/**
 * Composition root of a scheduler: telemetry first, then NATS, then the leader-elected
 * scheduler. Resolves once started (leading or following); `stop()` releases the lease
 * (another scheduler takes over at once), then closes NATS and telemetry.
 */
import { metricsListenFrom, observeGauge, startTelemetry } from '@vmferry/telemetry';
import { openCoordination } from '@vmferry/nats';
import type { SchedulerConfig } from './config.js';
import { Scheduler, type TickReport } from './scheduler.js';
import { rpoSeries, vmLabelLimit } from './rpo-series.js';

export interface RunningScheduler {
  readonly id: string;
  stop(): Promise<void>;
}

export interface RunSchedulerOptions {
  readonly log?: (line: string) => void;
  /** Called after every tick that published something. */
  readonly onTick?: (r: TickReport) => void;
}

/**
 * Runs the scheduler described by a validated config (see loadConfig).
 * @throws what openCoordination throws (NATS unreachable); telemetry is shut down first.
 */
export async function runScheduler(config: SchedulerConfig, o: RunSchedulerOptions = {}): Promise<RunningScheduler> {
  const metricsListen = metricsListenFrom(config);
  const telemetry = await startTelemetry({ serviceName: 'vmferry-scheduler', ...(metricsListen === undefined ? {} : { metricsListen }) });
  const log = o.log ?? (() => undefined);
  if (telemetry.metricsAddress) log(`prometheus metrics on http://${telemetry.metricsAddress}/metrics`);
  let c;
  try {
    c = await openCoordination(config.natsUrl, 'vmferry-scheduler', config.jsDomain);
  } catch (e) {
    await telemetry.shutdown();
    throw e;
  }
  log(c.site === undefined ? 'scheduling the VMs of every site (one coordination plane for all)' : `scheduling the VMs of site ${c.site}`);
  const s = new Scheduler(c, { ...(config.id === undefined ? {} : { id: config.id }), tickMs: config.tickMs, log });
  if (o.onTick) s.onTick = o.onTick;
  await s.start();
  // 1 while this scheduler holds the lease: the rules alert when no scheduler reports 1.
  const unobserve = observeGauge('vmferry-scheduler', 'vmferry.scheduler.leader', 'Whether this scheduler holds the leader lease (1) or follows (0)', () => [
    [s.isLeader ? 1 : 0, { scheduler: s.id }],
  ]);
  const limit = vmLabelLimit();
  const unobserveRpo = observeGauge(
    'vmferry-scheduler',
    'vmferry.replica.rpo',
    "Each VM's RPO per replication target, in seconds, from the policy in force",
    () => rpoSeries(s.view, limit),
    's',
  );
  const coordination = c;
  return {
    id: s.id,
    stop: async () => {
      unobserve();
      unobserveRpo();
      await s.stop();
      await coordination.close();
      await telemetry.shutdown();
    },
  };
}
