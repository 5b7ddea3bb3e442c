/*
 * The scheduler service's configuration: one pure, zod-validated object. Every bad key is
 * reported at once and unknown keys are refused.
 */
import { z } from 'zod';
import { HOST_PORT, SIMPLE_NAME, definedEntries, jsDomain, natsUrlRequired, parseConfig, wholeNumber } from '@vmferry/nats';
import { TICK_MS } from './scheduler.js';

const schema = z
  .object({
    natsUrl: natsUrlRequired(),
    jsDomain: jsDomain(),
    id: z.string().regex(SIMPLE_NAME, '--id must be a simple name').optional(),
    tickMs: wholeNumber('the tick interval (ms)', 10, 60_000).default(TICK_MS),
    prometheusPort: wholeNumber('VMFERRY_PROMETHEUS_PORT', 0, 65535).optional(),
    // The Prometheus endpoint's address; the legacy prometheusPort means 127.0.0.1:PORT.
    metricsListen: z.string().regex(HOST_PORT, '--metrics-listen must be HOST:PORT').optional(),
  })
  .strict();

export type SchedulerConfig = z.infer<typeof schema>;

/**
 * Pure: validates a config object. Keys whose value is undefined or '' count as not given.
 * @throws InvalidArgumentError listing every bad or unknown key, one a line.
 */
export function loadConfig(input: Readonly<Record<string, unknown>>): SchedulerConfig {
  return parseConfig(schema, input, 'scheduler');
}

/** The environment's VMFERRY_* variables under explicit overrides (flags): the only reader of env. */
export function configFromEnv(overrides: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): SchedulerConfig {
  return loadConfig({
    natsUrl: env['VMFERRY_NATS'],
    jsDomain: env['VMFERRY_JS_DOMAIN'],
    prometheusPort: env['VMFERRY_PROMETHEUS_PORT'],
    metricsListen: env['VMFERRY_METRICS_LISTEN'],
    ...definedEntries(overrides),
  });
}
