/*
 * The replicator service's configuration: one pure, zod-validated object. Every bad key is
 * reported at once, unknown keys are refused, and so is a half-configured TLS identity (a
 * replicator only ever pulls over mTLS, so it needs a certificate, its key and the CA).
 */
import { z } from 'zod';
import { InvalidArgumentError } from '@vmferry/core';
import { DEFAULT_STREAMS } from './session.js';

export const DEFAULT_NODE_ADDRESS = '127.0.0.1:7400';
export const DEFAULT_SESSIONS_PER_LINK = 2;

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * A whole number in [min, max], given as a number or as decimal digits (flags and the
 * environment are strings). `Number()` would take "x" as NaN, "" as 0 and "1e3" as 1000.
 */
export function wholeNumber(name: string, min: number, max: number) {
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
    site: z.string({ error: 'the site this replicator serves is required (--site NAME)' }).regex(SITE_NAME, 'site must be a simple name'),
    nodeAddress: z.string().regex(HOST_PORT, 'node must be HOST:PORT').default(DEFAULT_NODE_ADDRESS),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    tlsCa: z.string().min(1).optional(),
    bindAddress: z.string().min(1).optional(),
    streams: wholeNumber('--streams', 1, 64).default(DEFAULT_STREAMS),
    sessionsPerLink: wholeNumber('--sessions-per-link', 1, 1024).default(DEFAULT_SESSIONS_PER_LINK),
    prometheusPort: wholeNumber('VMFERRY_PROMETHEUS_PORT', 0, 65535).optional(),
  })
  .strict()
  .superRefine(
    (c, ctx) => {
      // Pulls are mTLS or nothing: all three files, never a certificate without its key.
      const given = [c.tlsCert, c.tlsKey, c.tlsCa].filter((v) => v !== undefined).length;
      if (given !== 3) {
        ctx.addIssue({
          code: 'custom',
          path: ['tlsCert'],
          message:
            given === 0
              ? 'replication needs TLS: --certs DIR (with SITE.crt, SITE.key, ca.crt) or --tls-cert/--tls-key/--tls-ca'
              : 'give all three of --tls-cert, --tls-key, --tls-ca',
        });
      }
      // Checked even when other keys are bad: every problem is reported in one go.
    },
    { when: () => true },
  );

/** A validated replicator configuration (input: see loadConfig). */
export type ReplicatorConfig = z.infer<typeof schema> & { readonly tlsCert: string; readonly tlsKey: string; readonly tlsCa: string };

/**
 * Pure: validates a config object. Keys whose value is undefined or '' count as not given.
 * @throws InvalidArgumentError listing every bad or unknown key, one a line.
 */
export function loadConfig(input: Readonly<Record<string, unknown>>): ReplicatorConfig {
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== ''));
  const r = schema.safeParse(given);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new InvalidArgumentError(`bad replicator configuration:\n  ${problems.join('\n  ')}`);
  }
  const { tlsCert, tlsKey, tlsCa } = r.data;
  // The refinement above guarantees all three; this narrows the type.
  if (tlsCert === undefined || tlsKey === undefined || tlsCa === undefined) throw new InvalidArgumentError('bad replicator configuration: TLS files missing');
  return { ...r.data, tlsCert, tlsKey, tlsCa };
}

/** The environment's VMFERRY_* variables under explicit overrides (flags): the only reader of env. */
export function configFromEnv(overrides: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): ReplicatorConfig {
  return loadConfig({
    natsUrl: env['VMFERRY_NATS'],
    jsDomain: env['VMFERRY_JS_DOMAIN'],
    site: env['VMFERRY_SITE'],
    nodeAddress: env['VMFERRY_NODE'],
    tlsCert: env['VMFERRY_TLS_CERT'],
    tlsKey: env['VMFERRY_TLS_KEY'],
    tlsCa: env['VMFERRY_TLS_CA'],
    bindAddress: env['VMFERRY_BIND'],
    prometheusPort: env['VMFERRY_PROMETHEUS_PORT'],
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  });
}
