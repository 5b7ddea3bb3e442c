/*
 * Connects to NATS and makes sure the streams and buckets exist (idempotent, so every service
 * can call it at start). Jobs: a work-queue stream with a duplicate window, so a job published
 * twice under one message id (two schedulers, a restart) is stored once. Events: a limits
 * stream that the CLI, dashboards and tests follow.
 */
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { EVENTS_STREAM, EVENTS_SUBJECTS, JOBS_STREAM, JOBS_SUBJECTS, LEADER_BUCKET, POLICY_BUCKET, REGISTRY_BUCKET, STATE_BUCKET } from './names.js';

/** How long a job's message id suppresses a duplicate. */
export const DUPLICATE_WINDOW_MS = 6 * 3600 * 1000;
/** A scheduler leader's lease: its key expires this long after the last heartbeat. */
export const LEADER_TTL_MS = 6000;

export interface Coordination {
  /**
   * The site whose own NATS server this is (its JetStream domain), when each site runs its own
   * (per-site coordination, deploy/nats); undefined on one coordination plane shared by every
   * site (one server, or a leaf of a hub reached through VMFERRY_JS_DOMAIN).
   */
  readonly site: string | undefined;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly policies: KV;
  readonly registry: KV;
  readonly leader: KV;
  readonly state: KV;
  close(): Promise<void>;
}

/** Timing of the coordination plane; the defaults are the production values, tests shorten them. */
export interface CoordinationTiming {
  /** The leader bucket's TTL, set when the bucket is created (see LEADER_TTL_MS). */
  readonly leaderTtlMs?: number;
  /** How long a JetStream or KV request waits for its reply; default 5 s (the client's). */
  readonly requestTimeoutMs?: number;
}

/**
 * `domain`: the JetStream domain holding vmferry's streams, for a site whose NATS server is a
 * leaf node of the hub that runs JetStream (deploy/nats). Default: VMFERRY_JS_DOMAIN or none.
 * Rejects when NATS cannot be reached or a stream or bucket cannot be created.
 */
export async function openCoordination(
  servers: string,
  name: string,
  domain: string | undefined = process.env['VMFERRY_JS_DOMAIN'] || undefined,
  timing: CoordinationTiming = {},
): Promise<Coordination> {
  const nc = await connect({ servers: servers.split(','), name, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  const jsOpts = { ...(domain ? { domain } : {}), ...(timing.requestTimeoutMs === undefined ? {} : { timeout: timing.requestTimeoutMs }) };
  const jsm = await jetstreamManager(nc, jsOpts);
  // A server's JetStream domain names its site (per-site coordination), unless the streams
  // live in a hub's domain that every site shares (VMFERRY_JS_DOMAIN).
  const site = domain ? undefined : (await jsm.getAccountInfo()).domain || undefined;
  await ensureStream(jsm, {
    name: JOBS_STREAM,
    subjects: [JOBS_SUBJECTS],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  });
  await ensureStream(jsm, {
    name: EVENTS_STREAM,
    subjects: [EVENTS_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(7 * 24 * 3600 * 1000),
    max_msgs: 1_000_000,
    discard: DiscardPolicy.Old,
  });
  const js = jetstream(nc, jsOpts);
  const kvm = new Kvm(js);
  const [policies, registry, leader, state] = await Promise.all([
    kvm.create(POLICY_BUCKET, { history: 5 }),
    kvm.create(REGISTRY_BUCKET, { history: 1 }),
    kvm.create(LEADER_BUCKET, { history: 1, ttl: timing.leaderTtlMs ?? LEADER_TTL_MS }),
    kvm.create(STATE_BUCKET, { history: 1 }),
  ]);
  return {
    site,
    nc,
    js,
    jsm,
    policies,
    registry,
    leader,
    state,
    close: async () => {
      await nc.drain();
    },
  };
}

async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config);
  }
}
