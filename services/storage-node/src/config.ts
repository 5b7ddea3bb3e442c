import { z } from 'zod';
import { HOST_PORT, NATS_URL, NATS_URL_MESSAGE, SIMPLE_NAME, definedEntries, parseConfig } from '@vmferry/nats';
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
    replicationListen: z.string().regex(HOST_PORT, 'replicationListen must be HOST:PORT').optional(),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    tlsCa: z.string().optional(),
    nats: z.string().regex(NATS_URL, NATS_URL_MESSAGE).optional(),
    hypervisors: z.string().optional(),
    // NBD is plaintext and unauthenticated (no TLS yet): loopback only, or a Unix socket.
    nbdListen: z
      .string()
      .regex(
        /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}$/,
        'nbdListen must be a loopback HOST:PORT (127.x.x.x, localhost or [::1]): NBD has no TLS here yet',
      )
      .optional(),
    nbdSocket: z.string().min(1).optional(),
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
    replicationListen: env['VMFERRY_REPLICATION_LISTEN'],
    tlsCert: env['VMFERRY_TLS_CERT'],
    tlsKey: env['VMFERRY_TLS_KEY'],
    tlsCa: env['VMFERRY_TLS_CA'],
    nats: env['VMFERRY_NATS'],
    hypervisors: env['VMFERRY_HYPERVISORS'],
    nbdListen: env['VMFERRY_NBD_LISTEN'],
    nbdSocket: env['VMFERRY_NBD_SOCKET'],
    ...definedEntries(overrides),
  });
}
