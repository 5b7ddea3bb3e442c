/*
 * The scheduler service's configuration: one pure, zod-validated object. Every bad key is
 * reported at once and unknown keys are refused.
 */
import { z } from 'zod';
import { InvalidArgumentError } from '@vmferry/core';
import { TICK_MS } from './scheduler.js';

/**
 * A whole number in [min, max], given as a number or as decimal digits (flags and the
 * environment are strings). `Number()` would take "x" as NaN, "" as 0 and "1e3" as 1000.
 */
function wholeNumber(name: string, min: number, max: number) {
  const message = `${name} must be a whole number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message }),
  );
}

const schema = z
  .object({
    natsUrl: z
      .string({ error: 'the NATS server is required (--nats URL or VMFERRY_NATS)' })
      .regex(/^nats:\/\/\S+$/, 'nats must be a nats:// URL (comma-separate several)'),
    jsDomain: z.string().min(1).optional(),
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, '--id must be a simple name')
      .optional(),
    tickMs: wholeNumber('the tick interval (ms)', 10, 60_000).default(TICK_MS),
    prometheusPort: wholeNumber('VMFERRY_PROMETHEUS_PORT', 0, 65535).optional(),
  })
  .strict();

export type SchedulerConfig = z.infer<typeof schema>;

/**
 * Pure: validates a config object. Keys whose value is undefined or '' count as not given.
 * @throws InvalidArgumentError listing every bad or unknown key, one a line.
 */
export function loadConfig(input: Readonly<Record<string, unknown>>): SchedulerConfig {
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== ''));
  const r = schema.safeParse(given);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new InvalidArgumentError(`bad scheduler configuration:\n  ${problems.join('\n  ')}`);
  }
  return r.data;
}

/** The environment's VMFERRY_* variables under explicit overrides (flags): the only reader of env. */
export function configFromEnv(overrides: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): SchedulerConfig {
  return loadConfig({
    natsUrl: env['VMFERRY_NATS'],
    jsDomain: env['VMFERRY_JS_DOMAIN'],
    prometheusPort: env['VMFERRY_PROMETHEUS_PORT'],
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  });
}
