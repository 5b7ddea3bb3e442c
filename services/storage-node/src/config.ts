import { z } from 'zod';
import { HOST_PORT, NATS_URL, NATS_URL_MESSAGE, SIMPLE_NAME, definedEntries, parseConfig } from '@vmferry/nats';
import { isLoopbackHost, splitHostPort } from '@vmferry/nbd';
import { DEFAULT_MAX_SNAPSHOTS_PER_VM } from './context.js';

export const DEFAULT_LISTEN = '127.0.0.1:7400';
export const DEFAULT_SITE = 'local';
export const DEFAULT_ZSTD_LEVEL = 3;

const schema = z
  .object({
    dataDir: z.string().min(1, 'the data folder is required (--data DIR or VMFERRY_DATA)'),
    listen: z.string().regex(HOST_PORT, 'listen must be HOST:PORT').default(DEFAULT_LISTEN),
    site: z.string().regex(SIMPLE_NAME, 'site must be a simple name').default(DEFAULT_SITE),
    maxSnapshotsPerVm: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_SNAPSHOTS_PER_VM),
    zstdLevel: z.coerce.number().int().min(1).max(19).default(DEFAULT_ZSTD_LEVEL),
    codecThreads: z.coerce.number().int().min(1).max(64).optional(),
    prometheusPort: z.coerce.number().int().min(0).max(65535).default(0),
    // The Prometheus endpoint's address; the legacy prometheusPort means 127.0.0.1:PORT.
    metricsListen: z.string().regex(HOST_PORT, '--metrics-listen must be HOST:PORT').optional(),
    replicationListen: z.string().regex(HOST_PORT, 'replicationListen must be HOST:PORT').optional(),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    tlsCa: z.string().optional(),
    nats: z.string().regex(NATS_URL, NATS_URL_MESSAGE).optional(),
    hypervisors: z.string().optional(),
    // With the site's TLS files, NBD on TCP requires TLS and a client certificate (anywhere);
    // without them it is plaintext and unauthenticated, so loopback only (superRefine below).
    nbdListen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'nbdListen must be HOST:PORT')
      .optional(),
    nbdSocket: z.string().min(1).optional(),
    // The management API's authentication (api-auth.ts in the edge): a bearer token, mTLS, or both.
    apiTokenFile: z.string().min(1).optional(),
    apiTls: z
      .union([z.boolean(), z.enum(['1', 'true', '0', 'false'])])
      .transform((v) => v === true || v === '1' || v === 'true')
      .optional(),
    // Certificate identities (CN) allowed on the mTLS API besides this site's own, comma-separated.
    apiClients: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}(,[A-Za-z0-9][A-Za-z0-9._-]{0,62})*$/, 'apiClients must be certificate names (CN), comma-separated')
      .optional(),
    // Certificate identities (CN) allowed on NBD besides this site's own, comma-separated.
    nbdClients: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}(,[A-Za-z0-9][A-Za-z0-9._-]{0,62})*$/, 'nbdClients must be certificate names (CN), comma-separated')
      .optional(),
  })
  .strict()
  .superRefine(
    (c, ctx) => {
      // A replication endpoint is mTLS or nothing: never half-configured, never plaintext.
      const tls = [c.tlsCert, c.tlsKey, c.tlsCa].filter((v) => v !== undefined).length;
      if (c.replicationListen !== undefined && tls !== 3) {
        ctx.addIssue({ code: 'custom', path: ['replicationListen'], message: 'a replication endpoint needs --tls-cert, --tls-key and --tls-ca' });
      }
      if (tls > 0 && tls < 3) ctx.addIssue({ code: 'custom', path: ['tlsCert'], message: 'give all three of --tls-cert, --tls-key, --tls-ca, or none' });
      // Plaintext NBD beyond loopback would let anyone on the network read and write vDisks.
      if (typeof c.nbdListen === 'string' && /:\d{1,5}$/.test(c.nbdListen) && tls !== 3 && !isLoopbackHost(splitHostPort(c.nbdListen).host)) {
        ctx.addIssue({
          code: 'custom',
          path: ['nbdListen'],
          message: `--nbd-listen ${c.nbdListen} is beyond loopback: NBD there needs TLS (give --tls-cert, --tls-key and --tls-ca), or listen on 127.0.0.1 / --nbd-socket`,
        });
      }
      // The management API reads, writes and deletes everything: beyond loopback only with a credential.
      if (
        typeof c.listen === 'string' &&
        /:\d{1,5}$/.test(c.listen) &&
        !isLoopbackHost(splitHostPort(c.listen).host) &&
        c.apiTokenFile === undefined &&
        c.apiTls !== true
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen'],
          message: `--listen ${c.listen} is beyond loopback: the management API there needs --api-token-file FILE or --api-tls (mTLS with --tls-cert, --tls-key, --tls-ca), or listen on 127.0.0.1`,
        });
      }
      if (c.apiTls === true && tls !== 3) ctx.addIssue({ code: 'custom', path: ['apiTls'], message: '--api-tls needs --tls-cert, --tls-key and --tls-ca' });
      if (c.apiClients !== undefined && c.apiTls !== true) ctx.addIssue({ code: 'custom', path: ['apiClients'], message: '--api-clients needs --api-tls' });
      if (c.nbdClients !== undefined && (tls !== 3 || c.nbdListen === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['nbdClients'], message: '--nbd-clients needs --nbd-listen with --tls-cert, --tls-key and --tls-ca' });
      }
      // Checked even when other keys are bad (zod skips refinements then): every problem in one go.
    },
    { when: () => true },
  );

export type NodeConfig = z.infer<typeof schema>;

/** Pure: validates a config object, reporting every bad key at once. */
export function loadConfig(input: Record<string, unknown>): NodeConfig {
  return parseConfig(schema, input, 'storage node');
}

/** The only reader of the environment: VMFERRY_* variables under explicit overrides. */
export function configFromEnv(overrides: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  return loadConfig({
    dataDir: env['VMFERRY_DATA'],
    listen: env['VMFERRY_LISTEN'],
    site: env['VMFERRY_SITE'],
    maxSnapshotsPerVm: env['VMFERRY_MAX_SNAPSHOTS_PER_VM'],
    zstdLevel: env['VMFERRY_ZSTD_LEVEL'],
    codecThreads: env['VMFERRY_CODEC_THREADS'],
    prometheusPort: env['VMFERRY_PROMETHEUS_PORT'],
    metricsListen: env['VMFERRY_METRICS_LISTEN'],
    replicationListen: env['VMFERRY_REPLICATION_LISTEN'],
    tlsCert: env['VMFERRY_TLS_CERT'],
    tlsKey: env['VMFERRY_TLS_KEY'],
    tlsCa: env['VMFERRY_TLS_CA'],
    nats: env['VMFERRY_NATS'],
    hypervisors: env['VMFERRY_HYPERVISORS'],
    nbdListen: env['VMFERRY_NBD_LISTEN'],
    nbdSocket: env['VMFERRY_NBD_SOCKET'],
    nbdClients: env['VMFERRY_NBD_CLIENTS'],
    apiTokenFile: env['VMFERRY_API_TOKEN_FILE'],
    apiTls: env['VMFERRY_API_TLS'],
    apiClients: env['VMFERRY_API_CLIENTS'],
    ...definedEntries(overrides),
  });
}
