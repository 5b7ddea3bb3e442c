/*
 * The replicator service's configuration: one pure, zod-validated object. Every bad key is
 * reported at once, unknown keys are refused, and so is a half-configured TLS identity (a
 * replicator only ever pulls over mTLS, so it needs a certificate, its key and the CA).
 */
import { z } from 'zod';
import { InvalidArgumentError } from '@vmferry/core';
import { HOST_PORT, SIMPLE_NAME, definedEntries, jsDomain, natsUrlRequired, parseConfig, wholeNumber } from '@vmferry/nats';
import { DEFAULT_STREAMS } from './session.js';

export const DEFAULT_NODE_ADDRESS = '127.0.0.1:7400';
export const DEFAULT_SESSIONS_PER_LINK = 2;

const schema = z
  .object({
    natsUrl: natsUrlRequired(),
    jsDomain: jsDomain(),
    site: z.string({ error: 'the site this replicator serves is required (--site NAME)' }).regex(SIMPLE_NAME, 'site must be a simple name'),
    nodeAddress: z.string().regex(HOST_PORT, 'node must be HOST:PORT').default(DEFAULT_NODE_ADDRESS),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    tlsCa: z.string().min(1).optional(),
    bindAddress: z.string().min(1).optional(),
    // The local node API's credentials (the node's --api-token-file / --api-tls).
    nodeTokenFile: z.string().min(1).optional(),
    nodeTls: z
      .union([z.boolean(), z.enum(['1', 'true', '0', 'false'])])
      .transform((v) => v === true || v === '1' || v === 'true')
      .default(false),
    streams: wholeNumber('--streams', 1, 64).default(DEFAULT_STREAMS),
    sessionsPerLink: wholeNumber('--sessions-per-link', 1, 1024).default(DEFAULT_SESSIONS_PER_LINK),
    prometheusPort: wholeNumber('VMFERRY_PROMETHEUS_PORT', 0, 65535).optional(),
    // The Prometheus endpoint's address; the legacy prometheusPort means 127.0.0.1:PORT.
    metricsListen: z.string().regex(HOST_PORT, '--metrics-listen must be HOST:PORT').optional(),
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
  const data = parseConfig(schema, input, 'replicator');
  const { tlsCert, tlsKey, tlsCa } = data;
  // The refinement above guarantees all three; this narrows the type.
  if (tlsCert === undefined || tlsKey === undefined || tlsCa === undefined) throw new InvalidArgumentError('bad replicator configuration: TLS files missing');
  return { ...data, tlsCert, tlsKey, tlsCa };
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
    nodeTokenFile: env['VMFERRY_NODE_TOKEN_FILE'],
    nodeTls: env['VMFERRY_NODE_TLS'],
    prometheusPort: env['VMFERRY_PROMETHEUS_PORT'],
    metricsListen: env['VMFERRY_METRICS_LISTEN'],
    ...definedEntries(overrides),
  });
}
